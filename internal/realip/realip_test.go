package realip

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"untrusted peer forging XFF is ignored", "203.0.113.9:5555", "1.2.3.4", "203.0.113.9"},
		{"no XFF", "10.1.1.1:80", "", "10.1.1.1"},
		{"trusted proxy", "10.1.1.1:80", "198.51.100.7", "198.51.100.7"},
		{"client-supplied prefix is skipped", "10.1.1.1:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "192.0.2.1:80", "198.51.100.7, 10.2.2.2", "198.51.100.7"},
		{"garbage hop", "10.1.1.1:80", "not-an-ip", "10.1.1.1"},
		{"ipv6 peer", "[2001:db8::1]:443", "1.2.3.4", "2001:db8::1"},
	}
	for _, tc := range tests {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = tc.remote
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := r.ClientIP(req); got != tc.want {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
	}
}

func TestSecure(t *testing.T) {
	r, _ := New([]string{"10.0.0.0/8"})
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "203.0.113.9:1"
	req.Header.Set("X-Forwarded-Proto", "https")
	if r.Secure(req) {
		t.Error("forged X-Forwarded-Proto from an untrusted peer believed")
	}
	req.RemoteAddr = "10.0.0.2:1"
	if !r.Secure(req) {
		t.Error("trusted proxy's X-Forwarded-Proto ignored")
	}
	req.Header.Set("X-Forwarded-Proto", "http")
	if r.Secure(req) {
		t.Error("http from trusted proxy treated as secure")
	}
	req.TLS = &tls.ConnectionState{}
	if !r.Secure(req) {
		t.Error("direct TLS not secure")
	}
	if _, err := New([]string{"nonsense"}); err == nil {
		t.Error("bad CIDR accepted")
	}
}
