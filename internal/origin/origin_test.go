package origin

import "testing"

func TestCheck(t *testing.T) {
	a, err := New([]string{"https://chat.example.com", "https://localhost:8443"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin string
		ok     bool
	}{
		{"https://chat.example.com", true},
		{"https://CHAT.example.com", true},
		{"https://chat.example.com:443", true},
		{"https://localhost:8443", true},
		{"", false},
		{"null", false},
		{"http://chat.example.com", false},               // other scheme
		{"https://chat.example.com:8443", false},         // other port
		{"https://chat.example.com.evil.net", false},     // suffix look-alike
		{"https://evilchat.example.com", false},          // prefix look-alike
		{"https://evil.net/chat.example.com", false},     // path trick
		{"https://chat.example.com@evil.net", false},     // userinfo trick
		{"https://chat.example.com/", true},              // a lone slash is harmless
		{"https://chat.example.com/x", false},            // path
		{"https://localhost:8444", false},                // sibling port
		{"wss://chat.example.com", false},                // not an origin scheme
		{"https://*.example.com", false},                 // wildcard
		{"https://chat.example.com\r\nX-Evil: 1", false}, // header injection
	}
	for _, tc := range tests {
		err := a.Check(tc.origin)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.origin, err, tc.ok)
		}
	}
}

func TestNewRefusesWildcard(t *testing.T) {
	for _, o := range []string{"*", "https://*.example.com", "https://example.com/path", "ftp://x"} {
		if _, err := New([]string{o}); err == nil {
			t.Errorf("New(%q) accepted", o)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"https://a.b", "http://[::1]:80", "null", "https://x:443/", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		// Normalisation is idempotent.
		n2, err := Normalize(n)
		if err != nil || n2 != n {
			t.Fatalf("Normalize(%q)=%q, again %q %v", s, n, n2, err)
		}
	})
}
