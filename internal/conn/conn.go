package conn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/store"
)

// Limiter is a shared token bucket (per user, per IP); ratelimit implements it.
type Limiter interface {
	Allow(key string, now time.Time) (ok bool, retryAfter time.Duration)
}

// UserIPLimiter charges one message to its user's limit and its IP's at
// once (one call: in a cluster, one Redis round trip). refused says which
// refused: 1 the user's, 2 the IP's.
type UserIPLimiter interface {
	Allow(user, ip string, now time.Time) (ok bool, refused int)
}

// Hooks let the server count what happens; every field may be nil.
type Hooks struct {
	MessageIn   func()
	RateLimited func(limit string)
	Cut         func(reason string) // slow consumer, flood, bad frames
	BadFrame    func(ip string)     // for temporary bans
	Closed      func(code int, reason string)
	// Registered runs once the connection is in the hub, before its first
	// read: a revocation from then on reaches it, so the server re-checks
	// here the credential it checked before the upgrade, closing the gap
	// in which a revocation matched no socket.
	Registered func()
}

// Options configure one connection. Zero values get the documented defaults.
type Options struct {
	Principal authz.Principal
	SessionID string    // public session id; "" for token clients
	IP        string    // client IP (after trusted-proxy resolution)
	Expires   time.Time // credential expiry; zero means none
	// Refresh verifies a new token for the same subject and returns its expiry. Nil: refresh is refused.
	Refresh func(ctx context.Context, token string) (time.Time, error)

	// MaxMessageBytes is the read limit, enforced before buffering (M1). Zero means 64 KiB.
	MaxMessageBytes int64
	// SendQueue bounds queued outbound frames; a full queue cuts the connection (M6). Zero means 256.
	SendQueue int
	// SendQueueBytes bounds the bytes queued for the socket, besides the
	// batch being written: pushes past it cut the connection (4008), and
	// replays and history answers are paced to fit (M12). Zero means 1 MiB.
	SendQueueBytes int
	// Replays caps the replays and history answers one user has in
	// progress at once, across sockets; nil means no cap.
	Replays *ReplayGate
	// MessagesPerSecond and MessageBurst limit requests per connection (M4). Zero means 20 and 40.
	MessagesPerSecond float64
	MessageBurst      int
	// UserIPLimit is the user's and the IP's message limits, shared across
	// connections; nil means none.
	UserIPLimit UserIPLimiter
	// IdleTimeout closes a connection that sends nothing, pongs included (M8). Zero means 60 s.
	IdleTimeout time.Duration
	// PingInterval is how often the server pings. Zero means 25 s.
	PingInterval time.Duration
	// WriteTimeout bounds each write (M6). Zero means 10 s.
	WriteTimeout time.Duration
	// Lifetime ends the connection whatever its credential. Zero means 24 h.
	Lifetime time.Duration
	// ExpiringNotice is how long before Expires the "expiring" push is sent. Zero means 30 s.
	ExpiringNotice time.Duration
	// Compressed marks permessage-deflate as negotiated: the read limit is then applied after decompression.
	Compressed bool
	Hooks      Hooks
	// Backend, when set, is asked after the channel rules allow a
	// subscribe or a publish (internal/hooks); nil asks no one.
	Backend Backend
}

// Backend is the application's own backend in the loop. A refusal wraps
// authz.ErrForbidden (answered forbidden); any other error means no clear
// answer (answered unavailable: the request is refused, and may be retried).
type Backend interface {
	Subscribe(ctx context.Context, user, channel string) error
	// Publish returns the data to store: the backend's amended data, or data.
	Publish(ctx context.Context, user, channel string, data json.RawMessage) (json.RawMessage, error)
}

func (o *Options) defaults() {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.SendQueue <= 0 {
		o.SendQueue = 256
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = 1 << 20
	}
	if o.MessagesPerSecond <= 0 {
		o.MessagesPerSecond = 20
	}
	if o.MessageBurst <= 0 {
		o.MessageBurst = 40
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 24 * time.Hour
	}
	if o.ExpiringNotice <= 0 {
		o.ExpiringNotice = 30 * time.Second
	}
}

// maxBadFrames is how many invalid requests a connection may send before it
// is closed with 1008; maxRateLimited how many refused-for-rate requests
// before 4008.
const (
	maxBadFrames   = 10
	maxRateLimited = 20
	maxReplay      = 1000
)

type subscription struct {
	last       uint64
	recovering bool
	// pending holds live frames that arrive while the subscription is
	// replaying, bounded like the outbox (pendingBytes).
	pending      []*hub.Frame
	pendingBytes int
}

// Conn is one accepted WebSocket connection.
type Conn struct {
	ws    *websocket.Conn
	hub   *hub.Hub
	store store.Log
	rules *authz.Rules
	opt   Options

	out  outbox
	done chan struct{}
	// closed is set just before done is closed: the flusher asks it once
	// per batch, and an atomic in the connection is cheaper there than a
	// receive from a channel allocated apart (a cache miss per delivery).
	closed  atomic.Bool
	closing sync.Once
	limiter *rate.Limiter

	mu sync.Mutex
	// lifeTimer, noticeTimer and expiryTimer end the connection or warn of
	// it; Close stops them. tmu guards them, apart from mu, because Close
	// may be called with mu held.
	tmu                                            sync.Mutex
	lifeTimer, noticeTimer, expiryTimer, pingTimer *time.Timer
	subs                                           map[string]*subscription
	expires                                        time.Time
	expiryGen                                      int // bumps on refresh so old timers do nothing

	badFrames, rateLimited int

	// cut is set once the connection is condemned: the close follows the
	// frames already queued (see cutAfterQueued).
	cut       bool
	cutCode   int
	cutReason string
}

// New wraps an upgraded connection.
func New(ws *websocket.Conn, h *hub.Hub, st store.Log, rules *authz.Rules, opt Options) *Conn {
	opt.defaults()
	return &Conn{
		ws: ws, hub: h, store: st, rules: rules, opt: opt,
		done:    make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(opt.MessagesPerSecond), opt.MessageBurst),
		subs:    map[string]*subscription{},
		expires: opt.Expires,
	}
}

// User is the principal's name.
func (c *Conn) User() string { return c.opt.Principal.Name }

// SessionID is the public session id, "" for token clients.
func (c *Conn) SessionID() string { return c.opt.SessionID }

// Revoke closes the connection; it never blocks.
func (c *Conn) Revoke(code int, reason string) { c.Close(code, reason) }

// Done is closed when the connection is closing.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close sends a close frame with code and reason and tears the connection
// down. It never blocks: the flusher writes the close frame (it is the only
// writer) and closes the socket.
func (c *Conn) Close(code int, reason string) {
	c.closing.Do(func() {
		c.closed.Store(true)
		close(c.done)
		c.tmu.Lock()
		for _, t := range []*time.Timer{c.lifeTimer, c.noticeTimer, c.expiryTimer, c.pingTimer} {
			if t != nil {
				t.Stop()
			}
		}
		c.tmu.Unlock()
		if c.opt.Hooks.Closed != nil {
			c.opt.Hooks.Closed(code, reason)
		}
		c.out.mu.Lock()
		c.out.closeMsg = websocket.FormatCloseMessage(code, truncate(reason, maxCloseReason))
		start := c.startFlusherLocked()
		c.out.mu.Unlock()
		if start {
			go c.flush()
			return
		}
		// A flusher is running, perhaps blocked writing to the very reader
		// being cut: shorten its deadline so the close waits at most
		// closeWait, not WriteTimeout.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeWait))
	})
}

// Serve runs the connection until it ends. It registers with the hub and
// unregisters (and unsubscribes everything) on the way out.
func (c *Conn) Serve(ctx context.Context) {
	c.hub.Register(c)
	defer c.cleanup()
	if c.opt.Hooks.Registered != nil {
		c.opt.Hooks.Registered()
	}
	c.armTimers()
	// No goroutine per connection waits for shutdown, a timer or the
	// queue: an idle connection holds only its reader.
	stop := context.AfterFunc(ctx, func() { c.Close(CloseGoingAway, "server shutting down") })
	defer stop()
	c.readLoop(ctx)
}

func (c *Conn) cleanup() {
	c.Close(CloseNormal, "")
	c.hub.Unregister(c)
	c.mu.Lock()
	chans := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		chans = append(chans, ch)
	}
	c.subs = map[string]*subscription{}
	c.mu.Unlock()
	for _, ch := range chans {
		c.hub.Unsubscribe(ch, c, c.User())
	}
}

// armTimers schedules the absolute lifetime and the credential expiry.
func (c *Conn) armTimers() {
	c.setTimer(&c.lifeTimer, c.opt.Lifetime, func() { c.Close(CloseSessionEnded, "connection lifetime reached") })
	c.setTimer(&c.pingTimer, c.opt.PingInterval, c.ping)
	c.mu.Lock()
	exp, gen := c.expires, c.expiryGen
	c.mu.Unlock()
	c.armExpiry(exp, gen)
}

func (c *Conn) armExpiry(exp time.Time, gen int) {
	if exp.IsZero() {
		return
	}
	until := time.Until(exp)
	// The expiring push goes out ExpiringNotice before exp, or at once when
	// less than that is left (a short-lived token), saying how many seconds remain.
	notice := max(until-c.opt.ExpiringNotice, 0)
	if c.opt.Refresh != nil && until > 0 {
		c.setTimer(&c.noticeTimer, notice, func() {
			if c.currentGen() == gen {
				left := int((time.Until(exp) + time.Second - 1) / time.Second)
				b, _ := json.Marshal(map[string]any{"push": "expiring", "in": max(left, 0)})
				c.send(b)
			}
		})
	}
	c.setTimer(&c.expiryTimer, until, func() {
		if c.currentGen() == gen {
			c.Close(CloseSessionEnded, "credential expired")
		}
	})
}

// setTimer arms *slot to run fn after d, stopping what *slot held before
// (a refresh replaces the expiry timers). Close stops them all, so no
// goroutine per connection waits on a timer.
func (c *Conn) setTimer(slot **time.Timer, d time.Duration, fn func()) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if *slot != nil {
		(*slot).Stop()
	}
	*slot = nil
	select {
	case <-c.done:
		return
	default:
	}
	*slot = time.AfterFunc(d, fn)
}

func (c *Conn) currentGen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expiryGen
}

func (c *Conn) readLoop(ctx context.Context) {
	c.ws.SetReadLimit(c.opt.MaxMessageBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	})
	// gorilla's default handlers answer pings and closes by writing to the
	// socket themselves; the answers go through the outbox instead, so the
	// flusher stays the only writer (M13).
	c.ws.SetPingHandler(func(data string) error {
		c.queueControl([]byte(data), true)
		return c.ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	})
	c.ws.SetCloseHandler(func(int, string) error { return nil })
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.closeForReadError(err)
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
		// The limit is applied to what we read, so it also holds after
		// decompression (a small compressed frame cannot inflate past it).
		data, err := io.ReadAll(io.LimitReader(r, c.opt.MaxMessageBytes+1))
		if err != nil {
			c.closeForReadError(err)
			return
		}
		if int64(len(data)) > c.opt.MaxMessageBytes {
			c.Close(CloseTooBig, "message larger than the read limit")
			return
		}
		if typ != websocket.TextMessage {
			c.Close(CloseUnsupported, "only JSON text frames are accepted")
			return
		}
		if !utf8.Valid(data) {
			c.Close(CloseInvalidUTF8, "text frame is not valid UTF-8")
			return
		}
		if c.opt.Hooks.MessageIn != nil {
			c.opt.Hooks.MessageIn()
		}
		if c.isCut() {
			continue // condemned: nothing more is answered
		}
		if !c.allowRate(data) {
			continue
		}
		req, err := ParseRequest(data)
		if err != nil {
			c.badFrame(req.ID, err)
			continue
		}
		c.handle(ctx, req)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

func (c *Conn) closeForReadError(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// Echo the peer's code, as RFC 6455 §5.5.1 suggests; a close
		// without a code (1005) is answered with an empty one.
		code := ce.Code
		if !sendableCloseCode(code) {
			code = CloseNormal
		}
		if ce.Code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNoStatusReceived
		}
		c.Close(code, "")
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009.
		c.Close(CloseTooBig, "message larger than the read limit")
	default:
		// Idle timeout, protocol violation (gorilla sent 1002) or a dead peer.
		c.Close(ClosePolicy, "read failed")
	}
}

// allowRate applies the rate limits to one frame; a refusal answers with
// the frame's id when it can be read, so the client knows what to retry.
func (c *Conn) allowRate(frame []byte) bool {
	now := time.Now()
	ok := c.limiter.AllowN(now, 1)
	limit := "connection"
	if ok && c.opt.UserIPLimit != nil {
		var refused int
		if ok, refused = c.opt.UserIPLimit.Allow(c.User(), c.opt.IP, now); refused == 2 {
			limit = "ip"
		} else {
			limit = "user"
		}
	}
	if ok {
		c.rateLimited = 0
		return true
	}
	if c.opt.Hooks.RateLimited != nil {
		c.opt.Hooks.RateLimited(limit)
	}
	c.rateLimited++
	if c.rateLimited > maxRateLimited {
		if c.opt.Hooks.Cut != nil {
			c.opt.Hooks.Cut("flood")
		}
		c.cutAfterQueued(CloseRateLimited, "message rate limit exceeded")
		return false
	}
	c.send(encodeReply(reply{ID: RequestID(frame), Error: &ErrorBody{Code: CodeRateLimited, Message: "too many messages (" + limit + " limit): slow down"}}))
	return false
}

func (c *Conn) badFrame(id int64, err error) {
	c.badFrames++
	if c.opt.Hooks.BadFrame != nil {
		c.opt.Hooks.BadFrame(c.opt.IP)
	}
	c.send(encodeReply(reply{ID: id, Error: &ErrorBody{Code: CodeBadRequest, Message: err.Error()}}))
	if c.badFrames >= maxBadFrames {
		if c.opt.Hooks.Cut != nil {
			c.opt.Hooks.Cut("bad_frames")
		}
		c.cutAfterQueued(ClosePolicy, "too many invalid requests")
	}
}

// cutAfterQueued condemns the connection: it closes with code once the
// frames already queued (the rate_limited or bad_request errors that say
// why) are written, so the client reads them before the close frame. The
// marker is a nil frame; when the queue is full the close is immediate.
func (c *Conn) cutAfterQueued(code int, reason string) {
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		return
	}
	c.cut, c.cutCode, c.cutReason = true, code, reason
	c.mu.Unlock()
	if !c.enqueueMarker() {
		c.Close(code, reason)
	}
}

func (c *Conn) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// Deliver queues frames of one channel in offset order; it never blocks
// (see hub.Subscriber). A frame at or below the offset already sent is
// dropped on purpose: the broker may hand a message twice, and one the
// subscribe answer or a replay already covered comes again live. A frame
// past the next offset is a gap (the hub orders a cluster's events and
// fills their gaps, so this is the safety net: a gap past the hub's bound,
// or one the hub could not read): the subscription holds it and what
// follows, as while replaying, and a goroutine sends the missing messages
// from the store, then the held frames (goLive), so the client sees every
// offset once, in order.
func (c *Conn) Deliver(channel string, fs []*hub.Frame) {
	c.mu.Lock()
	s := c.subs[channel]
	if s == nil {
		c.mu.Unlock()
		return
	}
	if s.recovering {
		if !c.holdLocked(s, fs) {
			c.mu.Unlock()
			c.cutSlow()
			return
		}
		c.mu.Unlock()
		return
	}
	var small [8][]byte // a batch is usually one frame: no allocation per delivery
	out := small[:0]
	gap := -1
	for i, f := range fs {
		if f.Offset != 0 {
			if f.Offset <= s.last {
				continue // already sent
			}
			if f.Offset > s.last+1 {
				gap = i
				break
			}
			s.last = f.Offset
		}
		out = append(out, f.Data)
	}
	var from uint64
	if gap >= 0 {
		s.recovering = true
		from = s.last
		if !c.holdLocked(s, fs[gap:]) {
			c.mu.Unlock()
			c.cutSlow()
			return
		}
	}
	c.mu.Unlock()
	c.enqueue(out)
	if gap >= 0 {
		go c.goLive(channel, s, from)
	}
}

// holdLocked keeps frames for a subscription that is catching up, bounded
// like the outbox; false when they do not fit (the socket is then cut).
func (c *Conn) holdLocked(s *subscription, fs []*hub.Frame) bool {
	n := 0
	for _, f := range fs {
		n += len(f.Data)
	}
	if len(s.pending)+len(fs) > c.opt.SendQueue || s.pendingBytes+n > c.opt.SendQueueBytes {
		return false
	}
	s.pending = append(s.pending, fs...)
	s.pendingBytes += n
	return true
}
