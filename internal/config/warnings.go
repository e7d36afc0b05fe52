package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Warnings lists every security-weakening setting that is on, one short
// line each ("key: why it matters"), so that serve prints them, records an
// audit event and sets a metric at every start. A config with no
// weakening settings returns nil. (HSTS has no off switch, so it never
// appears.)
func (c Config) Warnings() []string {
	var w []string
	if c.InsecureDev {
		w = append(w, "insecure_dev: development mode is on (loopback only)")
	}
	if !c.TLSEnabled() {
		w = append(w, "public_url: TLS is off; WebSockets are plain ws:// and cookies lose their Secure protection")
	}
	if c.Compression.Enabled {
		w = append(w, fmt.Sprintf("compression.enabled: permessage-deflate is on (decompressed cap %d bytes); compressed secrets next to attacker text can leak by size", c.Compression.MaxDecompressed))
	}
	if c.Identity.Require2FA == "none" {
		w = append(w, "identity.require_2fa: two-factor authentication is not required, even for admins")
	}
	for _, o := range c.AllowedOrigins {
		if strings.HasPrefix(strings.ToLower(o), "http://") && c.TLSEnabled() {
			w = append(w, fmt.Sprintf("allowed_origins: %q is a plain-http origin; a network attacker can inject script there and open sockets as the user", o))
		}
	}
	if o, err := originOf(c.PublicURL); err == nil {
		for _, a := range c.AllowedOrigins {
			if ao, err := originOf(a); err == nil && ao != o {
				w = append(w, fmt.Sprintf("allowed_origins: %q is not the server's own origin; pages there can open authenticated sockets", a))
			}
		}
	}
	for _, p := range c.TrustedProxies {
		if pr, err := parseProxy(p); err == nil && pr.Bits() == 0 {
			w = append(w, fmt.Sprintf("trusted_proxies: %q trusts every peer; any client can forge X-Forwarded-For", p))
		}
	}
	if c.AdminListen != "" && !isLoopbackListen(c.AdminListen) {
		w = append(w, fmt.Sprintf("admin_listen: %q is not loopback; metrics and the admin API are reachable from the network", c.AdminListen))
	}
	if c.Admin.Pprof {
		w = append(w, "admin.pprof: profiles are served on admin_listen to loopback peers; a heap profile holds secrets in memory")
	}
	for _, n := range c.Admin.MetricsNetworks {
		if pr, err := parseProxy(n); err == nil && pr.Bits() == 0 {
			w = append(w, fmt.Sprintf("admin.metrics_networks: %q lets every peer read metrics", n))
		}
	}
	if u, err := url.Parse(c.JWT.JWKSURL); err == nil && c.JWT.JWKSURL != "" && u.Scheme == "http" {
		w = append(w, "jwt.jwks_url: keys are fetched over plain http")
	}
	if c.Limits.MaxMessageBytes > 1<<20 {
		w = append(w, fmt.Sprintf("limits.max_message_bytes: %d bytes per message is above 1 MiB; memory per connection grows with it", c.Limits.MaxMessageBytes))
	}
	w = append(w, c.hookWarnings()...)
	return w
}
