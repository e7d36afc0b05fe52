package config

import (
	"strings"
	"testing"
	"time"
)

// valid returns a production-like valid config.
func valid() Config {
	c := Default()
	c.Listen = ":443"
	c.PublicURL = "https://chat.example.com"
	c.AllowedOrigins = []string{"https://chat.example.com"}
	c.Audit.File = "/var/lib/wsguard/audit.log"
	return c
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mut    func(*Config)
		errKey string // "" means must be valid
	}{
		{"production", func(c *Config) {}, ""},
		// Secure-config gate.
		{"plain ws refused", func(c *Config) { c.PublicURL = "http://chat.example.com" }, "public_url"},
		{"plain ws on loopback without insecure_dev", func(c *Config) { c.PublicURL = "http://localhost:8080"; c.Listen = "localhost:8080" }, "public_url"},
		{"insecure_dev loopback plain ws ok", func(c *Config) {
			c.PublicURL = "http://localhost:8080"
			c.Listen = "localhost:8080"
			c.InsecureDev = true
		}, ""},
		{"insecure_dev 127.0.0.2 ok", func(c *Config) { c.PublicURL = "http://127.0.0.2:1"; c.Listen = "127.0.0.2:1"; c.InsecureDev = true }, ""},
		{"insecure_dev ::1 ok", func(c *Config) { c.PublicURL = "http://[::1]:1"; c.Listen = "[::1]:1"; c.InsecureDev = true }, ""},
		{"insecure_dev all interfaces", func(c *Config) { c.PublicURL = "http://localhost:8080"; c.Listen = ":8080"; c.InsecureDev = true }, "insecure_dev"},
		{"insecure_dev 0.0.0.0", func(c *Config) { c.Listen = "0.0.0.0:8443"; c.InsecureDev = true }, "insecure_dev"},
		{"insecure_dev public ip names listen", func(c *Config) { c.PublicURL = "http://x.example"; c.Listen = "192.0.2.1:80"; c.InsecureDev = true }, "listen"},
		{"insecure_dev with https on loopback ok", func(c *Config) { c.Listen = "localhost:8443"; c.InsecureDev = true }, ""},
		// Origins.
		{"wildcard origin", func(c *Config) { c.AllowedOrigins = []string{"*"} }, "allowed_origins[0]"},
		{"wildcard subdomain", func(c *Config) { c.AllowedOrigins = []string{"https://*.example.com"} }, "allowed_origins[0]"},
		{"null origin", func(c *Config) { c.AllowedOrigins = []string{"null"} }, "allowed_origins[0]"},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://a.example/app"} }, "allowed_origins[0]"},
		{"origin trailing slash", func(c *Config) { c.AllowedOrigins = []string{"https://a.example/"} }, "allowed_origins[0]"},
		{"origin no scheme", func(c *Config) { c.AllowedOrigins = []string{"a.example"} }, "allowed_origins[0]"},
		{"origin ws scheme", func(c *Config) { c.AllowedOrigins = []string{"wss://a.example"} }, "allowed_origins[0]"},
		{"origin user info", func(c *Config) { c.AllowedOrigins = []string{"https://u@a.example"} }, "allowed_origins[0]"},
		{"origin query", func(c *Config) { c.AllowedOrigins = []string{"https://a.example?x"} }, "allowed_origins[0]"},
		{"origin bad port", func(c *Config) { c.AllowedOrigins = []string{"https://a.example:99999"} }, "allowed_origins[0]"},
		{"second origin bad", func(c *Config) { c.AllowedOrigins = []string{"https://a.example", "https://b.example/x"} }, "allowed_origins[1]"},
		{"origin with port ok", func(c *Config) { c.AllowedOrigins = []string{"https://a.example:8443", "https://[::1]:8443"} }, ""},
		{"no origins", func(c *Config) { c.AllowedOrigins = nil }, "allowed_origins"},
		// URLs and addresses.
		{"public_url path", func(c *Config) { c.PublicURL = "https://a.example/chat" }, "public_url"},
		{"public_url ftp", func(c *Config) { c.PublicURL = "ftp://a.example" }, "public_url"},
		{"public_url no host", func(c *Config) { c.PublicURL = "https://" }, "public_url"},
		{"public_url slash ok", func(c *Config) { c.PublicURL = "https://chat.example.com/" }, ""},
		{"listen no port", func(c *Config) { c.Listen = "localhost" }, "listen"},
		{"admin_listen bad", func(c *Config) { c.AdminListen = "nope" }, "admin_listen"},
		// The admin section.
		{"admin hosts and networks ok", func(c *Config) {
			c.Admin.Hosts = []string{"wsguard-admin.monitoring.svc", "wsguard", "10.0.0.5"}
			c.Admin.MetricsNetworks = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"}
			c.Admin.MetricsTokenFile = "/run/secrets/metrics-token"
		}, ""},
		{"admin host with port", func(c *Config) { c.Admin.Hosts = []string{"admin.example:9443"} }, "admin.hosts[0]"},
		{"admin host wildcard", func(c *Config) { c.Admin.Hosts = []string{"*.example"} }, "admin.hosts[0]"},
		{"admin host uppercase", func(c *Config) { c.Admin.Hosts = []string{"Admin.example"} }, "admin.hosts[0]"},
		{"admin network bad", func(c *Config) { c.Admin.MetricsNetworks = []string{"10.0.0.0/33"} }, "admin.metrics_networks[0]"},
		{"admin token without listener", func(c *Config) { c.AdminListen = ""; c.Admin.MetricsTokenFile = "/t" }, "admin.metrics_token_file"},
		{"admin pprof without listener", func(c *Config) { c.AdminListen = ""; c.Admin.Pprof = true }, "admin.pprof"},
		{"admin networks without listener", func(c *Config) { c.AdminListen = ""; c.Admin.MetricsNetworks = []string{"10.0.0.0/8"} }, "admin.metrics_networks"},
		{"admin_listen off ok", func(c *Config) { c.AdminListen = "" }, ""},
		{"data_dir empty", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"store unknown", func(c *Config) { c.Store = "mysql://u:secret@h/db" }, "store"},
		{"store sqlite ok", func(c *Config) { c.Store = "sqlite:/var/db" }, ""},
		{"broker unknown", func(c *Config) { c.Broker = "nats://x" }, "broker"},
		{"store postgres needs secrets_key_file", func(c *Config) { c.Store = "postgres://u:secret@h/db" }, "secrets_key_file"},
		{"store postgres ok", func(c *Config) {
			c.Store = "postgres://u@h:5432/db"
			c.SecretsKeyFile = "/run/secrets/key"
			c.TLS.CertFile, c.TLS.KeyFile = "/run/secrets/tls.crt", "/run/secrets/tls.key"
		}, ""},
		// Each node's dev CA differs: a cluster shares one certificate or uses ACME.
		{"store postgres on the dev CA", func(c *Config) { c.Store = "postgres://u@h:5432/db"; c.SecretsKeyFile = "/k" }, "tls.cert_file"},
		{"store postgres with ACME ok", func(c *Config) {
			c.Store = "postgres://u@h:5432/db"
			c.SecretsKeyFile = "/k"
			c.TLS.ACMEDomains = []string{"chat.example.com"}
		}, ""},
		{"store postgres behind a TLS proxy ok", func(c *Config) {
			c.Store, c.SecretsKeyFile = "postgres://u@h:5432/db", "/k"
			c.PublicURL, c.Listen, c.InsecureDev = "http://127.0.0.1:8080", "127.0.0.1:8080", true
		}, ""},
		{"proxy on a shared store needs its identity secret", func(c *Config) {
			c.Store = "postgres://u@h:5432/db"
			c.SecretsKeyFile = "/k"
			c.Proxy.Upstream = "ws://127.0.0.1:9000/"
		}, "proxy.identity_secret_file"},
		{"proxy on a shared store with its identity secret ok", func(c *Config) {
			c.Store = "postgres://u@h:5432/db"
			c.SecretsKeyFile = "/k"
			c.Proxy.Upstream = "ws://127.0.0.1:9000/"
			c.Proxy.IdentitySecretFile = "/run/secrets/identity"
			c.TLS.CertFile, c.TLS.KeyFile = "/c", "/k"
		}, ""},
		{"store postgres without database", func(c *Config) { c.Store = "postgres://u@h:5432"; c.SecretsKeyFile = "/k" }, "store"},
		{"broker redis ok", func(c *Config) { c.Broker = "redis://:secret@r:6379/2?prefix=prod:" }, ""},
		{"broker rediss ok", func(c *Config) { c.Broker = "rediss://r:6380/0" }, ""},
		{"broker redis bad prefix", func(c *Config) { c.Broker = "redis://r:6379/0?prefix=a%20b" }, "broker"},
		{"broker redis bad db", func(c *Config) { c.Broker = "redis://r:6379/x" }, "broker"},
		{"trusted proxy bad", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies[0]"},
		{"trusted proxy name", func(c *Config) { c.TrustedProxies = []string{"lb.example"} }, "trusted_proxies[0]"},
		{"trusted proxies ok", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"} }, ""},
		{"drain zero", func(c *Config) { c.DrainTimeout = 0 }, "drain_timeout"},
		// TLS.
		{"profile old", func(c *Config) { c.TLS.Profile = "old" }, "tls.profile"},
		{"profile empty", func(c *Config) { c.TLS.Profile = "" }, "tls.profile"},
		{"profile modern ok", func(c *Config) { c.TLS.Profile = "modern" }, ""},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "/c" }, "tls.cert_file"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "/k" }, "tls.cert_file"},
		{"cert and key ok", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = "/c", "/k" }, ""},
		{"acme ok", func(c *Config) { c.TLS.ACMEDomains = []string{"chat.example.com"} }, ""},
		{"acme wildcard", func(c *Config) { c.TLS.ACMEDomains = []string{"*.example.com"} }, "tls.acme_domains[0]"},
		{"acme ip", func(c *Config) { c.TLS.ACMEDomains = []string{"192.0.2.1"} }, "tls.acme_domains[0]"},
		{"acme plus cert", func(c *Config) {
			c.TLS.ACMEDomains = []string{"chat.example.com"}
			c.TLS.CertFile, c.TLS.KeyFile = "/c", "/k"
		}, "tls.acme_domains"},
		{"redirect ok", func(c *Config) { c.TLS.RedirectListen = ":80" }, ""},
		{"redirect bad", func(c *Config) { c.TLS.RedirectListen = "80" }, "tls.redirect_listen"},
		{"cert with tls off", func(c *Config) {
			c.PublicURL, c.Listen, c.InsecureDev = "http://localhost:1", "localhost:1", true
			c.TLS.CertFile, c.TLS.KeyFile = "/c", "/k"
		}, "tls.cert_file"},
		// Identity.
		{"require_2fa bad", func(c *Config) { c.Identity.Require2FA = "some" }, "identity.require_2fa"},
		{"require_2fa all ok", func(c *Config) { c.Identity.Require2FA = "all" }, ""},
		{"require_2fa none ok", func(c *Config) { c.Identity.Require2FA = "none" }, ""},
		{"idle over absolute", func(c *Config) { c.Identity.SessionIdle = Duration(13 * time.Hour) }, "identity.session_idle"},
		{"max_hashing zero", func(c *Config) { c.Identity.MaxHashing = 0 }, "identity.max_hashing"},
		// JWT.
		{"jwt key ok", func(c *Config) { jwtOK(c) }, ""},
		{"jwt jwks ok", func(c *Config) { c.JWT.JWKSURL = "https://idp.example/jwks"; c.JWT.Audience, c.JWT.Issuer = "a", "i" }, ""},
		{"jwt key without audience", func(c *Config) { jwtOK(c); c.JWT.Audience = "" }, "jwt.audience"},
		{"jwt key without issuer", func(c *Config) { jwtOK(c); c.JWT.Issuer = "" }, "jwt.issuer"},
		{"jwks without audience", func(c *Config) { c.JWT.JWKSURL = "https://idp.example/jwks"; c.JWT.Issuer = "i" }, "jwt.audience"},
		{"jwks plain http", func(c *Config) { c.JWT.JWKSURL = "http://idp.example/jwks"; c.JWT.Audience, c.JWT.Issuer = "a", "i" }, "jwt.jwks_url"},
		{"alg none", func(c *Config) { jwtOK(c); c.JWT.Keys[0].Alg = "none" }, "jwt.keys[0].alg"},
		{"alg lowercase", func(c *Config) { jwtOK(c); c.JWT.Keys[0].Alg = "hs256" }, "jwt.keys[0].alg"},
		{"alg HS512", func(c *Config) { jwtOK(c); c.JWT.Keys[0].Alg = "HS512" }, "jwt.keys[0].alg"},
		{"HS256 with public key", func(c *Config) { jwtOK(c); c.JWT.Keys[0].SecretFile, c.JWT.Keys[0].PublicKeyFile = "", "/pub" }, "jwt.keys[0]"},
		{"HS256 with both", func(c *Config) { jwtOK(c); c.JWT.Keys[0].PublicKeyFile = "/pub" }, "jwt.keys[0]"},
		{"RS256 with secret", func(c *Config) { jwtOK(c); c.JWT.Keys[0].Alg = "RS256" }, "jwt.keys[0]"},
		{"ES256 public ok", func(c *Config) { jwtOK(c); c.JWT.Keys[0] = JWTKey{KID: "e", Alg: "ES256", PublicKeyFile: "/p"} }, ""},
		{"EdDSA public ok", func(c *Config) { jwtOK(c); c.JWT.Keys[0] = JWTKey{KID: "e", Alg: "EdDSA", PublicKeyFile: "/p"} }, ""},
		{"kid empty", func(c *Config) { jwtOK(c); c.JWT.Keys[0].KID = "" }, "jwt.keys[0].kid"},
		{"kid duplicate", func(c *Config) { jwtOK(c); c.JWT.Keys = append(c.JWT.Keys, c.JWT.Keys[0]) }, "jwt.keys[1].kid"},
		{"kid control char", func(c *Config) { jwtOK(c); c.JWT.Keys[0].KID = "a\nb" }, "jwt.keys[0].kid"},
		{"leeway 60s ok", func(c *Config) { c.JWT.Leeway = Duration(60 * time.Second) }, ""},
		{"leeway 0 ok", func(c *Config) { c.JWT.Leeway = 0 }, ""},
		{"leeway 61s", func(c *Config) { c.JWT.Leeway = Duration(61 * time.Second) }, "jwt.leeway"},
		{"leeway negative", func(c *Config) { c.JWT.Leeway = Duration(-time.Second) }, "jwt.leeway"},
		// Limits.
		{"max message zero", func(c *Config) { c.Limits.MaxMessageBytes = 0 }, "limits.max_message_bytes"},
		{"send queue negative", func(c *Config) { c.Limits.SendQueue = -1 }, "limits.send_queue"},
		{"rate zero", func(c *Config) { c.Limits.MessagesPerSecond = 0 }, "limits.messages_per_second"},
		{"handshake rate zero", func(c *Config) { c.Limits.HandshakesPerSecond = 0 }, "limits.handshakes_per_second"},
		{"conn caps zero", func(c *Config) { c.Limits.MaxConns = 0 }, "limits.max_conns"},
		{"idle zero", func(c *Config) { c.Limits.IdleTimeout = 0 }, "limits.idle_timeout"},
		{"handshake timeout zero", func(c *Config) { c.Limits.HandshakeTimeout = 0 }, "limits.handshake_timeout"},
		{"ping not below idle", func(c *Config) { c.Limits.PingInterval = c.Limits.IdleTimeout }, "limits.ping_interval"},
		// Compression.
		{"compression without cap", func(c *Config) { c.Compression.Enabled = true }, "compression.max_decompressed"},
		{"compression with cap ok", func(c *Config) { c.Compression = Compression{Enabled: true, MaxDecompressed: 1 << 16} }, ""},
		{"negative cap", func(c *Config) { c.Compression.MaxDecompressed = -1 }, "compression.max_decompressed"},
		// Proxy.
		{"proxy upstream ws ok", func(c *Config) { c.Proxy.Upstream = "ws://127.0.0.1:9000/socket" }, ""},
		{"proxy upstream wss with ca ok", func(c *Config) { c.Proxy.Upstream = "wss://app.internal/ws"; c.Proxy.UpstreamCAFile = "ca.pem" }, ""},
		{"proxy upstream http", func(c *Config) { c.Proxy.Upstream = "http://127.0.0.1:9000" }, "proxy.upstream"},
		{"proxy upstream no host", func(c *Config) { c.Proxy.Upstream = "ws:///x" }, "proxy.upstream"},
		{"proxy upstream userinfo", func(c *Config) { c.Proxy.Upstream = "ws://u:p@h/x" }, "proxy.upstream"},
		{"proxy ca with ws", func(c *Config) { c.Proxy.Upstream = "ws://h/x"; c.Proxy.UpstreamCAFile = "ca.pem" }, "proxy.upstream_ca_file"},
		{"proxy path relative", func(c *Config) { c.Proxy.Path = "ws" }, "proxy.path"},
		{"proxy path reserved", func(c *Config) { c.Proxy.Path = "/login" }, "proxy.path"},
		{"proxy path api", func(c *Config) { c.Proxy.Path = "/api/v1/x" }, "proxy.path"},
		// Namespaces.
		{"namespace uppercase", func(c *Config) { c.Namespaces["News"] = Namespace{} }, "namespaces.News"},
		{"namespace digit first", func(c *Config) { c.Namespaces["1news"] = Namespace{} }, "namespaces.1news"},
		{"namespace too long", func(c *Config) { c.Namespaces["a"+strings.Repeat("b", 32)] = Namespace{} }, "namespaces.a" + strings.Repeat("b", 32)},
		{"namespace colon", func(c *Config) { c.Namespaces["a:b"] = Namespace{} }, "namespaces.a:b"},
		{"namespace ok", func(c *Config) {
			c.Namespaces["news-1_x"] = Namespace{Subscribe: []string{"users"}, Publish: []string{"scope", "role:editor"}, History: []string{"owner"}}
		}, ""},
		{"grant unknown", func(c *Config) { c.Namespaces["news"] = Namespace{Publish: []string{"everyone"}} }, "namespaces.news.publish[0]"},
		{"grant empty role", func(c *Config) { c.Namespaces["news"] = Namespace{History: []string{"role:"}} }, "namespaces.news.history[0]"},
		{"grant star", func(c *Config) { c.Namespaces["news"] = Namespace{Presence: []string{"*"}} }, "namespaces.news.presence[0]"},
		// Retention.
		{"history_size negative", func(c *Config) { c.Namespaces["news"] = Namespace{HistorySize: -1} }, "namespaces.news.history_size"},
		{"history_size too large", func(c *Config) { c.Namespaces["news"] = Namespace{HistorySize: MaxHistorySize + 1} }, "namespaces.news.history_size"},
		{"history_ttl negative", func(c *Config) { c.Namespaces["room"] = Namespace{HistoryTTL: Duration(-time.Hour)} }, "namespaces.room.history_ttl"},
		{"history_ttl under a minute", func(c *Config) { c.Namespaces["room"] = Namespace{HistoryTTL: Duration(time.Second)} }, "namespaces.room.history_ttl"},
		{"history_ttl over ten years", func(c *Config) { c.Namespaces["room"] = Namespace{HistoryTTL: Duration(MaxHistoryTTL + time.Hour)} }, "namespaces.room.history_ttl"},
		{"history bounds ok", func(c *Config) {
			c.Namespaces["news"] = Namespace{Subscribe: []string{"users"}, HistorySize: 1, HistoryTTL: Duration(time.Minute)}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			c.Namespaces = map[string]Namespace{}
			for k, v := range Default().Namespaces {
				c.Namespaces[k] = v
			}
			tc.mut(&c)
			err := c.Validate()
			if tc.errKey == "" {
				if err != nil {
					t.Fatalf("refused a good config: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want a problem for %s", tc.errKey)
			}
			found := false
			for _, p := range err.(*ValidationError).Problems {
				if strings.HasPrefix(p, tc.errKey+":") {
					found = true
					if !strings.Contains(p, "allowed") {
						t.Errorf("problem %q does not say what is allowed", p)
					}
				}
			}
			if !found {
				t.Errorf("no problem for %s in:\n%v", tc.errKey, err)
			}
		})
	}
}

func jwtOK(c *Config) {
	c.JWT.Audience, c.JWT.Issuer = "wsguard", "https://idp.example"
	c.JWT.Keys = []JWTKey{{KID: "k1", Alg: "HS256", SecretFile: "/s"}}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := valid()
	c.TLS.Profile = "old"
	c.Limits.SendQueue = 0
	c.Compression.Enabled = true
	err := c.Validate()
	if err == nil || len(err.(*ValidationError).Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestStoreDSNRedacted(t *testing.T) {
	c := valid()
	c.Store = "mysql://u:hunter2@h/db"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("password leaked or accepted: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string // "" means no warning
	}{
		{"clean", func(c *Config) {}, ""},
		{"insecure_dev", func(c *Config) { c.InsecureDev = true; c.Listen = "localhost:1" }, "insecure_dev"},
		{"plain ws", func(c *Config) { c.InsecureDev = true; c.Listen = "localhost:1"; c.PublicURL = "http://localhost:1" }, "public_url"},
		{"compression", func(c *Config) { c.Compression = Compression{Enabled: true, MaxDecompressed: 1} }, "compression.enabled"},
		{"no 2fa", func(c *Config) { c.Identity.Require2FA = "none" }, "identity.require_2fa"},
		{"http origin", func(c *Config) { c.AllowedOrigins = append(c.AllowedOrigins, "http://chat.example.com") }, "allowed_origins"},
		{"foreign origin", func(c *Config) { c.AllowedOrigins = append(c.AllowedOrigins, "https://other.example") }, "allowed_origins"},
		{"trust everyone", func(c *Config) { c.TrustedProxies = []string{"0.0.0.0/0"} }, "trusted_proxies"},
		{"admin public", func(c *Config) { c.AdminListen = ":9443" }, "admin_listen"},
		{"admin pprof", func(c *Config) { c.Admin.Pprof = true }, "admin.pprof"},
		{"admin metrics to everyone", func(c *Config) { c.Admin.MetricsNetworks = []string{"::/0"} }, "admin.metrics_networks"},
		{"huge messages", func(c *Config) { c.Limits.MaxMessageBytes = 16 << 20 }, "limits.max_message_bytes"},
	} {
		c := valid()
		tc.mut(&c)
		w := c.Warnings()
		if tc.want == "" {
			if len(w) != 0 {
				t.Errorf("%s: unexpected warnings %q", tc.name, w)
			}
			continue
		}
		found := false
		for _, s := range w {
			found = found || strings.HasPrefix(s, tc.want+":")
		}
		if !found {
			t.Errorf("%s: no %s warning in %q", tc.name, tc.want, w)
		}
	}
}

func TestTLSEnabled(t *testing.T) {
	for url, want := range map[string]bool{"https://a": true, "http://a": false, "HTTP://a": false, "%%": true} {
		c := Default()
		c.PublicURL = url
		if c.TLSEnabled() != want {
			t.Errorf("TLSEnabled(%q) = %v", url, !want)
		}
	}
}

// TestNamespaceRetentionDefaults: a namespace that says nothing about
// history keeps 1000 messages for 30 days; a YAML file can set both.
func TestNamespaceRetentionDefaults(t *testing.T) {
	c, err := LoadBytes("f.yaml", []byte("namespaces:\n  news:\n    subscribe: [users]\n    history_size: 50\n    history_ttl: 48h\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if size, ttl := c.Namespaces["news"].Retention(); size != 50 || ttl != 48*time.Hour {
		t.Fatalf("news retention %d %s, want 50 48h", size, ttl)
	}
	if size, ttl := c.Namespaces["room"].Retention(); size != 1000 || ttl != 720*time.Hour {
		t.Fatalf("room retention %d %s, want 1000 720h", size, ttl)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestNamespacePresencePushes: join/leave pushes are on unless a namespace
// turns them off; a value other than a boolean is refused with its key.
func TestNamespacePresencePushes(t *testing.T) {
	c, err := LoadBytes("f.yaml", []byte("namespaces:\n  lobby:\n    subscribe: [users]\n    presence: [users]\n    presence_pushes: false\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespaces["lobby"].PushesPresence() {
		t.Fatal("lobby pushes presence, want off")
	}
	if !c.Namespaces["room"].PushesPresence() {
		t.Fatal("room does not push presence, want the default on")
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err = LoadBytes("f.yaml", []byte("namespaces:\n  lobby:\n    presence_pushes: sometimes\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "presence_pushes") {
		t.Fatalf("presence_pushes: sometimes gave %v, want an error naming the key", err)
	}
}
