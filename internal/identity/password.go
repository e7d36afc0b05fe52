package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules: 12 to 256 characters. Characters are counted as
// Unicode code points so a passphrase in any script is measured fairly.
const (
	MinPasswordChars = 12
	MaxPasswordChars = 256
	// maxPasswordBytes is the most bytes MaxPasswordChars runes can take; a
	// longer input is refused without even counting its runes.
	maxPasswordBytes = MaxPasswordChars * utf8.UTFMax
)

// OWASP Password Storage Cheat Sheet minimum for argon2id, and the lengths
// wsguard writes.
const (
	defaultMemory  = 19 * 1024 // KiB
	defaultTime    = 2
	defaultThreads = 1
	saltLen        = 16
	keyLen         = 32

	defaultMaxConcurrent = 4
	defaultWait          = 2 * time.Second
)

var (
	// ErrBusy means no hashing slot freed up within HasherOptions.Wait or
	// before the context ended. Callers answer 429 or 503; it is never a
	// reason to skip the check.
	ErrBusy = errors.New("password hashing is busy, try again")
	// ErrInvalidHash means a stored PHC string is malformed, tampered with or
	// asks for parameters too costly to honour.
	ErrInvalidHash = errors.New("invalid password hash")

	ErrPasswordTooShort = errors.New("password must be at least 12 characters")
	ErrPasswordTooLong  = errors.New("password must be at most 256 characters")
	ErrPasswordNotUTF8  = errors.New("password must be valid UTF-8 text")
)

// ValidatePassword checks a new password against the rules: valid UTF-8, 12
// to 256 characters. The error message states the rule and may be shown to
// the user. A huge input is refused after one length comparison.
func ValidatePassword(pw string) error {
	if len(pw) > maxPasswordBytes {
		return ErrPasswordTooLong
	}
	if !utf8.ValidString(pw) {
		return ErrPasswordNotUTF8
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordChars:
		return ErrPasswordTooShort
	case n > MaxPasswordChars:
		return ErrPasswordTooLong
	}
	return nil
}

// verifiable reports whether pw could ever have been set, so that Verify can
// refuse it without spending argon2id time on it (SECURITY.md I7). The minimum
// length is not checked: older rules may have allowed shorter passwords.
func verifiable(pw string) bool {
	return len(pw) <= maxPasswordBytes && utf8.ValidString(pw) && utf8.RuneCountInString(pw) <= MaxPasswordChars
}

// HasherOptions configures a Hasher. The zero value is safe and uses the
// OWASP argon2id parameters.
type HasherOptions struct {
	// MaxConcurrent bounds simultaneous argon2id computations, and so the
	// memory they use (MaxConcurrent × Memory), against login floods (I7).
	// Zero or negative means 4.
	MaxConcurrent int
	// Wait is how long a caller may wait for a hashing slot before ErrBusy.
	// Zero or negative means 2s.
	Wait time.Duration
	// Memory is argon2id memory in KiB for new hashes. Values below the OWASP
	// 19456 are raised to it; above 1 GiB lowered to it. Zero means 19456 (19 MiB).
	Memory uint32
	// Time is argon2id passes for new hashes, between 2 and 10. Zero means 2.
	Time uint32
	// Threads is argon2id parallelism for new hashes, between 1 and 16.
	// Zero means 1.
	Threads uint8
}

// Hasher hashes and verifies passwords with argon2id behind a semaphore.
// It is safe for concurrent use.
type Hasher struct {
	p    params
	wait time.Duration
	sem  chan struct{}

	// active and peak count computations in flight; peak lets tests prove
	// the bound holds.
	active, peak atomicInt
}

// NewHasher returns a Hasher for opts, with every unset or out-of-range
// field replaced by its documented default or bound.
func NewHasher(opts HasherOptions) *Hasher {
	p := params{memory: opts.Memory, time: opts.Time, threads: opts.Threads, keyLen: keyLen}
	p.memory = clamp(p.memory, defaultMemory, maxMemory)
	p.time = clamp(p.time, defaultTime, maxTime)
	p.threads = uint8(clamp(uint32(p.threads), defaultThreads, maxThreads)) // #nosec G115 -- clamped to maxThreads (16)
	if p.memory < 8*uint32(p.threads) {
		p.memory = 8 * uint32(p.threads)
	}
	n := opts.MaxConcurrent
	if n <= 0 {
		n = defaultMaxConcurrent
	}
	w := opts.Wait
	if w <= 0 {
		w = defaultWait
	}
	return &Hasher{p: p, wait: w, sem: make(chan struct{}, n)}
}

func clamp(v, lo, hi uint32) uint32 {
	return min(max(v, lo), hi)
}

// Hash checks pw against ValidatePassword, then returns its argon2id PHC
// string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (unpadded standard
// base64), with a fresh 16-byte random salt.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	var key []byte
	if err := h.withSlot(ctx, func() {
		key = argon2.IDKey([]byte(pw), salt, h.p.time, h.p.memory, h.p.threads, h.p.keyLen)
	}); err != nil {
		return "", err
	}
	return encodePHC(h.p, salt, key), nil
}

// Verify reports whether pw matches the PHC string phc, comparing in
// constant time. The parameters come from phc, so hashes made with older
// settings keep working, but absurd ones are refused with ErrInvalidHash
// before any work. A password no rule could have produced (over 256
// characters, invalid UTF-8) answers false without hashing.
func (h *Hasher) Verify(ctx context.Context, phc, pw string) (bool, error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	if !verifiable(pw) {
		return false, nil
	}
	var got []byte
	if err := h.withSlot(ctx, func() {
		got = argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, p.keyLen)
	}); err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummySalt and dummyKey stand in for the record of a user who does not
// exist. No password derives dummyKey in practice; the answer is false anyway.
var (
	dummySalt = []byte("wsguard-dummy-sa")
	dummyKey  = make([]byte, keyLen)
)

// VerifyDummy does the work of Verify against a fixed hash with the current
// parameters and always answers false. Call it when the user is unknown or
// disabled so the response costs the same time as a wrong password (I2).
// It returns ErrBusy under the same conditions as Verify.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) (bool, error) {
	if !verifiable(pw) {
		return false, nil
	}
	var got []byte
	if err := h.withSlot(ctx, func() {
		got = argon2.IDKey([]byte(pw), dummySalt, h.p.time, h.p.memory, h.p.threads, h.p.keyLen)
	}); err != nil {
		return false, err
	}
	_ = subtle.ConstantTimeCompare(got, dummyKey)
	return false, nil
}

// NeedsRehash reports whether phc was made with parameters weaker than this
// Hasher's (or cannot be parsed), so that a caller can store a fresh hash
// after a successful login.
func (h *Hasher) NeedsRehash(phc string) bool {
	p, salt, _, err := parsePHC(phc)
	if err != nil {
		return true
	}
	return p.memory < h.p.memory || p.time < h.p.time || p.keyLen < keyLen || len(salt) < saltLen
}

// withSlot runs fn while holding one of the semaphore's slots. It waits at
// most h.wait and never past ctx.
func (h *Hasher) withSlot(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	select {
	case h.sem <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		select {
		case h.sem <- struct{}{}:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		case <-t.C:
			return fmt.Errorf("%w: no slot within %s", ErrBusy, h.wait)
		}
	}
	h.peak.raise(h.active.add(1))
	defer func() {
		h.active.add(-1)
		<-h.sem
	}()
	fn()
	return nil
}

// atomicInt is a counter with a monotonic maximum helper.
type atomicInt struct{ v atomic.Int64 }

func (a *atomicInt) add(d int64) int64 { return a.v.Add(d) }
func (a *atomicInt) load() int64       { return a.v.Load() }

// raise sets a to n if n is larger.
func (a *atomicInt) raise(n int64) {
	for {
		cur := a.v.Load()
		if n <= cur || a.v.CompareAndSwap(cur, n) {
			return
		}
	}
}
