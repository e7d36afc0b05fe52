package token_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/token"
)

func ExampleVerifier_Verify() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	secret := []byte("an example secret of 32+ bytes, from a file")
	os.WriteFile(filepath.Join(dir, "hs.key"), append(secret, '\n'), 0o600)

	v, err := token.NewVerifier(config.JWT{
		Audience: "wsguard",
		Issuer:   "https://login.example",
		Leeway:   config.Duration(5 * time.Second),
		Keys:     []config.JWTKey{{KID: "k1", Alg: "HS256", SecretFile: filepath.Join(dir, "hs.key")}},
	}, token.VerifierOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "aud": "wsguard", "iss": "https://login.example",
		"exp": time.Now().Add(time.Hour).Unix(), "roles": []string{"ops"},
	})
	tok.Header["kid"] = "k1"
	raw, _ := tok.SignedString(secret)

	c, err := v.Verify(context.Background(), raw)
	fmt.Println(c.Subject, c.Roles, err)
	// Output: alice [ops] <nil>
}

func ExampleNewAPIKey() {
	raw, hash, _ := token.NewAPIKey()
	// Print raw once to the operator; store only hash.
	fmt.Println(token.LooksLikeAPIKey(raw), len(raw), hash == token.HashSecret(raw))
	// Output: true 47 true
}

func ExampleValidateScope() {
	fmt.Println(token.ValidateScope("publish:news:*"))
	fmt.Println(token.ValidateScope("publish:news:**") != nil)
	fmt.Println(token.ScopeAllows("publish:news:*", "publish", "room:x"))
	// Output:
	// <nil>
	// true
	// false
}
