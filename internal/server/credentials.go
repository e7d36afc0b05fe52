package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

// This file wires the token layer (internal/token) into the handshake guard
// and the service API: bearer JWTs, API keys and one-time tickets.
//
// Principal names: a signed-in user is its username, a JWT its sub, an API
// key "api:<key name>". The "api:" prefix cannot be a username (':' is not
// in the username alphabet) and is refused as a JWT sub, so a key can never
// be mistaken for a user, in caps, revocations or the `from` of a message.

// apiPrincipalPrefix starts the principal name of every API key.
const apiPrincipalPrefix = "api:"

// wireCredentials builds the JWT verifier (when jwt.keys or jwt.jwks_url is
// configured) and plugs bearer and ticket redemption into the guard.
func (s *Server) wireCredentials() error {
	j := s.cfg.JWT
	if len(j.Keys) > 0 || j.JWKSURL != "" {
		v, err := token.NewVerifier(j, token.VerifierOptions{Clock: s.clock})
		if err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
		s.verifier = v
	}
	if err := s.loadClientCAs(); err != nil {
		return err
	}
	if s.clientCAs != nil {
		// API keys are bound to mutual TLS everywhere, /ws included: a
		// leaked key alone must not upgrade and publish over a socket.
		s.guard.ClientCertKinds = []string{"apikey"}
	}
	s.guard.Bearer = s.verifyBearer
	s.guard.Ticket = s.redeemTicket
	return nil
}

// credError is a refused credential: the HTTP status, the audit reason and
// what the client is told. It converts to a guard.Refusal at the handshake.
func credError(status int, reason, msg string) *guard.Refusal {
	return &guard.Refusal{Status: status, Reason: reason, Message: msg}
}

// verifyBearer authenticates an Authorization: Bearer credential: an API
// key (wsg_...) by its hash, anything else as a JWT. Errors are
// *guard.Refusal with a reason naming why; the client only ever hears
// "credential refused".
func (s *Server) verifyBearer(ctx context.Context, raw string) (guard.Identity, error) {
	if token.LooksLikeAPIKey(raw) {
		k, rf := s.lookupAPIKey(ctx, raw)
		if rf != nil {
			return guard.Identity{}, rf
		}
		return guard.Identity{
			Kind:      "apikey",
			Principal: authz.Principal{Name: apiPrincipalPrefix + k.Name, Scopes: k.Scopes, IsService: true},
		}, nil
	}
	c, rf := s.verifyJWT(ctx, raw)
	if rf != nil {
		return guard.Identity{}, rf
	}
	sub := c.Subject
	return guard.Identity{
		Kind:      "jwt",
		Principal: authz.Principal{Name: sub, Roles: c.Roles, Channels: c.Channels},
		Expires:   c.Expires.Add(s.verifier.Leeway()),
		Refresh: func(ctx context.Context, raw string) (time.Time, error) {
			n, rf := s.verifyJWT(ctx, raw)
			if rf != nil {
				return time.Time{}, rf
			}
			// A refresh extends the same grant; it never changes who the
			// connection is or widens what it may do. To change roles or
			// channels, reconnect with the new token.
			if n.Subject != sub || !sameSet(n.Roles, c.Roles) || !sameSet(n.Channels, c.Channels) || (n.Channels == nil) != (c.Channels == nil) {
				return time.Time{}, credError(http.StatusForbidden, "refresh_other_grant", "the new token must have the same sub, roles and channels")
			}
			return n.Expires.Add(s.verifier.Leeway()), nil
		},
	}, nil
}

// verifyJWT checks a JWT and maps the token package's errors to reasons.
func (s *Server) verifyJWT(ctx context.Context, raw string) (token.Claims, *guard.Refusal) {
	if s.verifier == nil {
		return token.Claims{}, credError(http.StatusUnauthorized, "jwt_disabled", "credential refused")
	}
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return token.Claims{}, credError(http.StatusUnauthorized, jwtReason(err), "credential refused")
	}
	if strings.HasPrefix(c.Subject, apiPrincipalPrefix) {
		return token.Claims{}, credError(http.StatusUnauthorized, "jwt_subject_reserved", "credential refused")
	}
	return c, nil
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

// lookupAPIKey finds a live key by the hash of raw.
func (s *Server) lookupAPIKey(ctx context.Context, raw string) (store.APIKey, *guard.Refusal) {
	if !token.APIKeyWellFormed(raw) {
		return store.APIKey{}, credError(http.StatusUnauthorized, "apikey_malformed", "credential refused")
	}
	k, err := s.store.APIKeyByHash(ctx, token.HashSecret(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.APIKey{}, credError(http.StatusUnauthorized, "apikey_unknown", "credential refused")
	case err != nil:
		return store.APIKey{}, credError(http.StatusServiceUnavailable, "store_unavailable", "try again later")
	case k.Revoked:
		return store.APIKey{}, credError(http.StatusUnauthorized, "apikey_revoked", "credential refused")
	}
	return k, nil
}

// mintTicket stores a new ticket for id, bound to origin ("" for none), and
// returns the raw ticket. Only its hash is stored; it is never logged.
func (s *Server) mintTicket(ctx context.Context, id guard.Identity, origin string) (string, error) {
	raw, hash, err := token.NewTicket()
	if err != nil {
		return "", err
	}
	// The ticket remembers its credential: without that, redeeming it
	// would launder a short-lived, channel-restricted JWT into an
	// unrestricted 24-hour socket, or outlive a logged-out session.
	t := store.Ticket{
		Hash:      hash,
		Subject:   id.Principal.Name,
		Roles:     slices.Clone(id.Principal.Roles),
		Origin:    origin,
		ExpiresAt: s.clock.Now().Add(token.TicketTTL),
		Kind:      id.Kind,
	}
	switch id.Kind {
	case "session":
		t.SessionHash = id.Session.IDHash
	case "jwt":
		t.CredExpires = id.Expires
		t.Channels = slices.Clone(id.Principal.Channels)
		if id.Principal.Channels != nil && t.Channels == nil {
			t.Channels = []string{}
		}
	default:
		return "", fmt.Errorf("credential kind %q cannot mint tickets", id.Kind)
	}
	err = s.store.CreateTicket(ctx, t)
	if err != nil {
		return "", err
	}
	return raw, nil
}

// redeemTicket takes a ticket (single use: the store deletes it) and checks
// its expiry and origin. A used, unknown or expired ticket is 401; one
// presented from another Origin than asked for it is 403.
func (s *Server) redeemTicket(ctx context.Context, raw, origin string) (guard.Identity, error) {
	if !token.TicketWellFormed(raw) {
		return guard.Identity{}, credError(http.StatusUnauthorized, "ticket_malformed", "ticket refused")
	}
	t, err := s.store.TakeTicket(ctx, token.HashSecret(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return guard.Identity{}, credError(http.StatusUnauthorized, "ticket_unknown", "ticket refused")
	case err != nil:
		return guard.Identity{}, credError(http.StatusServiceUnavailable, "store_unavailable", "try again later")
	}
	now := s.clock.Now()
	if err := token.TicketUsable(t, origin, now); err != nil {
		if errors.Is(err, token.ErrTicketOrigin) {
			return guard.Identity{}, credError(http.StatusForbidden, "ticket_origin", "ticket refused")
		}
		return guard.Identity{}, credError(http.StatusUnauthorized, "ticket_expired", "ticket refused")
	}
	id := guard.Identity{Kind: "ticket", Principal: authz.Principal{Name: t.Subject, Roles: t.Roles, Channels: t.Channels}}
	switch t.Kind {
	case "session":
		// The session may have ended, or the user been disabled or had
		// roles changed, in the seconds since: read both again. The socket
		// belongs to the session, so logout closes it.
		sess, err := s.sessions.ByHash(ctx, t.SessionHash)
		if err != nil || !sess.TwoFADone {
			return guard.Identity{}, credError(http.StatusUnauthorized, "session_invalid", "ticket refused")
		}
		u, err := s.store.UserByID(ctx, sess.UserID)
		if err != nil || u.Disabled || u.Name != t.Subject {
			return guard.Identity{}, credError(http.StatusUnauthorized, "user_disabled", "ticket refused")
		}
		id.Principal.Roles = u.Roles
		// The whole session, not only its public id: the live sweep looks
		// it up by IDHash to enforce the idle and absolute lifetimes, and
		// an empty hash read as "expired" closed the socket at once.
		id.Session = &sess
		id.Expires = s.sessions.Deadline(sess)
	case "jwt":
		id.Expires = t.CredExpires
		if id.Expires.IsZero() || !now.Before(id.Expires) {
			return guard.Identity{}, credError(http.StatusUnauthorized, "jwt_expired", "ticket refused")
		}
	default:
		return guard.Identity{}, credError(http.StatusUnauthorized, "ticket_invalid", "ticket refused")
	}
	return id, nil
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
