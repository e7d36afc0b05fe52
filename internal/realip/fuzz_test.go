package realip

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// FuzzClientIP feeds arbitrary peers and forwarding headers (SECURITY.md T6,
// M9): no panic; an untrusted peer's headers never change the answer; a
// trusted peer's answer is an address, never header text.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.9:5555", "1.2.3.4", "https")
	f.Add("10.1.1.1:80", "6.6.6.6, 198.51.100.7", "http")
	f.Add("10.1.1.1:80", "not-an-ip,,  ,::ffff:10.0.0.1", "HTTPS ")
	f.Add("[2001:db8::1]:443", "1.2.3.4\r\nX: y", "")
	f.Add("garbage", "", "https")
	f.Add("10.9.9.9:1", "10.0.0.1, 10.0.0.2, [::1]", "https,http")
	trusted, err := New([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	nobody, _ := New(nil)
	f.Fuzz(func(t *testing.T, remote, xff, xfp string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		req.Header["X-Forwarded-For"] = []string{xff}
		req.Header["X-Forwarded-Proto"] = []string{xfp}
		bare := httptest.NewRequest("GET", "/", nil)
		bare.RemoteAddr = remote

		if got, want := nobody.ClientIP(req), nobody.ClientIP(bare); got != want {
			t.Fatalf("untrusted: headers changed the client IP: %q vs %q", got, want)
		}
		if nobody.Secure(req) {
			t.Fatal("untrusted: X-Forwarded-Proto made a plain request secure")
		}
		got := trusted.ClientIP(req)
		p := peer(req)
		if !p.IsValid() {
			if got != remote {
				t.Fatalf("invalid peer %q answered %q", remote, got)
			}
			return
		}
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("trusted: client IP %q is not an address", got)
		}
		if !trusted.isTrusted(p) && got != p.String() {
			t.Fatalf("untrusted peer %s answered %q", p, got)
		}
	})
}
