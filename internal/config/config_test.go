package config

import (
	"fmt"
	"log/slog"
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
	if _, err := LoadValid(path, nil); err != nil {
		t.Errorf("LoadValid: %v", err)
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
	_, err := LoadValid(bad, nil)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "public_url") {
		t.Errorf("LoadValid(bad) = %v", err)
	}
	if _, err := LoadValid(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Error("missing file accepted")
	}
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("tls:\n  profle: modern\n"), 0o600)
	if _, err := LoadValid(typo, nil); err == nil || !strings.Contains(err.Error(), typo+":2:") {
		t.Errorf("LoadValid(typo) = %v", err)
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

// TestLogLevelKey: log.level defaults to info, is read from the file and
// from WSGUARD_LOG_LEVEL (which wins), and anything but the four levels is
// refused with the allowed values named.
func TestLogLevelKey(t *testing.T) {
	c, err := LoadBytes("f.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "info" || c.Log.SlogLevel() != slog.LevelInfo {
		t.Fatalf("default log.level = %q", c.Log.Level)
	}
	c, err = LoadBytes("f.yaml", []byte("log:\n  level: debug\n"), nil)
	if err != nil || c.Log.SlogLevel() != slog.LevelDebug {
		t.Fatalf("file log.level: %q, %v", c.Log.Level, err)
	}
	c, err = LoadBytes("f.yaml", []byte("log:\n  level: debug\n"), []string{"WSGUARD_LOG_LEVEL=error"})
	if err != nil || c.Log.SlogLevel() != slog.LevelError {
		t.Fatalf("env log.level: %q, %v", c.Log.Level, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("log.level error refused: %v", err)
	}
	for _, bad := range []string{"verbose", "INFO", "warning", ""} {
		c := Default()
		c.Log.Level = bad
		err := c.Validate()
		want := `log.level: "` + bad + `" is not a level (allowed: debug, info, warn, error)`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("log.level %q: error %v, want %q", bad, err, want)
		}
	}
	// A misspelt key under log is refused like any other.
	if _, err := LoadBytes("f.yaml", []byte("log:\n  lvl: debug\n"), nil); err == nil || !strings.Contains(err.Error(), "log.lvl") {
		t.Errorf("log.lvl: %v", err)
	}
}

// A Service named wsguard makes Kubernetes inject these into every pod;
// start-up must not refuse them, and they must not set anything.
func TestEnvKubernetesServiceLinks(t *testing.T) {
	injected := []string{
		"WSGUARD_PORT=tcp://10.96.0.12:8443",
		"WSGUARD_PORT_8443_TCP=tcp://10.96.0.12:8443",
		"WSGUARD_PORT_8443_TCP_PROTO=tcp",
		"WSGUARD_PORT_8443_TCP_PORT=8443",
		"WSGUARD_PORT_8443_TCP_ADDR=10.96.0.12",
		"WSGUARD_SERVICE_HOST=10.96.0.12",
		"WSGUARD_SERVICE_PORT=8443",
		"WSGUARD_SERVICE_PORT_HTTPS=8443",
	}
	c, err := Load("", append(injected, "WSGUARD_LISTEN=0.0.0.0:8443"))
	if err != nil {
		t.Fatalf("Kubernetes service variables refused: %v", err)
	}
	if c.Listen != "0.0.0.0:8443" {
		t.Errorf("listen = %q; a real override next to the injected ones must still apply", c.Listen)
	}
	want := Default()
	want.Listen = c.Listen
	want.fillDerived()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("the injected variables changed the config:\n got %+v\nwant %+v", c, want)
	}
	// Genuine unknown keys, even ones that look close, are still refused.
	for _, kv := range []string{"WSGUARD_PORTS=8443", "WSGUARD_SERVICES=x", "WSGUARD_LISTEN_PORT=8443", "WSGUARD_SERVICE=x"} {
		if _, err := Load("", []string{kv}); err == nil || !strings.Contains(err.Error(), "no configuration key") {
			t.Errorf("%s: err = %v, want refused as unknown", kv, err)
		}
	}
	// No key may ever start with PORT or SERVICE: it would be skipped.
	for _, n := range EnvNames() {
		if isServiceLink(n) {
			t.Errorf("%s collides with the variables Kubernetes injects", n)
		}
	}
}

// Changing only the port moves the setup link and the origin allowlist
// with it; an explicit public_url or allowed_origins is kept as written.
func TestPublicURLFollowsListen(t *testing.T) {
	for _, tc := range []struct{ yml, url, origin string }{
		{"listen: localhost:8446\n", "https://localhost:8446", "https://localhost:8446"},
		{"listen: 127.0.0.1:9000\n", "https://127.0.0.1:9000", "https://127.0.0.1:9000"},
		{"listen: 0.0.0.0:8446\n", "https://localhost:8446", "https://localhost:8446"},
		{"listen: \":8446\"\n", "https://localhost:8446", "https://localhost:8446"},
		{"listen: \"[::1]:8446\"\n", "https://[::1]:8446", "https://[::1]:8446"},
		{"listen: \":443\"\n", "https://localhost", "https://localhost"},
		{"listen: localhost:8446\npublic_url: https://chat.example.com\n", "https://chat.example.com", "https://chat.example.com"},
		{"listen: localhost:8446\nallowed_origins: [https://a.example]\n", "https://localhost:8446", "https://a.example"},
	} {
		c, err := LoadBytes("t.yaml", []byte(tc.yml), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.PublicURL != tc.url || len(c.AllowedOrigins) != 1 || c.AllowedOrigins[0] != tc.origin {
			t.Errorf("%q: public_url %q allowed_origins %q; want %q [%q]", tc.yml, c.PublicURL, c.AllowedOrigins, tc.url, tc.origin)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", tc.yml, err)
		}
	}
	// The environment moves them too.
	c, err := Load("", []string{"WSGUARD_LISTEN=localhost:8446"})
	if err != nil || c.PublicURL != "https://localhost:8446" {
		t.Errorf("WSGUARD_LISTEN: public_url %q, %v", c.PublicURL, err)
	}
}

// The file config init writes loads back to exactly the defaults, and names
// every key there is.
func TestSampleIsDefaults(t *testing.T) {
	c, err := LoadBytes("wsguard.yaml", Sample(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := LoadBytes("", nil, nil)
	// %+v prints a nil and an empty list alike; both mean "none".
	same := func(a, b Config) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }
	if !same(c, want) {
		t.Errorf("sample differs from the defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	var keys []string
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for i := 0; i < rt.NumField(); i++ {
			name := yamlName(rt.Field(i))
			if name == "" {
				continue
			}
			keys = append(keys, name)
			if ft := rt.Field(i).Type; ft.Kind() == reflect.Struct && ft != durationType {
				walk(ft, join(prefix, name))
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	for _, k := range keys {
		if !strings.Contains(string(Sample()), "\n"+k+":") && !strings.Contains(string(Sample()), " "+k+":") {
			t.Errorf("key %s missing from the sample", k)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "wsguard.yaml")
	if err := WriteSample(path, false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("listen: localhost:1\n"), 0o600)
	if err := WriteSample(path, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrote an existing file without --force: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "listen: localhost:1\n" {
		t.Errorf("existing file changed: %q", b)
	}
	if err := WriteSample(path, true); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadValid(path, nil); err != nil || !same(c, want) {
		t.Errorf("forced sample: %v", err)
	}
}

func TestAdvice(t *testing.T) {
	for _, tc := range []struct {
		yml  string
		want []string // substrings, one per advice line; none means no advice
	}{
		{"", nil},
		{"listen: localhost:8446\n", nil},
		{"listen: localhost:8446\npublic_url: https://localhost:8443\n", []string{"public_url: https://localhost:8443 points at port 8443 but listen is on port 8446"}},
		{"listen: localhost:8443\npublic_url: https://localhost\n", []string{"port 443 but listen is on port 8443"}},
		{"listen: \":443\"\npublic_url: https://chat.example.com\ntls:\n  acme_domains: [chat.example.com]\n", nil},
		{"listen: localhost:8443\npublic_url: https://chat.example.com:8443\ntrusted_proxies: [127.0.0.1]\n", nil},
		{"listen: localhost:8443\npublic_url: https://chat.example.com:8443\n", []string{"loopback connections only"}},
		{"listen: 0.0.0.0:8446\n", []string{"development certificate is valid for localhost"}},
		{"proxy:\n  upstream: ws://app.internal:9000/socket\n", []string{"proxy.upstream: ws://app.internal:9000/socket is plain ws:// to another host"}},
		{"proxy:\n  upstream: ws://127.0.0.1:9000/socket\n", nil},
		{"proxy:\n  upstream: wss://app.internal:9000/socket\n", nil},
		{"listen: \":8446\"\n", []string{"development certificate"}},
		{"listen: localhost:0\npublic_url: https://localhost:8443\n", nil},
	} {
		c, err := LoadBytes("t.yaml", []byte(tc.yml), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Advice()
		if len(got) != len(tc.want) {
			t.Errorf("%q: advice %q, want %d lines", tc.yml, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%q: advice %q lacks %q", tc.yml, got[i], w)
			}
		}
	}
}
