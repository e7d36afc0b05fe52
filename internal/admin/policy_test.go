package admin

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	p := &Policy{Hosts: []string{"wsguard-admin.monitoring.svc"}}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost:9443", true},
		{"LOCALHOST:9443", true},
		{"localhost", true},
		{"localhost.:9443", true},
		{"127.0.0.1:9443", true},
		{"[::1]:9443", true},
		{"10.1.2.3:9443", true}, // a pod IP, as Prometheus scrapes it
		{"wsguard-admin.monitoring.svc:9443", true},
		// DNS rebinding: the attacker's own name pointed at 127.0.0.1.
		{"evil.example:9443", false},
		{"evil.example", false},
		{"localhost.evil.example:9443", false},
		{"127.0.0.1.nip.io:9443", false},
		{"monitoring.svc:9443", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = tc.host
		err := p.CheckHost(r)
		if (err == nil) != tc.ok {
			t.Errorf("Host %q: err %v, want ok=%v", tc.host, err, tc.ok)
		}
		if err != nil {
			ref := err.(*Refusal)
			if ref.Status != http.StatusMisdirectedRequest || !strings.Contains(ref.Msg, "admin.hosts") {
				t.Errorf("Host %q: refusal %d %q, want 421 naming admin.hosts", tc.host, ref.Status, ref.Msg)
			}
		}
	}
}

func TestCheckScrape(t *testing.T) {
	token := []byte("0123456789abcdef0123456789abcdef")
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		p      Policy
		remote string
		authz  string
		want   int // 0 means served
	}{
		{"loopback v4", Policy{}, "127.0.0.1:5000", "", 0},
		{"loopback v6", Policy{}, "[::1]:5000", "", 0},
		{"loopback mapped", Policy{}, "[::ffff:127.0.0.1]:5000", "", 0},
		{"network peer allowed", Policy{Networks: nets}, "10.2.3.4:5000", "", 0},
		{"network peer mapped", Policy{Networks: nets}, "[::ffff:10.2.3.4]:5000", "", 0},
		{"token", Policy{Token: token}, "192.0.2.1:5000", "Bearer " + string(token), 0},
		{"token scheme any case", Policy{Token: token}, "192.0.2.1:5000", "bearer " + string(token), 0},
		// Refused.
		{"foreign peer, nothing configured", Policy{}, "192.0.2.1:5000", "", http.StatusForbidden},
		{"foreign peer outside networks", Policy{Networks: nets}, "192.0.2.1:5000", "", http.StatusForbidden},
		{"token configured, none sent", Policy{Token: token}, "192.0.2.1:5000", "", http.StatusUnauthorized},
		{"wrong token", Policy{Token: token}, "192.0.2.1:5000", "Bearer 0123456789abcdef0123456789abcdeX", http.StatusUnauthorized},
		{"token prefix", Policy{Token: token}, "192.0.2.1:5000", "Bearer 0123456789abcdef", http.StatusUnauthorized},
		{"basic scheme", Policy{Token: token}, "192.0.2.1:5000", "Basic " + string(token), http.StatusUnauthorized},
		{"token sent when none configured", Policy{}, "192.0.2.1:5000", "Bearer " + string(token), http.StatusForbidden},
		{"forwarded header ignored", Policy{}, "192.0.2.1:5000", "", http.StatusForbidden},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", "127.0.0.1")
		if tc.authz != "" {
			r.Header.Set("Authorization", tc.authz)
		}
		err := tc.p.CheckScrape(r)
		got := 0
		if err != nil {
			got = err.(*Refusal).Status
		}
		if got != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestGuardWritesRefusal(t *testing.T) {
	p := &Policy{Token: []byte("0123456789abcdef")}
	h := Guard(p.CheckScrape, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("served") }))
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rec.Body.String(), "admin.metrics_token_file") {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadToken(write("ok", "  0123456789abcdef0123\n")); err != nil || string(tok) != "0123456789abcdef0123" {
		t.Errorf("good token: %q, %v", tok, err)
	}
	for name, body := range map[string]string{"short": "abc\n", "empty": "\n", "two words": "0123456789abcdef 0123456789abcdef"} {
		if _, err := ReadToken(write(name, body)); err == nil || !strings.Contains(err.Error(), "admin.metrics_token_file") {
			t.Errorf("%s: err %v, want a refusal naming admin.metrics_token_file", name, err)
		}
	}
	if _, err := ReadToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
