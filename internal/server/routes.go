package server

import (
	"net/http"
	"net/http/pprof"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
	"github.com/wsguard/wsguard/internal/admin"
	"github.com/wsguard/wsguard/internal/tlsconf"
	"github.com/wsguard/wsguard/internal/web"
)

// maxFormBytes caps every form and API body: a login form is a few hundred
// bytes, and a 1 MB password must be refused before anything reads it (I7).
const maxFormBytes = 16 << 10

// Handler returns the public HTTPS handler: the browser pages, the
// WebSocket endpoint and the service API of the node's mode, each route
// list written once below.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.pageRoutes(mux)
	s.socketRoutes(mux)
	s.apiRoutes(mux)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
	})
	return tlsconf.Headers(mux, s.cfg.TLS.HSTSPreload)
}

// pageRoutes are the browser pages: sign-in, 2FA, settings, setup, and
// the home page (the chat in serve mode; in proxy mode who is signed in).
// Every form post passes Go's CrossOriginProtection before its handler.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	forms := http.NewServeMux()
	forms.HandleFunc("POST /login", s.loginPost)
	forms.HandleFunc("POST /login/2fa", s.login2FAPost)
	forms.HandleFunc("POST /logout", s.logoutPost)
	forms.HandleFunc("POST /setup", s.setupPost)
	forms.HandleFunc("POST /settings/2fa", s.settings2FAPost)
	forms.HandleFunc("POST /settings/sessions/revoke", s.revokeSessionPost)
	forms.HandleFunc("POST /settings/password", s.passwordPost)

	// Go's CrossOriginProtection refuses cross-origin state-changing
	// browser requests by Sec-Fetch-Site / Origin; the synchronizer token
	// checked in each handler is the second layer.
	cop := http.NewCrossOriginProtection()
	for _, o := range s.origins.List() {
		_ = cop.AddTrustedOrigin(o)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuseForm(w, r, "cross_origin_request")
	}))
	protected := cop.Handler(limitBody(forms))

	mux.Handle("POST /login", protected)
	mux.Handle("POST /login/2fa", protected)
	mux.Handle("POST /logout", protected)
	mux.Handle("POST /setup", protected)
	mux.Handle("POST /settings/", protected)
	mux.HandleFunc("GET /login", s.loginGet)
	mux.HandleFunc("GET /login/2fa", s.login2FAGet)
	mux.HandleFunc("GET /setup", s.setupGet)
	if s.mode == ModeProxy {
		mux.HandleFunc("GET /{$}", s.gatewayGet)
		mux.HandleFunc("GET /session", s.sessionJSON) // the socket's CSRF token for the application's pages
	} else {
		mux.HandleFunc("GET /{$}", s.chatGet)
	}
	mux.HandleFunc("GET /settings/2fa", s.settings2FAGet)
	mux.HandleFunc("GET /settings/sessions", s.sessionsGet)
	mux.HandleFunc("GET /settings/password", s.passwordGet)
	mux.Handle("GET /static/", http.StripPrefix("/static/", web.Static()))
	mux.Handle(wsguardjs.Path, wsguardjs.Handler()) // the browser client (clients/js); GET and HEAD
}

// socketRoutes is the WebSocket endpoint: the chat at /ws, or in proxy
// mode the upstream relayed at proxy.path.
func (s *Server) socketRoutes(mux *http.ServeMux) {
	if s.mode == ModeProxy {
		mux.Handle("GET "+s.cfg.Proxy.Path, s.proxyEndpoint()) // proxyws.go
	} else {
		mux.Handle("GET /ws", s.chatEndpoint()) // ws.go
	}
	mux.HandleFunc("POST /ws/origin", s.originProbe) // why a page's handshake fails (originprobe.go)
}

// apiRoutes is the service API: bearer or session + X-CSRF-Token (api.go).
func (s *Server) apiRoutes(mux *http.ServeMux) {
	if s.mode == ModeProxy {
		mux.Handle("/api/v1/", s.proxyAPIHandler())
		return
	}
	mux.Handle("/api/v1/", s.newServiceAPI().apiHandler()) // api.go
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		next.ServeHTTP(w, r)
	})
}

// AdminHandler serves metrics, health and (with admin.pprof) profiles, for
// admin_listen. Every request must name this listener in Host (DNS
// rebinding); metrics and health answer loopback peers,
// admin.metrics_networks and the admin.metrics_token_file bearer token;
// profiles answer loopback peers only.
func (s *Server) AdminHandler() http.Handler {
	p := s.adminPolicy
	scrape := func(h http.Handler) http.Handler { return admin.Guard(p.CheckScrape, h) }
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", scrape(s.metrics.Handler()))
	mux.Handle("GET /healthz", scrape(http.HandlerFunc(s.healthz)))
	mux.Handle("GET /readyz", scrape(http.HandlerFunc(s.readyz)))
	if s.cfg.Admin.Pprof {
		// For `wsguard bench --cpuprofile` and for operators on the host.
		mux.Handle("GET /debug/pprof/", admin.Guard(admin.CheckLoopback, http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", admin.Guard(admin.CheckLoopback, http.HandlerFunc(pprof.Profile)))
	}
	return admin.Guard(p.CheckHost, mux)
}
