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
	// until Reset (NIST SP 800-63B §5.2.2: no more than 100). Zero means 100.
	LockAfter int
	// ForgetAfter forgets the failures of a key that is not locked once
	// this long has passed since its last failure, so that a table keyed by
	// IP or by attempted user name does not punish forever. Zero means 24 h.
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
	if p.ForgetAfter <= 0 {
		p.ForgetAfter = 24 * time.Hour
	}
	return p
}

// Throttle slows down guessing of a secret (password, TOTP code) per key:
// an account name, an IP. With the default Policy, following NIST SP
// 800-63B: 5 consecutive failures are free; after that each attempt must
// wait 1 s after the last failure, doubling with every further failure up
// to 15 min; 100 consecutive failures lock the key until Reset (an admin
// action). Success clears the failures of a key that is not locked.
//
// The account owner is never locked out by a handful of attacker guesses:
// once the delay has passed the next attempt is allowed, and a correct one
// clears the count. Reaching the lock takes an attacker about a day of
// paced guessing; that is the price NIST accepts for capping guesses.
//
// Check does not reserve the attempt: callers that run Check, verify, then
// Failure let concurrent requests through together. Bound that concurrency
// elsewhere (the password hasher's semaphore does).
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
	failures int
	last     time.Time
	locked   bool
}

// NewThrottle returns a Throttle; WithPolicy adjusts the policy and
// WithMaxKeys the table size.
func NewThrottle(opts ...Option) *Throttle {
	o := buildOptions(opts)
	return &Throttle{p: o.policy.withDefaults(), keys: newLRU[*throttleEntry](o.maxKeys)}
}

// Check reports whether key may make an attempt at now, and if not, how
// long to wait. A locked key answers false with MaxDelay until Reset.
func (t *Throttle) Check(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, found := t.keys.get(key, false)
	if !found {
		return true, 0
	}
	if e.locked {
		return false, t.p.MaxDelay
	}
	if t.forgotten(e, now) || e.failures < t.p.FreeFailures {
		return true, 0
	}
	wait := t.delay(e.failures) - elapsed(e.last, now)
	if wait > 0 {
		return false, wait
	}
	return true, 0
}

// Failure records a failed attempt for key at now. It reports whether this
// failure locked the key (true once, for the audit event).
func (t *Throttle) Failure(key string, now time.Time) (lockedNow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.sweep(2, func(e *throttleEntry) bool { return t.forgotten(e, now) })
	e, found := t.keys.get(key, true)
	if !found {
		e = &throttleEntry{}
		t.keys.put(key, e)
	}
	if e.locked {
		return false
	}
	if t.forgotten(e, now) {
		e.failures = 0
	}
	e.failures++
	if now.After(e.last) {
		e.last = now
	}
	if e.failures >= t.p.LockAfter {
		e.locked = true
		return true
	}
	return false
}

// Success clears key's failures after a correct attempt. A locked key stays
// locked: only Reset lifts a lock, so a guess that lands after the lock
// was decided does not undo it.
func (t *Throttle) Success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.keys.get(key, false); ok && !e.locked {
		t.keys.remove(key)
	}
}

// Reset forgets everything about key, lifting a lock (admin action).
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys.remove(key)
}

// Locked reports whether key is locked until Reset.
func (t *Throttle) Locked(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys.get(key, false)
	return ok && e.locked
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

func (t *Throttle) forgotten(e *throttleEntry, now time.Time) bool {
	return !e.locked && elapsed(e.last, now) >= t.p.ForgetAfter
}
