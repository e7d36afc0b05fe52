package guard

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/realip"
)

// Subprotocol is the one protocol wsguard speaks.
const Subprotocol = "wsguard.v1"

const (
	csrfPrefix   = "wsguard.csrf."
	ticketPrefix = "wsguard.ticket."
)

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

// Guard holds what the checks need. Origins, Credentials and Proxies are
// required; a nil limit (Handshakes, Bans, Caps) is not enforced.
type Guard struct {
	Origins     *origin.Allowlist
	Credentials *Credentials
	Proxies     *realip.Resolver
	// RequireTLS refuses handshakes that did not arrive over TLS with 426.
	RequireTLS bool
	// ClientCertKinds lists credential kinds (e.g. KindAPIKey) that are
	// accepted only over a connection that presented a verified TLS client
	// certificate: with mutual TLS configured for API keys, the same key
	// must not open a socket without one. Nil: no kind needs one.
	ClientCertKinds []Kind
	// SubprotocolOptional accepts handshakes that do not offer wsguard.v1:
	// in gateway mode the socket speaks the upstream's protocol, and only
	// a browser needs wsguard.v1 (as a protocol the proxy can always
	// answer). False: wsguard.v1 is required.
	SubprotocolOptional bool
	Handshakes          Limiter
	Bans                Bans
	Caps                Caps
	Now                 func() time.Time
}

// Check runs every handshake check. On success it returns the identity and
// a release func for the connection slots, to call when the socket ends.
func (g *Guard) Check(r *http.Request) (Identity, func(), *Refusal) {
	now := g.now()
	ip := g.Proxies.ClientIP(r)

	// 1. A well-formed upgrade that offers our protocol.
	protocols := offeredProtocols(r)
	if !isUpgrade(r) {
		return Identity{}, nil, Refuse(http.StatusBadRequest, "malformed_upgrade", "a WebSocket upgrade request is required", nil)
	}
	if !g.SubprotocolOptional && !slices.Contains(protocols, Subprotocol) {
		return Identity{}, nil, Refuse(http.StatusBadRequest, "subprotocol_missing", "offer subprotocol "+Subprotocol, nil)
	}

	// 2. TLS only.
	if g.RequireTLS && !g.Proxies.Secure(r) {
		return Identity{}, nil, Refuse(http.StatusUpgradeRequired, "tls_required", "use wss://", nil)
	}

	// 3. A banned IP gets nothing else.
	if g.Bans != nil {
		if banned, wait := g.Bans.Banned(ip, now); banned {
			rf := Refuse(http.StatusTooManyRequests, "ip_banned", "too many failed attempts, try later", nil)
			rf.RetryAfter = wait
			return Identity{}, nil, rf
		}
	}

	// 4. Origin: present and allowed, whatever the credential. Absent is
	// acceptable only for bearer tokens (non-browser clients send none) and
	// tickets (a ticket asked for by a page is bound to its Origin, so the
	// ticket check refuses it without one).
	cred := Read(r)
	if cred.Origin != "" || cred.Kind == KindSession {
		if err := g.Origins.Check(cred.Origin); err != nil {
			return Identity{}, nil, Refuse(http.StatusForbidden, OriginReason(err), "origin not allowed", nil)
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return Identity{}, nil, Refuse(http.StatusForbidden, "cross_site_fetch", "cross-site handshake refused", nil)
	}

	// 5. The credential: a session cookie, a ticket, a JWT or an API key
	// (Credentials.Check). A store that cannot answer is 503, not 401.
	id, rf := g.Credentials.Check(r.Context(), cred)
	if rf != nil {
		return Identity{}, nil, rf
	}

	// A credential kind bound to mutual TLS needs the verified certificate
	// here as much as on the service API.
	if slices.Contains(g.ClientCertKinds, id.Kind) && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return Identity{}, nil, Refuse(http.StatusUnauthorized, "client_cert_required", "this credential needs a client certificate (mutual TLS)", nil)
	}

	// 6. CSRF token for cookie sessions (tickets and bearer tokens are not
	// ambient credentials: a foreign page cannot make the browser send them).
	if id.Kind == KindSession {
		tok := strings.TrimPrefix(findPrefixed(protocols, csrfPrefix), csrfPrefix)
		if !csrf.Equal(tok, id.Session.CSRFSecret) {
			return Identity{}, nil, Refuse(http.StatusForbidden, "csrf_invalid", "CSRF token missing or wrong", nil)
		}
	}

	// 7. Limits.
	if g.Handshakes != nil {
		if ok, wait := g.Handshakes.Allow(ip, now); !ok {
			rf := Refuse(http.StatusTooManyRequests, "handshake_rate", "too many handshakes, slow down", nil)
			rf.RetryAfter = wait
			return Identity{}, nil, rf
		}
	}
	release := func() {}
	if g.Caps != nil {
		rel, ok := g.Caps(id.Principal.Name, ip)
		if !ok {
			rf := Refuse(http.StatusTooManyRequests, "connection_cap", "too many connections", nil)
			rf.RetryAfter = CapRetryAfter
			return Identity{}, nil, rf
		}
		release = rel
	}
	return id, release, nil
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// OriginReason names an Origin refusal with the handshake's reason code
// (origin_missing, origin_null, origin_not_allowed).
func OriginReason(err error) string {
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
