package ratelimit

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// Throttler is a login or TOTP throttle: Throttle on one node,
// RedisThrottle for a cluster. See Throttle for the semantics.
type Throttler interface {
	Reserve(key string, now time.Time) (ok bool, retryAfter time.Duration)
	Check(key string, now time.Time) (ok bool, retryAfter time.Duration)
	Failure(key string, now time.Time) (lockedNow bool)
	Success(key string)
	Release(key string)
	Reset(key string)
	Locked(key string, now time.Time) bool
}

// BanList bans IPs after repeated failures: Bans on one node, RedisBans
// for a cluster. See Bans for the semantics.
type BanList interface {
	Fail(ip string, now time.Time) (bannedNow bool)
	Banned(ip string, now time.Time) (bool, time.Duration)
	Unban(ip string)
}

var (
	_ Throttler = (*Throttle)(nil)
	_ Throttler = (*RedisThrottle)(nil)
	_ BanList   = (*Bans)(nil)
	_ BanList   = (*RedisBans)(nil)
)

// reservationTimeout ends a reservation its node never ended (the node
// died between Reserve and Failure): without it the key would stay
// refused, one attempt being "in flight" for ever.
const reservationTimeout = 30 * time.Second

// RedisThrottle is Throttle kept in Redis: the same policy, counted for
// the whole cluster, and kept across restarts. A key expires once it
// carries nothing (its failures forgotten, its lock over).
type RedisThrottle struct {
	c     *Cluster
	key   string
	p     Policy
	local *Throttle
}

// Throttle returns a cluster-wide throttle named name; WithPolicy adjusts
// its policy (other options are ignored: Redis expires idle keys itself).
func (c *Cluster) Throttle(name string, opts ...Option) *RedisThrottle {
	o := buildOptions(opts)
	return &RedisThrottle{c: c, key: c.prefix + "throttle:" + name + ":", p: o.policy.withDefaults(),
		local: NewThrottle(opts...)}
}

// One script for every operation, so the decision and the count happen
// under Redis's single thread. KEYS[1] the entry; ARGV now, op, then the
// policy (µs and counts). Fields: f failures, p pending, pa when the last
// reservation was made, l last failure, u locked until.
var throttleScript = redis.NewScript(`
local k = KEYS[1]
local now = tonumber(ARGV[1])
local op = ARGV[2]
local free, base, maxd = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lockAfter, lockFor, forget = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local resTimeout = tonumber(ARGV[9])
local s = redis.call('HMGET', k, 'f', 'p', 'pa', 'l', 'u')
local f = tonumber(s[1]) or 0
local p = tonumber(s[2]) or 0
local pa = tonumber(s[3]) or 0
local last = tonumber(s[4]) or 0
local u = tonumber(s[5]) or 0
if p > 0 and now - pa > resTimeout then p = 0 end
local function forgotten()
  return p == 0 and now >= u and (now - last) >= forget
end
local function delay(n)
  local d = base
  local i = free
  while i < n and d < maxd do d = d * 2; i = i + 1 end
  if d > maxd then d = maxd end
  return d
end
local function allowed()
  if now < u then return u - now end
  if forgotten() then f = 0 end
  local n = f + p
  if n < free then return -1 end
  if p > 0 then return delay(n) end
  local el = now - last
  if el < 0 then el = 0 end
  local wait = delay(f) - el
  if wait > 0 then return wait end
  return -1
end
local function save()
  if p == 0 and f == 0 then redis.call('DEL', k); return end
  redis.call('HSET', k, 'f', f, 'p', p, 'pa', string.format('%.0f', pa),
    'l', string.format('%.0f', last), 'u', string.format('%.0f', u))
  local keep = math.max(last + forget, u, pa + resTimeout) - now
  redis.call('PEXPIRE', k, math.floor(math.max(keep, 0) / 1000) + 1000)
end
if op == 'check' then return allowed() end
if op == 'reserve' then
  local w = allowed()
  if w < 0 then p = p + 1; pa = now; save() end
  return w
end
if op == 'failure' then
  if p > 0 then p = p - 1 end
  if forgotten() then f = 0 end
  f = f + 1
  if now > last then last = now end
  local lockedNow = 0
  if f >= lockAfter then
    if now + lockFor > u then u = now + lockFor end
    if f == lockAfter then lockedNow = 1 end
  end
  save()
  return lockedNow
end
if op == 'release' then
  if redis.call('EXISTS', k) == 0 then return 0 end
  if p > 0 then p = p - 1 end
  save()
  return 0
end
if op == 'locked' then
  if now < u then return 1 end
  return 0
end
return redis.error_reply('unknown op')
`)

func (t *RedisThrottle) run(key, op string, now time.Time) (int64, bool) {
	if t.c.unreachable() {
		return 0, false
	}
	ctx, cancel := t.c.call()
	defer cancel()
	p := t.p
	n, err := throttleScript.Run(ctx, t.c.client, []string{t.key + key}, micros(now), op,
		p.FreeFailures, p.BaseDelay.Microseconds(), p.MaxDelay.Microseconds(),
		p.LockAfter, p.LockFor.Microseconds(), p.ForgetAfter.Microseconds(),
		reservationTimeout.Microseconds()).Int64()
	return n, t.c.ok(err)
}

func waitResult(w int64) (bool, time.Duration) {
	if w < 0 {
		return true, 0
	}
	return false, time.Duration(w) * time.Microsecond
}

// Reserve decides and counts an attempt; see Throttle.Reserve.
func (t *RedisThrottle) Reserve(key string, now time.Time) (bool, time.Duration) {
	w, ok := t.run(key, "reserve", now)
	if !ok {
		return t.local.Reserve(key, now)
	}
	return waitResult(w)
}

// Check reports without reserving; see Throttle.Check.
func (t *RedisThrottle) Check(key string, now time.Time) (bool, time.Duration) {
	w, ok := t.run(key, "check", now)
	if !ok {
		return t.local.Check(key, now)
	}
	return waitResult(w)
}

// Failure records a failed attempt; see Throttle.Failure.
func (t *RedisThrottle) Failure(key string, now time.Time) bool {
	n, ok := t.run(key, "failure", now)
	if !ok {
		return t.local.Failure(key, now)
	}
	return n == 1
}

// Release ends a reservation; see Throttle.Release.
func (t *RedisThrottle) Release(key string) {
	if _, ok := t.run(key, "release", time.Now()); !ok {
		t.local.Release(key)
	}
}

// Success clears key; see Throttle.Success.
func (t *RedisThrottle) Success(key string) { t.del(key) }

// Reset forgets key; see Throttle.Reset.
func (t *RedisThrottle) Reset(key string) { t.del(key) }

func (t *RedisThrottle) del(key string) {
	t.local.Reset(key)
	if t.c.unreachable() {
		return
	}
	ctx, cancel := t.c.call()
	defer cancel()
	t.c.ok(t.c.client.Del(ctx, t.key+key).Err())
}

// Locked reports whether key is locked; see Throttle.Locked.
func (t *RedisThrottle) Locked(key string, now time.Time) bool {
	n, ok := t.run(key, "locked", now)
	if !ok {
		return t.local.Locked(key, now)
	}
	return n == 1
}

// RedisBans is Bans kept in Redis: failures from any node count toward one
// ban, which every node enforces and which outlives restarts.
type RedisBans struct {
	c              *Cluster
	key            string
	threshold      int
	window, banFor time.Duration
	local          *Bans
}

// Bans returns the cluster-wide IP bans; arguments as NewBans.
func (c *Cluster) Bans(threshold int, window, banFor time.Duration) *RedisBans {
	l := NewBans(threshold, window, banFor)
	return &RedisBans{c: c, key: c.prefix + "ban:", threshold: l.threshold, window: l.window, banFor: l.banFor, local: l}
}

// KEYS[1] the IP's entry; ARGV now, threshold, window, banFor (µs).
// Fields: f failures, w window start, u banned until.
var banScript = redis.NewScript(`
local k = KEYS[1]
local now = tonumber(ARGV[1])
local threshold, window, banFor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', k, 'f', 'w', 'u')
local f = tonumber(s[1]) or 0
local w = tonumber(s[2]) or now
local u = tonumber(s[3]) or 0
if now < u then return 0 end
if now - w >= window then f = 0; w = now end
f = f + 1
local bannedNow = 0
if f >= threshold then f = 0; w = now; u = now + banFor; bannedNow = 1 end
redis.call('HSET', k, 'f', f, 'w', string.format('%.0f', w), 'u', string.format('%.0f', u))
local keep = math.max(w + window, u) - now
redis.call('PEXPIRE', k, math.floor(math.max(keep, 0) / 1000) + 1000)
return bannedNow
`)

// Fail counts a failure for ip; see Bans.Fail.
func (b *RedisBans) Fail(ip string, now time.Time) bool {
	if b.c.unreachable() {
		return b.local.Fail(ip, now)
	}
	ctx, cancel := b.c.call()
	defer cancel()
	n, err := banScript.Run(ctx, b.c.client, []string{b.key + ip}, micros(now), b.threshold,
		b.window.Microseconds(), b.banFor.Microseconds()).Int64()
	if !b.c.ok(err) {
		return b.local.Fail(ip, now)
	}
	return n == 1
}

// Banned reports whether ip is banned; see Bans.Banned.
func (b *RedisBans) Banned(ip string, now time.Time) (bool, time.Duration) {
	if b.c.unreachable() {
		return b.local.Banned(ip, now)
	}
	ctx, cancel := b.c.call()
	defer cancel()
	v, err := b.c.client.HGet(ctx, b.key+ip, "u").Int64()
	if !b.c.ok(err) {
		return b.local.Banned(ip, now)
	}
	if err == redis.Nil || micros(now) >= v {
		return false, 0
	}
	return true, time.Duration(v-micros(now)) * time.Microsecond
}

// Unban lifts ip's ban; see Bans.Unban.
func (b *RedisBans) Unban(ip string) {
	b.local.Unban(ip)
	if b.c.unreachable() {
		return
	}
	ctx, cancel := b.c.call()
	defer cancel()
	b.c.ok(b.c.client.Del(ctx, b.key+ip).Err())
}
