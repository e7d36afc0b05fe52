package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
)

// nodes returns n Cluster instances on one Redis and one prefix: n nodes
// of one cluster, as far as the limits can tell.
func nodes(t *testing.T, n int, opt ClusterOptions) []*Cluster {
	t.Helper()
	o, prefix, err := broker.ParseRedisURL(brokertest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var cs []*Cluster
	for range n {
		client := redis.NewClient(o)
		c := NewCluster(client, prefix+"rl:", opt)
		t.Cleanup(func() { _ = c.Close(); _ = client.Close() })
		cs = append(cs, c)
	}
	return cs
}

// TestRedisLimiterSharedByNodes: three nodes hitting one key in parallel
// get the burst once between them, not three times; the bucket refills at
// the configured rate for all of them.
func TestRedisLimiterSharedByNodes(t *testing.T) {
	cs := nodes(t, 3, ClusterOptions{})
	ls := []*RedisLimiter{cs[0].Limiter("msg", 1, 10), cs[1].Limiter("msg", 1, 10), cs[2].Limiter("msg", 1, 10)}
	now := time.Now()
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if ok, _ := l.Allow("user:alice", now); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("three nodes allowed %d of 60, want the burst of 10 in all", allowed)
	}
	ok, wait := ls[1].Allow("user:alice", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused for at most 1 s", ok, wait)
	}
	if ok, _ := ls[2].Allow("user:alice", now.Add(time.Second)); !ok {
		t.Fatal("one second later the refilled token was refused")
	}
	if ok, _ := ls[0].Allow("user:bob", now); !ok {
		t.Fatal("another key was refused: buckets leak between keys")
	}
}

// TestRedisCounterCapsClusterAndFreesDeadNode: a cap of 5 holds across
// three nodes; released slots free; the slots of a node that stops its
// heartbeat (died) free after NodeTTL without any release; Close frees at once.
func TestRedisCounterCapsClusterAndFreesDeadNode(t *testing.T) {
	cs := nodes(t, 3, ClusterOptions{Heartbeat: 50 * time.Millisecond, NodeTTL: 300 * time.Millisecond})
	cn := []*RedisCounter{cs[0].Counter(), cs[1].Counter(), cs[2].Counter()}
	got := 0
	for i := range 9 {
		if cn[i%3].Acquire("user:alice", 5) {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("three nodes granted %d slots under a cap of 5", got)
	}
	if cn[0].Count("user:alice") != 5 {
		t.Fatalf("Count = %d, want 5", cn[0].Count("user:alice"))
	}
	cn[1].Release("user:alice")
	if !cn[2].Acquire("user:alice", 5) {
		t.Fatal("a released slot was not free for another node")
	}
	if cn[2].Acquire("user:alice", 5) {
		t.Fatal("cap exceeded after release and acquire")
	}
	if cn[0].Acquire("user:alice", 0) {
		t.Fatal("a cap of zero granted a slot")
	}

	// Node 0 dies: its heartbeat stops, nobody releases its slots.
	held0 := 0
	cn[0].mu.Lock()
	held0 = cn[0].held["user:alice"]
	cn[0].mu.Unlock()
	if held0 == 0 {
		t.Fatal("test setup: node 0 holds no slot")
	}
	cs[0].cancel()
	<-cs[0].done
	deadline := time.Now().Add(5 * time.Second)
	for !cn[1].Acquire("user:alice", 5) {
		if time.Now().After(deadline) {
			t.Fatal("the slots of a dead node never freed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Close gives up a node's slots at once.
	for cn[2].Acquire("user:bob", 2) {
	}
	if err := cs[2].Close(); err != nil {
		t.Fatal(err)
	}
	if !cn[1].Acquire("user:bob", 2) {
		t.Fatal("a closed node's slots were still counted")
	}
}

// TestRedisThrottleSharedAndSurvivesRestart: the free failures are shared
// by three nodes, a lock reached through several nodes holds on all and
// on a node started afterwards, and success clears it for everyone.
func TestRedisThrottleSharedAndSurvivesRestart(t *testing.T) {
	cs := nodes(t, 4, ClusterOptions{})
	pol := WithPolicy(Policy{FreeFailures: 3, LockAfter: 6, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, LockFor: time.Hour})
	ts := []*RedisThrottle{cs[0].Throttle("login", pol), cs[1].Throttle("login", pol), cs[2].Throttle("login", pol)}
	now := time.Now()
	// Parallel reservations on three nodes: only the free ones pass.
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for _, th := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if ok, _ := th.Reserve("user:alice", now); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed != 3 {
		t.Fatalf("%d parallel attempts passed on three nodes, want the 3 free ones", passed)
	}
	lockedNow := false
	for i := range 6 {
		at := now.Add(time.Duration(i) * time.Second)
		th := ts[i%3]
		if i >= 3 {
			if ok, wait := th.Reserve("user:alice", at); !ok {
				t.Fatalf("attempt %d refused (wait %v) after the delay passed", i, wait)
			}
		}
		lockedNow = th.Failure("user:alice", at) || lockedNow
	}
	if !lockedNow {
		t.Fatal("6 failures across nodes did not report the lock")
	}
	later := now.Add(10 * time.Second)
	restarted := cs[3].Throttle("login", pol) // a node started afterwards
	if !restarted.Locked("user:alice", later) {
		t.Fatal("the lock did not hold on a new node")
	}
	if ok, wait := restarted.Reserve("user:alice", later); ok || wait < 50*time.Minute {
		t.Fatalf("locked key reserved: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := ts[0].Check("user:bob", later); !ok {
		t.Fatal("another key refused")
	}
	restarted.Reset("user:alice")
	if ok, _ := ts[1].Reserve("user:alice", later); !ok {
		t.Fatal("after reset the owner was refused")
	}
	ts[1].Success("user:alice")
	if ts[2].Locked("user:alice", later) {
		t.Fatal("still locked after success")
	}
}

// TestRedisBansClusterWide: failures from three nodes add up to one ban,
// enforced on every node and on a node started afterwards; Unban lifts it.
func TestRedisBansClusterWide(t *testing.T) {
	cs := nodes(t, 4, ClusterOptions{})
	bs := []*RedisBans{cs[0].Bans(6, time.Minute, time.Hour), cs[1].Bans(6, time.Minute, time.Hour), cs[2].Bans(6, time.Minute, time.Hour)}
	now := time.Now()
	started := 0
	for i := range 6 {
		if bs[i%3].Fail("192.0.2.7", now) {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("6 failures across nodes started %d bans, want 1", started)
	}
	for _, b := range append(bs, cs[3].Bans(6, time.Minute, time.Hour)) {
		if banned, wait := b.Banned("192.0.2.7", now.Add(time.Minute)); !banned || wait < 58*time.Minute {
			t.Fatalf("banned=%v wait=%v on a node, want banned about an hour", banned, wait)
		}
	}
	if banned, _ := bs[0].Banned("192.0.2.8", now); banned {
		t.Fatal("an innocent IP is banned")
	}
	if banned, _ := bs[0].Banned("192.0.2.7", now.Add(2*time.Hour)); banned {
		t.Fatal("the ban outlived its duration")
	}
	bs[2].Unban("192.0.2.7")
	if banned, _ := bs[1].Banned("192.0.2.7", now); banned {
		t.Fatal("unban on one node did not lift the ban on another")
	}
}

// TestRedisLimitsDecideLocallyWhenRedisDown: with Redis gone the limits
// still hold, on this node alone, and slots taken meanwhile are written
// back when Redis returns, so that releasing them later frees them.
func TestRedisLimitsDecideLocallyWhenRedisDown(t *testing.T) {
	srv := brokertest.StartRedis(t)
	o, prefix, err := broker.ParseRedisURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(o)
	defer client.Close()
	c := NewCluster(client, prefix, ClusterOptions{Heartbeat: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	defer c.Close()
	l := c.Limiter("msg", 1, 2)
	cn := c.Counter()
	srv.Stop()
	now := time.Now()
	a, _ := l.Allow("k", now)
	b, _ := l.Allow("k", now)
	third, _ := l.Allow("k", now)
	if !a || !b || third {
		t.Fatalf("with Redis down: %v %v %v, want the burst of 2 then a refusal", a, b, third)
	}
	if !cn.Acquire("user:alice", 1) || cn.Acquire("user:alice", 1) {
		t.Fatal("with Redis down the cap of 1 did not hold on this node")
	}
	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for cn.Count("user:alice") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slot taken while Redis was down was never written back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cn.Release("user:alice")
	if !cn.Acquire("user:alice", 1) {
		t.Fatal("after release the slot was still taken")
	}
}

// TestRedisCounterRebuiltAfterRedisLosesData: Redis restarted without
// persistence forgets the slots held; the node writes its own back with its
// next heartbeat, so the cap holds again for connections opened before.
func TestRedisCounterRebuiltAfterRedisLosesData(t *testing.T) {
	srv := brokertest.StartRedis(t)
	o, prefix, err := broker.ParseRedisURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(o)
	defer client.Close()
	c := NewCluster(client, prefix, ClusterOptions{Heartbeat: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	defer c.Close()
	cn := c.Counter()
	for i := range 2 {
		if !cn.Acquire("global", 2) {
			t.Fatalf("slot %d under a cap of 2 refused", i+1)
		}
	}
	srv.Stop()
	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for cn.Count("global") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after Redis lost its data the count is %d, want the 2 slots held", cn.Count("global"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cn.Acquire("global", 2) {
		t.Fatal("the cap was exceeded after Redis lost its data")
	}
}

// TestRedisPairChargesBothOrNeither: a user's and an IP's message limits,
// asked in one call on three nodes. The pair holds the user to its burst
// across the nodes; a refusal by one limit takes no token from the other;
// and the pair agrees with each limit asked alone (the same buckets).
func TestRedisPairChargesBothOrNeither(t *testing.T) {
	cs := nodes(t, 3, ClusterOptions{})
	var pairs []Pair
	for _, c := range cs {
		p := NewPair(c.Limiter("user-msgs", 1, 5), c.Limiter("ip-msgs", 1, 8))
		if _, ok := p.(redisPair); !ok {
			t.Fatalf("two limits of one cluster make a %T, want one Redis call per message", p)
		}
		pairs = append(pairs, p)
	}
	now := time.Now()
	allowed := 0
	for i := range 12 {
		if ok, refused := pairs[i%3].Allow("alice", "192.0.2.1", now); ok {
			allowed++
		} else if refused != 1 {
			t.Fatalf("message %d refused by limit %d, want the user's (1)", i, refused)
		}
	}
	if allowed != 5 {
		t.Fatalf("three nodes allowed alice %d messages, want her burst of 5", allowed)
	}
	// alice's refusals took nothing from the IP: 3 of its 8 are left.
	for i := range 3 {
		if ok, refused := pairs[i].Allow("bob", "192.0.2.1", now); !ok {
			t.Fatalf("bob's message %d refused by limit %d: alice's refused messages were charged to the IP", i, refused)
		}
	}
	if ok, refused := pairs[0].Allow("carol", "192.0.2.1", now); ok || refused != 2 {
		t.Fatalf("ninth message from the IP: ok=%v refused=%d, want refused by the IP limit (2)", ok, refused)
	}
	// The same buckets as the limits asked one at a time.
	if ok, _ := cs[1].Limiter("ip-msgs", 1, 8).Allow("192.0.2.1", now); ok {
		t.Fatal("the IP bucket the pair emptied allowed a message asked alone")
	}
	if ok, _ := pairs[2].Allow("alice", "192.0.2.2", now.Add(time.Second)); !ok {
		t.Fatal("one second later alice's refilled token was refused")
	}
}

// Limits that are not one cluster's are asked one after the other.
func TestLocalPair(t *testing.T) {
	p := NewPair(NewLocal(1, 2), NewLocal(1, 3))
	now := time.Now()
	for i := range 2 {
		if ok, _ := p.Allow("alice", "ip", now); !ok {
			t.Fatalf("message %d refused within both bursts", i)
		}
	}
	if ok, refused := p.Allow("alice", "ip", now); ok || refused != 1 {
		t.Fatalf("third of alice's: ok=%v refused=%d, want refused by the user limit (1)", ok, refused)
	}
	if ok, refused := p.Allow("bob", "ip", now); !ok {
		t.Fatalf("bob's first refused by %d", refused)
	}
	if ok, refused := p.Allow("carol", "ip", now); ok || refused != 2 {
		t.Fatalf("fourth from the IP: ok=%v refused=%d, want refused by the IP limit (2)", ok, refused)
	}
}

// TestRedisLimitsDownDecideWithoutWaiting: once Redis has failed a call,
// limits decide locally at once instead of each waiting out the Redis
// timeout (a message flood control that took 500 ms per message would
// stall every socket for the whole outage); when Redis is back the
// heartbeat notices within about a second and decisions are cluster-wide
// again.
func TestRedisLimitsDownDecideWithoutWaiting(t *testing.T) {
	srv := brokertest.StartRedis(t)
	o, prefix, err := broker.ParseRedisURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	var cs []*Cluster
	for range 2 {
		client := redis.NewClient(o)
		c := NewCluster(client, prefix, ClusterOptions{Timeout: 500 * time.Millisecond})
		t.Cleanup(func() { _ = c.Close(); _ = client.Close() })
		cs = append(cs, c)
	}
	a := cs[0].Limiter("msg", 1, 1000)
	srv.Stop()
	a.Allow("k", time.Now()) // notices the outage, at most one timeout
	start := time.Now()
	for range 100 {
		if ok, _ := a.Allow("k", time.Now()); !ok {
			t.Fatal("refused within the burst with Redis down")
		}
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("100 decisions with Redis down took %v: each waited on Redis", d)
	}
	srv.Start()
	// Cluster-wide again: one token of a burst of 1 taken on a is refused on b.
	one, other := cs[0].Limiter("one", 0.001, 1), cs[1].Limiter("one", 0.001, 1)
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		key := "after" + strconv.Itoa(i)
		okA, _ := one.Allow(key, time.Now())
		okB, _ := other.Allow(key, time.Now())
		if okA && !okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("limits still decided per node 5 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
