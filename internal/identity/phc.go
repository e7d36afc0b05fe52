package identity

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on parameters read from a stored hash. A row in the database is
// not trusted with the server's memory: m=4 GiB or t=1000 in a tampered or
// corrupted hash would turn every login for that account into a denial of
// service, so such hashes are refused rather than computed.
const (
	maxMemory     = 1 << 20 // KiB, 1 GiB
	maxTime       = 10
	maxThreads    = 16
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	maxPHCLen     = 256
	argon2Version = 19
)

// params are the argon2id cost parameters of one hash.
type params struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	keyLen  uint32
}

var b64 = base64.RawStdEncoding.Strict()

// encodePHC writes the PHC string format used by the reference argon2
// implementation and by most other libraries, so hashes stay portable.
func encodePHC(p params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC reads an argon2id PHC string strictly: exactly
// $argon2id$v=19$m=M,t=T,p=P$SALT$KEY in that order, canonical decimal
// numbers, unpadded standard base64, and every value within bounds. Any
// deviation is ErrInvalidHash; the string itself is never put in the error.
func parsePHC(s string) (p params, salt, key []byte, err error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalidHash, what) }
	if len(s) > maxPHCLen {
		return p, nil, nil, bad("too long")
	}
	rest, ok := strings.CutPrefix(s, "$argon2id$v=")
	if !ok {
		return p, nil, nil, bad("not an argon2id hash")
	}
	var v, m, t, th uint64
	if v, rest, ok = cutNumber(rest, "$m="); !ok || v != argon2Version {
		return p, nil, nil, bad("unsupported version")
	}
	if m, rest, ok = cutNumber(rest, ",t="); !ok {
		return p, nil, nil, bad("malformed memory parameter")
	}
	if t, rest, ok = cutNumber(rest, ",p="); !ok {
		return p, nil, nil, bad("malformed time parameter")
	}
	if th, rest, ok = cutNumber(rest, "$"); !ok {
		return p, nil, nil, bad("malformed parallelism parameter")
	}
	saltB64, keyB64, ok := strings.Cut(rest, "$")
	if !ok || strings.Contains(keyB64, "$") {
		return p, nil, nil, bad("malformed salt or key")
	}
	switch {
	case th < 1 || th > maxThreads:
		return p, nil, nil, bad(fmt.Sprintf("parallelism %d outside 1..%d", th, maxThreads))
	case t < 1 || t > maxTime:
		return p, nil, nil, bad(fmt.Sprintf("time %d outside 1..%d", t, maxTime))
	case m < 8*th || m > maxMemory:
		return p, nil, nil, bad(fmt.Sprintf("memory %d KiB outside %d..%d", m, 8*th, maxMemory))
	}
	if !isB64(saltB64) || !isB64(keyB64) {
		return p, nil, nil, bad("salt or key has characters outside unpadded base64")
	}
	if salt, err = b64.DecodeString(saltB64); err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, bad("salt is not 8 to 64 bytes of unpadded base64")
	}
	if key, err = b64.DecodeString(keyB64); err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, bad("key is not 16 to 64 bytes of unpadded base64")
	}
	// #nosec G115 -- m, t and th were range-checked above; len(key) is at most maxKeyLen
	return params{memory: uint32(m), time: uint32(t), threads: uint8(th), keyLen: uint32(len(key))}, salt, key, nil
}

// cutNumber reads a canonical decimal number (no sign, no leading zero, at
// most 10 digits) from the front of s, which must continue with sep.
func cutNumber(s, sep string) (n uint64, rest string, ok bool) {
	digits, rest, found := strings.Cut(s, sep)
	if !found || len(digits) == 0 || len(digits) > 10 || (len(digits) > 1 && digits[0] == '0') {
		return 0, "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, "", false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, rest, err == nil
}

// isB64 reports whether s holds only standard base64 symbols. The decoder
// alone is not enough: it silently skips '\r' and '\n', which would let two
// different strings stand for one hash.
func isB64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
