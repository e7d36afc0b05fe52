package conn

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// outbox is the bounded outbound queue, and the flusher that drains it is
// the only goroutine that writes to the socket: replies, pushes, pongs,
// pings and the close frame all go through it. (gorilla's default ping and
// close handlers write on their own, with their own write deadline, and a
// pong written that way once broke the TLS stream under a delivery; both
// handlers are replaced in readLoop.)
//
// An idle connection holds neither queue memory (a slice, not a channel of
// SendQueue slots) nor a writer goroutine and its stack: a flusher is
// started when something is queued and ends when the queue is empty.
type outbox struct {
	mu     sync.Mutex
	frames [][]byte
	bytes  int // payload bytes in frames: bounded by SendQueueBytes
	// pong is the payload of the latest client ping not yet answered (a
	// peer may be answered for the latest ping only, RFC 6455 §5.5.3).
	pong    []byte
	pongDue bool
	pingDue bool
	// closeMsg is the close frame's payload once Close was called; the
	// flusher writes it, drops whatever is still queued and closes the
	// socket.
	closeMsg []byte
	writing  bool // a flusher is running; it will see what is queued
	// room, when not nil, is closed by the flusher after each batch: a
	// replay waiting for the queue to drain (waitRoom) wakes on it.
	room chan struct{}
}

// closeWait bounds writing the close frame: the peer may be the slow
// reader being cut.
const closeWait = time.Second

// send queues a reply or push, cutting the connection when the queue is
// full in frames or bytes (M6).
func (c *Conn) send(b []byte) { c.enqueue([][]byte{b}) }

// enqueue appends frames to the outbox unless that would pass its bounds,
// in which case the reader is too slow and is cut.
func (c *Conn) enqueue(frames [][]byte) {
	if len(frames) == 0 {
		return
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	c.out.mu.Lock()
	if c.out.closeMsg != nil {
		c.out.mu.Unlock()
		return
	}
	full := len(c.out.frames)+len(frames) > c.opt.SendQueue || c.out.bytes+n > c.opt.SendQueueBytes
	start := false
	if !full {
		c.out.frames = append(c.out.frames, frames...)
		c.out.bytes += n
		start = c.startFlusherLocked()
	}
	c.out.mu.Unlock()
	if full {
		c.cutSlow()
		return
	}
	if start {
		go c.flush()
	}
}

// startFlusherLocked marks the flusher as running and reports whether the
// caller must start it. c.out.mu is held.
func (c *Conn) startFlusherLocked() bool {
	if c.out.writing {
		return false
	}
	c.out.writing = true
	return true
}

// sendPaced queues one frame of a replay or a history answer. Those are
// made on request, not pushed by the hub, so instead of cutting a reader
// that is merely behind, it waits (on the read goroutine: this client's
// next request waits too) until the queue is at most half full, leaving the
// other half to live pushes. A frame larger than half the budget goes out
// alone on an empty queue. A queue that does not drain within WriteTimeout
// cuts the connection (4008); false then.
func (c *Conn) sendPaced(b []byte) bool {
	deadline := time.Now().Add(c.opt.WriteTimeout)
	for {
		c.out.mu.Lock()
		if c.out.closeMsg != nil {
			c.out.mu.Unlock()
			return false
		}
		fits := len(c.out.frames) == 0 ||
			(len(c.out.frames)+1 <= c.opt.SendQueue/2 && c.out.bytes+len(b) <= c.opt.SendQueueBytes/2)
		if fits {
			c.out.frames = append(c.out.frames, b)
			c.out.bytes += len(b)
			start := c.startFlusherLocked()
			c.out.mu.Unlock()
			if start {
				go c.flush()
			}
			return true
		}
		if c.out.room == nil {
			c.out.room = make(chan struct{})
		}
		room := c.out.room
		c.out.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			c.cutSlow()
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-room:
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// queueControl asks the flusher for a pong (answering a client ping with
// its payload) or a ping.
func (c *Conn) queueControl(pong []byte, isPong bool) {
	c.out.mu.Lock()
	if c.out.closeMsg != nil {
		c.out.mu.Unlock()
		return
	}
	if isPong {
		c.out.pong, c.out.pongDue = pong, true
	} else {
		c.out.pingDue = true
	}
	start := c.startFlusherLocked()
	c.out.mu.Unlock()
	if start {
		go c.flush()
	}
}

// enqueueMarker queues the nil frame that tells the flusher to close
// (see cutAfterQueued); false when the queue is already full.
func (c *Conn) enqueueMarker() bool {
	c.out.mu.Lock()
	if len(c.out.frames) >= c.opt.SendQueue || c.out.closeMsg != nil {
		c.out.mu.Unlock()
		return false
	}
	c.out.frames = append(c.out.frames, nil)
	start := c.startFlusherLocked()
	c.out.mu.Unlock()
	if start {
		go c.flush()
	}
	return true
}

// closeCut closes a condemned connection once its queued frames are out.
func (c *Conn) closeCut() {
	c.mu.Lock()
	code, reason := c.cutCode, c.cutReason
	c.mu.Unlock()
	c.Close(code, reason)
}

func (c *Conn) cutSlow() {
	if c.isClosed() {
		return
	}
	if c.opt.Hooks.Cut != nil {
		c.opt.Hooks.Cut("slow_consumer")
	}
	c.Close(CloseRateLimited, "slow consumer: send queue full")
}

func (c *Conn) isClosed() bool { return c.closed.Load() }

// flush writes what is queued, batch after batch, until the queue is
// empty. It is the only writer on the socket.
func (c *Conn) flush() {
	for {
		c.out.mu.Lock()
		batch, closeMsg := c.out.frames, c.out.closeMsg
		pong, pongDue, pingDue := c.out.pong, c.out.pongDue, c.out.pingDue
		c.out.frames, c.out.bytes = nil, 0
		c.out.pong, c.out.pongDue, c.out.pingDue = nil, false, false
		if c.out.room != nil {
			close(c.out.room) // the queue is empty again: wake a paced sender
			c.out.room = nil
		}
		idle := len(batch) == 0 && !pongDue && !pingDue && closeMsg == nil
		if idle {
			c.out.writing = false
		}
		c.out.mu.Unlock()
		if idle {
			return
		}
		if closeMsg != nil {
			// Close was called: what is still queued is dropped (a cut
			// queues its last words ahead of a marker instead).
			c.writeClose(closeMsg)
			return // writing stays true: nothing more is written
		}
		c.writeBatch(pong, pongDue, pingDue, batch)
	}
}

// ping runs on a timer every PingInterval; the pong (or any frame) moves
// the read deadline, so a peer that never answers is closed as idle (M8).
func (c *Conn) ping() {
	c.queueControl(nil, false)
	c.setTimer(&c.pingTimer, c.opt.PingInterval, c.ping)
}

// batchPool holds the buffers batches are framed into; an idle connection
// holds none.
var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxBatch is how many bytes are framed before they are written: big enough
// that a burst costs few TLS records and syscalls, small enough to bound
// the buffer.
const maxBatch = 32 << 10

// writeBatch writes a pong, a ping and the queued frames under one write
// deadline, set for every batch. Without compression the frames are framed
// here and written to the TLS connection in as few writes as fit maxBatch:
// gorilla flushes each message with its own write (one TLS record and one
// syscall per message per subscriber), the dominant fan-out cost. The
// frames are whole, unfragmented, unmasked server frames (RFC 6455 §5.2),
// so control frames may go between them. A failed write closes the
// connection (the flusher then finds the close request).
func (c *Conn) writeBatch(pong []byte, pongDue, pingDue bool, frames [][]byte) {
	if c.opt.Compressed {
		c.writeBatchCompressed(pong, pongDue, pingDue, frames)
		return
	}
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(c.opt.WriteTimeout))
	if c.isClosed() {
		// Close ran between taking this batch and the line above, and its
		// shorter deadline was just overwritten: put it back, so a close
		// never waits WriteTimeout behind a reader that does not read.
		_ = nc.SetWriteDeadline(time.Now().Add(closeWait))
	}
	bp := batchPool.Get().(*[]byte)
	defer batchPool.Put(bp)
	buf := (*bp)[:0]
	if pongDue {
		buf = appendFrame(buf, websocket.PongMessage, pong)
	}
	if pingDue {
		buf = appendFrame(buf, websocket.PingMessage, nil)
	}
	for _, b := range frames {
		if b == nil { // the cutAfterQueued marker: write what precedes it, then close
			if len(buf) > 0 {
				if _, err := nc.Write(buf); err != nil {
					c.writeFailed()
					return
				}
			}
			c.closeCut()
			return
		}
		if len(buf) > 0 && len(buf)+len(b)+10 > maxBatch {
			if _, err := nc.Write(buf); err != nil {
				c.writeFailed()
				return
			}
			buf = buf[:0]
		}
		buf = appendFrame(buf, websocket.TextMessage, b)
	}
	if len(buf) > 0 {
		if _, err := nc.Write(buf); err != nil {
			c.writeFailed()
			return
		}
	}
	if cap(buf) <= 4*maxBatch { // keep ordinary buffers, drop a rare huge one
		*bp = buf[:0]
	}
}

// writeBatchCompressed writes through gorilla, which compresses; it is
// still called only from the flusher.
func (c *Conn) writeBatchCompressed(pong []byte, pongDue, pingDue bool, frames [][]byte) {
	deadline := time.Now().Add(c.opt.WriteTimeout)
	if c.isClosed() { // as in writeBatch
		deadline = time.Now().Add(closeWait)
	}
	_ = c.ws.SetWriteDeadline(deadline)
	if pongDue {
		if err := c.ws.WriteControl(websocket.PongMessage, pong, deadline); err != nil {
			c.writeFailed()
			return
		}
	}
	if pingDue {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
			c.writeFailed()
			return
		}
	}
	for _, b := range frames {
		if b == nil {
			c.closeCut()
			return
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			c.writeFailed()
			return
		}
	}
}

// writeClose writes the close frame, gives the peer a moment to answer it
// (closing TCP with unread input would reset the connection and could
// lose the close frame), then closes the socket.
func (c *Conn) writeClose(payload []byte) {
	deadline := time.Now().Add(closeWait)
	if c.opt.Compressed {
		_ = c.ws.WriteControl(websocket.CloseMessage, payload, deadline)
	} else {
		nc := c.ws.NetConn()
		_ = nc.SetWriteDeadline(deadline)
		_, _ = nc.Write(appendFrame(nil, websocket.CloseMessage, payload))
	}
	time.Sleep(100 * time.Millisecond)
	_ = c.ws.Close()
}

func (c *Conn) writeFailed() {
	if !c.isClosed() && c.opt.Hooks.Cut != nil {
		c.opt.Hooks.Cut("write_timeout")
	}
	c.Close(CloseRateLimited, "write failed or timed out")
}

// appendFrame appends payload as one final, unmasked frame of type op.
func appendFrame(buf []byte, op int, payload []byte) []byte {
	first := byte(0x80 | op)
	n := len(payload)
	switch {
	case n < 126:
		buf = append(buf, first, byte(n))
	case n <= 0xFFFF:
		buf = append(buf, first, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, first, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}

// appendTextFrame appends payload as one final, unmasked text frame.
func appendTextFrame(buf, payload []byte) []byte {
	return appendFrame(buf, websocket.TextMessage, payload)
}
