package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limiter is a token bucket per key (a connection, user or IP). The local
// implementation is Local; a shared Redis implements the same interface to
// enforce a limit across nodes.
type Limiter interface {
	// Allow takes one token from key's bucket. When none is left it answers
	// false and how long until one will be (for Retry-After).
	Allow(key string, now time.Time) (ok bool, retryAfter time.Duration)
}

// noRefillRetry is the retryAfter a bucket that never refills reports.
const noRefillRetry = time.Hour

// Local is an in-process Limiter: one token bucket per key, refilled at
// rate tokens per second up to burst. Buckets are kept as GCRA theoretical
// arrival times in integer nanoseconds, so retryAfter is exact and no float
// error accumulates.
//
// Memory is bounded twice over: a bucket that has refilled completely
// carries no information (a new bucket starts full), so such idle buckets
// are forgotten as they reach the back of the table; and the table holds at
// most WithMaxKeys keys (default 100 000), forgetting the least recently
// used bucket when full. The cost of the cap: an attacker who cycles through
// more distinct keys than the cap within one refill period resets the
// oldest buckets, his own included, to full. Keys are IPs and user names,
// which are expensive to invent in that number; the per-connection limit
// and the connection caps still apply.
type Local struct {
	interval time.Duration // time to earn one token; 0: never refills
	tau      time.Duration // interval * burst: how far ahead tat may run
	burst    int
	mu       sync.Mutex
	keys     *lru[*bucket]
}

// bucket is a GCRA state: tat is when the bucket would be full again.
// With no refill, used counts tokens spent instead.
type bucket struct {
	tat  time.Time
	used int
}

var _ Limiter = (*Local)(nil)

// maxInterval bounds the time to earn one token (rates below about one per
// 11 days behave as one per 11 days), keeping the arithmetic in range.
const maxInterval = 1e15 * time.Nanosecond

// NewLocal returns a token-bucket limiter allowing rate events per second
// per key, with bursts of up to burst. A burst below 1 is taken as 1; a rate
// of zero or less means a key gets its burst once and never refills
// (retryAfter then reports one hour).
func NewLocal(rate float64, burst int, opts ...Option) *Local {
	o := buildOptions(opts)
	burst = max(burst, 1)
	l := &Local{burst: burst, keys: newLRU[*bucket](o.maxKeys)}
	if rate > 0 && !math.IsNaN(rate) {
		iv := math.Ceil(float64(time.Second) / rate)
		l.interval = time.Duration(min(iv, float64(maxInterval)))
		l.interval = max(l.interval, 1)
		if int64(burst) > math.MaxInt64/4/int64(l.interval) {
			l.tau = math.MaxInt64 / 4
		} else {
			l.tau = l.interval * time.Duration(burst)
		}
	}
	return l
}

// Allow takes a token from key's bucket; see Limiter.
func (l *Local) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys.sweep(2, func(b *bucket) bool { return l.interval > 0 && !b.tat.After(now) })
	b, ok := l.keys.get(key, true)
	if !ok {
		b = &bucket{tat: now}
		l.keys.put(key, b)
	}
	if l.interval == 0 {
		if b.used < l.burst {
			b.used++
			return true, 0
		}
		return false, noRefillRetry
	}
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	if ahead := next.Sub(now); ahead > l.tau {
		return false, ahead - l.tau
	}
	b.tat = next
	return true, 0
}

// Len reports how many buckets are held (for tests and metrics).
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys.len()
}
