package config

import (
	"fmt"
	"net"
	"net/url"
)

// Advice lists settings that are valid but probably not what the operator
// meant, one line each ("key: what will happen; what to change"), so serve
// logs them at every start. Unlike Warnings they weaken nothing: they are
// the mistakes that otherwise show only as a browser that cannot connect.
func (c Config) Advice() []string {
	var a []string
	if u, err := url.Parse(c.Proxy.Upstream); err == nil && u.Scheme == "ws" && u.Hostname() != "" && !isLoopbackHost(u.Hostname()) {
		a = append(a, fmt.Sprintf("proxy.upstream: %s is plain ws:// to another host; the identity headers and every message cross that network in clear (use wss:// with proxy.upstream_ca_file, unless the network is private to wsguard and the backend)", c.Proxy.Upstream))
	}
	_, listenPort, err := net.SplitHostPort(c.Listen)
	if err != nil || listenPort == "0" {
		return nil // Validate reports a bad listen; port 0 is picked at start
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	publicPort := u.Port()
	if publicPort == "" {
		publicPort = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	// Without a proxy in front, a browser following public_url (the setup
	// link, the chat page) arrives on its port; only a proxy, which
	// trusted_proxies names, can carry it to a different listen port.
	if publicPort != listenPort && len(c.TrustedProxies) == 0 {
		a = append(a, fmt.Sprintf("public_url: %s points at port %s but listen is on port %s and no trusted_proxies forward to it; the setup link and the chat will not reach this server (set public_url to this listener, or leave it out to follow listen)", c.PublicURL, publicPort, listenPort))
	}
	if isLoopbackListen(c.Listen) && !isLoopbackHost(u.Hostname()) && len(c.TrustedProxies) == 0 {
		a = append(a, fmt.Sprintf("listen: %s accepts loopback connections only, but public_url %s is for other machines; without a proxy (trusted_proxies) they cannot connect (set listen to :%s or a reachable address)", c.Listen, c.PublicURL, listenPort))
	}
	if c.TLSEnabled() && c.TLS.CertFile == "" && len(c.TLS.ACMEDomains) == 0 && !isLoopbackListen(c.Listen) {
		a = append(a, fmt.Sprintf("listen: %s accepts connections from the network, but the development certificate is valid for localhost, 127.0.0.0/8 and ::1 only; other machines get a certificate error (set tls.cert_file and tls.key_file, or tls.acme_domains)", c.Listen))
	}
	return a
}
