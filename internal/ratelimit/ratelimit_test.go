package ratelimit

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestLocalBurstRefusalRefill(t *testing.T) {
	l := NewLocal(10, 3) // 10/s, burst 3
	for i := range 3 {
		if ok, _ := l.Allow("ip:1", t0); !ok {
			t.Fatalf("request %d within burst refused", i+1)
		}
	}
	ok, wait := l.Allow("ip:1", t0)
	if ok {
		t.Fatal("request past the burst allowed")
	}
	if wait != 100*time.Millisecond {
		t.Fatalf("retryAfter = %v, want 100ms", wait)
	}
	// Another key is unaffected.
	if ok, _ := l.Allow("ip:2", t0); !ok {
		t.Fatal("other key refused")
	}
	// Just before the reported time: still refused; at it: allowed.
	if ok, _ := l.Allow("ip:1", t0.Add(wait-time.Millisecond)); ok {
		t.Fatal("allowed before retryAfter passed")
	}
	if ok, _ := l.Allow("ip:1", t0.Add(wait)); !ok {
		t.Fatal("refused after retryAfter passed")
	}
	// A long pause refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("ip:1", later); !ok {
			t.Fatalf("refilled request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow("ip:1", later); ok {
		t.Fatal("bucket refilled beyond burst")
	}
}

func TestLocalRetryAfterAccurate(t *testing.T) {
	tests := []struct {
		rate  float64
		burst int
	}{
		{1, 1}, {3, 2}, {0.5, 5}, {7, 1}, {1000, 10}, {0.01, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate, "/", tt.burst), func(t *testing.T) {
			l := NewLocal(tt.rate, tt.burst)
			now := t0
			for range tt.burst + 20 {
				ok, wait := l.Allow("k", now)
				if ok {
					continue
				}
				if ok, _ := l.Allow("k", now.Add(wait-time.Nanosecond)); ok {
					t.Fatalf("allowed 1ns before retryAfter %v", wait)
				}
				now = now.Add(wait)
				if ok, _ := l.Allow("k", now); !ok {
					t.Fatalf("refused at retryAfter %v", wait)
				}
			}
		})
	}
}

func TestLocalZeroRateNeverRefills(t *testing.T) {
	l := NewLocal(0, 0)
	if ok, _ := l.Allow("k", t0); !ok {
		t.Fatal("first request refused")
	}
	ok, wait := l.Allow("k", t0.Add(24*time.Hour))
	if ok || wait <= 0 {
		t.Fatalf("zero rate refilled: ok=%v wait=%v", ok, wait)
	}
}

func TestLocalClockBackwards(t *testing.T) {
	l := NewLocal(1, 1)
	l.Allow("k", t0)
	if ok, _ := l.Allow("k", t0.Add(-time.Hour)); ok {
		t.Fatal("clock stepped back refilled the bucket")
	}
}

func TestLocalMemoryBounded(t *testing.T) {
	const maxKeys = 1000
	l := NewLocal(1, 1, WithMaxKeys(maxKeys))
	for i := range 1_000_000 {
		// Every key spends its whole burst, so none is idle: only the cap
		// keeps the table small.
		l.Allow(strconv.Itoa(i), t0)
		if i%100_000 == 0 && l.Len() > maxKeys {
			t.Fatalf("len %d > cap %d", l.Len(), maxKeys)
		}
	}
	if n := l.Len(); n > maxKeys {
		t.Fatalf("len %d > cap %d", n, maxKeys)
	}
	// The newest key is remembered: still empty.
	if ok, _ := l.Allow("999999", t0); ok {
		t.Fatal("most recent key forgotten")
	}
}

func TestLocalIdleBucketsEvicted(t *testing.T) {
	l := NewLocal(10, 2)
	for i := range 1000 {
		l.Allow(strconv.Itoa(i), t0)
	}
	// Once every bucket has refilled, further traffic sweeps them out.
	now := t0.Add(time.Second)
	for range 600 {
		l.Allow("active", now)
	}
	if n := l.Len(); n > 1 {
		t.Fatalf("%d idle buckets still held", n)
	}
}

func TestCounter(t *testing.T) {
	c := NewLocalCounter()
	tests := []struct {
		op   string
		key  string
		max  int
		want bool
		held int
	}{
		{"acquire", "user:alice", 2, true, 1},
		{"acquire", "user:alice", 2, true, 2},
		{"acquire", "user:alice", 2, false, 2}, // cap reached: attacker refused
		{"release", "user:alice", 0, true, 1},
		{"acquire", "user:alice", 2, true, 2}, // slot freed: user may connect
		{"acquire", "user:bob", 0, false, 0},  // unset cap denies
		{"release", "user:bob", 0, true, 0},   // release after failed acquire: harmless
		{"release", "user:bob", 0, true, 0},
		{"acquire", "user:bob", 1, true, 1},
		{"release", "user:alice", 0, true, 1},
		{"release", "user:alice", 0, true, 0},
		{"release", "user:alice", 0, true, 0}, // never negative
		{"acquire", "user:alice", 1, true, 1},
	}
	for i, tt := range tests {
		got := true
		if tt.op == "acquire" {
			got = c.Acquire(tt.key, tt.max)
		} else {
			c.Release(tt.key)
		}
		if got != tt.want || c.Count(tt.key) != tt.held {
			t.Fatalf("step %d %s %s: got %v held %d, want %v held %d", i, tt.op, tt.key, got, c.Count(tt.key), tt.want, tt.held)
		}
	}
}

func TestCounterConcurrent(t *testing.T) {
	c := NewLocalCounter()
	const limit = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak, cur := 0, 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if c.Acquire("global", limit) {
					mu.Lock()
					cur++
					peak = max(peak, cur)
					mu.Unlock()
					mu.Lock()
					cur--
					mu.Unlock()
					c.Release("global")
				} else {
					c.Release("nothing-held")
				}
			}
		}()
	}
	wg.Wait()
	if peak > limit {
		t.Fatalf("peak %d > cap %d", peak, limit)
	}
	if c.Len() != 0 {
		t.Fatalf("%d keys left after all released", c.Len())
	}
}

func TestBans(t *testing.T) {
	b := NewBans(3, time.Minute, 10*time.Minute)
	ip := "203.0.113.7"
	if b.Fail(ip, t0) || b.Fail(ip, t0.Add(time.Second)) {
		t.Fatal("banned before the threshold")
	}
	if banned, _ := b.Banned(ip, t0.Add(time.Second)); banned {
		t.Fatal("banned before the threshold")
	}
	if !b.Fail(ip, t0.Add(2*time.Second)) {
		t.Fatal("third failure did not ban")
	}
	if b.Fail(ip, t0.Add(3*time.Second)) {
		t.Fatal("bannedNow reported twice for one ban")
	}
	banned, wait := b.Banned(ip, t0.Add(2*time.Second))
	if !banned || wait != 10*time.Minute {
		t.Fatalf("Banned = %v %v, want true 10m", banned, wait)
	}
	if banned, _ := b.Banned("198.51.100.1", t0); banned {
		t.Fatal("innocent IP banned")
	}
	// The ban expires.
	end := t0.Add(2*time.Second + 10*time.Minute)
	if banned, _ := b.Banned(ip, end); banned {
		t.Fatal("ban outlived its duration")
	}
	if banned, _ := b.Banned(ip, end.Add(-time.Nanosecond)); !banned {
		t.Fatal("ban ended early")
	}
	// Failures spread wider than the window never ban.
	other := "198.51.100.2"
	for i := range 10 {
		if b.Fail(other, t0.Add(time.Duration(i)*40*time.Second)) {
			t.Fatalf("slow failures banned at %d", i)
		}
	}
	b.Unban(ip)
	if banned, _ := b.Banned(ip, t0.Add(3*time.Second)); banned {
		t.Fatal("Unban did not lift the ban")
	}
}

func TestBansMemoryBounded(t *testing.T) {
	b := NewBans(2, time.Minute, time.Hour, WithMaxKeys(500))
	for i := range 1_000_000 {
		b.Fail(strconv.Itoa(i), t0)
	}
	if n := b.Len(); n > 500 {
		t.Fatalf("len %d > cap", n)
	}
	// Idle entries are swept once their window has passed.
	b2 := NewBans(5, time.Minute, time.Hour)
	for i := range 1000 {
		b2.Fail(strconv.Itoa(i), t0)
	}
	for range 600 {
		b2.Fail("x", t0.Add(2*time.Minute))
	}
	if n := b2.Len(); n > 1 {
		t.Fatalf("%d idle entries kept", n)
	}
}

func TestThrottleGrowthAndUnlock(t *testing.T) {
	th := NewThrottle()
	key := "user:alice"
	now := t0
	for i := range 5 {
		if ok, _ := th.Check(key, now); !ok {
			t.Fatalf("free failure %d refused", i+1)
		}
		th.Failure(key, now)
	}
	want := time.Second
	for n := 5; n < 20; n++ {
		ok, wait := th.Check(key, now)
		if ok || wait != want {
			t.Fatalf("after %d failures: ok=%v wait=%v, want false %v", n, ok, wait, want)
		}
		if ok, _ := th.Check(key, now.Add(wait-time.Nanosecond)); ok {
			t.Fatalf("after %d failures: allowed before the delay", n)
		}
		now = now.Add(wait)
		if ok, _ := th.Check(key, now); !ok {
			t.Fatalf("after %d failures: refused once the delay passed", n)
		}
		th.Failure(key, now)
		want = min(want*2, 15*time.Minute)
	}
	if want != 15*time.Minute {
		t.Fatalf("delay did not reach the cap: %v", want)
	}
	// The owner logs in once the window passed; the count clears.
	now = now.Add(15 * time.Minute)
	if ok, _ := th.Check(key, now); !ok {
		t.Fatal("owner refused after the window")
	}
	th.Success(key)
	if ok, _ := th.Check(key, now); !ok || th.Len() != 0 {
		t.Fatal("success did not clear the failures")
	}
	// Other keys were never affected.
	if ok, _ := th.Check("user:bob", t0); !ok {
		t.Fatal("other key throttled")
	}
}

func TestThrottleLockExpires(t *testing.T) {
	th := NewThrottle()
	key := "user:victim"
	now := t0
	locked := 0
	for i := range 100 {
		if _, wait := th.Check(key, now); wait > 0 {
			now = now.Add(wait)
		}
		if ok, _ := th.Reserve(key, now); !ok {
			t.Fatalf("failure %d: refused after waiting", i+1)
		}
		if th.Failure(key, now) {
			locked++
			if i != 99 {
				t.Fatalf("locked after %d failures", i+1)
			}
		}
	}
	if locked != 1 || !th.Locked(key, now) {
		t.Fatalf("not locked after 100 failures (lockedNow reported %d times)", locked)
	}
	// Locked for LockFor (the max delay, 15 min): refused until then.
	if ok, wait := th.Reserve(key, now.Add(15*time.Minute-time.Second)); ok || wait != time.Second {
		t.Fatalf("lock lifted early: ok=%v wait=%v", ok, wait)
	}
	// Then the next attempt is allowed; a failure locks again at once.
	now = now.Add(15 * time.Minute)
	if th.Locked(key, now) {
		t.Fatal("still locked after LockFor")
	}
	if ok, _ := th.Reserve(key, now); !ok {
		t.Fatal("attempt refused after the lock ended")
	}
	if th.Failure(key, now) {
		t.Fatal("lockedNow reported twice for one run of failures")
	}
	if !th.Locked(key, now.Add(time.Minute)) {
		t.Fatal("a failure past LockAfter did not lock again")
	}
	// The owner, once that lock has passed, gets in and clears everything.
	now = now.Add(15 * time.Minute)
	if ok, _ := th.Reserve(key, now); !ok {
		t.Fatal("owner refused after the lock ended")
	}
	th.Success(key)
	if th.Locked(key, now) || th.Len() != 0 {
		t.Fatal("success did not clear the lock")
	}
	// Reset lifts a lock at once (admin action).
	for range 100 {
		th.Failure(key, now)
	}
	th.Reset(key)
	if ok, _ := th.Check(key, now); !ok || th.Locked(key, now) {
		t.Fatal("reset did not lift the lock")
	}
}

// TestThrottleReserveParallel: attempts racing each other share one
// allowance. Before reservations existed, every request passed Check while
// the others were still verifying, and all of them were checked.
func TestThrottleReserveParallel(t *testing.T) {
	th := NewThrottle()
	key := "user:alice"
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	start := make(chan struct{})
	for range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, _ := th.Reserve(key, t0)
			if !ok {
				return
			}
			mu.Lock()
			admitted++
			mu.Unlock()
			time.Sleep(10 * time.Millisecond) // the hash
			th.Failure(key, t0)
		}()
	}
	close(start)
	wg.Wait()
	if admitted != 5 {
		t.Fatalf("%d of 120 parallel attempts admitted, want the 5 free ones", admitted)
	}
	// Past the free ones, one attempt at a time even once the delay passed.
	now := t0.Add(time.Second)
	if ok, _ := th.Reserve(key, now); !ok {
		t.Fatal("attempt refused after the delay")
	}
	if ok, wait := th.Reserve(key, now); ok || wait <= 0 {
		t.Fatalf("second attempt beside one in flight: ok=%v wait=%v", ok, wait)
	}
	// An attempt released (verifier busy) costs nothing.
	th.Release(key)
	if ok, _ := th.Reserve(key, now); !ok {
		t.Fatal("released reservation still counted")
	}
	th.Success(key)
	if th.Len() != 0 {
		t.Fatal("success did not clear the key")
	}
	// Release of a fresh key's only reservation leaves nothing behind.
	th.Reserve("ip:192.0.2.1", now)
	th.Release("ip:192.0.2.1")
	if th.Len() != 0 {
		t.Fatal("released fresh key kept")
	}
}

func TestThrottleForgets(t *testing.T) {
	th := NewThrottle(WithPolicy(Policy{ForgetAfter: time.Hour}))
	for range 10 {
		th.Failure("ip:1", t0)
	}
	if ok, _ := th.Check("ip:1", t0); ok {
		t.Fatal("not throttled")
	}
	if ok, _ := th.Check("ip:1", t0.Add(time.Hour)); !ok {
		t.Fatal("failures not forgotten after ForgetAfter")
	}
	th.Failure("ip:1", t0.Add(time.Hour))
	if ok, _ := th.Check("ip:1", t0.Add(time.Hour)); !ok {
		t.Fatal("old failures counted after being forgotten")
	}
}

func TestThrottleMemoryBounded(t *testing.T) {
	th := NewThrottle(WithMaxKeys(100))
	for i := range 100_000 {
		th.Failure(strconv.Itoa(i), t0)
	}
	if th.Len() > 100 {
		t.Fatalf("len %d > cap", th.Len())
	}
}

func TestConcurrentRace(t *testing.T) {
	l := NewLocal(1000, 50, WithMaxKeys(64))
	b := NewBans(10, time.Minute, time.Minute, WithMaxKeys(64))
	th := NewThrottle(WithMaxKeys(64))
	var wg sync.WaitGroup
	var allowed sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range 2000 {
				k := strconv.Itoa(i % 100)
				if ok, _ := l.Allow("shared", t0); ok {
					n++
				}
				l.Allow(k, t0)
				b.Fail(k, t0)
				b.Banned(k, t0)
				th.Failure(k, t0)
				th.Check(k, t0)
				if ok, _ := th.Reserve(k, t0); ok {
					th.Release(k)
				}
				if i%7 == 0 {
					th.Success(k)
				}
			}
			allowed.Store(g, n)
		}()
	}
	wg.Wait()
	total := 0
	allowed.Range(func(_, v any) bool { total += v.(int); return true })
	if total != 50 {
		t.Fatalf("shared bucket allowed %d at one instant, want the burst of 50", total)
	}
	if l.Len() > 64 || b.Len() > 64 || th.Len() > 64 {
		t.Fatal("cap exceeded under concurrency")
	}
}
