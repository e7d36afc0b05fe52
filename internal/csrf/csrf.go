// Package csrf issues and checks synchronizer tokens.
//
// Threat model: a page on another origin makes the victim's browser send a
// state-changing request (a form POST, or a WebSocket handshake) carrying
// the victim's cookies. SameSite=Strict cookies and Go's
// http.CrossOriginProtection stop most of it; the token is the layer that
// still holds when an allowlist is configured too wide, because an attacker
// page cannot read it.
//
// A signed-in session's token is a random per-session secret stored
// server-side (store.Session.CSRFSecret) and rotated with the session.
// Before sign-in (the login and setup forms) the token is derived from a
// random __Host- pre-session cookie, which a sibling subdomain cannot set.
package csrf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
)

// PreCookie is the cookie behind anonymous forms' tokens.
const PreCookie = "__Host-wsguard-pre"

// ErrBadToken is returned for a missing or wrong token.
var ErrBadToken = errors.New("csrf token missing or wrong")

// NewSecret returns a new random token: 32 bytes, base64url without padding,
// usable as is in a WebSocket subprotocol.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Equal compares a presented token with the expected one in constant time.
func Equal(got, want string) bool {
	if want == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// PreToken derives the anonymous form token from the pre-session cookie value.
func PreToken(cookieValue string) string {
	m := hmac.New(sha256.New, []byte(cookieValue))
	m.Write([]byte("wsguard csrf pre-session v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// EnsurePre returns the pre-session token for r, setting the cookie on w
// when r has none (or a malformed one).
func EnsurePre(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(PreCookie); err == nil && len(c.Value) == 43 {
		return PreToken(c.Value)
	}
	v := NewSecret()
	http.SetCookie(w, &http.Cookie{
		Name: PreCookie, Value: v, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	return PreToken(v)
}

// CheckPre verifies an anonymous form's token against the pre-session cookie.
func CheckPre(r *http.Request, token string) error {
	c, err := r.Cookie(PreCookie)
	if err != nil || len(c.Value) != 43 {
		return ErrBadToken
	}
	if !Equal(token, PreToken(c.Value)) {
		return ErrBadToken
	}
	return nil
}
