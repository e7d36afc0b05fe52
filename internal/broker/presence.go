package broker

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisPresence keeps who is present in which channel for the whole
// cluster, so that a presence request on any node lists the users of every
// node.
//
// Each node writes its own set per channel (prefix "pres:CHANNEL:NODE") and
// adds itself to the channel's index of nodes; a sorted set of nodes holds
// each node's heartbeat deadline. Members reads the sets of the nodes whose
// deadline has not passed and deletes those of dead nodes, so the members of
// a node that died disappear NodeTTL after its last heartbeat (30 s by
// default) without anyone cleaning up after it. Close removes the node's
// entries at once.
//
// Joins and leaves are queued and written by one goroutine in the order the
// hub made them, so the hub never waits on Redis. When Redis fails, the node
// writes its whole presence again once Redis answers.
type RedisPresence struct {
	client *redis.Client
	prefix string
	node   string
	opt    PresenceOptions

	ops      chan presenceOp
	overflow atomic.Bool // ops were dropped or Redis forgot this node: rewrite everything

	mu    sync.Mutex
	local map[string]map[string]struct{} // what this node has: channel -> users

	cancel context.CancelFunc
	done   chan struct{}
}

// PresenceOptions adjusts NewRedisPresence. The zero value is ready to use.
type PresenceOptions struct {
	// Heartbeat is how often the node refreshes its deadline. Zero means 10 s.
	Heartbeat time.Duration
	// NodeTTL is how long after its last heartbeat a node's members count.
	// Zero means 30 s.
	NodeTTL time.Duration
}

type presenceOp struct {
	join          bool
	channel, user string
}

// presenceQueue bounds the joins and leaves waiting to be written.
const presenceQueue = 1 << 16

// NewRedisPresence keeps presence in r's Redis, under r's prefix.
func NewRedisPresence(r *Redis, opt PresenceOptions) *RedisPresence {
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 10 * time.Second
	}
	if opt.NodeTTL <= 0 {
		opt.NodeTTL = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &RedisPresence{client: r.client, prefix: r.prefix + "pres:", node: r.node, opt: opt,
		ops: make(chan presenceOp, presenceQueue), local: map[string]map[string]struct{}{},
		cancel: cancel, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

func (p *RedisPresence) nodesKey() string              { return p.prefix + "nodes" }
func (p *RedisPresence) indexKey(ch string) string     { return p.prefix + "idx:" + ch }
func (p *RedisPresence) setKey(ch, node string) string { return p.prefix + "set:" + ch + ":" + node }

// Join notes that user is present in channel on this node. It never blocks.
func (p *RedisPresence) Join(channel, user string) { p.enqueue(presenceOp{true, channel, user}) }

// Leave notes that user left channel on this node. It never blocks.
func (p *RedisPresence) Leave(channel, user string) { p.enqueue(presenceOp{false, channel, user}) }

func (p *RedisPresence) enqueue(op presenceOp) {
	select {
	case p.ops <- op:
	default:
		// Still applied to the local view; the writer rewrites it all.
		p.apply(op)
		if !p.overflow.Swap(true) {
			slog.Warn("presence: too many joins and leaves queued; rewriting this node's presence")
		}
	}
}

// apply updates the local view; it reports whether it changed.
func (p *RedisPresence) apply(op presenceOp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.local[op.channel]
	if op.join {
		if users == nil {
			users = map[string]struct{}{}
			p.local[op.channel] = users
		}
		users[op.user] = struct{}{}
		return
	}
	delete(users, op.user)
	if len(users) == 0 {
		delete(p.local, op.channel)
	}
}

func (p *RedisPresence) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.opt.Heartbeat)
	defer t.Stop()
	dirty := !p.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-p.ops:
			p.apply(op)
			if !dirty && !p.overflow.Load() {
				dirty = !p.write(ctx, op)
			}
		case <-t.C:
			ok := p.beat(ctx)
			if ok && (dirty || p.overflow.Load()) {
				p.overflow.Store(false)
				dirty = !p.rewrite(ctx)
			} else if !ok {
				dirty = true
			}
		}
	}
}

func (p *RedisPresence) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Second)
}

// beat refreshes this node's deadline. A node Redis did not know (it lost
// its data, or a long outage made the node look dead and its members were
// forgotten) is marked for a rewrite.
func (p *RedisPresence) beat(ctx context.Context) bool {
	ctx, cancel := p.call(ctx)
	defer cancel()
	deadline := time.Now().Add(p.opt.NodeTTL).UnixMicro()
	added, err := p.client.ZAdd(ctx, p.nodesKey(), redis.Z{Score: float64(deadline), Member: p.node}).Result()
	if err != nil {
		return false
	}
	if added == 1 {
		p.overflow.Store(true)
	}
	return true
}

func (p *RedisPresence) write(ctx context.Context, op presenceOp) bool {
	ctx, cancel := p.call(ctx)
	defer cancel()
	_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		if op.join {
			pipe.SAdd(ctx, p.indexKey(op.channel), p.node)
			pipe.SAdd(ctx, p.setKey(op.channel, p.node), op.user)
		} else {
			pipe.SRem(ctx, p.setKey(op.channel, p.node), op.user)
		}
		return nil
	})
	return err == nil
}

// rewrite replaces what Redis holds for this node by the local view.
func (p *RedisPresence) rewrite(ctx context.Context) bool {
	p.mu.Lock()
	view := make(map[string][]any, len(p.local))
	for ch, users := range p.local {
		for u := range users {
			view[ch] = append(view[ch], u)
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Channels this node appears in but no longer has are found by the
	// scan of indexes a rewrite cannot afford; their sets are emptied
	// when read (Members) only if the node is dead, so clear them here
	// from the key pattern of this node.
	var stale []string
	iter := p.client.Scan(ctx, 0, p.prefix+"set:*:"+p.node, 1000).Iterator()
	for iter.Next(ctx) {
		stale = append(stale, iter.Val())
	}
	if iter.Err() != nil {
		return false
	}
	_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range stale {
			pipe.Del(ctx, k)
		}
		for ch, users := range view {
			pipe.SAdd(ctx, p.indexKey(ch), p.node)
			pipe.SAdd(ctx, p.setKey(ch, p.node), users...)
		}
		return nil
	})
	return err == nil
}

// Members lists the users present in channel on the other live nodes,
// sorted (the hub knows its own members better than Redis: it writes them
// a moment after they change).
func (p *RedisPresence) Members(ctx context.Context, channel string) ([]string, error) {
	nodes, err := p.client.SMembers(ctx, p.indexKey(channel)).Result()
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return []string{}, nil
	}
	deadlines, err := p.client.ZMScore(ctx, p.nodesKey(), nodes...).Result()
	if err != nil {
		return nil, err
	}
	now := float64(time.Now().UnixMicro())
	var live []string
	for i, n := range nodes {
		if n == p.node {
			continue
		}
		if deadlines[i] > now {
			live = append(live, p.setKey(channel, n))
			continue
		}
		// Dead (or never seen): forget its members, and the node, so
		// that should it only have been late its next heartbeat finds
		// itself unknown and writes its members again.
		p.client.ZRemRangeByScore(ctx, p.nodesKey(), "-inf", strconv.FormatFloat(now, 'f', 0, 64))
		p.client.SRem(ctx, p.indexKey(channel), n)
		p.client.Del(ctx, p.setKey(channel, n))
	}
	if len(live) == 0 {
		return []string{}, nil
	}
	users, err := p.client.SUnion(ctx, live...).Result()
	if err != nil {
		return nil, err
	}
	sort.Strings(users)
	return users, nil
}

// Close stops the writer and removes this node's presence.
func (p *RedisPresence) Close() error {
	p.cancel()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return p.client.ZRem(ctx, p.nodesKey(), p.node).Err()
}
