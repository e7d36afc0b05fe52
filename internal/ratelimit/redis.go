package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster makes the limits of this package hold for a cluster as a whole:
// every node keeps its buckets, slots, bans and throttles in one Redis, and
// each decision is one Lua script, atomic in Redis, so three nodes never
// give three times the allowance. Throttles and bans outlive a node's
// restart (for as long as Redis keeps its data).
//
// # Time
//
// Decisions take the caller's now, as the local types do, so the nodes'
// clocks must agree to well under the shortest window (NTP does); times are
// kept in microseconds, exact in Lua's numbers.
//
// # Redis unreachable
//
// A limit that cannot ask Redis decides locally instead, with the same
// settings (so each node gives its own allowance until Redis is back): a
// flood control that shut the service when Redis fails would turn a Redis
// outage into a complete one. Connection slots held meanwhile are written
// back when Redis answers again.
//
// Once a call has failed, decisions are local at once, without asking
// Redis, until the heartbeat, which asks every second while Redis is
// unreachable, finds it answering again: otherwise every message,
// handshake and login would first wait out Timeout on a Redis that is
// gone, and the outage would slow every socket to a crawl.
//
// # Connection slots and dead nodes
//
// A connection cap counts slots per node: a hash per key with one field per
// node, and a sorted set of live nodes whose scores are heartbeat deadlines.
// A node refreshes its deadline every Heartbeat; an Acquire counts only the
// fields of live nodes and deletes those of dead ones, so the slots of a node
// that died free within NodeTTL without anyone releasing them. Close removes
// the node at once.
type Cluster struct {
	client *redis.Client
	prefix string
	node   string
	opt    ClusterOptions
	// The Redis context: Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	counters []*RedisCounter
	mu       sync.Mutex

	down atomic.Bool // the last Redis call failed (for the log)
}

// ClusterOptions adjusts NewCluster. The zero value is ready to use.
type ClusterOptions struct {
	// Heartbeat is how often this node says it is alive. Zero means 5 s.
	Heartbeat time.Duration
	// NodeTTL is how long after its last heartbeat a node's connection
	// slots count. Zero means 3 heartbeats.
	NodeTTL time.Duration
	// Timeout bounds each Redis call, after which the decision is local.
	// Zero means 500 ms.
	Timeout time.Duration
}

// NewCluster returns the cluster-wide limits kept in client under prefix
// (every key starts with it). It starts the node's heartbeat; Close stops it.
func NewCluster(client *redis.Client, prefix string, opt ClusterOptions) *Cluster {
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 5 * time.Second
	}
	if opt.NodeTTL <= 0 {
		opt.NodeTTL = 3 * opt.Heartbeat
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 500 * time.Millisecond
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id) // crypto/rand never fails on supported platforms
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{client: client, prefix: prefix, node: hex.EncodeToString(id), opt: opt,
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	c.beat()
	go c.heartbeat()
	return c
}

// Close stops the heartbeat and gives up this node's connection slots.
func (c *Cluster) Close() error {
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
	defer cancel()
	return c.client.ZRem(ctx, c.prefix+"nodes", c.node).Err()
}

func (c *Cluster) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(c.opt.Heartbeat)
	defer t.Stop()
	// While Redis is unreachable, nothing else asks it (see unreachable):
	// probe often, so that cluster-wide decisions resume soon after it is back.
	probe := time.NewTicker(min(c.opt.Heartbeat, time.Second))
	defer probe.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.beat()
		case <-probe.C:
			if c.down.Load() {
				c.beat()
			}
		}
	}
}

// beat refreshes this node's deadline and writes back slots counted while
// Redis was unreachable.
func (c *Cluster) beat() {
	ctx, cancel := context.WithTimeout(c.ctx, c.opt.Timeout)
	defer cancel()
	deadline := time.Now().Add(c.opt.NodeTTL).UnixMicro()
	added, err := c.client.ZAdd(ctx, c.prefix+"nodes", redis.Z{Score: float64(deadline), Member: c.node}).Result()
	if !c.ok(err) {
		return
	}
	c.mu.Lock()
	counters := append([]*RedisCounter(nil), c.counters...)
	c.mu.Unlock()
	for _, rc := range counters {
		if added == 1 {
			// Redis did not know this node: it lost its data (a restart
			// without persistence) or declared the node dead. Write every
			// slot this node holds again.
			rc.markAllDirty()
		}
		rc.writeBack(ctx)
	}
}

// unreachable reports whether Redis failed the last time it was asked
// and the heartbeat has not found it back: decide locally without asking.
func (c *Cluster) unreachable() bool { return c.down.Load() }

// call returns a context for one Redis call.
func (c *Cluster) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.opt.Timeout)
}

// ok reports whether err is nil, logging once when Redis starts or stops
// answering.
func (c *Cluster) ok(err error) bool {
	if err == nil || err == redis.Nil {
		if c.down.Swap(false) {
			slog.Info("cluster-wide limits: Redis answers again")
		}
		return true
	}
	if !c.down.Swap(true) {
		slog.Warn("cluster-wide limits: Redis unreachable, deciding on this node alone until it answers", "err", err)
	}
	return false
}

// errUnreachable stands for a Redis call not made: see unreachable.
var errUnreachable = errors.New("redis unreachable")

// okErr is ok, answering nil or err.
func (c *Cluster) okErr(err error) error {
	if c.ok(err) {
		return nil
	}
	return err
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// ---- Limiter ----

// RedisLimiter is a token bucket per key shared by every node (GCRA, the
// same arithmetic as Local, in microseconds).
type RedisLimiter struct {
	c        *Cluster
	key      string
	interval int64 // µs to earn one token; 0: never refills
	tau      int64
	burst    int
	local    *Local
}

var _ Limiter = (*RedisLimiter)(nil)

// Limiter returns a cluster-wide Limiter named name (one name per limit),
// allowing rate events per second per key with bursts of burst; see NewLocal.
func (c *Cluster) Limiter(name string, rate float64, burst int) *RedisLimiter {
	l := NewLocal(rate, burst)
	iv := l.interval.Microseconds()
	if l.interval > 0 {
		iv = max(iv, 1)
	}
	return &RedisLimiter{c: c, key: c.prefix + "rate:" + name + ":", interval: iv,
		tau: iv * int64(l.burst), burst: l.burst, local: l}
}

// GCRA: KEYS[1] the bucket; ARGV now, interval, tau, burst (µs). Returns -1
// when allowed, else the µs to wait.
var limiterScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
if interval == 0 then
  local used = redis.call('INCR', KEYS[1])
  if used == 1 then redis.call('PEXPIRE', KEYS[1], 86400000) end
  if used <= tonumber(ARGV[4]) then return -1 end
  return 3600000000
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > tau then return nxt - now - tau end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)
return -1
`)

// Allow takes a token from key's bucket; see Limiter.
func (l *RedisLimiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.c.unreachable() {
		return l.local.Allow(key, now)
	}
	ctx, cancel := l.c.call()
	defer cancel()
	wait, err := limiterScript.Run(ctx, l.c.client, []string{l.key + key},
		micros(now), l.interval, l.tau, l.burst).Int64()
	if !l.c.ok(err) {
		return l.local.Allow(key, now)
	}
	if wait < 0 {
		return true, 0
	}
	return false, time.Duration(wait) * time.Microsecond
}

// ---- Counter ----

// RedisCounter caps concurrent holders per key across the cluster; see
// Cluster for how the slots of a dead node free themselves.
type RedisCounter struct {
	c   *Cluster
	key string

	mu    sync.Mutex
	held  map[string]int      // slots this node holds, per key
	dirty map[string]struct{} // keys whose count in Redis may be wrong
}

var _ Counter = (*RedisCounter)(nil)

// Counter returns the cluster-wide connection caps.
func (c *Cluster) Counter() *RedisCounter {
	rc := &RedisCounter{c: c, key: c.prefix + "conns:", held: map[string]int{}, dirty: map[string]struct{}{}}
	c.mu.Lock()
	c.counters = append(c.counters, rc)
	c.mu.Unlock()
	return rc
}

// KEYS[1] the key's hash (node -> slots), KEYS[2] the live nodes; ARGV
// node, max, now (µs). Counts the slots of live nodes, forgetting the dead.
var acquireScript = redis.NewScript(`
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local deadline = redis.call('ZSCORE', KEYS[2], fields[i])
  if deadline and tonumber(deadline) > tonumber(ARGV[3]) then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
`)

// KEYS[1] the key's hash; ARGV node.
var releaseScript = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`)

// Acquire takes a slot of key; see Counter.
func (rc *RedisCounter) Acquire(key string, limit int) bool {
	if limit <= 0 {
		return false
	}
	var got int
	err := errUnreachable
	if !rc.c.unreachable() {
		ctx, cancel := rc.c.call()
		defer cancel()
		got, err = acquireScript.Run(ctx, rc.c.client, []string{rc.key + key, rc.c.prefix + "nodes"},
			rc.c.node, limit, micros(time.Now())).Int()
		err = rc.c.okErr(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		// This node alone: its own slots against the cap.
		if rc.held[key] >= limit {
			return false
		}
		rc.held[key]++
		rc.dirty[key] = struct{}{}
		return true
	}
	if got != 1 {
		return false
	}
	rc.held[key]++
	return true
}

// Release returns a slot of key; see Counter.
func (rc *RedisCounter) Release(key string) {
	rc.mu.Lock()
	n, ok := rc.held[key]
	if !ok {
		rc.mu.Unlock()
		return
	}
	if n > 1 {
		rc.held[key] = n - 1
	} else {
		delete(rc.held, key)
	}
	_, dirty := rc.dirty[key]
	rc.mu.Unlock()
	if dirty {
		return // the heartbeat writes the count back
	}
	if rc.c.unreachable() {
		rc.mu.Lock()
		rc.dirty[key] = struct{}{}
		rc.mu.Unlock()
		return
	}
	ctx, cancel := rc.c.call()
	defer cancel()
	if err := releaseScript.Run(ctx, rc.c.client, []string{rc.key + key}, rc.c.node).Err(); !rc.c.ok(err) {
		rc.mu.Lock()
		rc.dirty[key] = struct{}{}
		rc.mu.Unlock()
	}
}

func (rc *RedisCounter) markAllDirty() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for key := range rc.held {
		rc.dirty[key] = struct{}{}
	}
}

// writeBack sets this node's field of every key counted while Redis was
// unreachable to what the node holds.
func (rc *RedisCounter) writeBack(ctx context.Context) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for key := range rc.dirty {
		var err error
		if n := rc.held[key]; n > 0 {
			err = rc.c.client.HSet(ctx, rc.key+key, rc.c.node, n).Err()
		} else {
			err = rc.c.client.HDel(ctx, rc.key+key, rc.c.node).Err()
		}
		if !rc.c.ok(err) {
			return
		}
		delete(rc.dirty, key)
	}
}

// Count reports the slots of key held on live nodes (for tests and the admin).
func (rc *RedisCounter) Count(key string) int {
	ctx, cancel := rc.c.call()
	defer cancel()
	fields, err := rc.c.client.HGetAll(ctx, rc.key+key).Result()
	if err != nil {
		return 0
	}
	now := float64(micros(time.Now()))
	total := 0
	for node, v := range fields {
		deadline, err := rc.c.client.ZScore(ctx, rc.c.prefix+"nodes", node).Result()
		if err != nil || deadline <= now {
			continue
		}
		n, err := strconv.Atoi(v)
		if err == nil {
			total += n
		}
	}
	return total
}
