// Package session manages signed-in browser sessions.
//
// Threat model: a stolen or fixed session cookie. The cookie value is 32
// random bytes; only its SHA-256 is stored, so a database leak does not hand
// out live sessions. A fresh id is issued at every privilege change (login,
// second factor), so a cookie planted before login is worthless after it
// (session fixation), and at a password change. Sessions end after an idle
// period and at an absolute lifetime, whatever the activity; an ended
// session is deleted (when met, and by Sweep), never listed. The cookie is __Host- prefixed, Secure,
// HttpOnly and SameSite=Strict.
//
// Concurrency: a Manager is safe for concurrent use; all state is in the store.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/store"
)

// CookieName is the session cookie. The __Host- prefix makes browsers refuse
// it unless Secure, Path=/ and without Domain: no subdomain can set or read it.
const CookieName = "__Host-wsguard"

// Errors for audit reasons.
var (
	ErrNoSession = errors.New("no session cookie")
	ErrUnknown   = errors.New("session unknown or revoked")
	ErrIdle      = errors.New("session idle too long")
	ErrExpired   = errors.New("session reached its absolute lifetime")
)

// Manager creates, finds and ends sessions.
type Manager struct {
	Store store.Sessions
	Clock clock.Clock
	// Idle ends a session not used for this long. Zero means 30 minutes.
	Idle time.Duration
	// Absolute ends a session this long after creation. Zero means 12 hours.
	Absolute time.Duration
	// OnExpire, when set, is called once for each session Expire deletes
	// (the server audits it and closes the session's live sockets).
	OnExpire func(s store.Session, reason error)
}

func (m *Manager) idle() time.Duration {
	if m.Idle > 0 {
		return m.Idle
	}
	return 30 * time.Minute
}

func (m *Manager) absolute() time.Duration {
	if m.Absolute > 0 {
		return m.Absolute
	}
	return 12 * time.Hour
}

func (m *Manager) now() time.Time {
	if m.Clock == nil {
		return time.Now()
	}
	return m.Clock.Now()
}

// HashID returns the stored form of a cookie value.
func HashID(cookieValue string) string {
	s := sha256.Sum256([]byte(cookieValue))
	return hex.EncodeToString(s[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a new session for u and returns the cookie value (shown to
// nobody but the browser) and the stored session.
func (m *Manager) Create(ctx context.Context, u store.User, twoFADone bool, ip, userAgent string) (string, store.Session, error) {
	value := randomString(32)
	now := m.now()
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	s := store.Session{
		IDHash:     HashID(value),
		PublicID:   randomString(12),
		UserID:     u.ID,
		Username:   u.Name,
		CSRFSecret: csrf.NewSecret(),
		TwoFADone:  twoFADone,
		CreatedAt:  now,
		LastSeen:   now,
		IP:         ip,
		UserAgent:  userAgent,
	}
	if err := m.Store.CreateSession(ctx, s); err != nil {
		return "", store.Session{}, fmt.Errorf("create session: %w", err)
	}
	return value, s, nil
}

// Rotate replaces the session old by a new one for the same user, with a
// new id and a new CSRF secret, marking the second factor done when
// twoFADone. The old id stops working at once. The old session is deleted
// first: when it is already gone (signed out, revoked or its user disabled
// while the request ran) Rotate answers ErrUnknown and creates nothing, so
// a rotation cannot bring back a session another action ended.
func (m *Manager) Rotate(ctx context.Context, old store.Session, u store.User, twoFADone bool) (string, store.Session, error) {
	if err := m.Store.DeleteSession(ctx, old.IDHash); errors.Is(err, store.ErrNotFound) {
		return "", store.Session{}, ErrUnknown
	} else if err != nil {
		return "", store.Session{}, fmt.Errorf("end old session: %w", err)
	}
	return m.Create(ctx, u, twoFADone, old.IP, old.UserAgent)
}

// Lookup finds the live session of r's cookie, enforcing the idle and
// absolute lifetimes (an expired session is deleted) and recording activity.
func (m *Manager) Lookup(ctx context.Context, r *http.Request) (store.Session, error) {
	return m.ByCookie(ctx, CookieValue(r))
}

// CookieValue returns the session cookie r carries, "" when none.
func CookieValue(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// ByCookie is Lookup for a cookie value already read from the request.
func (m *Manager) ByCookie(ctx context.Context, value string) (store.Session, error) {
	if value == "" {
		return store.Session{}, ErrNoSession
	}
	if len(value) != 43 { // 32 bytes base64url: anything else was never ours
		return store.Session{}, ErrUnknown
	}
	return m.ByHash(ctx, HashID(value))
}

// Ended reports whether err from Lookup, ByCookie or ByHash is a verdict on
// the session (none sent, unknown, revoked, idle or expired) rather than a
// store failure. A caller answers a verdict with "sign in again" and a store
// failure with "try again later": a database outage must never look like a
// bad cookie.
func Ended(err error) bool {
	return errors.Is(err, ErrNoSession) || errors.Is(err, ErrUnknown) || errors.Is(err, ErrIdle) || errors.Is(err, ErrExpired)
}

// ByHash is Lookup for a known id hash.
func (m *Manager) ByHash(ctx context.Context, idHash string) (store.Session, error) {
	s, err := m.Store.SessionByHash(ctx, idHash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrUnknown
	}
	if err != nil {
		return store.Session{}, err
	}
	now := m.now()
	if reason := m.Expired(s, now); reason != nil {
		m.Expire(ctx, s, reason)
		return store.Session{}, reason
	}
	// Record activity at most once a minute: a write per request would make
	// every page view and handshake a database write.
	// Only last_seen is written, so this cannot undo a concurrent change.
	if now.Sub(s.LastSeen) > time.Minute {
		s.LastSeen = now
		_ = m.Store.TouchSession(ctx, s.IDHash, now)
	}
	return s, nil
}

// Expired says why s is no longer valid at now, or nil.
func (m *Manager) Expired(s store.Session, now time.Time) error {
	if !now.Before(s.CreatedAt.Add(m.absolute())) {
		return ErrExpired
	}
	if !now.Before(s.LastSeen.Add(m.idle())) {
		return ErrIdle
	}
	return nil
}

// Expire deletes s, which has reached a lifetime, and calls OnExpire when
// this call is the one that deleted it (so the event is reported once).
func (m *Manager) Expire(ctx context.Context, s store.Session, reason error) {
	if err := m.Store.DeleteSession(ctx, s.IDHash); err != nil {
		return
	}
	if m.OnExpire != nil {
		m.OnExpire(s, reason)
	}
}

// List returns the user's live sessions, oldest first. A session past a
// lifetime is expired (deleted, OnExpire called) rather than listed: an
// ended session's IP and user agent are shown to nobody.
func (m *Manager) List(ctx context.Context, userID int64) ([]store.Session, error) {
	all, err := m.Store.ListSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	live := all[:0]
	for _, s := range all {
		if reason := m.Expired(s, now); reason != nil {
			m.Expire(ctx, s, reason)
			continue
		}
		live = append(live, s)
	}
	return live, nil
}

// Sweep deletes every session past its idle or absolute lifetime, of every
// user, calling OnExpire for each, and returns how many it deleted. Lookup
// and List expire the sessions they meet; Sweep removes the ones nobody
// uses any more, so the store keeps no ended session's IP and user agent.
func (m *Manager) Sweep(ctx context.Context) (int, error) {
	now := m.now()
	ended, err := m.Store.DeleteExpiredSessions(ctx, now.Add(-m.absolute()), now.Add(-m.idle()))
	if err != nil {
		return 0, fmt.Errorf("sweep sessions: %w", err)
	}
	for _, s := range ended {
		if m.OnExpire != nil {
			m.OnExpire(s, m.Expired(s, now))
		}
	}
	return len(ended), nil
}

// Deadline is when s ends at the latest (its absolute lifetime); a live
// socket of the session is closed then.
func (m *Manager) Deadline(s store.Session) time.Time { return s.CreatedAt.Add(m.absolute()) }

// SetCookie sends the cookie of session s. It lasts until s reaches its
// absolute lifetime (Max-Age and Expires), so closing the last tab does not
// sign the user out; the idle lifetime is enforced here on the server,
// which deletes an idle session whatever cookie the browser still keeps.
func (m *Manager) SetCookie(w http.ResponseWriter, value string, s store.Session) {
	now := m.now()
	left := m.Deadline(s).Sub(now)
	if left < time.Second {
		left = time.Second
	}
	SetCookie(w, value, now, left)
}

// SetCookie sends the session cookie, kept by the browser for lifetime
// from now.
func SetCookie(w http.ResponseWriter, value string, now time.Time, lifetime time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   int(lifetime / time.Second), Expires: now.Add(lifetime).UTC(),
	})
}

// ClearCookie removes the session cookie from the browser.
func ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
}
