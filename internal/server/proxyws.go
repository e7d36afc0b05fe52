package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/proxy"
	"github.com/wsguard/wsguard/internal/ratelimit"
	"github.com/wsguard/wsguard/internal/web"
)

// Mode says what a node serves at its WebSocket endpoint. Everything else
// (TLS, headers, sign-in pages, 2FA, sessions, tickets, JWT, API keys,
// limits, audit, metrics) is the same in both.
type Mode int

const (
	// ModeServe is `wsguard serve`: wsguard's own messaging at /ws.
	ModeServe Mode = iota
	// ModeProxy is `wsguard proxy`: an existing WebSocket backend
	// (proxy.upstream) relayed at proxy.path.
	ModeProxy
)

// gateway is what proxy mode adds to a node: the upstream and how the
// client side is upgraded. It holds nothing of the chat.
type gateway struct {
	upstream *proxy.Upstream
	label    string // the upstream without its query, for metrics and audit
	upgrader websocket.Upgrader
}

// newGateway loads the identity secret (creating it in data_dir when no
// file is configured) and the upstream's CA bundle.
func (s *Server) newGateway(cfg config.Config) (*gateway, error) {
	if err := cfg.RequireUpstream(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Proxy.Upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstream: %w", err)
	}
	var secret []byte
	if path := cfg.Proxy.IdentitySecretFile; path != "" {
		if secret, err = proxy.LoadSecret(path); err != nil {
			return nil, fmt.Errorf("proxy.identity_secret_file: %w", err)
		}
	} else {
		path = filepath.Join(cfg.DataDir, "proxy-identity.key")
		var created bool
		if secret, created, err = proxy.EnsureSecret(path); err != nil {
			return nil, fmt.Errorf("proxy.identity_secret_file (default %s): %w", path, err)
		}
		if created {
			s.log.Info("first start: created the identity secret the upstream verifies X-Wsguard-Signature with; give the upstream this file (or set proxy.identity_secret_file)", "file", path)
		}
	}
	up := &proxy.Upstream{URL: u, Secret: secret, HandshakeTimeout: cfg.Limits.HandshakeTimeout.D(), Now: s.clock.Now}
	if f := cfg.Proxy.UpstreamCAFile; f != "" {
		if up.RootCAs, err = proxy.LoadCAs(f); err != nil {
			return nil, fmt.Errorf("proxy.upstream_ca_file: %w", err)
		}
	}
	label := *u
	label.RawQuery = ""
	return &gateway{upstream: up, label: label.String(), upgrader: websocket.Upgrader{
		HandshakeTimeout: cfg.Limits.HandshakeTimeout.D(),
		// The guard has checked Origin against the exact allowlist.
		CheckOrigin:     func(*http.Request) bool { return true },
		WriteBufferPool: &sync.Pool{},
		ReadBufferSize:  1024,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, "websocket upgrade failed", status)
		},
	}}, nil
}

// proxyMember lets a revocation (logout, session revoke, user disable,
// service-API disconnect) reach a proxied connection through the hub's
// member list, on every node. It subscribes to no channel.
type proxyMember struct {
	pc        *proxy.Conn
	user, sid string
}

func (m *proxyMember) Deliver(string, []*hub.Frame)   {}
func (m *proxyMember) User() string                   { return m.user }
func (m *proxyMember) SessionID() string              { return m.sid }
func (m *proxyMember) Revoke(code int, reason string) { m.pc.Close(code, reason) }

// proxyEndpoint is proxy mode's WebSocket endpoint (proxy.path): the
// handshake guard, then the upstream dialled with the verified identity
// (502 when it cannot be), then the client upgraded with the upstream's
// subprotocol and the two relayed. It holds what the relay needs: no chat
// hub, store or channel rules; revocations reach it through members.
type proxyEndpoint struct {
	gw         *gateway
	sock       *sockets
	admit      func(http.ResponseWriter, *http.Request) (guard.Identity, func(), bool)
	clientIP   func(*http.Request) string
	secure     func(*http.Request) bool // arrived over TLS (trusted_proxies considered)
	clock      clock.Clock
	members    members
	limits     config.Limits
	jsonOnly   bool
	userIPMsgs ratelimit.Pair
	metrics    *metrics.Metrics
	audit      *audit.Log
	log        *slog.Logger
	activity   func(*liveConn) // a message on the socket uses its session (live.go)
	recheck    func(*liveConn) // the session read again once registered (live.go)
}

// members is where a socket registers so that revocations (logout,
// revoke, disable, service-API disconnect) on any node reach it; the hub
// implements it.
type members interface {
	Register(hub.Member)
	Unregister(hub.Member)
}

// proxyEndpoint builds proxy mode's WebSocket endpoint from the node.
func (s *Server) proxyEndpoint() *proxyEndpoint {
	return &proxyEndpoint{
		gw: s.gateway, sock: s.sock, admit: s.admit, clientIP: s.clientIP, secure: s.proxies.Secure,
		clock: s.clock, members: s.hub, limits: s.cfg.Limits, jsonOnly: s.cfg.Proxy.JSONOnly,
		userIPMsgs: ratelimit.NewPair(s.userMsgs, s.ipMsgs), metrics: s.metrics, audit: s.audit, log: s.log,
		activity: s.sessionActivity, recheck: s.recheckSession,
	}
}

// ServeHTTP admits, dials, upgrades and relays.
func (e *proxyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	gw := e.gw
	pid := proxy.Identity{User: id.Principal.Name, Roles: id.Principal.Roles, Credential: string(id.Kind), Expires: id.Expires}
	up, chosen, err := gw.upstream.Dial(r.Context(), r, pid, ip, e.secure(r))
	if err != nil {
		release()
		status, msg, reason := http.StatusBadGateway, "upstream unavailable", "upstream_unreachable"
		if errors.Is(err, proxy.ErrUnrepresentable) {
			status, msg, reason = http.StatusForbidden, "this identity cannot be passed to the upstream", "identity_unrepresentable"
		} else {
			e.metrics.Proxy.UpstreamErrors.WithLabelValues(gw.label, "dial").Inc()
		}
		e.metrics.Handshakes.WithLabelValues("upstream_failed").Inc()
		e.audit.Record(audit.Event{Type: "proxy.refused", Reason: reason, IP: ip, User: id.Principal.Name,
			Fields: map[string]string{"upstream": gw.label}})
		e.log.Warn("proxy: upstream handshake failed", "upstream", gw.label, "err", err)
		http.Error(w, msg, status)
		return
	}
	lc := &liveConn{started: e.clock.Now()}
	sid := ""
	if id.Session != nil {
		sess := *id.Session
		lc.sess = &sess
		sid = sess.PublicID
	}
	var hdr http.Header
	if p := proxy.Answer(r, chosen); p != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {p}}
	}
	client, err := gw.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		release()
		_ = up.Close()
		e.metrics.Handshakes.WithLabelValues("upgrade_failed").Inc()
		return
	}
	e.metrics.Handshakes.WithLabelValues("accepted").Inc()
	e.metrics.Connections.Inc()
	pm := e.metrics.Proxy
	pm.Connections.WithLabelValues(gw.label).Inc()
	lim := e.limits
	pc := proxy.New(client, up, proxy.Options{
		MaxMessageBytes:   lim.MaxMessageBytes,
		QueueFrames:       lim.SendQueue,
		QueueBytes:        lim.SendQueueBytes,
		MessagesPerSecond: lim.MessagesPerSecond,
		MessageBurst:      lim.MessageBurst,
		UserIPLimit:       e.userIPMsgs,
		User:              id.Principal.Name,
		IP:                ip,
		JSONOnly:          e.jsonOnly,
		IdleTimeout:       lim.IdleTimeout.D(),
		PingInterval:      lim.PingInterval.D(),
		WriteTimeout:      lim.WriteTimeout.D(),
		Lifetime:          lim.ConnLifetime.D(),
		Expires:           id.Expires,
		Hooks: proxy.Hooks{
			MessageIn:   func() { e.metrics.MessagesIn.Inc(); e.activity(lc) },
			RateLimited: func(l string) { e.metrics.RateLimited.WithLabelValues(l).Inc() },
			Cut: func(side, reason string) {
				pm.Cuts.WithLabelValues(gw.label, side, reason).Inc()
				if reason == "slow_consumer" && side == "client" {
					e.metrics.SlowConsumerCuts.Inc()
				}
				e.audit.Record(audit.Event{Type: "connection.cut", Reason: side + "_" + reason, IP: ip, User: id.Principal.Name,
					Fields: map[string]string{"upstream": gw.label}})
			},
		},
	})
	lc.c = pc
	e.audit.Record(audit.Event{Type: "proxy.open", IP: ip, User: id.Principal.Name,
		Fields: map[string]string{"upstream": gw.label, "credential": string(id.Kind), "subprotocol": chosen}})
	member := &proxyMember{pc: pc, user: id.Principal.Name, sid: sid}
	e.sock.live.add(lc)
	e.members.Register(member)
	// A revocation between the guard's check and the registration above
	// matched no socket: read the session again now (as serveWS does).
	e.recheck(lc)
	handedOff = true
	go func() {
		st := pc.Serve(e.sock.ctx)
		e.members.Unregister(member)
		e.sock.live.remove(lc)
		release()
		e.metrics.Connections.Dec()
		pm.Connections.WithLabelValues(gw.label).Dec()
		pm.Frames.WithLabelValues(gw.label, "in").Add(float64(st.FramesIn))
		pm.Frames.WithLabelValues(gw.label, "out").Add(float64(st.FramesOut))
		pm.Bytes.WithLabelValues(gw.label, "in").Add(float64(st.BytesIn))
		pm.Bytes.WithLabelValues(gw.label, "out").Add(float64(st.BytesOut))
		if st.Reason == "upstream gone" {
			pm.UpstreamErrors.WithLabelValues(gw.label, "gone").Inc()
		}
		e.audit.Record(audit.Event{Type: "proxy.close", Reason: st.Reason, IP: ip, User: id.Principal.Name,
			Fields: map[string]string{
				"upstream":      gw.label,
				"frames_in":     strconv.FormatInt(st.FramesIn, 10),
				"frames_out":    strconv.FormatInt(st.FramesOut, 10),
				"bytes_in":      strconv.FormatInt(st.BytesIn, 10),
				"bytes_out":     strconv.FormatInt(st.BytesOut, 10),
				"client_code":   strconv.Itoa(st.ClientCode),
				"upstream_code": strconv.Itoa(st.UpstreamCode),
			}})
		e.sock.done()
	}()
}

// sessionJSON is GET /session in proxy mode: the signed-in user and the
// CSRF token a page of the application puts in its handshake. Only for the
// browser's own origin: a request another site's page made is refused,
// and no CORS header lets another origin read the answer.
func (s *Server) sessionJSON(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		writeJSON(w, http.StatusForbidden, apiErrorBody("forbidden", "GET /session answers pages of this origin only"))
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		if err := s.origins.Check(o); err != nil {
			writeJSON(w, http.StatusForbidden, apiErrorBody("forbidden", "origin not allowed"))
			return
		}
	}
	sess, u, err := s.fullSession(r)
	if err != nil {
		if storeDown(err) {
			retryAfter(w, guard.UnavailableRetryAfter)
			writeJSON(w, http.StatusServiceUnavailable, apiErrorBody("unavailable", "the store cannot check the session; try again"))
			return
		}
		writeJSON(w, http.StatusUnauthorized, apiErrorBody("unauthorized", "not signed in (sign in at /login)"))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		User      string `json:"user"`
		CSRFToken string `json:"csrf_token"`
	}{u.Name, sess.CSRFSecret})
}

// gatewayGet is GET / in proxy mode: who is signed in, with the same
// csrf-token meta tag as the chat page.
func (s *Server) gatewayGet(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.requirePage(w, r)
	if !ok {
		return
	}
	s.pages.Render(w, http.StatusOK, "gateway", web.PageData{
		Title: "Signed in", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin,
		Notice: "The application's WebSocket is at " + s.cfg.Proxy.Path + ".",
	})
}

// proxyAPIHandler is the service API in proxy mode: tickets (for pages on
// other origins) and disconnect (to end a user's proxied sockets). The
// chat's endpoints (publish, rooms) are serve mode's only.
func (s *Server) proxyAPIHandler() http.Handler {
	api := s.newServiceAPI()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tickets", api.apiTickets)
	mux.HandleFunc("POST /api/v1/disconnect", api.apiDisconnect)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiErrorBody(apiNotFound, "no such API endpoint in proxy mode (POST /api/v1/tickets, /api/v1/disconnect)"))
	})
	return limitBody(mux)
}
