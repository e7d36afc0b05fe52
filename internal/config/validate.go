package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wsguard/wsguard/internal/broker"
)

// ValidationError lists every problem found, each "key: what is wrong
// (allowed: ...)", so one run of `wsguard config check` shows them all.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// problems collects validation failures.
type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

var (
	namespaceRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	roleRe      = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	dnsLabelRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Allowed values, shared by Validate and its messages.
var (
	tlsProfiles = []string{"intermediate", "modern"}
	require2FA  = []string{"admins", "all", "none"}
	jwtAlgs     = []string{"HS256", "RS256", "ES256", "EdDSA"}
)

// TLSEnabled reports whether the server terminates TLS itself: true unless
// public_url is http:// (allowed only with insecure_dev on loopback).
func (c Config) TLSEnabled() bool {
	u, err := url.Parse(c.PublicURL)
	return err != nil || !strings.EqualFold(u.Scheme, "http")
}

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem, or nil. It refuses insecure combinations (the
// secure-config gate): plain ws outside loopback development, a wildcard
// origin, a JWT key without audience and issuer, compression without a
// decompressed-size cap. It reads no files.
func (c Config) Validate() error {
	var p problems
	c.validateNetwork(&p)
	c.validateAdmin(&p)
	c.validateTLS(&p)
	c.validateGate(&p)
	c.validateJWT(&p)
	c.validateIdentity(&p)
	c.validateLimits(&p)
	c.validateNamespaces(&p)
	c.validateLog(&p)
	c.validateHooks(&p)
	c.validateProxy(&p)
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

func (c Config) validateNetwork(p *problems) {
	if err := checkHostPort(c.Listen); err != nil {
		p.add("listen", "%v (allowed: host:port, e.g. localhost:8443 or :443)", err)
	}
	if c.AdminListen != "" {
		if err := checkHostPort(c.AdminListen); err != nil {
			p.add("admin_listen", "%v (allowed: host:port such as localhost:9443, or empty for off)", err)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		p.add("data_dir", "empty (allowed: a directory path, default ./wsguard-data)")
	}
	if err := checkPublicURL(c.PublicURL); err != nil {
		p.add("public_url", "%v (allowed: https://host[:port] with no path, query or user info)", err)
	}
	if len(c.AllowedOrigins) == 0 {
		p.add("allowed_origins", "empty (allowed: exact origins scheme://host[:port]; default: the origin of public_url)")
	}
	for i, o := range c.AllowedOrigins {
		if strings.Contains(o, "*") || o == "null" {
			continue // refused by the gate, with its reason
		}
		if err := checkOrigin(o); err != nil {
			p.add(fmt.Sprintf("allowed_origins[%d]", i), "%q: %v (allowed: an exact origin scheme://host[:port], no path, no wildcard)", o, err)
		}
	}
	for i, cidr := range c.TrustedProxies {
		if _, err := parseProxy(cidr); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not a CIDR or address (allowed: e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)", cidr)
		}
	}
	// A config that passes check must be one serve can start: each store
	// and broker is checked as far as can be without connecting.
	switch {
	case c.Store == "":
	case strings.HasPrefix(c.Store, "sqlite:") && len(c.Store) > len("sqlite:"):
	case c.SharedStore():
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" || len(u.Path) < 2 {
			p.add("store", "%q is not a PostgreSQL URL (allowed: postgres://USER@HOST:5432/DB?sslmode=verify-full)", RedactURL(c.Store))
		}
		if c.SecretsKeyFile == "" {
			p.add("secrets_key_file", "must be set with a shared store (%s): every node needs the same key to open TOTP secrets, so none may make its own (allowed: the path of a file holding 32 random bytes in base64, e.g. made with: head -c 32 /dev/urandom | base64 > secrets.key, given to every node)", RedactURL(c.Store))
		}
		if c.Proxy.Upstream != "" && c.Proxy.IdentitySecretFile == "" {
			p.add("proxy.identity_secret_file", "must be set with a shared store (%s): the backend checks one signature whichever node relays, so no node may make a secret of its own (allowed: the path of a file holding at least 32 random bytes, given to every node and to the backend)", RedactURL(c.Store))
		}
	default:
		p.add("store", "%q is not a store (allowed: empty for SQLite in data_dir, sqlite:PATH, or postgres://USER@HOST:5432/DB)", RedactURL(c.Store))
	}
	switch {
	case c.Broker == "", c.Broker == "memory":
	case strings.HasPrefix(c.Broker, "redis://"), strings.HasPrefix(c.Broker, "rediss://"):
		if _, _, err := broker.ParseRedisURL(c.Broker); err != nil {
			p.add("broker", "%q: %v (allowed: redis://[USER:PASSWORD@]HOST[:PORT][/DB][?prefix=P] or rediss://...)", RedactURL(c.Broker), err)
		}
	default:
		p.add("broker", "%q is not a broker (allowed: empty or memory for in-process, redis://HOST:6379/N or rediss://...)", RedactURL(c.Broker))
	}
	if c.DrainTimeout <= 0 {
		p.add("drain_timeout", "must be positive (allowed: a duration such as 10s)")
	}
	if c.Audit.File == "" {
		p.add("audit.file", "empty (allowed: a file path; default <data_dir>/audit.log)")
	}
}

func (c Config) validateTLS(p *problems) {
	t := c.TLS
	if !contains(tlsProfiles, t.Profile) {
		p.add("tls.profile", "%q is not a profile (allowed: %s)", t.Profile, strings.Join(tlsProfiles, ", "))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add("tls.cert_file", "tls.cert_file and tls.key_file must be set together (allowed: both, or neither for ACME or the dev CA)")
	}
	// The dev CA is made per node, in its own data_dir: behind one load
	// balancer a client that trusts one node's CA would refuse the next
	// node's certificate. A cluster shares one certificate, or each node
	// gets one for the same names from ACME.
	if c.SharedStore() && c.TLSEnabled() && t.CertFile == "" && t.KeyFile == "" && len(t.ACMEDomains) == 0 {
		p.add("tls.cert_file", "must be set with a shared store (%s): the dev CA is made per node, so a client that trusts one node would refuse the others (allowed: tls.cert_file and tls.key_file naming one certificate given to every node, or tls.acme_domains)", RedactURL(c.Store))
	}
	if len(t.ACMEDomains) > 0 && t.CertFile != "" {
		p.add("tls.acme_domains", "cannot be combined with tls.cert_file (allowed: one certificate source)")
	}
	for i, d := range t.ACMEDomains {
		if err := checkDNSName(d); err != nil {
			p.add(fmt.Sprintf("tls.acme_domains[%d]", i), "%q: %v (allowed: a public DNS name, no wildcard, no IP address)", d, err)
		}
	}
	if t.RedirectListen != "" {
		if err := checkHostPort(t.RedirectListen); err != nil {
			p.add("tls.redirect_listen", "%v (allowed: host:port such as :80, or empty for off)", err)
		}
	}
	if !c.TLSEnabled() {
		for _, k := range []struct{ key, val string }{
			{"tls.cert_file", t.CertFile}, {"tls.redirect_listen", t.RedirectListen}, {"tls.client_ca_file", t.ClientCAFile},
		} {
			if k.val != "" {
				p.add(k.key, "set, but public_url is http:// so TLS is off (allowed: an https public_url)")
			}
		}
		if len(t.ACMEDomains) > 0 {
			p.add("tls.acme_domains", "set, but public_url is http:// so TLS is off (allowed: an https public_url)")
		}
	}
}

// validateAdmin checks the admin section; its settings mean nothing
// without admin_listen, so setting them with it off is refused rather
// than ignored.
func (c Config) validateAdmin(p *problems) {
	a := c.Admin
	for i, h := range a.Hosts {
		if err := checkAdminHost(h); err != nil {
			p.add(fmt.Sprintf("admin.hosts[%d]", i), "%q: %v (allowed: a lowercase host name without port or wildcard, e.g. wsguard-admin.monitoring.svc)", h, err)
		}
	}
	for i, n := range a.MetricsNetworks {
		if _, err := parseProxy(n); err != nil {
			p.add(fmt.Sprintf("admin.metrics_networks[%d]", i), "%q is not a CIDR or address (allowed: e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)", n)
		}
	}
	if c.AdminListen == "" {
		switch {
		case len(a.Hosts) > 0:
			p.add("admin.hosts", "set, but admin_listen is empty so there is no admin listener (allowed: set admin_listen, or remove admin.hosts)")
		case len(a.MetricsNetworks) > 0:
			p.add("admin.metrics_networks", "set, but admin_listen is empty so there is no admin listener (allowed: set admin_listen, or remove admin.metrics_networks)")
		case a.MetricsTokenFile != "":
			p.add("admin.metrics_token_file", "set, but admin_listen is empty so there is no admin listener (allowed: set admin_listen, or remove admin.metrics_token_file)")
		case a.Pprof:
			p.add("admin.pprof", "true, but admin_listen is empty so there is no admin listener (allowed: set admin_listen, or admin.pprof false)")
		}
	}
}

// checkAdminHost accepts a host name (one label or more) or an IP address.
func checkAdminHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	switch {
	case h == "":
		return fmt.Errorf("empty")
	case strings.Contains(h, "*"):
		return fmt.Errorf("wildcards are not allowed")
	case strings.Contains(h, ":"):
		return fmt.Errorf("has a port or is not a host name")
	case h != strings.ToLower(h):
		return fmt.Errorf("must be lowercase")
	case len(h) > 253:
		return fmt.Errorf("longer than 253 bytes")
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !dnsLabelRe.MatchString(l) {
			return fmt.Errorf("label %q is not a DNS label", l)
		}
	}
	return nil
}

// validateGate is the secure-config gate: plain ws only for loopback
// development, and insecure_dev never on a reachable address.
func (c Config) validateGate(p *problems) {
	loop := isLoopbackListen(c.Listen)
	if c.InsecureDev && !loop {
		p.add("insecure_dev", "true with listen %q, which is not a loopback address (allowed: insecure_dev false, or listen on localhost, 127.0.0.1 or [::1])", c.Listen)
	}
	if !c.TLSEnabled() {
		switch {
		case !c.InsecureDev:
			p.add("public_url", "%q is plain http, so WebSockets would be plain ws:// (allowed: https://...; plain http only with insecure_dev: true on a loopback listen)", c.PublicURL)
		case !loop:
			p.add("listen", "%q is not a loopback address, but TLS is off (allowed: localhost, 127.0.0.1 or [::1] with insecure_dev, or an https public_url)", c.Listen)
		}
	}
	for i, o := range c.AllowedOrigins {
		if strings.Contains(o, "*") || o == "null" {
			p.add(fmt.Sprintf("allowed_origins[%d]", i), "%q would let any site ride the session cookie (cookie auth is always on; allowed: exact origins only)", o)
		}
	}
}

func (c Config) validateJWT(p *problems) {
	j := c.JWT
	seen := map[string]bool{}
	for i, k := range j.Keys {
		key := fmt.Sprintf("jwt.keys[%d]", i)
		switch {
		case k.KID == "":
			p.add(key+".kid", "empty (allowed: a non-empty key id, unique among jwt.keys)")
		case !printable(k.KID) || len(k.KID) > 256:
			p.add(key+".kid", "%q has spaces or control characters or is over 256 bytes (allowed: printable text)", k.KID)
		case seen[k.KID]:
			p.add(key+".kid", "%q is used by another key (allowed: unique key ids)", k.KID)
		}
		seen[k.KID] = true
		if !contains(jwtAlgs, k.Alg) {
			p.add(key+".alg", "%q is not allowed (allowed: %s)", k.Alg, strings.Join(jwtAlgs, ", "))
			continue
		}
		if k.Alg == "HS256" {
			if k.SecretFile == "" || k.PublicKeyFile != "" {
				p.add(key, "alg HS256 needs secret_file and no public_key_file (allowed: exactly one key file, matching the alg)")
			}
		} else if k.PublicKeyFile == "" || k.SecretFile != "" {
			p.add(key, "alg %s needs public_key_file and no secret_file (allowed: exactly one key file, matching the alg)", k.Alg)
		}
	}
	if len(j.Keys) > 0 || j.JWKSURL != "" {
		if strings.TrimSpace(j.Audience) == "" {
			p.add("jwt.audience", "empty while JWT keys are configured; a token for another service would be accepted (allowed: this service's audience)")
		}
		if strings.TrimSpace(j.Issuer) == "" {
			p.add("jwt.issuer", "empty while JWT keys are configured; any issuer sharing the key would be accepted (allowed: the issuer URL or name)")
		}
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			p.add("jwt.jwks_url", "%q is not a URL (allowed: https://...)", j.JWKSURL)
		case u.Scheme == "http" && !(c.InsecureDev && isLoopbackHost(u.Hostname())):
			p.add("jwt.jwks_url", "%q is plain http; keys fetched over it can be forged in transit (allowed: https://..., http only to loopback with insecure_dev)", j.JWKSURL)
		}
	}
	if j.Leeway < 0 || j.Leeway.D() > 60*time.Second {
		p.add("jwt.leeway", "%s is out of range (allowed: 0s to 60s)", j.Leeway.D())
	}
}

func (c Config) validateIdentity(p *problems) {
	id := c.Identity
	if !contains(require2FA, id.Require2FA) {
		p.add("identity.require_2fa", "%q is not allowed (allowed: %s)", id.Require2FA, strings.Join(require2FA, ", "))
	}
	positiveDur(p, "identity.session_idle", id.SessionIdle)
	positiveDur(p, "identity.session_absolute", id.SessionAbsolute)
	if id.SessionIdle > 0 && id.SessionAbsolute > 0 && id.SessionIdle > id.SessionAbsolute {
		p.add("identity.session_idle", "%s is longer than identity.session_absolute %s (allowed: at most the absolute lifetime)", id.SessionIdle.D(), id.SessionAbsolute.D())
	}
	positiveInt(p, "identity.max_hashing", int64(id.MaxHashing))
}

func (c Config) validateLimits(p *problems) {
	l := c.Limits
	positiveInt(p, "limits.max_message_bytes", l.MaxMessageBytes)
	positiveInt(p, "limits.send_queue", int64(l.SendQueue))
	positiveInt(p, "limits.send_queue_bytes", int64(l.SendQueueBytes))
	if l.SendQueueBytes > 0 && l.MaxMessageBytes > 0 && int64(l.SendQueueBytes) < 2*l.MaxMessageBytes {
		p.add("limits.send_queue_bytes", "%d is less than twice limits.max_message_bytes (%d): a socket could not queue one largest message beside a reply (allowed: at least %d)", l.SendQueueBytes, l.MaxMessageBytes, 2*l.MaxMessageBytes)
	}
	positiveInt(p, "limits.replays_per_user", int64(l.ReplaysPerUser))
	positiveFloat(p, "limits.messages_per_second", l.MessagesPerSecond)
	positiveInt(p, "limits.message_burst", int64(l.MessageBurst))
	positiveFloat(p, "limits.user_messages_per_second", l.UserMessagesPerSecond)
	positiveFloat(p, "limits.ip_messages_per_second", l.IPMessagesPerSecond)
	positiveFloat(p, "limits.handshakes_per_second", l.HandshakesPerSecond)
	positiveInt(p, "limits.handshake_burst", int64(l.HandshakeBurst))
	positiveFloat(p, "limits.logins_per_minute", l.LoginsPerMinute)
	positiveInt(p, "limits.conns_per_user", int64(l.ConnsPerUser))
	positiveInt(p, "limits.conns_per_ip", int64(l.ConnsPerIP))
	positiveInt(p, "limits.max_conns", int64(l.MaxConns))
	positiveInt(p, "limits.ban_after_failures", int64(l.BanAfterFailures))
	positiveDur(p, "limits.ban_duration", l.BanDuration)
	positiveDur(p, "limits.conn_lifetime", l.ConnLifetime)
	positiveDur(p, "limits.idle_timeout", l.IdleTimeout)
	positiveDur(p, "limits.ping_interval", l.PingInterval)
	positiveDur(p, "limits.write_timeout", l.WriteTimeout)
	positiveDur(p, "limits.handshake_timeout", l.HandshakeTimeout)
	if l.PingInterval > 0 && l.IdleTimeout > 0 && l.PingInterval >= l.IdleTimeout {
		p.add("limits.ping_interval", "%s is not shorter than limits.idle_timeout %s; healthy clients would be cut (allowed: less than idle_timeout)", l.PingInterval.D(), l.IdleTimeout.D())
	}
	cm := c.Compression
	if cm.MaxDecompressed < 0 {
		p.add("compression.max_decompressed", "must not be negative (allowed: a byte count > 0)")
	}
	if cm.Enabled && cm.MaxDecompressed <= 0 {
		p.add("compression.max_decompressed", "must be > 0 when compression.enabled is true; without it a small frame can inflate without bound (allowed: a byte count, e.g. 65536)")
	}
}

var grantsAllowed = "users, owner, role:<name>, scope"

func (c Config) validateNamespaces(p *problems) {
	names := make([]string, 0, len(c.Namespaces))
	for n := range c.Namespaces {
		names = append(names, n)
	}
	sort.Strings(names) // stable messages
	for _, n := range names {
		ns := c.Namespaces[n]
		key := "namespaces." + n
		if !namespaceRe.MatchString(n) {
			p.add(key, "%q is not a namespace name (allowed: [a-z][a-z0-9_-]{0,31})", n)
		}
		for _, op := range []struct {
			name   string
			grants []string
		}{{"subscribe", ns.Subscribe}, {"publish", ns.Publish}, {"history", ns.History}, {"presence", ns.Presence}} {
			for i, g := range op.grants {
				if !validGrant(g) {
					p.add(fmt.Sprintf("%s.%s[%d]", key, op.name, i), "%q is not a grant (allowed: %s)", g, grantsAllowed)
				}
			}
		}
		if ns.HistorySize < 0 || ns.HistorySize > MaxHistorySize {
			p.add(key+".history_size", "%d is out of range (allowed: 1 to %d messages per channel, or 0 for the default %d)", ns.HistorySize, MaxHistorySize, DefaultHistorySize)
		}
		if ttl := ns.HistoryTTL.D(); ttl != 0 && (ttl < MinHistoryTTL || ttl > MaxHistoryTTL) {
			p.add(key+".history_ttl", "%s is out of range (allowed: %s to %s, or 0 for the default %s)", ttl, MinHistoryTTL, MaxHistoryTTL, DefaultHistoryTTL)
		}
	}
}

func validGrant(g string) bool {
	switch g {
	case "users", "owner", "scope":
		return true
	}
	r, ok := strings.CutPrefix(g, "role:")
	return ok && roleRe.MatchString(r)
}

func positiveInt(p *problems, key string, v int64) {
	if v <= 0 {
		p.add(key, "%d must be positive (allowed: an integer > 0)", v)
	}
}

func positiveFloat(p *problems, key string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		p.add(key, "%v must be positive and finite (allowed: a number > 0)", v)
	}
}

func positiveDur(p *problems, key string, v Duration) {
	if v <= 0 {
		p.add(key, "%s must be positive (allowed: a duration > 0 such as 30s)", v.D())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// checkHostPort accepts host:port with a numeric port (host may be empty
// for every interface).
func checkHostPort(hp string) error {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port", hp)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", hp)
	}
	return nil
}

// checkPublicURL accepts http(s)://host[:port] with at most a "/" path.
func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return fmt.Errorf("empty")
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q does not start with https://", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("%q has user info", raw)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q has a path; wsguard is served at the root", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.ContainsAny(raw, "?#"):
		return fmt.Errorf("%q has a query or fragment", raw)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", raw)
		}
	}
	return nil
}

// checkOrigin accepts exactly scheme://host[:port] as a browser sends it.
func checkOrigin(o string) error {
	if strings.Contains(o, "*") {
		return fmt.Errorf("wildcards are not allowed")
	}
	if o == "null" {
		return fmt.Errorf("the null origin is not allowed")
	}
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return fmt.Errorf("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme must be https or http")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("no host")
	case u.User != nil:
		return fmt.Errorf("user info is not part of an origin")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o, "?#"):
		return fmt.Errorf("an origin has no path, query or fragment (not even a trailing /)")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("empty port")
	}
	return nil
}

// parseProxy accepts a CIDR or a bare address (a single host), as realip does.
func parseProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

func checkDNSName(d string) error {
	if strings.Contains(d, "*") {
		return fmt.Errorf("wildcards cannot be issued over ACME HTTP/TLS challenges")
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return fmt.Errorf("an IP address")
	}
	if d != strings.ToLower(d) {
		return fmt.Errorf("must be lowercase")
	}
	if len(d) > 253 || !strings.Contains(d, ".") {
		return fmt.Errorf("not a fully qualified name")
	}
	for _, l := range strings.Split(d, ".") {
		if !dnsLabelRe.MatchString(l) {
			return fmt.Errorf("label %q is not a DNS label", l)
		}
	}
	return nil
}

// isLoopbackListen reports whether a listen address binds loopback only.
// An empty host (":8443") binds every interface and is not loopback.
func isLoopbackListen(hp string) bool {
	host, _, err := net.SplitHostPort(hp)
	return err == nil && isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// RedactURL drops user info (passwords) from a DSN before it is printed;
// every message that names a store or broker URL goes through it.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if strings.Contains(s, "@") {
			return "<redacted>"
		}
		return s
	}
	return u.Redacted()
}
