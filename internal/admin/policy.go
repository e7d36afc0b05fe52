package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// Policy says whom the admin listener answers. The zero value answers
// loopback names and IP addresses in Host, and loopback peers only.
type Policy struct {
	// Hosts are extra Host names answered (admin.hosts), lowercase,
	// without port. Zero means loopback names and IP addresses only.
	Hosts []string
	// Networks are peers that may scrape without a token
	// (admin.metrics_networks). Zero means loopback peers only.
	Networks []netip.Prefix
	// Token, when set, lets any peer that sends "Authorization: Bearer
	// <Token>" scrape (admin.metrics_token_file). Zero means no token.
	Token []byte
}

// Refusal is a request the admin listener will not serve: Status and Msg
// are what the client sees.
type Refusal struct {
	Status int
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// CheckHost returns a *Refusal (421) unless r's Host names this listener:
// localhost, an IP address, or one of p.Hosts.
func (p *Policy) CheckHost(r *http.Request) error {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "localhost" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, h := range p.Hosts {
		if host == strings.TrimSuffix(h, ".") {
			return nil
		}
	}
	return &Refusal{Status: http.StatusMisdirectedRequest,
		Msg: fmt.Sprintf("host %q is not served by the admin listener (allowed: localhost, an IP address, or a name listed in admin.hosts)", r.Host)}
}

// CheckScrape returns a *Refusal unless the peer may read metrics and
// health: a loopback peer, a peer in p.Networks, or a request bearing
// p.Token. A wrong or missing token answers 401 when a token is
// configured, 403 otherwise.
func (p *Policy) CheckScrape(r *http.Request) error {
	peer, ok := peerAddr(r.RemoteAddr)
	if ok && peer.IsLoopback() {
		return nil
	}
	for _, n := range p.Networks {
		if ok && n.Contains(peer) {
			return nil
		}
	}
	if len(p.Token) > 0 {
		if p.tokenMatches(r.Header.Get("Authorization")) {
			return nil
		}
		return &Refusal{Status: http.StatusUnauthorized,
			Msg: "metrics need a loopback peer, a peer in admin.metrics_networks, or the bearer token of admin.metrics_token_file"}
	}
	return &Refusal{Status: http.StatusForbidden,
		Msg: "metrics are served to loopback peers and to peers in admin.metrics_networks only"}
}

// CheckLoopback returns a *Refusal (403) unless the peer is loopback.
// Profiles use it: no network and no token reaches them.
func CheckLoopback(r *http.Request) error {
	if peer, ok := peerAddr(r.RemoteAddr); ok && peer.IsLoopback() {
		return nil
	}
	return &Refusal{Status: http.StatusForbidden, Msg: "profiles are served to loopback peers only"}
}

// tokenMatches compares SHA-256 digests in constant time, so neither the
// token's bytes nor its length leak through timing.
func (p *Policy) tokenMatches(authz string) bool {
	scheme, tok, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256(p.Token)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// peerAddr parses r.RemoteAddr ("ip:port"); zoned and mapped addresses
// are reduced to their plain form.
func peerAddr(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return netip.Addr{}, false
		}
		return a.Unmap().WithZone(""), true
	}
	return ap.Addr().Unmap().WithZone(""), true
}

// minTokenBytes refuses tokens short enough to guess.
const minTokenBytes = 16

// ReadToken reads a bearer token from path (admin.metrics_token_file):
// the file's contents with surrounding white space removed, at least 16
// bytes, on one line.
func ReadToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's admin.metrics_token_file setting
	if err != nil {
		return nil, fmt.Errorf("admin.metrics_token_file: %w", err)
	}
	tok := []byte(strings.TrimSpace(string(b)))
	switch {
	case len(tok) < minTokenBytes:
		return nil, fmt.Errorf("admin.metrics_token_file: %q holds %d bytes, fewer than %d (allowed: a random token, e.g. openssl rand -hex 32)", path, len(tok), minTokenBytes)
	case strings.ContainsAny(string(tok), "\r\n\t "):
		return nil, fmt.Errorf("admin.metrics_token_file: %q holds white space inside the token (allowed: one token on one line)", path)
	}
	return tok, nil
}

// Guard wraps next with a check; a refusal is written as plain text with
// its status.
func Guard(check func(*http.Request) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			var ref *Refusal
			if !errors.As(err, &ref) {
				ref = &Refusal{Status: http.StatusForbidden, Msg: "forbidden"}
			}
			if ref.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wsguard-admin"`)
			}
			http.Error(w, ref.Msg, ref.Status)
			return
		}
		next.ServeHTTP(w, r)
	})
}
