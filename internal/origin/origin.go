// Package origin decides whether a browser Origin may open a WebSocket or
// post a form.
//
// Threat model: Cross-Site WebSocket Hijacking. Browsers attach cookies to a
// WebSocket handshake from any page, so the Origin header is the only thing
// that tells the victim's own page from an attacker's. Matching is exact on
// scheme, host and port after normalisation: no substring, suffix or
// wildcard matching, because "https://example.com.evil.net" and
// "https://evil-example.com" are the classic bypasses of looser checks.
// A missing or "null" Origin is not allowed here; the caller decides whether
// a request without Origin is acceptable (non-browser bearer clients).
package origin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Errors returned by Check, for audit reasons.
var (
	ErrMissing    = errors.New("origin missing")
	ErrNull       = errors.New("origin null")
	ErrNotAllowed = errors.New("origin not allowed")
)

// Allowlist is an immutable set of normalised origins.
type Allowlist struct {
	set map[string]struct{}
}

// New builds an allowlist. Every entry must be an exact scheme://host[:port].
func New(origins []string) (*Allowlist, error) {
	a := &Allowlist{set: make(map[string]struct{}, len(origins))}
	for _, o := range origins {
		n, err := Normalize(o)
		if err != nil {
			return nil, err
		}
		a.set[n] = struct{}{}
	}
	return a, nil
}

// Check reports whether the Origin header value o is allowed.
func (a *Allowlist) Check(o string) error {
	switch o {
	case "":
		return ErrMissing
	case "null":
		return ErrNull
	}
	n, err := Normalize(o)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	if _, ok := a.set[n]; !ok {
		return ErrNotAllowed
	}
	return nil
}

// List returns the normalised origins, for logs and CrossOriginProtection.
func (a *Allowlist) List() []string {
	out := make([]string, 0, len(a.set))
	for o := range a.set {
		out = append(out, o)
	}
	return out
}

// Normalize returns the canonical form of an origin: lowercase scheme and
// host, default port removed. Anything but a bare http(s) scheme://host[:port]
// is an error: a path, query, fragment, user info or wildcard has no place
// in an Origin.
func Normalize(o string) (string, error) {
	if len(o) > 2048 {
		return "", errors.New("origin longer than 2048 bytes")
	}
	if strings.ContainsAny(o, "*\\ \t\r\n") {
		return "", fmt.Errorf("origin %q: wildcards, spaces and backslashes are not allowed", o)
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", o, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("origin %q: scheme must be https or http", o)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return "", fmt.Errorf("origin %q: must be scheme://host[:port] with nothing after", o)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", fmt.Errorf("origin %q: host missing", o)
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		return scheme + "://[" + host + "]", nil
	}
	return scheme + "://" + host, nil
}
