package server

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/ratelimit"
	"github.com/wsguard/wsguard/internal/store"
)

// testHookHandshakeChecked, set only by tests, runs between the guard's
// checks and the hub registration: the window in which a racing logout or
// revocation matches no socket (see recheckSession).
var testHookHandshakeChecked atomic.Pointer[func()]

// chatEndpoint is serve mode's WebSocket endpoint (/ws): the handshake
// guard and, when it passes, a chat connection. It holds what the chat
// socket needs and nothing of the pages or the service API.
type chatEndpoint struct {
	sock       *sockets
	admit      func(http.ResponseWriter, *http.Request) (guard.Identity, func(), bool)
	clientIP   func(*http.Request) string
	clock      clock.Clock
	upgrader   *websocket.Upgrader
	hub        *hub.Hub
	store      store.Store
	rules      *authz.Rules
	limits     config.Limits
	readLimit  int64 // the largest client message (Server.readLimit)
	compressed bool  // permessage-deflate negotiated when offered
	replays    *conn.ReplayGate
	userIPMsgs ratelimit.Pair
	bans       ratelimit.BanList
	metrics    *metrics.Metrics
	audit      *audit.Log
	activity   func(*liveConn) // a request on the socket uses its session (live.go)
	recheck    func(*liveConn) // the session read again once registered (live.go)
	// The application's backend in the loop (hooks.go): asked before the
	// upgrade, consulted by the connection, told of the close.
	hookConnect func(http.ResponseWriter, *http.Request, *guard.Identity, string) bool
	backend     conn.Backend
	hookClosed  func(user string, code int, reason string)
}

// chatEndpoint builds serve mode's WebSocket endpoint from the node.
func (s *Server) chatEndpoint() *chatEndpoint {
	return &chatEndpoint{
		sock: s.sock, admit: s.admit, clientIP: s.clientIP, clock: s.clock, upgrader: &s.upgrader,
		hub: s.hub, store: s.store, rules: s.rules, limits: s.cfg.Limits, readLimit: s.readLimit(),
		compressed: s.cfg.Compression.Enabled, replays: s.replays, userIPMsgs: ratelimit.NewPair(s.userMsgs, s.ipMsgs),
		bans: s.bans, metrics: s.metrics, audit: s.audit, activity: s.sessionActivity, recheck: s.recheckSession,
		hookConnect: s.hookConnect, backend: s.connBackend(), hookClosed: s.hookClosed,
	}
}

// ServeHTTP runs the handshake guard and, when it passes, the connection.
func (e *chatEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.sock.enter(w) {
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			e.sock.done()
		}
	}()
	id, release, ok := e.admit(w, r)
	if !ok {
		return
	}
	ip := e.clientIP(r)
	if !e.hookConnect(w, r, &id, ip) { // the application's backend, after every check of ours (hooks.go)
		release()
		return
	}
	if h := testHookHandshakeChecked.Load(); h != nil {
		(*h)()
	}
	// The lifetime starts before the 101 goes out: the client may act on
	// the open socket (and a test move the clock) as soon as it has it.
	lc := &liveConn{started: e.clock.Now()}
	if id.Session != nil {
		sess := *id.Session
		lc.sess = &sess
	}
	ws, err := e.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		e.metrics.Handshakes.WithLabelValues("upgrade_failed").Inc()
		return
	}
	e.metrics.Handshakes.WithLabelValues("accepted").Inc()
	e.metrics.Connections.Inc()
	sessionID := ""
	if id.Session != nil {
		sessionID = id.Session.PublicID
	}
	lim := e.limits
	c := conn.New(ws, e.hub, e.store, e.rules, conn.Options{
		Principal:         id.Principal,
		SessionID:         sessionID,
		IP:                ip,
		Expires:           id.Expires,
		Refresh:           id.Refresh,
		MaxMessageBytes:   e.readLimit,
		SendQueue:         lim.SendQueue,
		SendQueueBytes:    lim.SendQueueBytes,
		Replays:           e.replays,
		MessagesPerSecond: lim.MessagesPerSecond,
		MessageBurst:      lim.MessageBurst,
		UserIPLimit:       e.userIPMsgs,
		IdleTimeout:       lim.IdleTimeout.D(),
		PingInterval:      lim.PingInterval.D(),
		WriteTimeout:      lim.WriteTimeout.D(),
		Lifetime:          lim.ConnLifetime.D(),
		Compressed:        e.compressed,
		Backend:           e.backend,
		Hooks: conn.Hooks{
			Closed: func(code int, reason string) { e.hookClosed(id.Principal.Name, code, reason) },
			MessageIn: func() {
				e.metrics.MessagesIn.Inc()
				e.activity(lc)
			},
			RateLimited: func(l string) { e.metrics.RateLimited.WithLabelValues(l).Inc() },
			Cut: func(reason string) {
				switch reason {
				case "slow_consumer":
					e.metrics.SlowConsumerCuts.Inc()
					e.metrics.QueueDrops.Inc() // the frame that found the queue full
				case "write_timeout": // a reader too slow for the write deadline
					e.metrics.SlowConsumerCuts.Inc()
				}
				e.audit.Record(audit.Event{Type: "connection.cut", Reason: reason, IP: ip, User: id.Principal.Name})
			},
			Registered: func() { e.recheck(lc) },
			BadFrame: func(ip string) {
				if e.bans.Fail(ip, e.clock.Now()) {
					e.metrics.Bans.Inc()
				}
			},
		},
	})
	lc.c = c
	e.sock.live.add(lc)
	// The connection runs on a goroutine of its own and this handler
	// returns: net/http then frees what it kept for the request (its
	// buffered writer, the request and response, the handler's grown stack),
	// several KiB that an idle socket would otherwise hold for its lifetime.
	// The goroutine inherits the handler's place in the sockets' count.
	handedOff = true
	go func() {
		defer func() {
			e.sock.live.remove(lc)
			release()
			e.metrics.Connections.Dec()
			e.sock.done()
		}()
		c.Serve(e.sock.ctx)
	}()
}

// admit runs the handshake guard, the one gate in front of every
// WebSocket endpoint (the chat socket in serve mode, the relay in proxy
// mode). A refusal is audited, counted, logged, may earn the IP a ban, and
// is answered here; ok is then false. On success the caller owns release.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (id guard.Identity, release func(), ok bool) {
	id, release, refusal := s.guard.Check(r)
	if refusal == nil {
		return id, release, true
	}
	ip := s.clientIP(r)
	s.audit.Record(audit.Event{Type: "handshake.refused", Reason: refusal.Reason, IP: ip,
		Fields: map[string]string{"origin": r.Header.Get("Origin")}})
	s.metrics.Handshakes.WithLabelValues("refused").Inc()
	s.metrics.Refusals.WithLabelValues(refusal.Reason).Inc()
	s.logRefusal(r, refusal)
	s.warnRefusal(r, refusal.Reason)
	if countsTowardBan(refusal.Status, refusal.Reason) {
		if s.bans.Fail(ip, s.clock.Now()) {
			s.metrics.Bans.Inc()
			s.audit.Record(audit.Event{Type: "ip.banned", IP: ip, Reason: refusal.Reason})
		}
	}
	if refusal.RetryAfter > 0 {
		retryAfter(w, refusal.RetryAfter)
	}
	http.Error(w, refusal.Message, refusal.Status)
	return guard.Identity{}, nil, false
}

// countsTowardBan reports whether a refusal is a failure of the client's
// own making that should count toward an IP ban: a 401 or 403, except a
// foreign or missing Origin and Sec-Fetch-Site: cross-site. Those a third-
// party page produces at will from its visitors' browsers (any page may
// open cross-origin handshakes or fetches), and counting them would let it
// get its visitors' IPs banned. They are refused all the same; a bad
// credential or CSRF token, which needs an allowed Origin, still counts.
// A 503 (the store could not check the credential) never counts: the
// client did nothing wrong, and an outage must not ban everyone who
// reconnects through it.
func countsTowardBan(status int, reason string) bool {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return false
	}
	return !strings.HasPrefix(reason, "origin_") && reason != "cross_site_fetch"
}

// readLimit is the largest message a client may send: limits.max_message_bytes,
// and with compression on also at most compression.max_decompressed, both
// counted after inflation (M1).
func (s *Server) readLimit() int64 {
	n := s.cfg.Limits.MaxMessageBytes
	if c := s.cfg.Compression; c.Enabled && c.MaxDecompressed > 0 && c.MaxDecompressed < n {
		n = c.MaxDecompressed
	}
	return n
}
