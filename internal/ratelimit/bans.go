package ratelimit

import (
	"sync"
	"time"
)

// Defaults for NewBans arguments of zero or less.
const (
	DefaultBanThreshold = 50
	DefaultBanWindow    = time.Minute
	DefaultBanFor       = 10 * time.Minute
)

// Bans bans an IP for a while after repeated failures (bad Origin, bad
// credential, malformed frames: SECURITY.md M5), so that a scanner or a flood
// from one address stops costing the server checks.
//
// Failures are counted in a fixed window that opens with the first failure.
// The table is bounded (WithMaxKeys, default 100 000): entries neither
// banned nor counting are forgotten as they reach its back, and when full
// the least recently used entry is forgotten, which may lift an old ban
// early. A banned IP that keeps knocking is touched on every Banned call and
// so stays at the front. Note that one IPv6 client controls many addresses;
// bans are a cost to attackers, not a wall.
type Bans struct {
	threshold int
	window    time.Duration
	banFor    time.Duration
	mu        sync.Mutex
	keys      *lru[*banEntry]
}

type banEntry struct {
	failures    int
	windowStart time.Time
	until       time.Time
}

// NewBans bans an IP for banFor once it has failed threshold times within
// window. Zero or less means DefaultBanThreshold (50), DefaultBanWindow
// (1 min) and DefaultBanFor (10 min) respectively.
func NewBans(threshold int, window, banFor time.Duration, opts ...Option) *Bans {
	o := buildOptions(opts)
	if threshold <= 0 {
		threshold = DefaultBanThreshold
	}
	if window <= 0 {
		window = DefaultBanWindow
	}
	if banFor <= 0 {
		banFor = DefaultBanFor
	}
	return &Bans{threshold: threshold, window: window, banFor: banFor, keys: newLRU[*banEntry](o.maxKeys)}
}

// Fail counts one failure for ip and reports whether it started a ban just
// now (true once per ban, for the audit event and the metric). Failures
// while banned are not counted: the ban is not extended by them.
func (b *Bans) Fail(ip string, now time.Time) (bannedNow bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys.sweep(2, func(e *banEntry) bool { return b.idle(e, now) })
	e, ok := b.keys.get(ip, true)
	if !ok {
		e = &banEntry{windowStart: now}
		b.keys.put(ip, e)
	}
	if now.Before(e.until) {
		return false
	}
	if elapsed(e.windowStart, now) >= b.window {
		e.failures, e.windowStart = 0, now
	}
	e.failures++
	if e.failures >= b.threshold {
		e.failures, e.windowStart, e.until = 0, now, now.Add(b.banFor)
		return true
	}
	return false
}

// Banned reports whether ip is banned at now, and for how much longer.
func (b *Bans) Banned(ip string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.keys.get(ip, false)
	if !ok || !now.Before(e.until) {
		return false, 0
	}
	b.keys.touch(ip)
	return true, e.until.Sub(now)
}

// Unban lifts ip's ban and forgets its failures (admin action).
func (b *Bans) Unban(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys.remove(ip)
}

// idle reports whether e carries no information at now.
func (b *Bans) idle(e *banEntry, now time.Time) bool {
	return !now.Before(e.until) && elapsed(e.windowStart, now) >= b.window
}

// Len reports how many IPs are remembered.
func (b *Bans) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keys.len()
}
