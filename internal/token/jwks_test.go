package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
)

var b64 = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(b[1:33]), "y": b64(b[33:])}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pub)}
}

func jwksDoc(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// jwksServer is a TLS JWKS endpoint on 127.0.0.1 whose document the test
// can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func newJWKSVerifier(t *testing.T, s *jwksServer) (*Verifier, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(testNow)
	v, err := NewVerifier(config.JWT{Audience: testAud, Issuer: testIss, JWKSURL: s.URL + "/jwks",
		Leeway: config.Duration(5 * time.Second)}, VerifierOptions{Clock: clk, HTTPClient: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}

func TestJWKSEachKeyType(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("r", &k.rsa.PublicKey), ecJWK("e", &k.ec.PublicKey), edJWK("d", k.edPub)))
	v, _ := newJWKSVerifier(t, s)
	ctx := context.Background()
	for _, tc := range []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{{jwt.SigningMethodRS256, k.rsa, "r"}, {jwt.SigningMethodES256, k.ec, "e"}, {jwt.SigningMethodEdDSA, k.ed, "d"}} {
		if _, err := v.Verify(ctx, sign(t, tc.m, tc.key, tc.kid, claims(nil))); err != nil {
			t.Errorf("%s: %v", tc.m.Alg(), err)
		}
	}
	if n := s.hits.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (cached)", n)
	}
	// Alg confusion against a JWKS key: HMAC with the modulus as secret.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, k.rsa.PublicKey.N.Bytes(), "r", claims(nil))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("HS256 against JWKS RSA key: err = %v, want ErrBadSignature", err)
	}
	// A JWKS never allows a kid-less token: its key set may grow.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no kid with JWKS: err = %v, want ErrUnknownKey", err)
	}
}

func TestJWKSRefreshOnUnknownKID(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey)))
	v, clk := newJWKSVerifier(t, s)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates in key b.
	s.set(jwksDoc(rsaJWK("a", &k.rsa.PublicKey), edJWK("b", k.edPub)))
	tokB := sign(t, jwt.SigningMethodEdDSA, k.ed, "b", claims(nil))
	if _, err := v.Verify(ctx, tokB); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within 30 s of the last fetch: err = %v, want ErrUnknownKey", err)
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	clk.Advance(JWKSMinRefresh)
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("after the refresh interval: %v", err)
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestJWKSRateLimitedUnderRandomKIDs(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey)))
	v, clk := newJWKSVerifier(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte("attacker-secret-attacker-secret!"), fmt.Sprintf("rand-%d", i), claims(nil)))
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("random kid: err = %v", err)
			}
		}()
	}
	wg.Wait()
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("fetches after 200 random kids = %d, want 1", n)
	}
	// The legitimate key still works, from the cache.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(JWKSMinRefresh - time.Second)
	v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "zzz", claims(nil)))
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("fetches 29 s later = %d, want 1", n)
	}
	clk.Advance(time.Second)
	v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "zzz", claims(nil)))
	v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "yyy", claims(nil)))
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("fetches 30 s later = %d, want 2", n)
	}
}

func TestJWKSMaxAgeDropsRemovedKey(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey), edJWK("b", k.edPub)))
	v, clk := newJWKSVerifier(t, s)
	ctx := context.Background()
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	s.set(jwksDoc(edJWK("b", k.edPub))) // a revoked at the issuer
	clk.Advance(JWKSMaxAge)
	if _, err := v.Verify(ctx, tokA); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key after max age: err = %v, want ErrUnknownKey", err)
	}
}

func TestJWKSHostDownKeepsKnownKeys(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey)))
	v, clk := newJWKSVerifier(t, s)
	ctx := context.Background()
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	s.set([]byte("<html>maintenance</html>"))
	clk.Advance(JWKSMaxAge)
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("known key while the host serves garbage: %v", err)
	}
}

func TestJWKSBodyTooLarge(t *testing.T) {
	k := getKeys(t)
	doc := jwksDoc(rsaJWK("a", &k.rsa.PublicKey))
	big := append(doc[:len(doc)-1:len(doc)-1], []byte(strings.Repeat(" ", JWKSMaxBody))...)
	big = append(big, '}')
	s := newJWKSServer(t, big)
	v, _ := newJWKSVerifier(t, s)
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil)))
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want ErrUnknownKey for a body over 1 MiB", err)
	}
	// Exactly at the cap is fine.
	atCap := append(doc[:len(doc)-1:len(doc)-1], []byte(strings.Repeat(" ", JWKSMaxBody-len(doc)))...)
	atCap = append(atCap, '}')
	s2 := newJWKSServer(t, atCap)
	v2, _ := newJWKSVerifier(t, s2)
	if _, err := v2.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))); err != nil {
		t.Fatalf("body of exactly 1 MiB: %v", err)
	}
}

func TestJWKSBadStatus(t *testing.T) {
	k := getKeys(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	v, err := NewVerifier(config.JWT{Audience: testAud, Issuer: testIss, JWKSURL: srv.URL},
		VerifierOptions{Clock: clock.NewFake(testNow), HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil)))
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("err = %v", err)
	}
}

// TestJWKSIgnoresTokenURLs: jku and x5u name an attacker's key host; we
// must never contact it.
func TestJWKSIgnoresTokenURLs(t *testing.T) {
	k := getKeys(t)
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	evil := newJWKSServer(t, jwksDoc(edJWK("evil", attacker.Public().(ed25519.PublicKey))))
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey)))
	v, _ := newJWKSVerifier(t, s)
	for _, h := range []string{"jku", "x5u"} {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
		tok.Header["kid"] = "evil"
		tok.Header[h] = evil.URL + "/jwks"
		raw, _ := tok.SignedString(attacker)
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s: err = %v, want ErrUnknownKey", h, err)
		}
	}
	if n := evil.hits.Load(); n != 0 {
		t.Fatalf("attacker's key host contacted %d times", n)
	}
}

func TestJWKSDefaultClientRefusesUntrustedCert(t *testing.T) {
	k := getKeys(t)
	s := newJWKSServer(t, jwksDoc(rsaJWK("a", &k.rsa.PublicKey)))
	// Zero HTTPClient: the system roots do not trust httptest's certificate.
	v, err := NewVerifier(config.JWT{Audience: testAud, Issuer: testIss, JWKSURL: s.URL}, VerifierOptions{Clock: clock.NewFake(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey (certificate not trusted)", err)
	}
}

func TestParseJWKS(t *testing.T) {
	k := getKeys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	offCurve := ecJWK("off", &k.ec.PublicKey)
	offCurve["y"] = b64(make([]byte, 32))
	with := func(m map[string]any, key string, val any) map[string]any {
		c := make(map[string]any, len(m)+1)
		for k, v := range m {
			c[k] = v
		}
		if val == nil {
			delete(c, key)
		} else {
			c[key] = val
		}
		return c
	}
	good := rsaJWK("good", &k.rsa.PublicKey)
	p384b, _ := p384.PublicKey.Bytes()

	tests := []struct {
		name string
		jwk  map[string]any
		alg  string // "" means ignored
	}{
		{"RSA", good, AlgRS256},
		{"RSA without alg", with(good, "alg", nil), AlgRS256},
		{"RSA without use", with(good, "use", nil), AlgRS256},
		{"RSA with key_ops verify", with(good, "key_ops", []string{"verify"}), AlgRS256},
		{"EC P-256", ecJWK("x", &k.ec.PublicKey), AlgES256},
		{"EC P-256 alg ES256", with(ecJWK("x", &k.ec.PublicKey), "alg", "ES256"), AlgES256},
		{"Ed25519", edJWK("x", k.edPub), AlgEdDSA},
		{"Ed25519 alg EdDSA", with(edJWK("x", k.edPub), "alg", "EdDSA"), AlgEdDSA},
		{"use enc", with(good, "use", "enc"), ""},
		{"key_ops encrypt only", with(good, "key_ops", []string{"encrypt"}), ""},
		{"RSA with alg HS256", with(good, "alg", "HS256"), ""},
		{"RSA with alg RS512", with(good, "alg", "RS512"), ""},
		{"RSA with alg none", with(good, "alg", "none"), ""},
		{"RSA 1024", rsaJWK("x", &small.PublicKey), ""},
		{"RSA e=1", with(good, "e", b64([]byte{1})), ""},
		{"RSA even e", with(good, "e", b64([]byte{2})), ""},
		{"RSA n not base64", with(good, "n", "!!!"), ""},
		{"no kid", with(good, "kid", nil), ""},
		{"oct symmetric key", map[string]any{"kty": "oct", "kid": "x", "k": b64([]byte("0123456789abcdef0123456789abcdef")), "alg": "HS256"}, ""},
		{"EC off curve", offCurve, ""},
		{"EC P-384", map[string]any{"kty": "EC", "crv": "P-384", "kid": "x", "x": b64(p384b[1:49]), "y": b64(p384b[49:])}, ""},
		{"EC short x", with(ecJWK("x", &k.ec.PublicKey), "x", b64(make([]byte, 31))), ""},
		{"EC with alg RS256", with(ecJWK("x", &k.ec.PublicKey), "alg", "RS256"), ""},
		{"OKP X25519", map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(make([]byte, 32))}, ""},
		{"Ed25519 short", with(edJWK("x", k.edPub), "x", b64(make([]byte, 16))), ""},
		{"kty as number", with(good, "kty", 3), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A good key rides along so the set itself is valid.
			keys, err := parseJWKS(jwksDoc(tc.jwk, rsaJWK("other", &k.rsa.PublicKey)))
			if err != nil {
				t.Fatal(err)
			}
			kid, _ := tc.jwk["kid"].(string)
			got, ok := keys[kid]
			if tc.alg == "" {
				if ok && kid != "other" {
					t.Fatalf("key accepted with alg %s", got.alg)
				}
				return
			}
			if !ok || got.alg != tc.alg {
				t.Fatalf("key = %+v (present %v), want alg %s", got.alg, ok, tc.alg)
			}
		})
	}
}

func TestParseJWKSRefusedSets(t *testing.T) {
	k := getKeys(t)
	for _, tc := range []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"not JSON", "<html>"},
		{"no keys", `{"keys":[]}`},
		{"keys not a list", `{"keys":{}}`},
		{"only oct", `{"keys":[{"kty":"oct","kid":"a","k":"AAAA"}]}`},
		{"duplicate kid", string(jwksDoc(rsaJWK("a", &k.rsa.PublicKey), edJWK("a", k.edPub)))},
		{"trailing data", string(jwksDoc(rsaJWK("a", &k.rsa.PublicKey))) + "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if keys, err := parseJWKS([]byte(tc.body)); err == nil {
				t.Fatalf("accepted: %v", keys)
			}
		})
	}
}

func FuzzParseJWKS(f *testing.F) {
	k := getKeys(f)
	f.Add(jwksDoc(rsaJWK("r", &k.rsa.PublicKey), ecJWK("e", &k.ec.PublicKey), edJWK("d", k.edPub)))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"a","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"","y":""}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.alg == "" || k.pub == nil {
				t.Fatalf("unusable key accepted: %q %+v", kid, k)
			}
		}
	})
}
