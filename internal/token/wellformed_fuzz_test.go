package token

import (
	"strings"
	"testing"
)

// FuzzWellFormed feeds arbitrary credentials to the shape checks that run
// before any store lookup: no panic; whatever passes has exactly the shape
// NewTicket and NewAPIKey produce.
func FuzzWellFormed(f *testing.F) {
	raw, _, err := NewTicket()
	if err != nil {
		f.Fatal(err)
	}
	key, _, err := NewAPIKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(key)
	f.Add(APIKeyPrefix)
	f.Add(strings.Repeat("A", 42) + "=")
	f.Add(APIKeyPrefix + strings.Repeat("é", 22))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		if TicketWellFormed(s) && (len(s) != 43 || !isBase64URL(s)) {
			t.Fatalf("ticket %q passed", s)
		}
		if APIKeyWellFormed(s) {
			if !LooksLikeAPIKey(s) || len(s) != len(APIKeyPrefix)+43 || !isBase64URL(s[len(APIKeyPrefix):]) {
				t.Fatalf("API key %q passed", s)
			}
		}
		if h := HashSecret(s); len(h) != 64 {
			t.Fatalf("hash %q", h)
		}
	})
}
