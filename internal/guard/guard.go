// Package guard decides, before any upgrade, whether a WebSocket handshake
// may proceed. Check is the whole pipeline, top to bottom, in the order
// DESIGN §3 fixes: upgrade well-formed, TLS, ban, Origin, credential, CSRF,
// limits. The first failure answers; every refusal carries the HTTP status,
// a short public message and an audit reason.
//
// Threat model: Cross-Site WebSocket Hijacking (a foreign page opening a
// socket with the victim's cookies), stolen or forged credentials, and
// handshake floods. A cookie-authenticated handshake needs an allowed Origin
// AND the session's CSRF token in the subprotocol list, so it survives an
// allowlist configured too wide. Chromium sends no Sec-Fetch-Site on
// WebSocket handshakes, so that header is a bonus signal, never the defence.
package guard

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/realip"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
)

// Subprotocol is the one protocol wsguard speaks.
const Subprotocol = "wsguard.v1"

const (
	csrfPrefix   = "wsguard.csrf."
	ticketPrefix = "wsguard.ticket."
)

// Identity is who a handshake authenticated as.
type Identity struct {
	Kind      string // session, ticket, jwt, apikey
	Principal authz.Principal
	Session   *store.Session // for Kind session
	Expires   time.Time      // credential expiry; zero when none
	// Refresh, when set, verifies a replacement token (JWT connections).
	Refresh func(ctx context.Context, token string) (time.Time, error)
}

// Refusal is a handshake answered without upgrade.
type Refusal struct {
	Status     int
	Reason     string // audit reason, e.g. "origin_not_allowed"
	Message    string // what the client is told
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Reason }

func refuse(status int, reason, msg string) *Refusal {
	return &Refusal{Status: status, Reason: reason, Message: msg}
}

// Limiter is a token bucket keyed by string; ratelimit implements it.
type Limiter interface {
	Allow(key string, now time.Time) (bool, time.Duration)
}

// Bans tells whether an IP is banned for a while.
type Bans interface {
	Banned(ip string, now time.Time) (bool, time.Duration)
}

// CapRetryAfter is the Retry-After sent with a connection-cap refusal: a
// slot frees when any connection ends, which no one can predict, so the
// client is asked to back off for a few seconds rather than retry at once.
const CapRetryAfter = 5 * time.Second

// Caps acquires connection slots (per user, per IP, global); release frees them.
type Caps func(user, ip string) (release func(), ok bool)

// Guard holds what the checks need. Nil optional fields disable that
// credential type or limit; Origins, Sessions and Store are required.
type Guard struct {
	Origins  *origin.Allowlist
	Sessions *session.Manager
	Store    store.Store
	Proxies  *realip.Resolver
	// RequireTLS refuses handshakes that did not arrive over TLS with 426.
	RequireTLS bool
	// Bearer verifies an Authorization: Bearer credential (JWT or API key).
	// An error that is a *Refusal answers as is (its reason is audited).
	Bearer func(ctx context.Context, raw string) (Identity, error)
	// Ticket redeems a one-time ticket presented from origin.
	Ticket func(ctx context.Context, raw, origin string) (Identity, error)
	// ClientCertKinds lists credential kinds (e.g. "apikey") that are
	// accepted only over a connection that presented a verified TLS client
	// certificate: with mutual TLS configured for API keys, the same key
	// must not open a socket without one. Nil: no kind needs one.
	ClientCertKinds []string
	Handshakes      Limiter
	Bans            Bans
	Caps            Caps
	Now             func() time.Time
}

// Check runs every handshake check. On success it returns the identity and
// a release func for the connection slots, to call when the socket ends.
func (g *Guard) Check(r *http.Request) (Identity, func(), *Refusal) {
	now := g.now()
	ip := g.Proxies.ClientIP(r)

	// 1. A well-formed upgrade that offers our protocol.
	protocols := offeredProtocols(r)
	if !isUpgrade(r) {
		return Identity{}, nil, refuse(http.StatusBadRequest, "malformed_upgrade", "a WebSocket upgrade request is required")
	}
	if !contains(protocols, Subprotocol) {
		return Identity{}, nil, refuse(http.StatusBadRequest, "subprotocol_missing", "offer subprotocol "+Subprotocol)
	}

	// 2. TLS only.
	if g.RequireTLS && !g.Proxies.Secure(r) {
		return Identity{}, nil, refuse(http.StatusUpgradeRequired, "tls_required", "use wss://")
	}

	// 3. A banned IP gets nothing else.
	if g.Bans != nil {
		if banned, wait := g.Bans.Banned(ip, now); banned {
			rf := refuse(http.StatusTooManyRequests, "ip_banned", "too many failed attempts, try later")
			rf.RetryAfter = wait
			return Identity{}, nil, rf
		}
	}

	// 4. Origin: present and allowed, whatever the credential. Absent is
	// acceptable only for bearer tokens (non-browser clients send none) and
	// tickets (a ticket asked for by a page is bound to its Origin, so the
	// Ticket hook refuses it without one).
	bearer, hasBearer := bearerToken(r)
	hasTicket := findPrefixed(protocols, ticketPrefix) != ""
	o := r.Header.Get("Origin")
	if o != "" || !(hasBearer || hasTicket) {
		if err := g.Origins.Check(o); err != nil {
			return Identity{}, nil, refuse(http.StatusForbidden, originReason(err), "origin not allowed")
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return Identity{}, nil, refuse(http.StatusForbidden, "cross_site_fetch", "cross-site handshake refused")
	}

	// 5. The credential.
	id, rf := g.credential(r, protocols, bearer, hasBearer, o)
	if rf != nil {
		return Identity{}, nil, rf
	}

	// A credential kind bound to mutual TLS needs the verified certificate
	// here as much as on the service API.
	if contains(g.ClientCertKinds, id.Kind) && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return Identity{}, nil, refuse(http.StatusUnauthorized, "client_cert_required", "this credential needs a client certificate (mutual TLS)")
	}

	// 6. CSRF token for cookie sessions (tickets and bearer tokens are not
	// ambient credentials: a foreign page cannot make the browser send them).
	if id.Kind == "session" {
		tok := strings.TrimPrefix(findPrefixed(protocols, csrfPrefix), csrfPrefix)
		if !csrf.Equal(tok, id.Session.CSRFSecret) {
			return Identity{}, nil, refuse(http.StatusForbidden, "csrf_invalid", "CSRF token missing or wrong")
		}
	}

	// 7. Limits.
	if g.Handshakes != nil {
		if ok, wait := g.Handshakes.Allow(ip, now); !ok {
			rf := refuse(http.StatusTooManyRequests, "handshake_rate", "too many handshakes, slow down")
			rf.RetryAfter = wait
			return Identity{}, nil, rf
		}
	}
	release := func() {}
	if g.Caps != nil {
		rel, ok := g.Caps(id.Principal.Name, ip)
		if !ok {
			rf := refuse(http.StatusTooManyRequests, "connection_cap", "too many connections")
			rf.RetryAfter = CapRetryAfter
			return Identity{}, nil, rf
		}
		release = rel
	}
	return id, release, nil
}

func (g *Guard) credential(r *http.Request, protocols []string, bearer string, hasBearer bool, o string) (Identity, *Refusal) {
	ctx := r.Context()
	switch {
	case hasBearer:
		if g.Bearer == nil {
			return Identity{}, refuse(http.StatusUnauthorized, "bearer_disabled", "bearer credentials are not configured")
		}
		id, err := g.Bearer(ctx, bearer)
		var rf *Refusal
		if errors.As(err, &rf) {
			return Identity{}, rf
		}
		if err != nil {
			return Identity{}, refuse(http.StatusUnauthorized, "bearer_invalid", "credential refused")
		}
		return id, nil
	case findPrefixed(protocols, ticketPrefix) != "":
		if g.Ticket == nil {
			return Identity{}, refuse(http.StatusUnauthorized, "ticket_disabled", "tickets are not configured")
		}
		raw := strings.TrimPrefix(findPrefixed(protocols, ticketPrefix), ticketPrefix)
		id, err := g.Ticket(ctx, raw, o)
		var rf *Refusal
		if errors.As(err, &rf) {
			return Identity{}, rf
		}
		if err != nil {
			return Identity{}, refuse(http.StatusUnauthorized, "ticket_invalid", "ticket refused")
		}
		return id, nil
	}
	s, err := g.Sessions.Lookup(ctx, r)
	if err != nil {
		reason := "session_missing"
		if !errors.Is(err, session.ErrNoSession) {
			reason = "session_invalid"
		}
		return Identity{}, refuse(http.StatusUnauthorized, reason, "sign in first")
	}
	if !s.TwoFADone {
		return Identity{}, refuse(http.StatusUnauthorized, "second_factor_pending", "complete sign-in first")
	}
	u, err := g.Store.UserByID(ctx, s.UserID)
	if err != nil || u.Disabled {
		return Identity{}, refuse(http.StatusUnauthorized, "user_disabled", "sign in first")
	}
	return Identity{
		Kind:      "session",
		Principal: authz.Principal{Name: u.Name, Roles: u.Roles},
		Session:   &s,
		Expires:   g.Sessions.Deadline(s),
	}, nil
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func originReason(err error) string {
	switch {
	case errors.Is(err, origin.ErrMissing):
		return "origin_missing"
	case errors.Is(err, origin.ErrNull):
		return "origin_null"
	}
	return "origin_not_allowed"
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket") &&
		r.Header.Get("Sec-Websocket-Version") == "13" &&
		len(r.Header.Get("Sec-Websocket-Key")) == 24
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// offeredProtocols lists the subprotocols offered, at most 8 (a browser
// sends what the page asked for: two or three).
func offeredProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && len(out) < 8 {
				out = append(out, p)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func findPrefixed(list []string, prefix string) string {
	for _, v := range list {
		if strings.HasPrefix(v, prefix) {
			return v
		}
	}
	return ""
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", true // present but malformed: refused as a bad bearer
	}
	return strings.TrimSpace(h[len(p):]), true
}
