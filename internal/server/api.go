package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/token"
)

// The service API, /api/v1/*. Requests authenticate with Authorization:
// Bearer (an API key or a JWT), or — for POST /api/v1/tickets only — with
// the session cookie plus the session's CSRF token in X-CSRF-Token.
//
// These routes do not go through the forms' http.CrossOriginProtection: a
// bearer credential is not ambient (a foreign page cannot make a browser
// attach it), and the cookie path checks Origin and the CSRF token itself,
// in the handshake's order (docs/PROTOCOL.md): Origin (403), credential
// (401), CSRF token (403), limits (429). Every refusal is one audit event with its reason and
// a JSON body {"error":{"code","message"}}.

// API error codes (docs/PROTOCOL.md lists their retry meaning).
const (
	apiBadRequest   = "bad_request"
	apiUnauthorized = "unauthorized"
	apiForbidden    = "forbidden"
	apiNotFound     = "not_found"
	apiRateLimited  = "rate_limited"
	apiTooLarge     = "too_large"
	apiUnavailable  = "unavailable"
)

// maxUserParam bounds the user named in /api/v1/disconnect (a username or
// a JWT sub, at most 256 bytes).
const maxUserParam = 256

func (s *serviceAPI) apiHandler() http.Handler {
	mux := http.NewServeMux()
	routes := s.registerAPIRoutes(mux) // every route, from apiRoutes (api_more.go)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiErrorBody(apiNotFound, "no such API endpoint ("+routes+")"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A publish carries at most one message; everything else is tiny.
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxMessageBytes+4096)
		mux.ServeHTTP(w, r)
	})
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func apiErrorBody(code, msg string) any {
	return struct {
		Error apiErr `json:"error"`
	}{apiErr{code, msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return apiBadRequest
	case http.StatusUnauthorized:
		return apiUnauthorized
	case http.StatusForbidden:
		return apiForbidden
	case http.StatusTooManyRequests:
		return apiRateLimited
	case http.StatusRequestEntityTooLarge:
		return apiTooLarge
	}
	return apiUnavailable
}

// apiRefuse answers a refused API request and records one audit event. msg
// is what the client sees; reason and user go to the audit log only.
func (s *serviceAPI) apiRefuse(w http.ResponseWriter, r *http.Request, status int, reason, msg, user string) {
	ip := s.clientIP(r)
	s.audit.Record(audit.Event{Type: "api.refused", Reason: reason, IP: ip, User: user,
		Fields: map[string]string{"path": r.URL.Path, "origin": r.Header.Get("Origin")}})
	s.metrics.Refusals.WithLabelValues(reason).Inc()
	if countsTowardBan(status, reason) {
		if s.bans.Fail(ip, s.clock.Now()) {
			s.metrics.Bans.Inc()
			s.audit.Record(audit.Event{Type: "ip.banned", IP: ip, Reason: reason})
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsguard"`)
	}
	writeJSON(w, status, apiErrorBody(statusCode(status), msg))
}

// apiRefusal answers a refused credential or Origin. Its underlying error
// goes to the server's log, never to the client.
func (s *serviceAPI) apiRefusal(w http.ResponseWriter, r *http.Request, rf *guard.Refusal, user string) {
	s.logRefusal(r, rf)
	if rf.RetryAfter > 0 {
		retryAfter(w, rf.RetryAfter)
	}
	s.apiRefuse(w, r, rf.Status, rf.Reason, rf.Message, user)
}

// apiBearerToken returns the Authorization: Bearer credential; present is
// true for any Authorization header (a malformed one is a bad credential).
func apiBearerToken(r *http.Request) (raw string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", true
	}
	return strings.TrimSpace(h[len(p):]), true
}

// apiOrigin checks the Origin header: absent is fine for bearer requests
// (servers send none), present must be in the allowlist, and a browser's
// Sec-Fetch-Site: cross-site is refused.
func (s *serviceAPI) apiOrigin(r *http.Request, required bool) *guard.Refusal {
	o := r.Header.Get("Origin")
	if o != "" || required {
		if err := s.origins.Check(o); err != nil {
			reason := "origin_not_allowed"
			switch {
			case errors.Is(err, origin.ErrMissing):
				reason = "origin_missing"
			case errors.Is(err, origin.ErrNull):
				reason = "origin_null"
			}
			return guard.Refuse(http.StatusForbidden, reason, "origin not allowed", nil)
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return guard.Refuse(http.StatusForbidden, "cross_site_fetch", "cross-site request refused", nil)
	}
	return nil
}

// apiAuth authenticates a bearer-only endpoint.
func (s *serviceAPI) apiAuth(w http.ResponseWriter, r *http.Request) (guard.Identity, bool) {
	if !s.apiClientCert(w, r) {
		return guard.Identity{}, false
	}
	raw, ok := apiBearerToken(r)
	if rf := s.apiOrigin(r, false); rf != nil {
		s.apiRefusal(w, r, rf, "")
		return guard.Identity{}, false
	}
	if !ok {
		s.apiRefuse(w, r, http.StatusUnauthorized, "bearer_missing", "send Authorization: Bearer <API key or JWT>", "")
		return guard.Identity{}, false
	}
	id, rf := s.verifyBearer(r.Context(), raw)
	if rf != nil {
		s.apiRefusal(w, r, rf, "")
		return guard.Identity{}, false
	}
	return id, true
}

// decodeBody decodes a strict JSON object into v: one object, known fields
// only, nothing after it. An empty body decodes as {} when allowEmpty.
func decodeBody(r *http.Request, v any, allowEmpty bool) (status int, msg string) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	if err != nil {
		return http.StatusBadRequest, "request body unreadable"
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return 0, ""
		}
		return http.StatusBadRequest, "request body must be a JSON object"
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, "request body must be a JSON object with known fields only"
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, "data after the JSON object"
	}
	return 0, ""
}

// apiTickets mints a one-time ticket: POST /api/v1/tickets with either a
// bearer JWT, or the session cookie and X-CSRF-Token. The ticket is bound
// to the subject and to the requesting Origin (when one was sent).
func (s *serviceAPI) apiTickets(w http.ResponseWriter, r *http.Request) {
	raw, hasBearer := apiBearerToken(r)
	// 1. Origin: required for the cookie path (it is a browser's).
	if rf := s.apiOrigin(r, !hasBearer); rf != nil {
		s.apiRefusal(w, r, rf, "")
		return
	}
	// 2. The credential, then 3. the CSRF token (cookie path).
	var id guard.Identity
	if hasBearer {
		v, rf := s.verifyBearer(r.Context(), raw)
		if rf != nil {
			s.apiRefusal(w, r, rf, "")
			return
		}
		if v.Kind == guard.KindAPIKey {
			// API keys are for servers, which dial with the key itself.
			s.apiRefuse(w, r, http.StatusForbidden, "apikey_ticket", "API keys cannot mint tickets; dial with the key as a bearer token", v.Principal.Name)
			return
		}
		id = v
	} else {
		v, rf := s.creds.Check(r.Context(), guard.SessionCookie(r))
		if rf != nil {
			s.apiRefusal(w, r, rf, "")
			return
		}
		if !csrf.Equal(r.Header.Get("X-CSRF-Token"), v.Session.CSRFSecret) {
			s.apiRefuse(w, r, http.StatusForbidden, "csrf_invalid", "X-CSRF-Token missing or wrong", v.Principal.Name)
			return
		}
		id = v
	}
	var empty struct{}
	if status, msg := decodeBody(r, &empty, true); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, id.Principal.Name)
		return
	}
	// 4. Limits: tickets share the handshake budget of the IP.
	ip := s.clientIP(r)
	if s.handshakes != nil {
		if ok, wait := s.handshakes.Allow("ticket:"+ip, s.clock.Now()); !ok {
			retryAfter(w, wait)
			s.apiRefuse(w, r, http.StatusTooManyRequests, "ticket_rate", "too many tickets, slow down", id.Principal.Name)
			return
		}
	}
	ticket, rf := s.creds.MintTicket(r.Context(), id, r.Header.Get("Origin"))
	if rf != nil {
		s.apiRefusal(w, r, rf, id.Principal.Name)
		return
	}
	s.audit.Record(audit.Event{Type: "ticket.issued", Reason: string(id.Kind), IP: ip, User: id.Principal.Name,
		Fields: map[string]string{"origin": r.Header.Get("Origin")}})
	writeJSON(w, http.StatusOK, map[string]any{"ticket": ticket, "expires_in": int(token.TicketTTL.Seconds())})
}

type publishBody struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	CID     string          `json:"cid,omitempty"`
}

// apiPublish stores and fans out one message: POST /api/v1/publish
// {"channel","data"[,"cid"]} → {"offset":N}. The channel rules apply as on
// a socket: an API key needs a "scope" rule in the namespace and a matching
// publish:<ns>:<pattern> scope. Messages carry from "api:<key name>".
func (s *serviceAPI) apiPublish(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var body publishBody
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	// The same strict checks as a socket's publish frame (nesting, control
	// characters, cid shape).
	frame, _ := json.Marshal(conn.Request{ID: 1, Op: "publish", Channel: body.Channel, Data: body.Data, CID: body.CID})
	if _, err := conn.ParseRequest(frame); err != nil {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", err.Error(), who)
		return
	}
	ch, err := authz.ParseChannel(body.Channel)
	if err != nil {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_channel", err.Error(), who)
		return
	}
	if len(body.Data) == 0 || string(body.Data) == "null" {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "publish needs data", who)
		return
	}
	if err := s.rules.Allow(id.Principal, authz.Publish, ch); err != nil {
		s.audit.Record(audit.Event{Type: "authz.denied", Reason: "publish", IP: s.clientIP(r), User: who, Fields: map[string]string{"channel": ch.String()}})
		writeJSON(w, http.StatusForbidden, apiErrorBody(apiForbidden, "publish not allowed on "+ch.String()))
		return
	}
	if ok, wait := s.userMsgs.Allow(who, s.clock.Now()); !ok {
		retryAfter(w, wait)
		s.apiRefuse(w, r, http.StatusTooManyRequests, "publish_rate", "too many messages, slow down", who)
		return
	}
	res, err := s.hub.Publish(r.Context(), who, ch.String(), body.CID, body.Data)
	if err != nil {
		s.log.Warn("api publish failed", "channel", ch.String(), "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiErrorBody(apiUnavailable, "storage unavailable, retry later"))
		return
	}
	s.metrics.MessagesIn.Inc()
	writeJSON(w, http.StatusOK, map[string]any{"offset": res.Offset})
}

// apiDisconnect closes every live socket of a user on every node with 4001:
// POST /api/v1/disconnect {"user"}. It needs an API key with a
// disconnect:user:<pattern> scope covering the user; other API keys'
// sockets ("api:<name>") need disconnect:api:<pattern> (disconnectAllowed).
func (s *serviceAPI) apiDisconnect(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var body struct {
		User string `json:"user"`
	}
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	u := body.User
	if u == "" || len(u) > maxUserParam || !utf8.ValidString(u) || strings.IndexFunc(u, unicode.IsControl) >= 0 {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "user must be 1 to 256 printable characters", who)
		return
	}
	if id.Kind != "apikey" || !disconnectAllowed(id.Principal.Scopes, u) {
		s.audit.Record(audit.Event{Type: "authz.denied", Reason: "disconnect", IP: s.clientIP(r), User: who, Fields: map[string]string{"target": u}})
		writeJSON(w, http.StatusForbidden, apiErrorBody(apiForbidden, "disconnect not allowed for this user"))
		return
	}
	if err := s.hub.Revoke(r.Context(), "", u, "disconnected by the service API"); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiErrorBody(apiUnavailable, "broker unavailable, retry later"))
		return
	}
	s.audit.Record(audit.Event{Type: "api.disconnect", Reason: who, IP: s.clientIP(r), User: u})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// disconnectAllowed reports whether scopes let an API key disconnect target.
// People (usernames, JWT subjects) are reached by disconnect:user:<pattern>;
// service principals ("api:<key name>") only by a disconnect:api:<pattern>
// scope that names them, so a key meant to kick users, even
// disconnect:user:*, cannot cut other backends off the server.
func disconnectAllowed(scopes []string, target string) bool {
	channel := authz.DisconnectUsers + ":" + target
	if name, ok := strings.CutPrefix(target, apiPrincipalPrefix); ok {
		channel = authz.DisconnectServices + ":" + name
	}
	for _, sc := range scopes {
		if token.ScopeAllows(sc, authz.Disconnect, channel) {
			return true
		}
	}
	return false
}
