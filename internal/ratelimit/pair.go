package ratelimit

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// Pair applies two limits to one event, each to a key of its own: every
// message a socket sends counts against its user's rate and its IP's.
type Pair interface {
	// Allow takes a token from the first limit's bucket for keyA and from
	// the second's for keyB. refused is 0 when both allowed, otherwise 1
	// or 2: the limit that refused.
	Allow(keyA, keyB string, now time.Time) (ok bool, refused int)
}

// NewPair returns the Pair of a and b. Two limits of one Cluster are asked
// in one Redis call, which takes a token from both buckets or from
// neither: a message costs a cluster node one round trip to Redis, not
// two. Other limiters are asked one after the other, the second only when
// the first allows.
func NewPair(a, b Limiter) Pair {
	ra, okA := a.(*RedisLimiter)
	rb, okB := b.(*RedisLimiter)
	if okA && okB && ra.c == rb.c {
		return redisPair{ra, rb}
	}
	return localPair{a, b}
}

type localPair struct{ a, b Limiter }

func (p localPair) Allow(keyA, keyB string, now time.Time) (bool, int) {
	if ok, _ := p.a.Allow(keyA, now); !ok {
		return false, 1
	}
	if ok, _ := p.b.Allow(keyB, now); !ok {
		return false, 2
	}
	return true, 0
}

type redisPair struct{ a, b *RedisLimiter }

// pairScript is limiterScript's arithmetic for two buckets at once:
// KEYS[1], KEYS[2] the buckets; ARGV now, then interval, tau, burst of
// each (µs). Both are checked before either is charged. Returns 0 when
// both allowed, else the index (1, 2) of the first that refused.
var pairScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local next = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[i * 3 - 1])
  local tau = tonumber(ARGV[i * 3])
  if interval == 0 then
    local used = tonumber(redis.call('GET', KEYS[i]) or 0)
    if used + 1 > tonumber(ARGV[i * 3 + 1]) then return i end
  else
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    local nxt = tat + interval
    if nxt - now > tau then return i end
    next[i] = nxt
  end
end
for i = 1, 2 do
  if next[i] then
    redis.call('SET', KEYS[i], string.format('%.0f', next[i]), 'PX', math.floor((next[i] - now) / 1000) + 1)
  else
    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], 86400000) end
  end
end
return 0
`)

func (p redisPair) Allow(keyA, keyB string, now time.Time) (bool, int) {
	c := p.a.c
	if c.unreachable() {
		return localPair{p.a.local, p.b.local}.Allow(keyA, keyB, now)
	}
	ctx, cancel := c.call()
	defer cancel()
	refused, err := pairScript.Run(ctx, c.client, []string{p.a.key + keyA, p.b.key + keyB}, micros(now),
		p.a.interval, p.a.tau, p.a.burst, p.b.interval, p.b.tau, p.b.burst).Int()
	if !c.ok(err) {
		return localPair{p.a.local, p.b.local}.Allow(keyA, keyB, now)
	}
	return refused == 0, refused
}
