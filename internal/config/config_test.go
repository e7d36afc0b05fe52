package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsLoadAndValidate(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
	if !reflect.DeepEqual(c.AllowedOrigins, []string{"https://localhost:8443"}) {
		t.Errorf("allowed_origins = %q", c.AllowedOrigins)
	}
	if c.Audit.File != filepath.Join("./wsguard-data", "audit.log") {
		t.Errorf("audit.file = %q", c.Audit.File)
	}
	if c.Audit.KeyFile != filepath.Join("./wsguard-data", "audit.key") {
		t.Errorf("audit.key_file = %q", c.Audit.KeyFile)
	}
	if !c.TLSEnabled() {
		t.Error("TLS must be on by default")
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("defaults warn: %q", w)
	}
}

func TestDerivedOrigin(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://chat.example.com", "https://chat.example.com"},
		{"https://Chat.Example.com:443/", "https://chat.example.com"},
		{"https://chat.example.com:8443", "https://chat.example.com:8443"},
		{"http://127.0.0.1:80", "http://127.0.0.1"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"https://[::1]", "https://[::1]"},
	} {
		c, err := LoadBytes("t.yaml", []byte("public_url: "+tc.url+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.AllowedOrigins) != 1 || c.AllowedOrigins[0] != tc.want {
			t.Errorf("%s: allowed_origins = %q, want %q", tc.url, c.AllowedOrigins, tc.want)
		}
	}
	// An explicit list is kept as written.
	c, err := LoadBytes("t.yaml", []byte("allowed_origins: [https://a.example]\ndata_dir: /srv/wsg\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.AllowedOrigins, []string{"https://a.example"}) || c.Audit.File != filepath.Join("/srv/wsg", "audit.log") {
		t.Errorf("got %q %q", c.AllowedOrigins, c.Audit.File)
	}
}

func TestYAMLFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wsguard.yaml")
	yml := `
listen: ":443"
public_url: https://chat.example.com
tls:
  cert_file: /etc/c.pem
  key_file: /etc/k.pem
  profile: modern
admin_listen: 127.0.0.1:9443
admin:
  hosts: [wsguard-admin.monitoring.svc]
  metrics_networks: [10.0.0.0/8]
  metrics_token_file: /run/secrets/metrics-token
limits:
  max_message_bytes: 1024
  idle_timeout: 90s
namespaces:
  news:
    subscribe: [users]
    publish: [scope, "role:editor"]
jwt:
  audience: wsguard
  issuer: https://idp.example
  keys:
    - {kid: k1, alg: HS256, secret_file: /etc/s}
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":443" || c.TLS.Profile != "modern" || c.Limits.MaxMessageBytes != 1024 || c.Limits.IdleTimeout.D() != 90*time.Second {
		t.Errorf("not applied: %+v", c)
	}
	if c.AdminListen != "127.0.0.1:9443" || !reflect.DeepEqual(c.Admin.Hosts, []string{"wsguard-admin.monitoring.svc"}) ||
		!reflect.DeepEqual(c.Admin.MetricsNetworks, []string{"10.0.0.0/8"}) || c.Admin.MetricsTokenFile != "/run/secrets/metrics-token" || c.Admin.Pprof {
		t.Errorf("admin section not applied: admin_listen %q, admin %+v", c.AdminListen, c.Admin)
	}
	if _, ok := c.Namespaces["room"]; !ok {
		t.Error("default namespace room lost when adding news")
	}
	if got := c.Namespaces["news"].Publish; !reflect.DeepEqual(got, []string{"scope", "role:editor"}) {
		t.Errorf("news publish = %q", got)
	}
	if c.Limits.SendQueue != 256 {
		t.Error("unset keys must keep defaults")
	}
	if err := Check(path); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestYAMLStrict(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		want      []string // all must appear in the error
	}{
		{"unknown top key", "listen: localhost:1\nlisen: x\n", []string{"f.yaml:2:", `"lisen"`, "unknown key"}},
		{"unknown nested key", "tls:\n  profile: modern\n  cert: x\n", []string{"f.yaml:3:", `"tls.cert"`}},
		{"unknown jwt key field", "jwt:\n  keys:\n    - kid: a\n      algo: HS256\n", []string{"f.yaml:4:", `"jwt.keys[0].algo"`}},
		{"unknown namespace field", "namespaces:\n  news:\n    pub: [users]\n", []string{"f.yaml:3:", `"namespaces.news.pub"`}},
		{"bad int", "limits:\n  send_queue: lots\n", []string{"f.yaml:2:", "limits.send_queue", "an integer"}},
		{"bad duration", "limits:\n  idle_timeout: 30\n", []string{"f.yaml:2:", "limits.idle_timeout", "not a duration"}},
		{"bad bool", "insecure_dev: maybe\n", []string{"f.yaml:1:", "insecure_dev", "true or false"}},
		{"list expected", "allowed_origins:\n  a: b\n", []string{"f.yaml:2:", "allowed_origins"}},
		{"not a mapping", "- a\n- b\n", []string{"f.yaml:1:", "top level"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"f.yaml", "already defined"}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", []string{"only one YAML document"}},
		{"syntax", "tls: [\n", []string{"f.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("f.yaml", []byte(tc.yml), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"PATH=/bin",
		"WSGUARD_CONFIG=/ignored.yaml",
		"WSGUARD_LISTEN=127.0.0.1:9000",
		"WSGUARD_TLS_CERT_FILE=/c.pem",
		"WSGUARD_TLS_KEY_FILE=/k.pem",
		"WSGUARD_LIMITS_MAX_MESSAGE_BYTES=2048",
		"WSGUARD_LIMITS_MESSAGES_PER_SECOND=2.5",
		"WSGUARD_LIMITS_IDLE_TIMEOUT=2m",
		"WSGUARD_LIMITS_SEND_QUEUE=8",
		"WSGUARD_JWT_AUDIENCE=aud",
		"WSGUARD_INSECURE_DEV=true",
		"WSGUARD_ALLOWED_ORIGINS=https://a.example, https://b.example:8443,",
		"WSGUARD_TRUSTED_PROXIES=10.0.0.0/8",
		"WSGUARD_ADMIN_LISTEN=127.0.0.1:9500",
		"WSGUARD_ADMIN_PPROF=true",
		"WSGUARD_ADMIN_METRICS_NETWORKS=10.1.0.0/16",
	}
	c, err := LoadBytes("f.yaml", []byte("listen: localhost:1\nlimits:\n  send_queue: 4\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.TLS.CertFile != "/c.pem" || c.TLS.KeyFile != "/k.pem" ||
		c.Limits.MaxMessageBytes != 2048 || c.Limits.MessagesPerSecond != 2.5 || c.Limits.IdleTimeout.D() != 2*time.Minute ||
		c.Limits.SendQueue != 8 || c.JWT.Audience != "aud" || !c.InsecureDev ||
		c.AdminListen != "127.0.0.1:9500" || !c.Admin.Pprof || !reflect.DeepEqual(c.Admin.MetricsNetworks, []string{"10.1.0.0/16"}) {
		t.Errorf("env not applied over file: %+v", c)
	}
	if !reflect.DeepEqual(c.AllowedOrigins, []string{"https://a.example", "https://b.example:8443"}) {
		t.Errorf("allowed_origins = %q", c.AllowedOrigins)
	}
	if !reflect.DeepEqual(c.TrustedProxies, []string{"10.0.0.0/8"}) {
		t.Errorf("trusted_proxies = %q", c.TrustedProxies)
	}
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"WSGUARD_LISTN=x:1", []string{"WSGUARD_LISTN", "no configuration key"}},
		{"WSGUARD_JWT_KEYS=a", []string{"WSGUARD_JWT_KEYS"}},
		{"WSGUARD_NAMESPACES=a", []string{"WSGUARD_NAMESPACES"}},
		{"WSGUARD_INSECURE_DEV=yes please", []string{"WSGUARD_INSECURE_DEV", "true or false"}},
		{"WSGUARD_LIMITS_SEND_QUEUE=1e3", []string{"WSGUARD_LIMITS_SEND_QUEUE", "an integer"}},
		{"WSGUARD_LIMITS_MAX_MESSAGE_BYTES=99999999999999999999", []string{"WSGUARD_LIMITS_MAX_MESSAGE_BYTES", "an integer"}},
		{"WSGUARD_LIMITS_MESSAGES_PER_SECOND=NaN", []string{"WSGUARD_LIMITS_MESSAGES_PER_SECOND", "a number"}},
		{"WSGUARD_LIMITS_IDLE_TIMEOUT=60", []string{"WSGUARD_LIMITS_IDLE_TIMEOUT", "duration"}},
	} {
		_, err := Load("", []string{tc.env})
		if err == nil {
			t.Errorf("%s accepted", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.env, err, w)
			}
		}
	}
}

func TestEnvNamesCoverScalars(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"WSGUARD_LISTEN", "WSGUARD_TLS_CERT_FILE", "WSGUARD_LIMITS_MAX_MESSAGE_BYTES", "WSGUARD_JWT_AUDIENCE", "WSGUARD_AUDIT_FILE", "WSGUARD_COMPRESSION_ENABLED", "WSGUARD_TLS_ACME_DOMAINS"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("%s missing from %q", want, names)
		}
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("public_url: http://chat.example.com\nlisten: 0.0.0.0:80\n"), 0o600)
	err := Check(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "public_url") {
		t.Errorf("Check(bad) = %v", err)
	}
	if err := Check(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("tls:\n  profle: modern\n"), 0o600)
	if err := Check(typo); err == nil || !strings.Contains(err.Error(), typo+":2:") {
		t.Errorf("Check(typo) = %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"", "listen: localhost:1\n", "tls:\n  profile: modern\n", "namespaces:\n  news:\n    publish: [users]\n",
		"jwt:\n  keys:\n    - {kid: a, alg: HS256, secret_file: s}\n", "a: &x [1]\nb: *x\n",
		"limits:\n  idle_timeout: 5s\n", "- x\n", "allowed_origins: '*'\n", "tls: {<<: {profile: modern}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes("fuzz.yaml", data, nil)
		if err != nil {
			return
		}
		_ = c.Validate()
		_ = c.Warnings()
		_ = c.TLSEnabled()
	})
}
