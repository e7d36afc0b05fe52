// Package realip finds the client's address and scheme behind proxies.
//
// Threat model: X-Forwarded-For and X-Forwarded-Proto are set by whoever
// sends the request. They are believed only when the TCP peer is one of the
// configured trusted proxies (a CDN, a load balancer); from anyone else they
// are ignored and the client IP is the socket peer (SECURITY.md T6). Through a
// chain of trusted proxies, the client is the right-most address that is
// not itself a trusted proxy.
package realip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero value trusts nobody.
type Resolver struct {
	trusted []netip.Prefix
}

// New parses trusted proxy CIDRs (a bare address means a single host).
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies: %q is not a CIDR or address", c)
			}
			r.trusted = append(r.trusted, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %q is not a CIDR or address", c)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ClientIP returns the client's IP as a string.
func (r *Resolver) ClientIP(req *http.Request) string {
	p := peer(req)
	if r == nil || !p.IsValid() || !r.isTrusted(p) {
		if !p.IsValid() {
			return req.RemoteAddr
		}
		return p.String()
	}
	hops := req.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		for _, part := range strings.Split(h, ",") {
			all = append(all, strings.TrimSpace(part))
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(all[i])
		if err != nil {
			break // a garbled hop: stop at the last proxy we trust
		}
		a = a.Unmap()
		if !r.isTrusted(a) {
			return a.String()
		}
		p = a
	}
	return p.String()
}

// Secure reports whether the client reached us over TLS: our own TLS, or a
// trusted proxy saying X-Forwarded-Proto: https.
func (r *Resolver) Secure(req *http.Request) bool {
	if req.TLS != nil {
		return true
	}
	p := peer(req)
	if r != nil && p.IsValid() && r.isTrusted(p) {
		return strings.EqualFold(strings.TrimSpace(req.Header.Get("X-Forwarded-Proto")), "https")
	}
	return false
}
