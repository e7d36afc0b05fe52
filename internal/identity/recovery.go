package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

const (
	// RecoveryCodeCount is how many recovery codes a user gets at once.
	RecoveryCodeCount = 10
	// recoveryAlphabet is lowercase base32 without 0, 1, l and o, which are
	// easily misread on paper. 32 symbols: 5 bits each.
	recoveryAlphabet = "23456789abcdefghijkmnpqrstuvwxyz"
	recoveryChars    = 10 // 50 bits
)

// NewRecoveryCodes returns ten one-time recovery codes, each 50 bits from
// crypto/rand formatted as xxxxx-xxxxx, and their hashes (HashRecoveryCode)
// in the same order. Show the codes once; store only the hashes.
func NewRecoveryCodes() (codes []string, hashes []string, err error) {
	seen := make(map[string]bool, RecoveryCodeCount)
	buf := make([]byte, recoveryChars)
	for len(codes) < RecoveryCodeCount {
		if _, err := rand.Read(buf); err != nil {
			return nil, nil, fmt.Errorf("recovery codes: %w", err)
		}
		var b strings.Builder
		b.Grow(recoveryChars + 1)
		for i, x := range buf {
			if i == recoveryChars/2 {
				b.WriteByte('-')
			}
			// 256 is a multiple of 32, so the low 5 bits are uniform.
			b.WriteByte(recoveryAlphabet[x&31])
		}
		c := b.String()
		if seen[c] {
			continue // 2^-50 per pair; cheap to rule out
		}
		seen[c] = true
		codes = append(codes, c)
		hashes = append(hashes, HashRecoveryCode(c))
	}
	return codes, hashes, nil
}

// HashRecoveryCode returns the hex SHA-256 of the normalised code
// (lowercase, dashes and spaces removed), the form a store keeps and looks
// codes up by.
//
// A fast hash is enough here, unlike for passwords: the codes are not chosen
// by people but drawn uniformly from 2^50, so there is no dictionary to try
// first. Finding one code from a stolen database costs about 2^49 SHA-256
// per code, and a recovery code is only the second factor: it is worthless
// without the password, which argon2id protects. A slow hash would instead
// give anyone who knows a password a cheap way to burn server CPU on the
// 2FA form.
func HashRecoveryCode(code string) string {
	norm := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, code)
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}
