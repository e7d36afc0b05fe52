package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
)

// Errors Verify wraps, so the caller can log and audit why a token was
// refused. All of them mean 401 to the client.
var (
	// ErrMalformed: too long, wrong number of segments, bad base64 or JSON.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknownKey: the kid names no configured or published key, or the
	// token has no kid while several keys are configured.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrBadSignature: wrong algorithm for the key, or the signature does not verify.
	ErrBadSignature = errors.New("bad token signature")
	// ErrExpired: exp (plus leeway) has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrInvalid: a required claim is missing or wrong (exp, aud, iss, sub).
	ErrInvalid = errors.New("invalid token claims")
)

// MaxTokenBytes bounds a raw JWT. Real tokens are well under 2 KiB; the cap
// makes a megabyte of dots (SECURITY.md K6) cost one length comparison.
const MaxTokenBytes = 8 << 10

// maxLeeway is the largest clock-skew allowance accepted (jwt.leeway).
const maxLeeway = 60 * time.Second

// maxKIDBytes bounds the kid header; longer ones name no key anyway.
const maxKIDBytes = 256

// maxSubjectBytes bounds sub, which becomes a username and a channel owner.
const maxSubjectBytes = 256

// Algorithms a key may carry. Each key has exactly one.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// minHMACSecret is the shortest HS256 secret accepted: 256 bits, the
// output size of SHA-256 (RFC 7518 §3.2).
const minHMACSecret = 32

// minRSABits and maxRSABits bound RSA moduli: below 2048 is breakable,
// above 8192 only costs us CPU per verification.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// Claims is what a verified token says about its bearer.
type Claims struct {
	Subject  string    // sub: the username; owns user:<Subject>
	Roles    []string  // roles claim, optional
	Channels []string  // channels claim, optional
	Expires  time.Time // exp, without leeway
}

// VerifierOptions tunes a Verifier. The zero value is ready to use.
type VerifierOptions struct {
	// Clock tells the time for exp, nbf, iat and the JWKS refresh limit.
	// Zero means the wall clock.
	Clock clock.Clock
	// HTTPClient fetches the JWKS. Zero means a client with a 5 s timeout
	// that follows at most 3 redirects, never to plain http.
	HTTPClient *http.Client
}

// key is one verification key with its one algorithm.
type key struct {
	alg string
	pub any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// Verifier checks bearer JWTs against configured keys and an optional JWKS.
type Verifier struct {
	audience string
	issuer   string
	leeway   time.Duration
	clock    clock.Clock
	static   map[string]key         // from jwt.keys, immutable
	parsers  map[string]*jwt.Parser // one per algorithm, each allowing only that one
	jwks     *jwksCache             // nil without jwt.jwks_url
}

// NewVerifier loads every key in cfg and returns a Verifier. It refuses a
// configuration without audience or issuer, with a leeway outside 0..60 s,
// without any key source, or with a key file that does not match its alg.
func NewVerifier(cfg config.JWT, opts VerifierOptions) (*Verifier, error) {
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("jwt.audience is empty: a token minted for another service would be accepted")
	}
	if strings.TrimSpace(cfg.Issuer) == "" {
		return nil, errors.New("jwt.issuer is empty: any issuer sharing the key would be accepted")
	}
	leeway := cfg.Leeway.D()
	if leeway < 0 || leeway > maxLeeway {
		return nil, fmt.Errorf("jwt.leeway %s is out of range (allowed: 0s to 60s)", leeway)
	}
	if len(cfg.Keys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no jwt.keys and no jwt.jwks_url: nothing to verify tokens with")
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	v := &Verifier{
		audience: cfg.Audience,
		issuer:   cfg.Issuer,
		leeway:   leeway,
		clock:    clk,
		static:   make(map[string]key, len(cfg.Keys)),
		parsers:  make(map[string]*jwt.Parser, 4),
	}
	for i, kc := range cfg.Keys {
		if _, dup := v.static[kc.KID]; dup {
			return nil, fmt.Errorf("jwt.keys[%d].kid %q is used by another key", i, kc.KID)
		}
		k, err := loadKey(kc)
		if err != nil {
			return nil, fmt.Errorf("jwt.keys[%d] (kid %q): %w", i, kc.KID, err)
		}
		v.static[kc.KID] = k
	}
	for _, alg := range []string{AlgHS256, AlgRS256, AlgES256, AlgEdDSA} {
		v.parsers[alg] = jwt.NewParser(
			jwt.WithValidMethods([]string{alg}),
			jwt.WithTimeFunc(clk.Now),
			jwt.WithLeeway(leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithAudience(cfg.Audience),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithStrictDecoding(),
		)
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("jwt.jwks_url %q is not a URL (allowed: https://...)", cfg.JWKSURL)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
			return nil, fmt.Errorf("jwt.jwks_url %q is not https; keys fetched over it can be forged in transit", cfg.JWKSURL)
		}
		hc := opts.HTTPClient
		if hc == nil {
			hc = defaultHTTPClient()
		}
		v.jwks = newJWKSCache(cfg.JWKSURL, hc, clk)
	}
	return v, nil
}

// Leeway is the clock-skew allowance the Verifier applies. A live
// connection authenticated by a token should end at Claims.Expires + Leeway,
// the last instant Verify would still have accepted the token.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// jwtClaims is the JSON shape of a token's payload.
type jwtClaims struct {
	jwt.RegisteredClaims
	Roles    []string `json:"roles,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

// header is the part of the JOSE header we read before choosing a key.
// jku, x5u, jwk and x5c are deliberately never read: a key or key URL
// chosen by the token is chosen by the attacker.
type header struct {
	Alg string
	KID *string // nil when the header has no kid
}

// Verify checks raw and returns its claims. Every error means the bearer is
// not authenticated; it wraps one of the package's sentinel errors and
// never contains the token. ctx bounds a JWKS fetch, if one is needed.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	// Cheap shape checks first: nothing below allocates in proportion to an
	// oversized or dotted input.
	if len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxTokenBytes)
	}
	if strings.Count(raw, ".") != 2 {
		return Claims{}, fmt.Errorf("%w: want 3 dot-separated segments", ErrMalformed)
	}
	h, err := parseHeader(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return Claims{}, err
	}
	k, kid, err := v.keyFor(ctx, h)
	if err != nil {
		return Claims{}, err
	}
	if h.Alg != k.alg {
		return Claims{}, fmt.Errorf("%w: alg %q is not allowed for key %q (allowed: %s)", ErrBadSignature, h.Alg, kid, k.alg)
	}
	var c jwtClaims
	_, err = v.parsers[k.alg].ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		// The parser already enforced WithValidMethods([k.alg]); checking
		// again costs nothing and survives a refactor of the parser set.
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("alg %q is not allowed for key %q", t.Method.Alg(), kid)
		}
		return k.pub, nil
	})
	if err != nil {
		return Claims{}, classify(err)
	}
	if err := checkSubject(c.Subject); err != nil {
		return Claims{}, err
	}
	return Claims{
		Subject:  c.Subject,
		Roles:    c.Roles,
		Channels: c.Channels,
		Expires:  c.ExpiresAt.Time, // non-nil: WithExpirationRequired
	}, nil
}

// parseHeader decodes the first segment of a token. Member names are
// matched exactly (encoding/json's struct decoding would also take "KID" or
// "Alg"), so we read exactly what jwt/v5 reads.
func parseHeader(seg string) (header, error) {
	var h header
	if seg == "" || len(seg) > base64.RawURLEncoding.EncodedLen(2048) {
		return h, fmt.Errorf("%w: header segment empty or too long", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return h, fmt.Errorf("%w: header is not base64url: %w", ErrMalformed, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(m["alg"], &h.Alg); err != nil || h.Alg == "" {
		return h, fmt.Errorf("%w: header has no alg string", ErrMalformed)
	}
	if rawKID, ok := m["kid"]; ok {
		var kid string
		if err := json.Unmarshal(rawKID, &kid); err != nil {
			return h, fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
		if len(kid) > maxKIDBytes {
			return h, fmt.Errorf("%w: kid longer than %d bytes", ErrMalformed, maxKIDBytes)
		}
		h.KID = &kid
	}
	if _, ok := m["crit"]; ok {
		// RFC 7515 §4.1.11: a recipient that does not understand a
		// critical extension must refuse the token. We understand none.
		return h, fmt.Errorf("%w: crit header names extensions we do not implement", ErrMalformed)
	}
	return h, nil
}

// keyFor picks the key by kid: configured keys first, then the JWKS. A
// token without kid is accepted only when exactly one key is configured and
// there is no JWKS (whose key set may grow at any time).
func (v *Verifier) keyFor(ctx context.Context, h header) (key, string, error) {
	if h.KID == nil {
		if len(v.static) == 1 && v.jwks == nil {
			for kid, k := range v.static {
				return k, kid, nil
			}
		}
		return key{}, "", fmt.Errorf("%w: token has no kid and more than one key could have signed it", ErrUnknownKey)
	}
	kid := *h.KID
	// kid is only ever a map key: never a file name, URL or query.
	if k, ok := v.static[kid]; ok {
		return k, kid, nil
	}
	if v.jwks != nil {
		k, err := v.jwks.lookup(ctx, kid)
		if err != nil {
			return key{}, kid, err
		}
		return k, kid, nil
	}
	return key{}, kid, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// classify maps jwt/v5's errors onto ours, keeping jwt's detail wrapped.
func classify(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		sentinel = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		sentinel = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		sentinel = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		sentinel = ErrNotYetValid
	default:
		sentinel = ErrInvalid
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// checkSubject refuses an empty sub and one that would be unsafe as a
// username: it names the user:<sub> channel and appears in logs.
func checkSubject(sub string) error {
	switch {
	case sub == "":
		return fmt.Errorf("%w: sub is missing or empty", ErrInvalid)
	case len(sub) > maxSubjectBytes:
		return fmt.Errorf("%w: sub longer than %d bytes", ErrInvalid, maxSubjectBytes)
	case !utf8.ValidString(sub):
		return fmt.Errorf("%w: sub is not valid UTF-8", ErrInvalid)
	case strings.IndexFunc(sub, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: sub contains control characters", ErrInvalid)
	}
	return nil
}

// loadKey reads one configured key and checks that it matches its alg.
func loadKey(kc config.JWTKey) (key, error) {
	switch kc.Alg {
	case AlgHS256:
		if kc.SecretFile == "" || kc.PublicKeyFile != "" {
			return key{}, errors.New("alg HS256 needs secret_file and no public_key_file")
		}
		secret, err := readSecret(kc.SecretFile)
		if err != nil {
			return key{}, err
		}
		return key{alg: AlgHS256, pub: secret}, nil
	case AlgRS256, AlgES256, AlgEdDSA:
		if kc.PublicKeyFile == "" || kc.SecretFile != "" {
			return key{}, fmt.Errorf("alg %s needs public_key_file and no secret_file", kc.Alg)
		}
		pub, err := readPublicKey(kc.PublicKeyFile)
		if err != nil {
			return key{}, err
		}
		if err := checkKeyAlg(kc.Alg, pub); err != nil {
			return key{}, fmt.Errorf("public_key_file %q: %w", kc.PublicKeyFile, err)
		}
		return key{alg: kc.Alg, pub: pub}, nil
	default:
		return key{}, fmt.Errorf("alg %q is not allowed (allowed: HS256, RS256, ES256, EdDSA)", kc.Alg)
	}
}

// readSecret reads raw HMAC secret bytes, ignoring one trailing newline.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a key file named in the operator's jwt.keys
	if err != nil {
		return nil, fmt.Errorf("secret_file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < minHMACSecret {
		return nil, fmt.Errorf("secret_file %q holds %d bytes; HS256 needs at least %d random bytes", path, len(b), minHMACSecret)
	}
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		// A PEM file as an HMAC secret is the alg-confusion mistake made
		// by hand: a public key is not a secret.
		return nil, fmt.Errorf("secret_file %q holds a PEM block; an HS256 secret must be private random bytes", path)
	}
	return b, nil
}

// readPublicKey parses a PEM public key (PKIX, PKCS#1 RSA, or a certificate).
func readPublicKey(path string) (any, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a key file named in the operator's jwt.keys
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("public_key_file %q: no PEM block found", path)
	}
	switch {
	case strings.Contains(block.Type, "PRIVATE"):
		return nil, fmt.Errorf("public_key_file %q holds a private key; give the public key only", path)
	case block.Type == "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_file %q: %w", path, err)
		}
		return pub, nil
	case block.Type == "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_file %q: %w", path, err)
		}
		return pub, nil
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public_key_file %q: %w", path, err)
		}
		return cert.PublicKey, nil
	default:
		return nil, fmt.Errorf("public_key_file %q: PEM type %q (allowed: PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE)", path, block.Type)
	}
}

// checkKeyAlg refuses a public key that does not fit alg, or is too weak.
func checkKeyAlg(alg string, pub any) error {
	switch alg {
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg RS256 needs an RSA key, got %T", pub)
		}
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("RSA key has %d bits (allowed: %d to %d)", bits, minRSABits, maxRSABits)
		}
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg ES256 needs an ECDSA key, got %T", pub)
		}
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("alg ES256 needs curve P-256, got %s", k.Curve.Params().Name)
		}
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("alg EdDSA needs an Ed25519 key, got %T", pub)
		}
	default:
		return fmt.Errorf("alg %q is not allowed for a public key", alg)
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
