package conn

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// outbox is the bounded outbound queue. An idle connection holds neither
// queue memory (a slice, not a channel of SendQueue slots, which would cost
// 6 KiB up front) nor a writer goroutine and its stack: a flusher goroutine
// is started when frames arrive and ends when the queue is empty.
type outbox struct {
	mu      sync.Mutex
	frames  [][]byte
	writing bool // a flusher is running; it will see what is appended
}

// send queues a reply or push, cutting the connection when the queue is full (M6).
func (c *Conn) send(b []byte) { c.enqueue([][]byte{b}, c.opt.SendQueue) }

// sendReplay queues a recovered message. A replay is bounded by maxReplay,
// not by the live queue, so that a client catching up on more than
// SendQueue messages is not mistaken for a slow consumer.
func (c *Conn) sendReplay(b []byte) { c.enqueue([][]byte{b}, c.opt.SendQueue+maxReplay) }

// enqueue appends frames to the outbox unless that would pass limit, in
// which case the reader is too slow and is cut.
func (c *Conn) enqueue(frames [][]byte, limit int) {
	if len(frames) == 0 {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.out.mu.Lock()
	full := len(c.out.frames)+len(frames) > limit
	start := false
	if !full {
		c.out.frames = append(c.out.frames, frames...)
		start = !c.out.writing
		c.out.writing = true
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

// enqueueMarker queues the nil frame that tells the flusher to close
// (see cutAfterQueued); false when the queue is already full.
func (c *Conn) enqueueMarker() bool {
	c.out.mu.Lock()
	if len(c.out.frames) >= c.opt.SendQueue {
		c.out.mu.Unlock()
		return false
	}
	c.out.frames = append(c.out.frames, nil)
	start := !c.out.writing
	c.out.writing = true
	c.out.mu.Unlock()
	if start {
		go c.flush()
	}
	return true
}

// closeCut closes a condemned connection once its queued frames are out.
func (c *Conn) closeCut() bool {
	c.mu.Lock()
	code, reason := c.cutCode, c.cutReason
	c.mu.Unlock()
	c.Close(code, reason)
	return false
}

func (c *Conn) cutSlow() {
	if c.opt.Hooks.Cut != nil {
		c.opt.Hooks.Cut("slow_consumer")
	}
	c.Close(CloseRateLimited, "slow consumer: send queue full")
}

// flush writes what is queued, batch after batch, until the queue is
// empty; it is the only writer of data frames while it runs.
func (c *Conn) flush() {
	for {
		c.out.mu.Lock()
		batch := c.out.frames
		c.out.frames = nil
		if len(batch) == 0 {
			c.out.writing = false
		}
		c.out.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		select {
		case <-c.done:
			return // writing stays true: nothing more is written
		default:
		}
		if !c.writeBatch(batch) {
			return
		}
	}
}

// ping runs on a timer every PingInterval; the pong (or any frame) moves
// the read deadline, so a peer that never answers is closed as idle (M8).
func (c *Conn) ping() {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opt.WriteTimeout)); err != nil {
		c.Close(ClosePolicy, "ping failed")
		return
	}
	c.setTimer(&c.pingTimer, c.opt.PingInterval, c.ping)
}

// batchPool holds the buffers batches are framed into; an idle connection
// holds none.
var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxBatch is how many bytes are framed before they are written: big enough
// that a burst costs few TLS records and syscalls, small enough to bound
// the buffer.
const maxBatch = 32 << 10

// writeBatch writes every queued frame under one write deadline. Without
// compression the frames are framed here and written to the TLS connection
// in as few writes as fit maxBatch: gorilla flushes each message with its
// own write (one TLS record and one syscall per message per subscriber),
// which is the dominant fan-out cost. The frames are whole, unfragmented,
// unmasked server text frames (RFC 6455 §5.2); each Write on a tls.Conn is
// atomic, so gorilla's own control frames (close, pong) never split one.
func (c *Conn) writeBatch(frames [][]byte) bool {
	if len(frames) == 0 {
		return true
	}
	if c.opt.Compressed {
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.opt.WriteTimeout))
		for _, b := range frames {
			if b == nil {
				return c.closeCut()
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				return c.writeFailed()
			}
		}
		return true
	}
	nc := c.ws.NetConn()
	// Moving a socket deadline costs a runtime timer update per write; move
	// it only once half of WriteTimeout is used up, so a stuck write is cut
	// after between WriteTimeout/2 and WriteTimeout.
	if now := time.Now(); c.writeDeadline.Sub(now) < c.opt.WriteTimeout/2 {
		c.writeDeadline = now.Add(c.opt.WriteTimeout)
		_ = nc.SetWriteDeadline(c.writeDeadline)
	}
	bp := batchPool.Get().(*[]byte)
	defer batchPool.Put(bp)
	buf := (*bp)[:0]
	for _, b := range frames {
		if b == nil { // the cutAfterQueued marker: write what precedes it, then close
			if len(buf) > 0 {
				if _, err := nc.Write(buf); err != nil {
					return c.writeFailed()
				}
			}
			return c.closeCut()
		}
		if len(buf) > 0 && len(buf)+len(b)+10 > maxBatch {
			if _, err := nc.Write(buf); err != nil {
				return c.writeFailed()
			}
			buf = buf[:0]
		}
		buf = appendTextFrame(buf, b)
	}
	if _, err := nc.Write(buf); err != nil {
		return c.writeFailed()
	}
	if cap(buf) <= 4*maxBatch { // keep ordinary buffers, drop a rare huge one
		*bp = buf[:0]
	}
	return true
}

func (c *Conn) writeFailed() bool {
	if c.opt.Hooks.Cut != nil {
		c.opt.Hooks.Cut("write_timeout")
	}
	c.Close(CloseRateLimited, "write failed or timed out")
	return false
}

// appendTextFrame appends payload as one final, unmasked text frame.
func appendTextFrame(buf, payload []byte) []byte {
	const finText = 0x80 | websocket.TextMessage
	n := len(payload)
	switch {
	case n < 126:
		buf = append(buf, finText, byte(n))
	case n <= 0xFFFF:
		buf = append(buf, finText, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, finText, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}
