package config

import (
	"net/url"
	"strings"
)

// validateProxy checks the proxy.* keys. An empty upstream is valid (serve
// ignores it); `wsguard proxy` checks that one is set (RequireUpstream).
func (c Config) validateProxy(p *problems) {
	px := c.Proxy
	if !strings.HasPrefix(px.Path, "/") || strings.ContainsAny(px.Path, "?#{} ") || len(px.Path) > 200 {
		p.add("proxy.path", "%q is not a request path (allowed: an absolute path such as /ws, without ?, #, braces or spaces)", px.Path)
	} else if reservedPath(px.Path) {
		p.add("proxy.path", "%q is taken by wsguard's own pages (allowed: any other path, e.g. /ws or /socket)", px.Path)
	}
	if px.Upstream == "" {
		return
	}
	u, err := url.Parse(px.Upstream)
	switch {
	case err != nil:
		p.add("proxy.upstream", "%q is not a URL: %v (allowed: ws://host:port/path or wss://host:port/path)", px.Upstream, err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		p.add("proxy.upstream", "scheme %q is not allowed (allowed: ws or wss)", u.Scheme)
	case u.Host == "":
		p.add("proxy.upstream", "%q names no host (allowed: ws://host:port/path or wss://host:port/path)", px.Upstream)
	case u.User != nil:
		p.add("proxy.upstream", "credentials in the URL are not allowed (the backend receives the verified identity in signed headers)")
	case u.Fragment != "":
		p.add("proxy.upstream", "a fragment is not allowed in %q", px.Upstream)
	}
	if px.UpstreamCAFile != "" && u != nil && u.Scheme == "ws" {
		p.add("proxy.upstream_ca_file", "is set but proxy.upstream is ws:// (allowed: use wss:// to verify the backend, or leave upstream_ca_file empty)")
	}
}

// reservedPath reports whether path is one of the pages and endpoints that
// wsguard serves itself in every mode.
func reservedPath(path string) bool {
	switch path {
	case "/", "/login", "/login/2fa", "/logout", "/setup", "/session", "/healthz", "/readyz", "/ws/origin":
		return true
	}
	for _, prefix := range []string{"/settings/", "/static/", "/api/", "/client/"} {
		if strings.HasPrefix(path, prefix) || path+"/" == prefix {
			return true
		}
	}
	return false
}

// RequireUpstream reports, as a validation error naming the key, that
// proxy mode has no upstream.
func (c Config) RequireUpstream() error {
	if c.Proxy.Upstream != "" {
		return nil
	}
	return &ValidationError{Problems: []string{"proxy.upstream: required by wsguard proxy (allowed: ws://host:port/path or wss://host:port/path; or pass --upstream)"}}
}
