package proxy

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
)

// Close codes the relay sends of its own accord.
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001
	CloseUnsupported  = 1003
	CloseInvalidUTF8  = 1007
	ClosePolicy       = 1008
	CloseTooBig       = 1009
	CloseBadGateway   = 1014 // the upstream failed or went away
	CloseSessionEnded = 4001
	CloseRateLimited  = 4008 // flood from the client, or a side that does not drain
)

// Limiter is a shared token bucket (per user, per IP); ratelimit implements it.
type Limiter interface {
	Allow(key string, now time.Time) (ok bool, retryAfter time.Duration)
}

// UserIPLimiter charges one message to its user's limit and its IP's at
// once; refused says which refused: 1 the user's, 2 the IP's.
type UserIPLimiter interface {
	Allow(user, ip string, now time.Time) (ok bool, refused int)
}

// Hooks let the server count what happens; every field may be nil. They
// run on the relay's goroutines and must not block.
type Hooks struct {
	// MessageIn runs for each message the client sends (session activity).
	MessageIn func()
	// RateLimited names the limit a client message crossed: connection,
	// user or ip.
	RateLimited func(limit string)
	// Cut names the side ("client" or "upstream") and why the relay ended
	// it: flood, too_big, invalid_utf8, not_json, slow_consumer.
	Cut func(side, reason string)
}

// Options configure one proxied connection. Zero values get the
// documented defaults.
type Options struct {
	// MaxMessageBytes bounds one message either way, enforced while
	// reading, before the message is buffered whole (M1). Zero means 64 KiB.
	MaxMessageBytes int64
	// QueueFrames and QueueBytes bound each direction's queue; a side that
	// lets its queue fill is cut (4008), so a slow reader on either side
	// costs bounded memory (M6). Zero means 256 and 1 MiB.
	QueueFrames int
	QueueBytes  int
	// MessagesPerSecond and MessageBurst limit client messages per
	// connection (M4); past them the client is cut (4008). Zero means 20
	// and 40.
	MessagesPerSecond float64
	MessageBurst      int
	// UserIPLimit is the user's and the IP's message limits, shared across
	// connections, keyed by User and IP; nil means none.
	UserIPLimit UserIPLimiter
	User, IP    string
	// JSONOnly accepts only text frames holding one JSON value, both ways.
	JSONOnly bool
	// IdleTimeout closes a side that sends nothing, pongs included, for
	// this long (M8). Zero means 60 s.
	IdleTimeout time.Duration
	// PingInterval is how often each side is pinged. Zero means 25 s.
	PingInterval time.Duration
	// WriteTimeout bounds each write; a side that does not take a message
	// within it is cut (4008). Zero means 10 s.
	WriteTimeout time.Duration
	// Lifetime ends the connection whatever its credential (4001). Zero
	// means 24 h.
	Lifetime time.Duration
	// Expires, when set, ends the connection at the credential's expiry
	// (4001).
	Expires time.Time
	Hooks   Hooks
}

func (o *Options) defaults() {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.QueueFrames <= 0 {
		o.QueueFrames = 256
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 1 << 20
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
}

// Stats are what a proxied connection carried, for the audit log: counts,
// never contents. "In" is from the client to the upstream.
type Stats struct {
	FramesIn, FramesOut int64
	BytesIn, BytesOut   int64
	// ClientCode and UpstreamCode are the close codes sent to each side
	// (0: the side's socket ended without one); Reason says why the
	// connection ended.
	ClientCode, UpstreamCode int
	Reason                   string
}

// Conn is one proxied connection: a client socket and its upstream.
type Conn struct {
	client, upstream *side
	opt              Options
	limiter          *rate.Limiter

	framesIn, framesOut, bytesIn, bytesOut atomic.Int64

	endOnce sync.Once
	mu      sync.Mutex // guards the fields below
	reason  string
	ended   chan struct{}
}

// New pairs an upgraded client socket with its dialled upstream.
func New(client, upstream *websocket.Conn, opt Options) *Conn {
	opt.defaults()
	c := &Conn{opt: opt, ended: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(opt.MessagesPerSecond), opt.MessageBurst)}
	c.client = newSide("client", client, &opt)
	c.upstream = newSide("upstream", upstream, &opt)
	for _, s := range []*side{c.client, c.upstream} {
		s.writeFailed = func() { c.cut(s, "slow_consumer", CloseRateLimited, "slow consumer: write timed out") }
	}
	return c
}

// Serve relays until both sides are closed, and returns what was carried.
// ctx ending (server shutdown) closes both sides with 1001.
func (c *Conn) Serve(ctx context.Context) Stats {
	stop := context.AfterFunc(ctx, func() {
		c.end("server shutting down", CloseGoingAway, "server shutting down", CloseGoingAway, "gateway shutting down", false)
	})
	defer stop()
	life := time.AfterFunc(c.opt.Lifetime, func() { c.Close(CloseSessionEnded, "connection lifetime reached") })
	defer life.Stop()
	if !c.opt.Expires.IsZero() {
		t := time.AfterFunc(time.Until(c.opt.Expires), func() { c.Close(CloseSessionEnded, "credential expired") })
		defer t.Stop()
	}
	c.client.startPings()
	c.upstream.startPings()
	// The upstream's reader runs on a goroutine of its own, the client's on
	// this one; writers come and go with what is queued (side.flush).
	upDone := make(chan struct{})
	go func() { defer close(upDone); c.read(c.upstream, c.client) }()
	c.read(c.client, c.upstream)
	<-upDone
	<-c.client.finished
	<-c.upstream.finished
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	return Stats{
		FramesIn: c.framesIn.Load(), FramesOut: c.framesOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		ClientCode: c.client.sentCode(), UpstreamCode: c.upstream.sentCode(), Reason: reason,
	}
}

// Close ends the connection for a reason that concerns the client's
// credential (logout, revocation, expiry, lifetime): the client gets code
// and reason, the upstream 1000 with the same reason. Queued messages are
// dropped.
func (c *Conn) Close(code int, reason string) {
	c.end(reason, code, reason, CloseNormal, reason, false)
}

// Done is closed once the connection has begun to end.
func (c *Conn) Done() <-chan struct{} { return c.ended }

// end starts the close of both sides, once: each gets its code and reason.
// graceful lets each side's queued messages go out before its close frame
// (a peer's own close after its last message); otherwise they are dropped.
func (c *Conn) end(why string, clientCode int, clientReason string, upCode int, upReason string, graceful bool) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason = why
		c.mu.Unlock()
		close(c.ended)
		c.client.close(clientCode, clientReason, graceful)
		c.upstream.close(upCode, upReason, graceful)
	})
}

// cut ends the connection because of what side from did: it gets code,
// the other side is told its peer is gone (the upstream 1000, the client
// 1014).
func (c *Conn) cut(from *side, reason string, code int, msg string) {
	if c.opt.Hooks.Cut != nil && !c.isEnded() {
		c.opt.Hooks.Cut(from.name, reason)
	}
	if from == c.client {
		c.end("client "+reason, code, msg, CloseNormal, "client closed by the gateway: "+msg, false)
		return
	}
	c.end("upstream "+reason, CloseBadGateway, "upstream failed: "+msg, code, msg, false)
}

func (c *Conn) isEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// read relays from's messages to to, checking each, until from ends.
func (c *Conn) read(from, to *side) {
	ws := from.ws
	// No gorilla read limit: on crossing it gorilla writes a close frame
	// itself, a second writer. The LimitReader below bounds the read.
	_ = ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	})
	ws.SetPingHandler(func(data string) error {
		from.queuePong([]byte(data))
		return ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
	})
	ws.SetCloseHandler(func(int, string) error { return nil })
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			c.readFailed(from, err)
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(c.opt.IdleTimeout))
		data, err := io.ReadAll(io.LimitReader(r, c.opt.MaxMessageBytes+1))
		if err != nil {
			c.readFailed(from, err)
			return
		}
		if c.isEnded() {
			from.drainUntilClosed()
			return
		}
		if int64(len(data)) > c.opt.MaxMessageBytes {
			c.cut(from, "too_big", CloseTooBig, "message larger than the limit")
			from.drainUntilClosed()
			return
		}
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			c.cut(from, "invalid_utf8", CloseInvalidUTF8, "text frame is not valid UTF-8")
			from.drainUntilClosed()
			return
		}
		if c.opt.JSONOnly && (typ != websocket.TextMessage || !json.Valid(data)) {
			code, msg := CloseUnsupported, "only JSON text frames are accepted"
			if typ == websocket.TextMessage {
				code, msg = ClosePolicy, "text frame is not one JSON value"
			}
			c.cut(from, "not_json", code, msg)
			from.drainUntilClosed()
			return
		}
		if from == c.client {
			if c.opt.Hooks.MessageIn != nil {
				c.opt.Hooks.MessageIn()
			}
			if limit := c.allowRate(); limit != "" {
				if c.opt.Hooks.RateLimited != nil {
					c.opt.Hooks.RateLimited(limit)
				}
				c.cut(from, "flood", CloseRateLimited, "message rate limit exceeded ("+limit+" limit)")
				from.drainUntilClosed()
				return
			}
			c.framesIn.Add(1)
			c.bytesIn.Add(int64(len(data)))
		} else {
			c.framesOut.Add(1)
			c.bytesOut.Add(int64(len(data)))
		}
		if !to.enqueue(typ, data) {
			c.cut(to, "slow_consumer", CloseRateLimited, "slow consumer: queue full")
			from.drainUntilClosed()
			return
		}
	}
}

// allowRate applies the client message limits; it returns the limit
// crossed, or "".
func (c *Conn) allowRate() string {
	now := time.Now()
	if !c.limiter.AllowN(now, 1) {
		return "connection"
	}
	if c.opt.UserIPLimit != nil {
		if ok, refused := c.opt.UserIPLimit.Allow(c.opt.User, c.opt.IP, now); !ok {
			if refused == 2 {
				return "ip"
			}
			return "user"
		}
	}
	return ""
}

// readFailed ends the connection after from's read failed: a close frame
// from the peer is relayed to the other side (with its code when that code
// may be sent, after the messages already queued); a read that failed
// otherwise is a peer gone (the upstream's: 1014 to the client).
func (c *Conn) readFailed(from *side, err error) {
	from.readDone()
	var ce *websocket.CloseError
	// gorilla reports a connection that ended without a close frame as
	// 1006: that is a peer gone, not a close to relay.
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		from.peerClosed(ce.Code)
		code, reason := ce.Code, ce.Text
		if !sendable(code) {
			code, reason = CloseNormal, ""
		}
		if from == c.client {
			c.end("client closed", echo(ce.Code), "", code, reason, true)
		} else {
			c.end("upstream closed", code, reason, echo(ce.Code), "", true)
		}
		return
	}
	if from == c.client {
		c.end("client gone", ClosePolicy, "read failed", CloseGoingAway, "client went away", false)
		return
	}
	c.end("upstream gone", CloseBadGateway, "upstream went away", CloseGoingAway, "", false)
}

// echo is the code that answers a peer's close frame: its own code, or an
// empty close for a close without one (1005).
func echo(code int) int {
	if code == websocket.CloseNoStatusReceived {
		return code
	}
	if !sendable(code) {
		return CloseNormal
	}
	return code
}

// sendable reports whether code may appear in a close frame (RFC 6455
// §7.4): 1000-1003, 1007-1014 and 3000-4999.
func sendable(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
