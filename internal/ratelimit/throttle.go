package ratelimit

import (
	"sync"
	"time"
)

// Policy shapes a Throttle. Its zero value is the NIST SP 800-63B profile
// described on Throttle.
type Policy struct {
	// FreeFailures is how many consecutive failures cost nothing (typos).
	// Zero means 5.
	FreeFailures int
	// BaseDelay is the wait after the first failure beyond the free ones;
	// it doubles with each further failure. Zero means 1 s.
	BaseDelay time.Duration
	// MaxDelay caps the doubling. Zero means 15 min.
	MaxDelay time.Duration
	// LockAfter is the number of consecutive failures that locks the key
	// for LockFor (NIST SP 800-63B §5.2.2: no more than 100). Zero means 100.
	LockAfter int
	// LockFor is how long a lock lasts after each failure at or past
	// LockAfter. A lock that never ended would let anyone lock any account
	// for good by guessing its name; a bounded one still caps an attacker
	// at one guess per LockFor. Zero means MaxDelay.
	LockFor time.Duration
	// ForgetAfter forgets the failures of a key once this long has passed
	// since its last failure (and its lock, if any, has ended), so that a
	// table keyed by IP or by attempted user name does not punish forever.
	// Zero means 24 h.
	ForgetAfter time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.FreeFailures <= 0 {
		p.FreeFailures = 5
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Minute
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.LockAfter <= 0 {
		p.LockAfter = 100
	}
	if p.LockFor <= 0 {
		p.LockFor = p.MaxDelay
	}
	if p.ForgetAfter <= 0 {
		p.ForgetAfter = 24 * time.Hour
	}
	return p
}

// Throttle slows down guessing of a secret (password, TOTP code) per key:
// an account name, an IP. With the default Policy, following NIST SP
// 800-63B: 5 consecutive failures are free; after that each attempt must
// wait 1 s after the last failure, doubling with every further failure up
// to 15 min; 100 consecutive failures lock the key for 15 min, and every
// further failure locks it again for as long. Success clears the key.
//
// The account owner is never locked out for good by attacker guesses:
// once the delay or the lock has passed the next attempt is allowed, and a
// correct one clears the count. Reaching the lock takes an attacker about a
// day of paced guessing; past it, one guess per LockFor.
//
// Attempts are reserved: Reserve decides and counts the attempt under one
// lock, before the secret is verified, and the caller ends it with exactly
// one of Failure, Success or Release. Requests racing each other therefore
// share the same allowance: of 100 parallel guesses on a fresh key only the
// 5 free ones are let through, and past the free ones only one attempt at a
// time is in flight. Check only reports, it reserves nothing.
//
// The table is bounded (WithMaxKeys, default 100 000); when full, the least
// recently failed key is forgotten, which can reset an old key's delay or
// lock. Durable lockouts belong in the user store, not here.
type Throttle struct {
	p    Policy
	mu   sync.Mutex
	keys *lru[*throttleEntry]
}

type throttleEntry struct {
	failures    int
	pending     int // reserved attempts not yet ended
	last        time.Time
	lockedUntil time.Time // zero when never locked
}

// NewThrottle returns a Throttle; WithPolicy adjusts the policy and
// WithMaxKeys the table size.
func NewThrottle(opts ...Option) *Throttle {
	o := buildOptions(opts)
	return &Throttle{p: o.policy.withDefaults(), keys: newLRU[*throttleEntry](o.maxKeys)}
}

// Reserve decides whether key may make an attempt at now and, if so,
// counts it as in flight until the caller ends it with Failure, Success or
// Release. If not, it says how long to wait.
func (t *Throttle) Reserve(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, found := t.keys.get(key, true)
	if !found {
		e = &throttleEntry{}
		t.keys.put(key, e)
	}
	ok, retryAfter = t.allowed(e, now)
	if ok {
		e.pending++
	}
	return ok, retryAfter
}

// Check reports whether key may make an attempt at now, and if not, how
// long to wait, counting attempts in flight. It reserves nothing: a caller
// about to verify a secret uses Reserve.
func (t *Throttle) Check(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, found := t.keys.get(key, false)
	if !found {
		return true, 0
	}
	return t.allowed(e, now)
}

// allowed is the decision of Check and Reserve; t.mu is held.
func (t *Throttle) allowed(e *throttleEntry, now time.Time) (bool, time.Duration) {
	if now.Before(e.lockedUntil) {
		return false, e.lockedUntil.Sub(now)
	}
	if t.forgotten(e, now) {
		e.failures = 0
	}
	n := e.failures + e.pending // every attempt in flight may fail
	if n < t.p.FreeFailures {
		return true, 0
	}
	if e.pending > 0 {
		// Past the free failures one attempt at a time: the one in flight
		// decides the next wait.
		return false, t.delay(n)
	}
	if wait := t.delay(e.failures) - elapsed(e.last, now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// Failure records a failed attempt for key at now, ending its reservation
// if it has one. It reports whether this failure reached LockAfter (true
// once per run of consecutive failures, for the audit event); each failure
// from then on locks the key for LockFor again.
func (t *Throttle) Failure(key string, now time.Time) (lockedNow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.sweep(2, func(e *throttleEntry) bool { return t.forgotten(e, now) })
	e, found := t.keys.get(key, true)
	if !found {
		e = &throttleEntry{}
		t.keys.put(key, e)
	}
	if e.pending > 0 {
		e.pending--
	}
	if t.forgotten(e, now) {
		e.failures = 0
	}
	e.failures++
	if now.After(e.last) {
		e.last = now
	}
	if e.failures >= t.p.LockAfter {
		if until := now.Add(t.p.LockFor); until.After(e.lockedUntil) {
			e.lockedUntil = until
		}
		return e.failures == t.p.LockAfter
	}
	return false
}

// Success clears key after a correct attempt, lock included: an attempt
// can only have been reserved while the key was not locked, and past the
// free failures no other attempt was in flight beside it.
func (t *Throttle) Success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.remove(key)
}

// Release ends a reservation without counting it either way: the attempt
// was not made (the verifier was busy) or is not this key's to judge (an
// IP key when the account's password was right).
func (t *Throttle) Release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys.get(key, false)
	if !ok {
		return
	}
	if e.pending > 0 {
		e.pending--
	}
	if e.pending == 0 && e.failures == 0 {
		t.keys.remove(key)
	}
}

// Reset forgets everything about key, lifting a lock (admin action).
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.remove(key)
}

// Locked reports whether key is locked at now (LockAfter consecutive
// failures, the last less than LockFor ago).
func (t *Throttle) Locked(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys.get(key, false)
	return ok && now.Before(e.lockedUntil)
}

// Len reports how many keys are remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys.len()
}

// delay is the wait after the given number of consecutive failures, at
// least FreeFailures: BaseDelay after the last free one, doubling after each
// further one.
func (t *Throttle) delay(failures int) time.Duration {
	d := t.p.BaseDelay
	for i := t.p.FreeFailures; i < failures && d < t.p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.p.MaxDelay)
}

// forgotten reports whether e's failures are old enough to drop: none in
// flight, the lock over, the last failure ForgetAfter ago.
func (t *Throttle) forgotten(e *throttleEntry, now time.Time) bool {
	return e.pending == 0 && !now.Before(e.lockedUntil) && elapsed(e.last, now) >= t.p.ForgetAfter
}
