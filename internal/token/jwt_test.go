package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
)

const (
	testAud = "wsguard-test"
	testIss = "https://issuer.example"
)

var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// testKeys are generated once: RSA generation is the slow part.
type testKeys struct {
	hs    []byte
	rsa   *rsa.PrivateKey
	rsa2  *rsa.PrivateKey // a key nobody configured
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	edPub ed25519.PublicKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		keys.hs = make([]byte, 32)
		rand.Read(keys.hs)
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.edPub, keys.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return keys
}

func writePub(t testing.TB, dir, name string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig configures one key per algorithm: kids hs, rs, es, ed.
func testConfig(t testing.TB) config.JWT {
	t.Helper()
	k := getKeys(t)
	dir := t.TempDir()
	return config.JWT{
		Audience: testAud,
		Issuer:   testIss,
		Leeway:   config.Duration(5 * time.Second),
		Keys: []config.JWTKey{
			{KID: "hs", Alg: "HS256", SecretFile: writeFile(t, dir, "hs.secret", append(slices.Clone(k.hs), '\n'))},
			{KID: "rs", Alg: "RS256", PublicKeyFile: writePub(t, dir, "rs.pem", &k.rsa.PublicKey)},
			{KID: "es", Alg: "ES256", PublicKeyFile: writePub(t, dir, "es.pem", &k.ec.PublicKey)},
			{KID: "ed", Alg: "EdDSA", PublicKeyFile: writePub(t, dir, "ed.pem", k.edPub)},
		},
	}
}

func newTestVerifier(t testing.TB, cfg config.JWT) (*Verifier, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(testNow)
	v, err := NewVerifier(cfg, VerifierOptions{Clock: clk})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v, clk
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "alice",
		"aud":   testAud,
		"iss":   testIss,
		"exp":   testNow.Add(time.Hour).Unix(),
		"iat":   testNow.Unix(),
		"nbf":   testNow.Unix(),
		"roles": []string{"ops"},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// sign signs c with m and k; kid "" leaves the header without kid.
func sign(t testing.TB, m jwt.SigningMethod, k any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// handmade builds a token from a header and claims with the given signature.
func handmade(t testing.TB, hdr map[string]any, c jwt.MapClaims, sig string) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
}

func TestVerifyAccepts(t *testing.T) {
	k := getKeys(t)
	v, _ := newTestVerifier(t, testConfig(t))
	tests := []struct {
		name string
		tok  string
		want Claims
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(nil)), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil)), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "es", claims(nil)), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil)), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"exp 3s ago within 5s leeway", sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(-3 * time.Second).Unix()
		})), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"nbf 3s ahead within leeway", sign(t, jwt.SigningMethodES256, k.ec, "es", claims(func(c jwt.MapClaims) {
			c["nbf"] = testNow.Add(3 * time.Second).Unix()
			c["iat"] = testNow.Add(3 * time.Second).Unix()
		})), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"aud list containing ours", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(func(c jwt.MapClaims) {
			c["aud"] = []string{"other", testAud}
		})), Claims{Subject: "alice", Roles: []string{"ops"}}},
		{"channels and no roles", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) {
			delete(c, "roles")
			c["channels"] = []string{"room:a", "news:b"}
		})), Claims{Subject: "alice", Channels: []string{"room:a", "news:b"}}},
		{"no nbf no iat", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) {
			delete(c, "nbf")
			delete(c, "iat")
		})), Claims{Subject: "alice", Roles: []string{"ops"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tc.tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != tc.want.Subject || !slices.Equal(got.Roles, tc.want.Roles) || !slices.Equal(got.Channels, tc.want.Channels) {
				t.Errorf("claims = %+v, want %+v", got, tc.want)
			}
			if got.Expires.IsZero() {
				t.Error("Expires is zero")
			}
		})
	}
}

func TestVerifyExpiresIsExp(t *testing.T) {
	k := getKeys(t)
	v, _ := newTestVerifier(t, testConfig(t))
	exp := testNow.Add(42 * time.Minute)
	got, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["exp"] = exp.Unix() })))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Expires.Equal(exp) {
		t.Errorf("Expires = %v, want %v", got.Expires, exp)
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := getKeys(t)
	cfg := testConfig(t)
	v, _ := newTestVerifier(t, cfg)
	rsaPEM, err := os.ReadFile(cfg.Keys[1].PublicKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, attackerEd, _ := ed25519.GenerateKey(rand.Reader)
	attackerPub := attackerEd.Public().(ed25519.PublicKey)

	bigRoles := make([]string, 2000)
	for i := range bigRoles {
		bigRoles[i] = "r"
	}
	embeddedJWK := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
	embeddedJWK.Header["kid"] = "ed"
	embeddedJWK.Header["jwk"] = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attackerPub)}
	embeddedJWKTok, _ := embeddedJWK.SignedString(attackerEd)

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"alg none with kid", handmade(t, map[string]any{"alg": "none", "kid": "rs"}, claims(nil), ""), ErrBadSignature},
		{"alg none signed by jwt", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "hs", claims(nil)), ErrBadSignature},
		{"alg NONE", handmade(t, map[string]any{"alg": "NONE", "kid": "ed"}, claims(nil), ""), ErrBadSignature},
		{"HS256 with RSA public PEM as secret", sign(t, jwt.SigningMethodHS256, rsaPEM, "rs", claims(nil)), ErrBadSignature},
		{"HS256 with RSA public PEM, PEM newline stripped", sign(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(rsaPEM))), "rs", claims(nil)), ErrBadSignature},
		{"ES256 token against RS256 kid", sign(t, jwt.SigningMethodES256, k.ec, "rs", claims(nil)), ErrBadSignature},
		{"PS256 with the right RSA key", sign(t, jwt.SigningMethodPS256, k.rsa, "rs", claims(nil)), ErrBadSignature},
		{"signed by another RSA key", sign(t, jwt.SigningMethodRS256, k.rsa2, "rs", claims(nil)), ErrBadSignature},
		{"embedded jwk header (attacker key)", embeddedJWKTok, ErrBadSignature},
		{"jku header ignored, unknown kid", handmade(t, map[string]any{"alg": "RS256", "kid": "x", "jku": "https://evil.example/jwks"}, claims(nil), "AA"), ErrUnknownKey},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, "nope", claims(nil)), ErrUnknownKey},
		{"kid path traversal", sign(t, jwt.SigningMethodHS256, k.hs, "../../etc/passwd", claims(nil)), ErrUnknownKey},
		{"kid absolute path", sign(t, jwt.SigningMethodHS256, k.hs, "/dev/null", claims(nil)), ErrUnknownKey},
		{"kid URL", sign(t, jwt.SigningMethodRS256, k.rsa, "http://x", claims(nil)), ErrUnknownKey},
		{"kid file URL", sign(t, jwt.SigningMethodRS256, k.rsa, "file:///etc/passwd", claims(nil)), ErrUnknownKey},
		{"kid SQL", sign(t, jwt.SigningMethodRS256, k.rsa, "' OR 1=1 --", claims(nil)), ErrUnknownKey},
		{"kid case variant", sign(t, jwt.SigningMethodRS256, k.rsa, "RS", claims(nil)), ErrUnknownKey},
		{"no kid with several keys", sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil)), ErrUnknownKey},
		{"kid not a string", handmade(t, map[string]any{"alg": "RS256", "kid": 7}, claims(nil), "AA"), ErrMalformed},
		{"crit header", handmade(t, map[string]any{"alg": "HS256", "kid": "hs", "crit": []string{"exp"}, "exp": 1}, claims(nil), "AA"), ErrMalformed},
		{"expired beyond leeway", sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(-10 * time.Second).Unix()
		})), ErrExpired},
		{"nbf in the future", sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(func(c jwt.MapClaims) {
			c["nbf"] = testNow.Add(10 * time.Second).Unix()
		})), ErrNotYetValid},
		{"iat in the future", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(func(c jwt.MapClaims) {
			c["iat"] = testNow.Add(time.Hour).Unix()
		})), ErrNotYetValid},
		{"wrong aud", sign(t, jwt.SigningMethodES256, k.ec, "es", claims(func(c jwt.MapClaims) { c["aud"] = "other-service" })), ErrInvalid},
		{"aud prefix", sign(t, jwt.SigningMethodES256, k.ec, "es", claims(func(c jwt.MapClaims) { c["aud"] = testAud + "x" })), ErrInvalid},
		{"missing aud", sign(t, jwt.SigningMethodES256, k.ec, "es", claims(func(c jwt.MapClaims) { delete(c, "aud") })), ErrInvalid},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), ErrInvalid},
		{"missing iss", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { delete(c, "iss") })), ErrInvalid},
		{"missing exp", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { delete(c, "exp") })), ErrInvalid},
		{"missing sub", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { delete(c, "sub") })), ErrInvalid},
		{"empty sub", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["sub"] = "" })), ErrInvalid},
		{"sub with newline", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["sub"] = "alice\nadmin" })), ErrInvalid},
		{"roles not a list", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["roles"] = "admin" })), ErrMalformed},
		{"too long", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(func(c jwt.MapClaims) { c["roles"] = bigRoles })), ErrMalformed},
		{"megabyte of dots", strings.Repeat(".", 1<<20), ErrMalformed},
		{"empty", "", ErrMalformed},
		{"two segments", "eyJhbGciOiJIUzI1NiJ9.e30", ErrMalformed},
		{"four segments", sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(nil)) + ".x", ErrMalformed},
		{"header not base64", "!!!.e30.AA", ErrMalformed},
		{"header padded base64", base64.URLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"hs"}`)) + ".e30.AA", ErrMalformed},
		{"header not an object", base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + ".e30.AA", ErrMalformed},
		{"header without alg", base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"hs"}`)) + ".e30.AA", ErrMalformed},
		{"payload not JSON", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"hs"}`)) + ".bm9wZQ.AA", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tc.tok)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", got)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			if len(tc.tok) > 20 && strings.Contains(err.Error(), tc.tok) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	k := getKeys(t)
	v, clk := newTestVerifier(t, testConfig(t))
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(func(c jwt.MapClaims) { c["exp"] = testNow.Unix() }))
	clk.Set(testNow.Add(3 * time.Second))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("3 s after exp with 5 s leeway: %v", err)
	}
	clk.Set(testNow.Add(10 * time.Second))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("10 s after exp: err = %v, want ErrExpired", err)
	}

	// Zero leeway: one second late is too late.
	cfg := testConfig(t)
	cfg.Leeway = 0
	v0, clk0 := newTestVerifier(t, cfg)
	if v0.Leeway() != 0 || v.Leeway() != 5*time.Second {
		t.Fatalf("Leeway() = %v, %v", v0.Leeway(), v.Leeway())
	}
	clk0.Set(testNow.Add(time.Second))
	if _, err := v0.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("zero leeway: err = %v, want ErrExpired", err)
	}
}

func TestVerifyNoKIDSingleKey(t *testing.T) {
	k := getKeys(t)
	cfg := testConfig(t)
	cfg.Keys = cfg.Keys[1:2] // rs only
	v, _ := newTestVerifier(t, cfg)
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))); err != nil {
		t.Fatalf("no kid, one key: %v", err)
	}
	// Still refused: the confusion attack without kid.
	pemBytes, _ := os.ReadFile(cfg.Keys[0].PublicKeyFile)
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, pemBytes, "", claims(nil))); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("HS256 with RSA PEM, no kid: err = %v, want ErrBadSignature", err)
	}
	if _, err := v.Verify(context.Background(), handmade(t, map[string]any{"alg": "none"}, claims(nil), "")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("alg none, no kid: err = %v, want ErrBadSignature", err)
	}
}

// TestVerifyDotsCheap checks SECURITY.md K6: an oversized bearer token is
// refused by its length, before anything proportional to it is allocated.
func TestVerifyDotsCheap(t *testing.T) {
	v, _ := newTestVerifier(t, testConfig(t))
	dots := strings.Repeat(".", 1<<20)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := v.Verify(context.Background(), dots); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	if allocs > 5 {
		t.Errorf("%v allocations per refused megabyte", allocs)
	}
	// Just under the cap but all dots: refused by the segment count.
	under := strings.Repeat(".", MaxTokenBytes)
	allocs = testing.AllocsPerRun(20, func() {
		if _, err := v.Verify(context.Background(), under); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	if allocs > 5 {
		t.Errorf("%v allocations per refused dotted token", allocs)
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaPub := writePub(t, dir, "rsa.pem", &k.rsa.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
	priv := writeFile(t, dir, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	rsaPEM, _ := os.ReadFile(rsaPub)

	base := func(keys ...config.JWTKey) config.JWT {
		return config.JWT{Audience: testAud, Issuer: testIss, Leeway: config.Duration(5 * time.Second), Keys: keys}
	}
	tests := []struct {
		name string
		cfg  config.JWT
		want string
	}{
		{"no audience", config.JWT{Issuer: testIss, Keys: []config.JWTKey{{KID: "a", Alg: "RS256", PublicKeyFile: rsaPub}}}, "jwt.audience"},
		{"no issuer", config.JWT{Audience: testAud, Keys: []config.JWTKey{{KID: "a", Alg: "RS256", PublicKeyFile: rsaPub}}}, "jwt.issuer"},
		{"leeway too big", func() config.JWT {
			c := base(config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: rsaPub})
			c.Leeway = config.Duration(61 * time.Second)
			return c
		}(), "jwt.leeway"},
		{"no keys", base(), "nothing to verify"},
		{"short secret", base(config.JWTKey{KID: "a", Alg: "HS256", SecretFile: writeFile(t, dir, "short", []byte("0123456789abcdef0123456789abcde\n"))}), "at least 32"},
		{"PEM as secret", base(config.JWTKey{KID: "a", Alg: "HS256", SecretFile: writeFile(t, dir, "pemsecret", rsaPEM)}), "PEM"},
		{"missing secret file", base(config.JWTKey{KID: "a", Alg: "HS256", SecretFile: filepath.Join(dir, "missing")}), "secret_file"},
		{"HS256 with public key file", base(config.JWTKey{KID: "a", Alg: "HS256", PublicKeyFile: rsaPub}), "needs secret_file"},
		{"RS256 with secret file", base(config.JWTKey{KID: "a", Alg: "RS256", SecretFile: rsaPub}), "needs public_key_file"},
		{"RSA 1024", base(config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: writePub(t, dir, "small.pem", &small.PublicKey)}), "1024 bits"},
		{"P-384 for ES256", base(config.JWTKey{KID: "a", Alg: "ES256", PublicKeyFile: writePub(t, dir, "p384.pem", &p384.PublicKey)}), "P-256"},
		{"RSA key for ES256", base(config.JWTKey{KID: "a", Alg: "ES256", PublicKeyFile: rsaPub}), "needs an ECDSA key"},
		{"RSA key for EdDSA", base(config.JWTKey{KID: "a", Alg: "EdDSA", PublicKeyFile: rsaPub}), "needs an Ed25519 key"},
		{"private key file", base(config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: priv}), "private key"},
		{"not PEM", base(config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: writeFile(t, dir, "garbage", []byte("hello"))}), "no PEM"},
		{"alg none", base(config.JWTKey{KID: "a", Alg: "none", SecretFile: rsaPub}), "not allowed"},
		{"duplicate kid", base(
			config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: rsaPub},
			config.JWTKey{KID: "a", Alg: "RS256", PublicKeyFile: rsaPub}), "used by another key"},
		{"jwks plain http", func() config.JWT { c := base(); c.JWKSURL = "http://idp.example/jwks"; return c }(), "not https"},
		{"jwks not a URL", func() config.JWT { c := base(); c.JWKSURL = "jwks.json"; return c }(), "not a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg, VerifierOptions{})
			if err == nil {
				t.Fatalf("NewVerifier accepted: %+v", v)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestSecretFileNewline(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	for _, suffix := range []string{"", "\n", "\r\n"} {
		cfg := config.JWT{Audience: testAud, Issuer: testIss, Keys: []config.JWTKey{
			{KID: "hs", Alg: "HS256", SecretFile: writeFile(t, dir, "s", append(slices.Clone(k.hs), suffix...))},
		}}
		v, _ := newTestVerifier(t, cfg)
		if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(nil))); err != nil {
			t.Errorf("suffix %q: %v", suffix, err)
		}
	}
}

func TestJWKSLoopbackHTTPAllowed(t *testing.T) {
	cfg := config.JWT{Audience: testAud, Issuer: testIss, JWKSURL: "http://127.0.0.1:1/jwks"}
	if _, err := NewVerifier(cfg, VerifierOptions{}); err != nil {
		t.Fatalf("loopback http jwks (insecure_dev, validated by config): %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	k := getKeys(f)
	cfg := testConfig(f)
	v, _ := newTestVerifier(f, cfg)
	f.Add(sign(f, jwt.SigningMethodHS256, k.hs, "hs", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, "es", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil)))
	f.Add(handmade(f, map[string]any{"alg": "none", "kid": "rs"}, claims(nil), ""))
	f.Add(handmade(f, map[string]any{"alg": "HS256", "crit": []string{"x"}}, claims(nil), "AA"))
	f.Add("..")
	f.Add("")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err == nil && c.Subject == "" {
			t.Fatalf("accepted with empty subject: %q", raw)
		}
	})
}

// TestParsersPinAlgorithm checks the second line of defence on its own: each
// per-key parser refuses every algorithm but its own, even if it were
// handed key material the attacker's algorithm could use.
func TestParsersPinAlgorithm(t *testing.T) {
	k := getKeys(t)
	cfg := testConfig(t)
	v, _ := newTestVerifier(t, cfg)
	pemBytes, _ := os.ReadFile(cfg.Keys[1].PublicKeyFile)
	for _, tc := range []struct {
		alg string
		tok string
	}{
		{AlgRS256, sign(t, jwt.SigningMethodHS256, pemBytes, "rs", claims(nil))},
		{AlgRS256, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rs", claims(nil))},
		{AlgES256, sign(t, jwt.SigningMethodHS256, pemBytes, "es", claims(nil))},
		{AlgEdDSA, sign(t, jwt.SigningMethodHS256, pemBytes, "ed", claims(nil))},
		{AlgHS256, sign(t, jwt.SigningMethodRS256, k.rsa, "hs", claims(nil))},
	} {
		var c jwtClaims
		_, err := v.parsers[tc.alg].ParseWithClaims(tc.tok, &c, func(*jwt.Token) (any, error) { return pemBytes, nil })
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			t.Errorf("parser %s: err = %v, want signature invalid", tc.alg, err)
		}
	}
}
