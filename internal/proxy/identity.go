package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The identity headers the upstream receives (contract: docs/PROXY.md).
const (
	HeaderUser       = "X-Wsguard-User"
	HeaderRoles      = "X-Wsguard-Roles"
	HeaderCredential = "X-Wsguard-Credential" // #nosec G101 -- a header name, not a credential
	HeaderExpires    = "X-Wsguard-Expires"
	HeaderTimestamp  = "X-Wsguard-Timestamp"
	HeaderSignature  = "X-Wsguard-Signature"
	headerPrefix     = "X-Wsguard-"
)

// MinSecretBytes is the shortest identity secret accepted: 256 bits, the
// HMAC-SHA256 key size.
const MinSecretBytes = 32

// Identity is who the guard verified, as the upstream is told.
type Identity struct {
	User       string
	Roles      []string
	Credential string    // session, ticket, jwt or apikey
	Expires    time.Time // zero when the credential has no expiry
}

// ErrUnrepresentable is returned when a name or role cannot travel in a
// header: control characters (a newline would split the signed string),
// or a comma inside a role.
var ErrUnrepresentable = errors.New("identity contains characters that cannot be sent in a header")

// Sign returns the identity headers for id at now: the five values and
// their signature, hex HMAC-SHA256 keyed with secret over
// user, roles, credential, expires and timestamp joined by "\n".
func Sign(secret []byte, id Identity, now time.Time) (http.Header, error) {
	if !headerSafe(id.User) || !headerSafe(id.Credential) {
		return nil, ErrUnrepresentable
	}
	for _, r := range id.Roles {
		if !headerSafe(r) || strings.Contains(r, ",") {
			return nil, ErrUnrepresentable
		}
	}
	exp := "0"
	if !id.Expires.IsZero() {
		exp = strconv.FormatInt(id.Expires.Unix(), 10)
	}
	vals := [5]string{id.User, strings.Join(id.Roles, ","), id.Credential, exp, strconv.FormatInt(now.Unix(), 10)}
	h := http.Header{}
	h.Set(HeaderUser, vals[0])
	h.Set(HeaderRoles, vals[1])
	h.Set(HeaderCredential, vals[2])
	h.Set(HeaderExpires, vals[3])
	h.Set(HeaderTimestamp, vals[4])
	h.Set(HeaderSignature, signature(secret, vals))
	return h, nil
}

func signature(secret []byte, vals [5]string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strings.Join(vals[:], "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify is what a Go upstream runs on the handshake request: it checks
// the signature in constant time and that the timestamp is within maxAge
// of now (either way, for clock skew), and returns the identity. A replayed
// header set is refused once older than maxAge; 30 s is a sensible value.
func Verify(secret []byte, h http.Header, now time.Time, maxAge time.Duration) (Identity, error) {
	vals := [5]string{h.Get(HeaderUser), h.Get(HeaderRoles), h.Get(HeaderCredential), h.Get(HeaderExpires), h.Get(HeaderTimestamp)}
	got, err := hex.DecodeString(h.Get(HeaderSignature))
	if err != nil || vals[0] == "" {
		return Identity{}, errors.New("identity headers missing or malformed")
	}
	want, _ := hex.DecodeString(signature(secret, vals))
	if !hmac.Equal(got, want) {
		return Identity{}, errors.New("identity signature does not match")
	}
	ts, err := strconv.ParseInt(vals[4], 10, 64)
	if err != nil {
		return Identity{}, errors.New("identity timestamp malformed")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return Identity{}, fmt.Errorf("identity timestamp %s away from now (allowed: %s)", d.Round(time.Second), maxAge)
	}
	id := Identity{User: vals[0], Credential: vals[2]}
	if vals[1] != "" {
		id.Roles = strings.Split(vals[1], ",")
	}
	if exp, err := strconv.ParseInt(vals[3], 10, 64); err == nil && exp > 0 {
		id.Expires = time.Unix(exp, 0)
	}
	return id, nil
}

func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// LoadSecret reads an identity secret file: raw bytes, one trailing
// newline ignored, at least MinSecretBytes.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configured path
	if err != nil {
		return nil, err
	}
	b = trimNewline(b)
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("%s holds %d bytes (allowed: at least %d, e.g. head -c 32 /dev/urandom > %s)", path, len(b), MinSecretBytes, path)
	}
	return b, nil
}

// EnsureSecret loads the secret at path, first creating it (0600, 32
// random bytes) when it does not exist. created says whether it did.
func EnsureSecret(path string) (secret []byte, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		b := make([]byte, MinSecretBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, false, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator's configured path
		if err != nil {
			return nil, false, err
		}
		_, werr := f.Write(b)
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, false, err
		}
		created = true
	}
	b, err := LoadSecret(path)
	return b, created, err
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b
}
