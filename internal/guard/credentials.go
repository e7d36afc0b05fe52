package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

// Kind is a kind of credential. Each is defined once, here; an Identity,
// a stored ticket and the audit log all name it by these values.
type Kind string

// The credentials wsguard accepts.
const (
	KindSession Kind = "session" // the session cookie of a signed-in browser
	KindTicket  Kind = "ticket"  // a one-time ticket, offered as a subprotocol
	KindJWT     Kind = "jwt"     // Authorization: Bearer <JWT>
	KindAPIKey  Kind = "apikey"  // Authorization: Bearer wsg_…
)

// APIPrincipalPrefix starts the principal name of every API key:
// "api:<key name>". ':' is not in the username alphabet and a JWT with such
// a sub is refused, so a key can never be mistaken for a user, in caps,
// revocations or the `from` of a message.
const APIPrincipalPrefix = "api:"

// Identity is who a credential authenticated as.
type Identity struct {
	Kind      Kind
	Principal authz.Principal
	Session   *store.Session // for KindSession and tickets minted by a session
	Expires   time.Time      // credential expiry; zero when none
	// Refresh, when set, verifies a replacement token (JWT connections).
	Refresh func(ctx context.Context, token string) (time.Time, error)
}

// Presented is the credential a request carries, as read from its headers.
// Raw is a secret: it is never logged nor put in a refusal.
type Presented struct {
	Kind   Kind
	Raw    string // the cookie value, ticket, JWT or API key; "" when absent
	Origin string // the request's Origin header, which a ticket must match
}

// Read finds the credential a handshake presents: a bearer token first,
// then a ticket subprotocol, else the session cookie (which may be absent:
// the session check then refuses with session_missing).
func Read(r *http.Request) Presented {
	o := r.Header.Get("Origin")
	if raw, ok := bearerToken(r); ok {
		p := Bearer(raw)
		p.Origin = o
		return p
	}
	if t := findPrefixed(offeredProtocols(r), ticketPrefix); t != "" {
		return Presented{Kind: KindTicket, Raw: strings.TrimPrefix(t, ticketPrefix), Origin: o}
	}
	return SessionCookie(r)
}

// Bearer is a bearer token as presented: an API key when it has the key
// prefix, otherwise a JWT (an empty or malformed one is refused as such).
func Bearer(raw string) Presented {
	if token.LooksLikeAPIKey(raw) {
		return Presented{Kind: KindAPIKey, Raw: raw}
	}
	return Presented{Kind: KindJWT, Raw: raw}
}

// SessionCookie is the session cookie r carries, as presented.
func SessionCookie(r *http.Request) Presented {
	return Presented{Kind: KindSession, Raw: session.CookieValue(r), Origin: r.Header.Get("Origin")}
}

// CredentialStore is the part of the store the credential checks use.
type CredentialStore interface {
	UserByID(ctx context.Context, id int64) (store.User, error)
	APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error)
	CreateTicket(ctx context.Context, t store.Ticket) error
	TakeTicket(ctx context.Context, hash string) (store.Ticket, error)
}

// Credentials checks every kind of credential. Sessions and Store are
// required; a nil JWT refuses every JWT (jwt_disabled).
type Credentials struct {
	Sessions *session.Manager
	Store    CredentialStore
	JWT      *token.Verifier
	// Now tells the time for ticket and token expiry. Nil means time.Now.
	Now func() time.Time
}

// check is the shape every credential check has: what the request
// presented in, the identity or a refusal out.
type check func(c *Credentials, ctx context.Context, p Presented) (Identity, *Refusal)

// checks holds one check per kind.
var checks = map[Kind]check{
	KindSession: (*Credentials).session,
	KindTicket:  (*Credentials).ticket,
	KindJWT:     (*Credentials).jwt,
	KindAPIKey:  (*Credentials).apiKey,
}

// Check authenticates p. A refusal is 401 or 403 when the credential is at
// fault, 503 store_unavailable (with the store's error kept in Err) when
// the store could not tell.
func (c *Credentials) Check(ctx context.Context, p Presented) (Identity, *Refusal) {
	f, ok := checks[p.Kind]
	if !ok {
		return Identity{}, Refuse(http.StatusUnauthorized, "credential_unknown", "credential refused", fmt.Errorf("credential kind %q", p.Kind))
	}
	return f(c, ctx, p)
}

// session checks a session cookie: live (idle and absolute lifetime),
// second factor done, user enabled.
func (c *Credentials) session(ctx context.Context, p Presented) (Identity, *Refusal) {
	s, u, rf := c.SignedIn(ctx, p)
	if rf != nil {
		return Identity{}, rf
	}
	if !s.TwoFADone {
		return Identity{}, Refuse(http.StatusUnauthorized, "second_factor_pending", "complete sign-in first", nil)
	}
	return Identity{
		Kind:      KindSession,
		Principal: authz.Principal{Name: u.Name, Roles: u.Roles},
		Session:   &s,
		Expires:   c.Sessions.Deadline(s),
	}, nil
}

// SignedIn is the session check without its last step: the live session
// behind a session cookie and its enabled user, second factor done or not.
// The sign-in pages use it, since they serve a session whose second factor
// is still pending; everything else goes through Check.
func (c *Credentials) SignedIn(ctx context.Context, p Presented) (store.Session, store.User, *Refusal) {
	const msg = "sign in first"
	s, err := c.Sessions.ByCookie(ctx, p.Raw)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return store.Session{}, store.User{}, Refuse(http.StatusUnauthorized, "session_missing", msg, nil)
	case session.Ended(err):
		return store.Session{}, store.User{}, Refuse(http.StatusUnauthorized, "session_invalid", msg, err)
	case err != nil:
		return store.Session{}, store.User{}, unavailable(err)
	}
	u, rf := c.user(ctx, s.UserID, "", msg)
	if rf != nil {
		return store.Session{}, store.User{}, rf
	}
	return s, u, nil
}

// user reads the account behind a session. Deleted, disabled or (when name
// is set) renamed is a verdict; any other error is the store's.
func (c *Credentials) user(ctx context.Context, id int64, name, msg string) (store.User, *Refusal) {
	u, err := c.Store.UserByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, Refuse(http.StatusUnauthorized, "user_disabled", msg, err)
	case err != nil:
		return store.User{}, unavailable(err)
	case u.Disabled || (name != "" && u.Name != name):
		return store.User{}, Refuse(http.StatusUnauthorized, "user_disabled", msg, nil)
	}
	return u, nil
}

// apiKey checks an API key: well formed, known by its hash, not revoked.
func (c *Credentials) apiKey(ctx context.Context, p Presented) (Identity, *Refusal) {
	if !token.APIKeyWellFormed(p.Raw) {
		return Identity{}, Refuse(http.StatusUnauthorized, "apikey_malformed", "credential refused", nil)
	}
	k, err := c.Store.APIKeyByHash(ctx, token.HashSecret(p.Raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Identity{}, Refuse(http.StatusUnauthorized, "apikey_unknown", "credential refused", nil)
	case err != nil:
		return Identity{}, unavailable(err)
	case k.Revoked:
		return Identity{}, Refuse(http.StatusUnauthorized, "apikey_revoked", "credential refused", nil)
	}
	return Identity{
		Kind:      KindAPIKey,
		Principal: authz.Principal{Name: APIPrincipalPrefix + k.Name, Scopes: k.Scopes, IsService: true},
	}, nil
}

// jwt checks a JWT (signature, algorithm, exp, nbf, aud, iss; see the
// token package) and gives the connection a Refresh for its successors.
func (c *Credentials) jwt(ctx context.Context, p Presented) (Identity, *Refusal) {
	cl, rf := c.verifyJWT(ctx, p.Raw)
	if rf != nil {
		return Identity{}, rf
	}
	sub := cl.Subject
	return Identity{
		Kind:      KindJWT,
		Principal: authz.Principal{Name: sub, Roles: cl.Roles, Channels: cl.Channels},
		Expires:   cl.Expires.Add(c.JWT.Leeway()),
		Refresh:   c.jwtRefresh(sub, cl.Roles, cl.Channels),
	}, nil
}

// jwtRefresh verifies a replacement JWT for a connection opened with a JWT
// (directly, or through a ticket a JWT minted: a browser cannot send
// Authorization, so that is how its sockets carry a JWT grant).
func (c *Credentials) jwtRefresh(sub string, roles, channels []string) func(context.Context, string) (time.Time, error) {
	return func(ctx context.Context, raw string) (time.Time, error) {
		n, rf := c.verifyJWT(ctx, raw)
		if rf != nil {
			return time.Time{}, rf
		}
		// A refresh extends the same grant; it never changes who the
		// connection is or widens what it may do. To change roles or
		// channels, reconnect with the new token.
		if n.Subject != sub || !sameSet(n.Roles, roles) || !sameSet(n.Channels, channels) || (n.Channels == nil) != (channels == nil) {
			return time.Time{}, Refuse(http.StatusForbidden, "refresh_other_grant", "the new token must have the same sub, roles and channels", nil)
		}
		return n.Expires.Add(c.JWT.Leeway()), nil
	}
}

func (c *Credentials) verifyJWT(ctx context.Context, raw string) (token.Claims, *Refusal) {
	if c.JWT == nil {
		return token.Claims{}, Refuse(http.StatusUnauthorized, "jwt_disabled", "credential refused", nil)
	}
	cl, err := c.JWT.Verify(ctx, raw)
	if err != nil {
		return token.Claims{}, Refuse(http.StatusUnauthorized, jwtReason(err), "credential refused", err)
	}
	if strings.HasPrefix(cl.Subject, APIPrincipalPrefix) {
		return token.Claims{}, Refuse(http.StatusUnauthorized, "jwt_subject_reserved", "credential refused", nil)
	}
	return cl, nil
}

func jwtReason(err error) string {
	switch {
	case errors.Is(err, token.ErrMalformed):
		return "jwt_malformed"
	case errors.Is(err, token.ErrUnknownKey):
		return "jwt_unknown_key"
	case errors.Is(err, token.ErrBadSignature):
		return "jwt_bad_signature"
	case errors.Is(err, token.ErrExpired):
		return "jwt_expired"
	case errors.Is(err, token.ErrNotYetValid):
		return "jwt_not_yet_valid"
	}
	return "jwt_invalid_claims"
}

// ticket redeems a one-time ticket (single use: the store deletes it) and
// checks its expiry and origin. A used, unknown or expired ticket is 401;
// one presented from another Origin than asked for it is 403. The
// credential that minted it is checked again: a session may have ended, its
// user been disabled, a JWT expired, in the seconds since.
func (c *Credentials) ticket(ctx context.Context, p Presented) (Identity, *Refusal) {
	const msg = "ticket refused"
	if !token.TicketWellFormed(p.Raw) {
		return Identity{}, Refuse(http.StatusUnauthorized, "ticket_malformed", msg, nil)
	}
	t, err := c.Store.TakeTicket(ctx, token.HashSecret(p.Raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Identity{}, Refuse(http.StatusUnauthorized, "ticket_unknown", msg, nil)
	case err != nil:
		return Identity{}, unavailable(err)
	}
	now := c.now()
	if err := token.TicketUsable(t, p.Origin, now); err != nil {
		if errors.Is(err, token.ErrTicketOrigin) {
			return Identity{}, Refuse(http.StatusForbidden, "ticket_origin", msg, err)
		}
		return Identity{}, Refuse(http.StatusUnauthorized, "ticket_expired", msg, err)
	}
	id := Identity{Kind: KindTicket, Principal: authz.Principal{Name: t.Subject, Roles: t.Roles, Channels: t.Channels}}
	switch Kind(t.Kind) {
	case KindSession:
		// The socket belongs to the session, so logout closes it; the user
		// is read again for its current roles.
		sess, err := c.Sessions.ByHash(ctx, t.SessionHash)
		switch {
		case session.Ended(err):
			return Identity{}, Refuse(http.StatusUnauthorized, "session_invalid", msg, err)
		case err != nil:
			return Identity{}, unavailable(err)
		case !sess.TwoFADone:
			return Identity{}, Refuse(http.StatusUnauthorized, "session_invalid", msg, nil)
		}
		u, rf := c.user(ctx, sess.UserID, t.Subject, msg)
		if rf != nil {
			return Identity{}, rf
		}
		id.Principal.Roles = u.Roles
		// The whole session, not only its public id: the live sweep looks
		// it up by IDHash to enforce the idle and absolute lifetimes, and
		// an empty hash read as "expired" closed the socket at once.
		id.Session = &sess
		id.Expires = c.Sessions.Deadline(sess)
	case KindJWT:
		id.Expires = t.CredExpires
		if id.Expires.IsZero() || !now.Before(id.Expires) {
			return Identity{}, Refuse(http.StatusUnauthorized, "jwt_expired", msg, nil)
		}
		id.Refresh = c.jwtRefresh(t.Subject, t.Roles, t.Channels)
	default:
		return Identity{}, Refuse(http.StatusUnauthorized, "ticket_invalid", msg, fmt.Errorf("ticket minted by kind %q", t.Kind))
	}
	return id, nil
}

// MintTicket stores a new ticket for id, bound to origin ("" for none), and
// returns the raw ticket. Only its hash is stored; it is never logged. Only
// sessions and JWTs mint tickets (API keys dial with the key itself). A
// store that cannot take the ticket is 503 store_unavailable, as in Check.
func (c *Credentials) MintTicket(ctx context.Context, id Identity, origin string) (string, *Refusal) {
	// The ticket remembers its credential: without that, redeeming it
	// would launder a short-lived, channel-restricted JWT into an
	// unrestricted 24-hour socket, or outlive a logged-out session.
	t := store.Ticket{
		Subject:   id.Principal.Name,
		Roles:     slices.Clone(id.Principal.Roles),
		Origin:    origin,
		ExpiresAt: c.now().Add(token.TicketTTL),
		Kind:      string(id.Kind),
	}
	switch id.Kind {
	case KindSession:
		t.SessionHash = id.Session.IDHash
	case KindJWT:
		t.CredExpires = id.Expires
		t.Channels = slices.Clone(id.Principal.Channels)
		if id.Principal.Channels != nil && t.Channels == nil {
			t.Channels = []string{}
		}
	default:
		return "", Refuse(http.StatusForbidden, "ticket_kind", "only a session or a JWT can ask for a ticket", fmt.Errorf("credential kind %q", id.Kind))
	}
	raw, hash, err := token.NewTicket()
	if err != nil {
		return "", Refuse(http.StatusInternalServerError, "ticket_random", "try again later", err)
	}
	t.Hash = hash
	if err := c.Store.CreateTicket(ctx, t); err != nil {
		return "", unavailable(err)
	}
	return raw, nil
}

func (c *Credentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// sameSet reports whether a and b hold the same strings, ignoring order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
