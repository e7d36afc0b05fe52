package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis carries events between the nodes of a cluster through Redis
// Pub/Sub. Each node subscribes to one Redis channel per wsguard channel
// its sockets subscribe to (Listen), plus one control channel for
// revocations and kicks that every node hears.
//
// Redis Pub/Sub is fire and forget: an event published while a node's link
// is down never reaches it. The store holds every committed message, so the
// broker only has to say when something may have been lost: after its link
// comes back it resubscribes and delivers KindResync to its handlers, which
// read what they missed from the store. Events of one channel published on
// two nodes may arrive in either order; receivers order them by offset
// (Distributed reports true).
//
// A node's own events are delivered to its handlers at once, on the
// publisher's goroutine as with Memory, and skipped when Redis echoes them:
// local subscribers keep receiving while Redis is down.
type Redis struct {
	client *redis.Client
	ps     *redis.PubSub
	prefix string
	node   string // random id of this broker, to recognise its own events
	ping   time.Duration

	mu        sync.RWMutex
	next      int
	handlers  map[int]Handler
	listening map[string]int
	waiting   map[string][]chan struct{} // Redis channel -> Listen calls awaiting SUBSCRIBE's confirmation

	// subMu orders SUBSCRIBE and UNSUBSCRIBE with the counts that decide
	// them, so that a quick Unlisten then Listen never ends unsubscribed.
	subMu sync.Mutex

	down      atomic.Bool           // the subscriber link is lost; publishes skip Redis
	downErr   atomic.Pointer[error] // why the link is down
	resyncing bool                  // a resync ping is on its way (receive goroutine only)

	cancel context.CancelFunc
	done   chan struct{}
}

// RedisOptions adjusts NewRedis. The zero value is ready to use.
type RedisOptions struct {
	// PingInterval is how long the subscriber link may stay silent before
	// it is pinged, which is how a dead link is noticed. Zero means 1 s.
	PingInterval time.Duration
}

// DefaultRedisPrefix starts every Redis key and channel name of wsguard
// unless the URL's prefix parameter says otherwise.
const DefaultRedisPrefix = "wsguard:"

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_.:{}-]{1,64}$`)

// ParseRedisURL reads redis://[USER:PASSWORD@]HOST[:PORT][/DB][?prefix=P&...]
// (or rediss:// for TLS). prefix starts every key and Pub/Sub channel name
// (default "wsguard:"): several clusters, or parallel tests, can share one
// Redis with distinct prefixes, which matters because Pub/Sub channel
// names are global across database numbers. Other query parameters are
// go-redis options (dial_timeout, read_timeout, ...); timeouts default to
// 1 s here rather than go-redis's 3 to 5 s, so that a node notices an
// outage quickly.
func ParseRedisURL(raw string) (*redis.Options, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", errors.New("not a URL (want redis://HOST:6379/N or rediss://...)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, "", fmt.Errorf("scheme %q is not redis or rediss", u.Scheme)
	}
	q := u.Query()
	prefix := DefaultRedisPrefix
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		if !prefixRe.MatchString(prefix) {
			return nil, "", fmt.Errorf("prefix %q: want 1 to 64 of A-Z a-z 0-9 _ . : { } -", prefix)
		}
		q.Del("prefix")
	}
	for _, k := range []string{"dial_timeout", "read_timeout", "write_timeout"} {
		if !q.Has(k) {
			q.Set(k, "1s")
		}
	}
	u.RawQuery = q.Encode()
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", err
	}
	return opt, prefix, nil
}

// NewRedis connects to the Redis rawURL names (see ParseRedisURL). It
// does not wait for Redis: a node may start while Redis is down, and is
// not ready (Ping fails) until the link is up.
func NewRedis(rawURL string, o RedisOptions) (*Redis, error) {
	opt, prefix, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	quietGoRedis.Do(func() { redis.SetLogger(goRedisLog{}) })
	r := &Redis{client: redis.NewClient(opt), prefix: prefix, node: hex.EncodeToString(id),
		ping: o.PingInterval, handlers: map[int]Handler{}, listening: map[string]int{},
		waiting: map[string][]chan struct{}{}, done: make(chan struct{})}
	if r.ping <= 0 {
		r.ping = time.Second
	}
	r.down.Store(true)
	r.setDownErr(errors.New("redis: not connected yet"))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	// The control channel is always subscribed, so every (re)connection
	// has at least one confirmation to wait for.
	r.ps = r.client.Subscribe(ctx)
	if err := r.ps.Subscribe(ctx, r.controlName()); err != nil {
		r.setDown(err)
	}
	go r.run(ctx)
	return r, nil
}

// goRedisLog takes go-redis's own log lines to slog at debug level. By
// default go-redis prints them to stderr, and while Redis is down it prints
// one for every failed dial: several a second per node, for the whole
// outage, outside the server's log format. The broker and the limits
// already say, once each, when Redis is lost and when it is back.
type goRedisLog struct{}

func (goRedisLog) Printf(_ context.Context, format string, v ...any) {
	slog.Debug("redis client: " + fmt.Sprintf(format, v...))
}

// quietGoRedis installs goRedisLog once: go-redis's logger is process-wide.
var quietGoRedis sync.Once

// Client is the Redis client, for the cluster-wide limits sharing it.
func (r *Redis) Client() *redis.Client { return r.client }

// Prefix starts every key and channel name of this cluster.
func (r *Redis) Prefix() string { return r.prefix }

// Distributed reports true: events cross nodes, see Redis.
func (r *Redis) Distributed() bool { return true }

func (r *Redis) controlName() string          { return r.prefix + "ctl" }
func (r *Redis) channelName(ch string) string { return r.prefix + "ch:" + ch }

// wire is an event on Redis: the publishing node and the event.
type wire struct {
	Node  string `json:"n"`
	Event Event  `json:"e"`
}

// Publish delivers e to this node's handlers, then to the other nodes
// through Redis. While the link is down it answers the link's error at
// once instead of waiting on Redis: a committed message is in the store,
// and other nodes read it from there when the link is back.
func (r *Redis) Publish(ctx context.Context, e Event) error {
	if e.Kind == KindResync {
		return errors.New("broker: resync is local, never published")
	}
	r.deliver(e)
	if r.down.Load() {
		return r.downError()
	}
	data, err := json.Marshal(wire{Node: r.node, Event: e})
	if err != nil {
		return err
	}
	name := r.controlName()
	if ChannelEvent(e.Kind) {
		name = r.channelName(e.Channel)
	}
	if err := r.client.Publish(ctx, name, data).Err(); err != nil {
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// Subscribe registers h.
func (r *Redis) Subscribe(h Handler) func() {
	r.mu.Lock()
	id := r.next
	r.next++
	r.handlers[id] = h
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.handlers, id)
		r.mu.Unlock()
	}
}

// Listen subscribes to channel's Redis channel on its first listener and
// waits for Redis to confirm it; see Broker.
func (r *Redis) Listen(ctx context.Context, channel string) error {
	name := r.channelName(channel)
	r.subMu.Lock()
	r.mu.Lock()
	r.listening[channel]++
	first := r.listening[channel] == 1
	var wait chan struct{}
	if first || len(r.waiting[name]) > 0 {
		wait = make(chan struct{})
		r.waiting[name] = append(r.waiting[name], wait)
	}
	r.mu.Unlock()
	var err error
	if first {
		// On error go-redis keeps the channel and subscribes again when it
		// reconnects; the resync that follows catches up.
		err = r.ps.Subscribe(ctx, name)
	}
	r.subMu.Unlock()
	if err != nil {
		return fmt.Errorf("redis subscribe: %w", err)
	}
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis subscribe: no confirmation: %w", ctx.Err())
	}
}

// Unlisten unsubscribes from channel's Redis channel after its last listener.
func (r *Redis) Unlisten(channel string) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.mu.Lock()
	n := r.listening[channel]
	if n > 1 {
		r.listening[channel] = n - 1
		r.mu.Unlock()
		return
	}
	delete(r.listening, channel)
	r.mu.Unlock()
	if n == 1 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// On error the channel is already forgotten by go-redis: a
		// reconnection does not subscribe it again.
		_ = r.ps.Unsubscribe(ctx, r.channelName(channel))
	}
}

// Ping reports whether Redis answers and the subscriber link is up.
func (r *Redis) Ping(ctx context.Context) error {
	if r.down.Load() {
		return r.downError()
	}
	return r.client.Ping(ctx).Err()
}

// Close stops receiving and closes the connections.
func (r *Redis) Close() error {
	r.cancel()
	err := r.ps.Close()
	<-r.done
	return errors.Join(err, r.client.Close())
}

// ErrLinkDown is wrapped by the errors of a Redis broker whose link is
// down. The broker says so once in the log when the link is lost and once
// when it is back; callers need not log each refused publish, which during
// an outage would be one line per commit.
var ErrLinkDown = errors.New("redis link down")

func (r *Redis) downError() error {
	return fmt.Errorf("%w: %w", ErrLinkDown, *r.downErr.Load())
}

func (r *Redis) setDownErr(err error) { r.downErr.Store(&err) }

func (r *Redis) setDown(err error) {
	r.setDownErr(err)
	if !r.down.Swap(true) {
		slog.Warn("redis broker link lost; publishes are stored and delivered locally, other nodes catch up when it is back", "err", err)
	}
}

// run receives from Redis until Close.
func (r *Redis) run(ctx context.Context) {
	defer close(r.done)
	backoff := 50 * time.Millisecond
	for {
		msg, err := r.ps.ReceiveTimeout(ctx, r.ping)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !r.down.Load() {
				// Silence: ask for a pong; a dead link fails the write
				// or the next read.
				if err := r.ps.Ping(ctx, "alive"); err != nil {
					r.setDown(err)
				}
				continue
			}
			r.setDown(err)
			r.resyncing = false
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.confirm(m.Channel)
			}
			if r.down.Load() && !r.resyncing {
				// The link is back and go-redis has resent every
				// SUBSCRIBE; Redis answers in order, so the pong comes
				// after the last confirmation.
				if err := r.ps.Ping(ctx, "resync"); err == nil {
					r.resyncing = true
				}
			}
		case *redis.Pong:
			if m.Payload == "resync" && r.down.Load() {
				r.resyncing = false
				r.down.Store(false)
				slog.Info("redis broker link up")
				r.deliver(Event{Kind: KindResync})
			}
		case *redis.Message:
			r.receive(m)
		}
	}
}

// confirm wakes the Listen calls waiting for name's subscription.
func (r *Redis) confirm(name string) {
	r.mu.Lock()
	ws := r.waiting[name]
	delete(r.waiting, name)
	r.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

func (r *Redis) receive(m *redis.Message) {
	var w wire
	if err := json.Unmarshal([]byte(m.Payload), &w); err != nil {
		slog.Warn("redis broker: undecodable event dropped", "channel", m.Channel, "err", err)
		return
	}
	if w.Node == r.node {
		return // delivered locally when published
	}
	e := w.Event
	switch {
	case e.Kind == KindResync:
		return
	case ChannelEvent(e.Kind):
		if m.Channel != r.channelName(e.Channel) {
			return // names a channel other than the one it came on
		}
	case m.Channel != r.controlName():
		return
	}
	r.deliver(e)
}

// deliver calls every handler; a channel's events only while it is listened to.
func (r *Redis) deliver(e Event) {
	r.mu.RLock()
	if ChannelEvent(e.Kind) && r.listening[e.Channel] == 0 {
		r.mu.RUnlock()
		return
	}
	hs := make([]Handler, 0, len(r.handlers))
	for _, h := range r.handlers {
		hs = append(hs, h)
	}
	r.mu.RUnlock()
	// Called without the lock: a handler may take time (a hub filling a
	// gap from the store) without holding up Listen.
	for _, h := range hs {
		h(e)
	}
}
