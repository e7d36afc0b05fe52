package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wsguard/wsguard/internal/store"
)

// TicketTTL is how long a one-time ticket may wait before the handshake
// that redeems it: long enough for a page to open a socket, too short for a
// leaked ticket (a log line, a referrer) to be worth much.
const TicketTTL = 30 * time.Second

// secretBytes is the entropy of tickets and API keys: 256 bits.
const secretBytes = 32

// secretLen is the length of secretBytes in base64url without padding.
const secretLen = 43

// Errors TicketUsable returns.
var (
	// ErrTicketExpired: the ticket outlived TicketTTL (401).
	ErrTicketExpired = errors.New("ticket expired")
	// ErrTicketOrigin: the handshake's Origin is not the one that asked
	// for the ticket (403).
	ErrTicketOrigin = errors.New("ticket used from another origin")
)

// NewTicket returns a fresh one-time ticket and the hash to store it under.
// Only hash goes to the store; raw goes to the client once.
func NewTicket() (raw, hash string, err error) {
	raw, err = randomSecret()
	if err != nil {
		return "", "", fmt.Errorf("new ticket: %w", err)
	}
	return raw, HashSecret(raw), nil
}

// HashSecret is the storage hash of a ticket or API key: hex SHA-256.
//
// A fast, unsalted hash is the right tool here, unlike for passwords:
// these secrets are 256 random bits minted by us, so there is nothing to
// guess and no dictionary to precompute, and a stolen database cannot be
// reversed whatever the hash speed. Being deterministic, the hash is also
// the lookup key, so a presented secret is found with one indexed query;
// any timing difference in that lookup leaks bits of a SHA-256 output,
// which tell an attacker nothing about a secret they could present. A slow
// hash would only hand attackers a cheap way to burn our CPU per handshake.
func HashSecret(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// TicketWellFormed reports whether raw has the shape NewTicket produces, so
// garbage can be refused before a store lookup.
func TicketWellFormed(raw string) bool {
	return len(raw) == secretLen && isBase64URL(raw)
}

// TicketUsable checks a ticket taken from the store (store.TakeTicket has
// already made it single-use) against the handshake presenting it. origin
// is the handshake's Origin header ("" when absent). A ticket recorded with
// an Origin (asked for by a browser page) is usable only from that exact
// origin; one recorded without (asked for by a bearer client) is usable with
// any Origin or none — the handshake's origin allowlist still applies.
func TicketUsable(t store.Ticket, origin string, now time.Time) error {
	if !now.Before(t.ExpiresAt) {
		return fmt.Errorf("%w: at %s", ErrTicketExpired, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if t.Origin != "" && origin != t.Origin {
		return fmt.Errorf("%w: asked for by %q, presented by %q", ErrTicketOrigin, t.Origin, origin)
	}
	return nil
}

// randomSecret returns secretBytes from crypto/rand as base64url without padding.
func randomSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// isBase64URL reports whether s uses only the base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
