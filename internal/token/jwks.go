package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
)

// JWKS limits. Each stops a way a key host, or a client sending random
// kids, could make wsguard spend resources.
const (
	// JWKSTimeout bounds one fetch (connect, TLS, headers and body).
	JWKSTimeout = 5 * time.Second
	// JWKSMaxBody caps the JWK set document; a bigger one is refused whole.
	JWKSMaxBody = 1 << 20
	// JWKSMinRefresh is the least time between two fetches, whatever
	// triggers them: an attacker sending random kids gets one fetch per
	// interval, not one per handshake.
	JWKSMinRefresh = 30 * time.Second
	// JWKSMaxAge is how long a fetched set is used before it is fetched
	// again, so a key removed at the issuer stops being trusted here.
	JWKSMaxAge = 10 * time.Minute
	// jwksMaxKeys caps how many keys one set may hold.
	jwksMaxKeys = 100
)

// jwksCache holds the key set fetched from jwt.jwks_url.
type jwksCache struct {
	url    string
	client *http.Client
	clock  clock.Clock

	keys atomic.Pointer[keySet] // nil until the first successful fetch

	fetchMu     sync.Mutex // held during a fetch: one in flight at a time
	lastAttempt time.Time  // guarded by fetchMu
}

// keySet is one fetched JWK set; immutable once stored.
type keySet struct {
	keys      map[string]key
	fetchedAt time.Time
}

func newJWKSCache(url string, client *http.Client, clk clock.Clock) *jwksCache {
	return &jwksCache{url: url, client: client, clock: clk}
}

// defaultHTTPClient is the zero-value VerifierOptions.HTTPClient.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: JWKSTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("jwks: more than 3 redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("jwks: redirect to %q is not https", req.URL.Redacted())
			}
			return nil
		},
	}
}

// lookup returns the key named kid, fetching the set when it is unknown or
// the cached set is older than JWKSMaxAge — at most once per JWKSMinRefresh.
func (j *jwksCache) lookup(ctx context.Context, kid string) (key, error) {
	now := j.clock.Now()
	set := j.keys.Load()
	if set != nil {
		if k, ok := set.keys[kid]; ok && now.Sub(set.fetchedAt) < JWKSMaxAge {
			return k, nil
		}
	}

	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	// Another goroutine may have fetched while we waited.
	set = j.keys.Load()
	var (
		k     key
		known bool
	)
	if set != nil {
		k, known = set.keys[kid]
		if known && now.Sub(set.fetchedAt) < JWKSMaxAge {
			return k, nil
		}
	}
	now = j.clock.Now()
	if !j.lastAttempt.IsZero() && now.Sub(j.lastAttempt) < JWKSMinRefresh {
		if known {
			return k, nil // stale but the refresh budget is spent: keep serving
		}
		return key{}, fmt.Errorf("%w: kid %q (jwks refreshed less than %s ago)", ErrUnknownKey, kid, JWKSMinRefresh)
	}
	j.lastAttempt = now

	// The fetch is shared work: it must not fail because the client whose
	// handshake triggered it went away. JWKSTimeout still bounds it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), JWKSTimeout)
	defer cancel()
	keys, err := j.fetch(fctx)
	if err != nil {
		if known {
			// The key host is down; a key we already trusted stays usable
			// rather than locking every user out.
			return k, nil
		}
		return key{}, fmt.Errorf("%w: kid %q: %w", ErrUnknownKey, kid, err)
	}
	j.keys.Store(&keySet{keys: keys, fetchedAt: now})
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return key{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// fetch downloads and parses the JWK set.
func (j *jwksCache) fetch(ctx context.Context) (map[string]key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks fetch: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, JWKSMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks read: %w", err)
	}
	if len(body) > JWKSMaxBody {
		return nil, fmt.Errorf("jwks: body larger than %d bytes", JWKSMaxBody)
	}
	return parseJWKS(body)
}

// jwk is one key of a JWK set (RFC 7517), the members we read.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	KID    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK set document. Keys that are not for signatures,
// have no kid, are symmetric, of an unsupported type, weak, or whose alg does
// not fit their type are skipped, not fatal: a set may legitimately carry
// encryption keys or algorithms we do not use. A set with no usable key is
// an error.
func parseJWKS(body []byte) (map[string]key, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("jwks: not a JWK set: %w", err)
	}
	keys := make(map[string]key)
	for _, raw := range doc.Keys {
		if len(keys) >= jwksMaxKeys {
			break
		}
		var jk jwk
		if err := json.Unmarshal(raw, &jk); err != nil {
			continue
		}
		if jk.KID == "" || len(jk.KID) > maxKIDBytes {
			continue
		}
		if _, dup := keys[jk.KID]; dup {
			// Two keys under one kid: which one signed is ambiguous, so
			// trust neither.
			keys[jk.KID] = key{}
			continue
		}
		k, err := jwkKey(jk)
		if err != nil {
			continue
		}
		keys[jk.KID] = k
	}
	for kid, k := range keys {
		if k.alg == "" {
			delete(keys, kid)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable signing key (RSA >= 2048 bit, EC P-256 or Ed25519, with a kid)")
	}
	return keys, nil
}

// jwkKey converts one JWK to a verification key with its one algorithm.
func jwkKey(jk jwk) (key, error) {
	if jk.Use != "" && jk.Use != "sig" {
		return key{}, fmt.Errorf("use %q is not sig", jk.Use)
	}
	if jk.KeyOps != nil && !slices.Contains(jk.KeyOps, "verify") {
		return key{}, errors.New("key_ops does not include verify")
	}
	var alg string
	var pub any
	switch {
	case jk.Kty == "RSA":
		alg = AlgRS256
		n, err := b64uint(jk.N, maxRSABits/8)
		if err != nil {
			return key{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64uint(jk.E, 4)
		if err != nil {
			return key{}, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return key{}, errors.New("e out of range")
		}
		rk := &rsa.PublicKey{N: n, E: int(e.Int64())}
		if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
			return key{}, fmt.Errorf("RSA key has %d bits", bits)
		}
		pub = rk
	case jk.Kty == "EC" && jk.Crv == "P-256":
		alg = AlgES256
		x, err := b64fixed(jk.X, 32)
		if err != nil {
			return key{}, fmt.Errorf("x: %w", err)
		}
		y, err := b64fixed(jk.Y, 32)
		if err != nil {
			return key{}, fmt.Errorf("y: %w", err)
		}
		point := append(append([]byte{4}, x...), y...)
		ek, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return key{}, err // off-curve points refused here
		}
		pub = ek
	case jk.Kty == "OKP" && jk.Crv == "Ed25519":
		alg = AlgEdDSA
		x, err := b64fixed(jk.X, ed25519.PublicKeySize)
		if err != nil {
			return key{}, fmt.Errorf("x: %w", err)
		}
		pub = ed25519.PublicKey(x)
	default:
		// "oct" (a shared secret published in a key set) included.
		return key{}, fmt.Errorf("kty %q crv %q is not supported", jk.Kty, jk.Crv)
	}
	if jk.Alg != "" && jk.Alg != alg {
		return key{}, fmt.Errorf("alg %q does not fit kty %q (want %s)", jk.Alg, jk.Kty, alg)
	}
	return key{alg: alg, pub: pub}, nil
}

// b64fixed decodes base64url (no padding) that must be exactly n bytes.
func b64fixed(s string, n int) ([]byte, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(n) {
		return nil, fmt.Errorf("want %d bytes", n)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("want %d bytes of base64url", n)
	}
	return b, nil
}

// b64uint decodes a base64url unsigned big-endian integer of at most max bytes.
func b64uint(s string, max int) (*big.Int, error) {
	if s == "" || len(s) > base64.RawURLEncoding.EncodedLen(max) {
		return nil, fmt.Errorf("empty or longer than %d bytes", max)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return new(big.Int).SetBytes(b), nil
}
