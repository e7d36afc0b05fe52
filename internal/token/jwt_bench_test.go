package token

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyHS256 is the credential check of a handshake with a
// per-user HS256 JWT (what the bench's subscribers present).
func BenchmarkVerifyHS256(b *testing.B) {
	v, _ := newTestVerifier(b, testConfig(b))
	raw := sign(b, jwt.SigningMethodHS256, getKeys(b).hs, "hs", claims(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
