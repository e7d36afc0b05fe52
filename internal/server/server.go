package server

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/admin"
	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hooks"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/ratelimit"
	"github.com/wsguard/wsguard/internal/realip"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/web"
)

// Options are what a caller may supply besides the config. Zero values are fine.
type Options struct {
	Clock  clock.Clock  // Zero means the wall clock.
	Logger *slog.Logger // Zero means slog.Default().
	// Stdout receives the first-start banner with the one-time setup URL,
	// which carries a secret and so never goes to Logger. Zero means
	// os.Stdout.
	Stdout io.Writer
	// Mode is what the WebSocket endpoint serves. Zero means ModeServe.
	Mode Mode
}

// Server is one wsguard node.
type Server struct {
	// ui is the browser pages (sign-in, 2FA, settings, setup), with only
	// what they use; its handlers are promoted onto Server for the routes.
	*ui

	cfg      config.Config
	log      *slog.Logger
	clock    clock.Clock
	store    store.Store
	broker   broker.Broker
	hub      *hub.Hub
	rules    *authz.Rules
	origins  *origin.Allowlist
	proxies  *realip.Resolver
	sessions *session.Manager
	hasher   *identity.Hasher
	pages    *web.Pages
	audit    *audit.Log
	metrics  *metrics.Metrics
	guard    *guard.Guard
	creds    *guard.Credentials // every credential check: sessions, tickets, JWTs, API keys

	clientCAs *x509.CertPool // service-API mutual TLS; nil without tls.client_ca_file

	adminPolicy *admin.Policy // who admin_listen answers (admin.*)

	loginRate ratelimit.Limiter // every login attempt per IP (limits.logins_per_minute)
	loginIP   ratelimit.Throttler
	loginUser ratelimit.Throttler
	totpUser  ratelimit.Throttler
	bans      ratelimit.BanList
	limits    *ratelimit.Cluster    // the Redis-backed limits, nil in process
	presence  *broker.RedisPresence // cluster-wide presence, nil in process
	caps      ratelimit.Counter
	userMsgs  ratelimit.Limiter
	replays   *conn.ReplayGate // replays and history answers in progress per user
	ipMsgs    ratelimit.Limiter

	upgrader websocket.Upgrader
	sock     *sockets // open WebSockets, for lifetimes on the server's clock, and the drain
	stopHub  func()
	stopPoll context.CancelFunc

	refusals refusalLog // handshake refusals on the terminal, rate-limited

	mode    Mode
	gateway *gateway // proxy mode only

	stdout  io.Writer // the setup banner (Options.Stdout)
	started time.Time // for /api/v1/info

	hooks     *hooks.Hooks // the application's backend in the loop; nil without hooks.* (hooks.go)
	stopHooks func()
}

// New builds a server from a validated config. It opens the store and the
// audit log; Close releases them.
func New(cfg config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, clock: opts.Clock, log: opts.Logger, stdout: opts.Stdout, mode: opts.Mode, started: time.Now()}
	if s.stdout == nil {
		s.stdout = os.Stdout
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.origins, err = origin.New(cfg.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("allowed_origins: %w", err)
	}
	if s.proxies, err = realip.New(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if s.rules, err = authz.New(cfg.Namespaces); err != nil {
		return nil, fmt.Errorf("namespaces: %w", err)
	}
	if s.pages, err = web.New(); err != nil {
		return nil, err
	}
	if s.adminPolicy, err = adminPolicy(cfg.Admin); err != nil {
		return nil, err
	}
	if s.mode == ModeProxy {
		if s.gateway, err = s.newGateway(cfg); err != nil {
			return nil, err
		}
	}
	s.metrics = metrics.New()
	for _, w := range cfg.Warnings() {
		s.metrics.InsecureSettings.WithLabelValues(w).Set(1)
	}
	if s.hooks, err = newHooks(cfg, s.metrics, s.log); err != nil {
		return nil, err
	}
	sealer, err := s.secureFiles()
	if err != nil {
		return nil, err
	}
	if s.broker, err = openBroker(cfg); err != nil {
		return nil, err
	}
	// The store calls the hub in commit order; the hub exists before any publish.
	var h *hub.Hub
	st, err := openStore(cfg, s.clock, func(msgs []store.Message) { h.Committed(msgs) }, s.metrics, sealer, s.log)
	if err != nil {
		return nil, err
	}
	if err := s.sealStoredSecrets(st); err != nil {
		return nil, errors.Join(err, st.Close(), s.broker.Close())
	}
	s.store = st
	// The audit log's signed head lives in the store, apart from the log.
	s.audit, err = audit.Open(cfg.Audit.File, audit.Options{Clock: s.clock, Logger: s.log, KeyFile: cfg.Audit.KeyFile,
		Heads: st, OnError: s.metrics.AuditWriteErrors.Inc, OnBreak: s.metrics.AuditChainBroken.Inc})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("audit.file: %w", err), st.Close(), s.broker.Close())
	}
	h = hub.New(st, s.broker)
	h.OnDeliver = func(f *hub.Frame, n int) {
		s.metrics.MessagesOut.Add(float64(n))
		if !f.Sent.IsZero() {
			s.metrics.DeliveryLatency.Observe(time.Since(f.Sent).Seconds())
		}
	}
	h.PresencePushes = presencePushes(cfg.Namespaces)
	h.Roster = s.clusterPresence()
	s.hub = h
	s.stopHub = h.Start()
	s.startHooks()

	s.sessions = &session.Manager{Store: st, Clock: s.clock, Idle: cfg.Identity.SessionIdle.D(), Absolute: cfg.Identity.SessionAbsolute.D()}
	s.sessions.OnExpire = s.sessionExpired
	s.hasher = identity.NewHasher(identity.HasherOptions{MaxConcurrent: cfg.Identity.MaxHashing})

	lim := cfg.Limits
	handshakes := s.wireLimits()
	s.replays = conn.NewReplayGate(lim.ReplaysPerUser)

	s.guard = &guard.Guard{
		Origins:    s.origins,
		Proxies:    s.proxies,
		RequireTLS: cfg.TLSEnabled(),
		Handshakes: handshakes,
		Bans:       s.bans,
		Caps:       s.acquireConn,
		Now:        s.clock.Now,
		// The upstream's own protocol needs no wsguard.v1 (proxyws.go).
		SubprotocolOptional: s.mode == ModeProxy,
	}
	if err := s.wireCredentials(); err != nil {
		s.stopHub()
		return nil, errors.Join(err, s.closeLimits(), st.Close(), s.broker.Close())
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  lim.HandshakeTimeout.D(),
		Subprotocols:      []string{guard.Subprotocol},
		EnableCompression: cfg.Compression.Enabled,
		// The guard has already checked Origin against the exact allowlist,
		// more strictly than gorilla's same-host rule.
		CheckOrigin:     func(*http.Request) bool { return true },
		WriteBufferPool: &sync.Pool{}, // no write buffer held by idle connections
		// A small read buffer of its own lets net/http reclaim its 4 KiB one;
		// TLS buffers records itself, so this costs no extra syscalls.
		ReadBufferSize: 1024,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, "websocket upgrade failed", status)
		},
	}
	s.sock = newSockets()
	var pollCtx context.Context
	pollCtx, s.stopPoll = context.WithCancel(context.Background())
	go s.pollRevocations(pollCtx)
	s.ui = s.newUI()
	s.setupIfNoAdmin()
	for _, w := range cfg.Warnings() {
		s.log.Warn("insecure setting enabled", "setting", w)
		s.audit.Record(audit.Event{Type: "config.insecure", Reason: w})
	}
	for _, a := range cfg.Advice() {
		s.log.Warn("setting probably wrong", "setting", a)
	}
	return s, nil
}

func (s *Server) acquireConn(user, ip string) (func(), bool) {
	lim := s.cfg.Limits
	if !s.caps.Acquire("global", lim.MaxConns) {
		return nil, false
	}
	if !s.caps.Acquire("ip:"+ip, lim.ConnsPerIP) {
		s.caps.Release("global")
		return nil, false
	}
	if !s.caps.Acquire("user:"+user, lim.ConnsPerUser) {
		s.caps.Release("ip:" + ip)
		s.caps.Release("global")
		return nil, false
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.caps.Release("user:" + user)
			s.caps.Release("ip:" + ip)
			s.caps.Release("global")
		})
	}, true
}

// setupIfNoAdmin creates the one-time first-admin setup token when the
// store holds no admin; Run prints the setup URL once it is served.
func (s *Server) setupIfNoAdmin() {
	any, err := s.store.AnyAdmin(context.Background())
	if err != nil || any {
		return
	}
	s.setupToken = randomToken()
}

// printSetupBanner prints the one-time setup URL, if setup is still open.
// Run calls it once the dev CA exists and the listeners are open, so the
// URL works the moment it is shown.
func (s *Server) printSetupBanner() {
	u := s.SetupURL()
	if u == "" {
		return
	}
	// The URL carries a secret: it goes to the terminal only, never into
	// the structured log, which may be shipped elsewhere.
	s.log.Warn("no admin exists yet: open the one-time setup URL printed on standard output", "path", "/setup")
	fmt.Fprintf(s.stdout, "\nFirst start: create the first admin at\n  %s\n\n", u)
}

// SetupURL returns the one-time setup URL, or "" once an admin exists.
func (s *Server) SetupURL() string {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if s.setupToken == "" {
		return ""
	}
	return s.cfg.PublicURL + "/setup?token=" + s.setupToken
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Store returns the server's store (for embedding and tests).
func (s *Server) Store() store.Store { return s.store }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Drain stops accepting work, tells every client to reconnect elsewhere
// (1001) and waits for connections to end, at most until ctx is done.
func (s *Server) Drain(ctx context.Context) { s.sock.drain(ctx) }

// Close releases the store, broker and audit log. Publishes acknowledged
// before Close are durable.
func (s *Server) Close() error {
	s.sock.cancel()
	s.stopPoll()
	if s.stopHub != nil {
		s.stopHub()
	}
	if s.stopHooks != nil {
		s.stopHooks()
	}
	err := errors.Join(s.closeLimits(), s.store.Close(), s.broker.Close())
	return errors.Join(err, s.audit.Close())
}

func openBroker(cfg config.Config) (broker.Broker, error) {
	switch cfg.Broker {
	case "", "memory":
		return broker.NewMemory(), nil
	}
	b, err := broker.NewRedis(cfg.Broker, broker.RedisOptions{})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// openStore opens the store the config names and says on log what a first
// start or an upgrade does to it: creating the database, or migrating its
// schema (which an operator wants to see before it happens, not after).
func openStore(cfg config.Config, c clock.Clock, onCommit func([]store.Message), m *metrics.Metrics, sealer store.Sealer, log *slog.Logger) (store.Store, error) {
	switch {
	case cfg.Store == "":
	case strings.HasPrefix(cfg.Store, "sqlite:"):
	case cfg.SharedStore():
		return openPostgres(cfg, c, onCommit, m, sealer, log)
	default:
		return nil, fmt.Errorf("store: %q is not supported (allowed: empty for SQLite in data_dir, sqlite:PATH, or postgres://...)", cfg.Store)
	}
	path := storePath(cfg)
	fresh := true
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		fresh = false
	}
	if fresh {
		log.Info("first start: creating the database and its schema", "path", path)
	}
	onMigrate := func(from, to int, name string) {
		if !fresh {
			log.Info("migrating the database schema", "path", path, "from", from, "to", to, "migration", name)
		}
	}
	return store.OpenSQLite(path, store.SQLiteOptions{Clock: c, OnCommit: onCommit, Sealer: sealer, OnMigrate: onMigrate, Retention: retention(cfg.Namespaces),
		OnCommitDuration: func(d time.Duration) { m.StoreCommit.Observe(d.Seconds()) }})
}

// retention maps a channel to its namespace's history_size and
// history_ttl. A channel outside every namespace cannot be published to;
// should one exist it gets the defaults.
func retention(namespaces map[string]config.Namespace) func(string) store.Retention {
	byNS := make(map[string]store.Retention, len(namespaces)) // a copy: the committer reads it
	for name, n := range namespaces {
		size, ttl := n.Retention()
		byNS[name] = store.Retention{Size: size, TTL: ttl}
	}
	size, ttl := config.Namespace{}.Retention()
	fallback := store.Retention{Size: size, TTL: ttl}
	return func(channel string) store.Retention {
		for i := 0; i < len(channel); i++ {
			if channel[i] == ':' {
				if r, ok := byNS[channel[:i]]; ok {
					return r
				}
				break
			}
		}
		return fallback
	}
}

// presencePushes maps a channel to its namespace's presence_pushes: nil
// when every namespace pushes (the hub then asks nothing), else a func
// saying false for the channels of namespaces that turned them off.
func presencePushes(namespaces map[string]config.Namespace) func(string) bool {
	off := map[string]bool{} // a copy: joins and leaves read it concurrently
	for name, n := range namespaces {
		if !n.PushesPresence() {
			off[name] = true
		}
	}
	if len(off) == 0 {
		return nil
	}
	return func(channel string) bool {
		ns, _, found := strings.Cut(channel, ":")
		return !found || !off[ns]
	}
}
