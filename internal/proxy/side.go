package proxy

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// writePool lends gorilla write buffers only while a write is in
// progress, so an idle proxied socket holds none.
var writePool = &sync.Pool{}

// closeWait bounds writing the close frame and waiting for the peer's
// answer: the peer may be the slow reader being cut.
const closeWait = time.Second

type message struct {
	typ  int
	data []byte
}

// side is one socket of a proxied connection and its outbound queue. Its
// flusher is the only goroutine that writes to ws. An idle side holds no
// flusher goroutine: one is started when something is queued (a message,
// a pong, a ping, the close) and ends when the queue is empty.
type side struct {
	name string
	ws   *websocket.Conn
	opt  *Options

	mu       sync.Mutex
	queue    []message
	bytes    int // payload bytes in queue: bounded by QueueBytes
	pong     []byte
	pongDue  bool
	pingDue  bool
	writing  bool   // a flusher is running; it will see what is queued
	closing  bool   // close was called: nothing more is queued
	closeMsg []byte // the close frame's payload; nil for "close without a frame"
	graceful bool   // write what is queued before the close frame
	code     int    // the close code written, for Stats
	ping     *time.Timer

	// writeFailed runs when a write fails or times out: the peer is not
	// reading (or is gone), and the connection ends.
	writeFailed func()

	readEnded    chan struct{} // closed when the reader has stopped reading
	readOnce     sync.Once
	finished     chan struct{} // closed once the socket is closed
	finishedOnce sync.Once
	peerCode     int // the code of the peer's close frame, 0 if none yet
}

func newSide(name string, ws *websocket.Conn, opt *Options) *side {
	return &side{name: name, ws: ws, opt: opt, readEnded: make(chan struct{}), finished: make(chan struct{})}
}

// startLocked marks the flusher as running and reports whether the caller
// must start it. s.mu is held.
func (s *side) startLocked() bool {
	if s.writing {
		return false
	}
	s.writing = true
	return true
}

// startPings pings the peer every PingInterval until the side closes; the
// peer's pong (or any frame) moves its read deadline.
func (s *side) startPings() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.ping = time.AfterFunc(s.opt.PingInterval, s.pingNow)
	}
}

func (s *side) pingNow() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.pingDue = true
	s.ping.Reset(s.opt.PingInterval)
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// enqueue queues a message for this side; false when the queue would pass
// its bounds (this side is not draining).
func (s *side) enqueue(typ int, data []byte) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return true
	}
	if len(s.queue)+1 > s.opt.QueueFrames || s.bytes+len(data) > s.opt.QueueBytes {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, message{typ, data})
	s.bytes += len(data)
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.flush()
	}
	return true
}

func (s *side) queuePong(data []byte) {
	s.mu.Lock()
	s.pong, s.pongDue = data, true
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// close asks the flusher to send a close frame with code (none when code
// is 1005 or less than 1000) and then close the socket.
func (s *side) close(code int, reason string, graceful bool) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing, s.graceful = true, graceful
	if s.ping != nil {
		s.ping.Stop()
	}
	if sendable(code) {
		if len(reason) > 120 {
			reason = reason[:120]
		}
		s.closeMsg, s.code = websocket.FormatCloseMessage(code, reason), code
	} else if code == websocket.CloseNoStatusReceived {
		s.closeMsg = []byte{} // an empty close frame
	}
	if !graceful {
		s.queue, s.bytes = nil, 0
		// A write blocked on a peer that does not read gives up within
		// closeWait instead of WriteTimeout.
		_ = s.ws.NetConn().SetWriteDeadline(time.Now().Add(closeWait))
	}
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

func (s *side) droppingQueue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing && !s.graceful
}

func (s *side) sentCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func (s *side) readDone() { s.readOnce.Do(func() { close(s.readEnded) }) }

func (s *side) peerClosed(code int) {
	s.mu.Lock()
	s.peerCode = code
	s.mu.Unlock()
}

// drainUntilClosed is what a reader does once the connection is ending:
// it keeps reading (and discarding) until the peer answers the close frame
// or the socket is closed, so the close handshake completes.
func (s *side) drainUntilClosed() {
	defer s.readDone()
	_ = s.ws.SetReadDeadline(time.Now().Add(2 * closeWait))
	for {
		if _, _, err := s.ws.NextReader(); err != nil {
			return
		}
	}
}

// flush writes what is queued, batch after batch, until the queue is
// empty, or the close frame once the side is closing. A write that fails
// or does not finish within WriteTimeout means the peer does not read:
// the connection ends and the socket is closed.
func (s *side) flush() {
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue, s.bytes = nil, 0
		pong, pongDue, pingDue := s.pong, s.pongDue, s.pingDue
		s.pong, s.pongDue, s.pingDue = nil, false, false
		closing, graceful, closeMsg := s.closing, s.graceful, s.closeMsg
		idle := len(batch) == 0 && !pongDue && !pingDue && !closing
		if idle {
			s.writing = false
		}
		s.mu.Unlock()
		if idle {
			return
		}
		if closing && !graceful {
			batch = nil
		}
		if !s.writeBatch(batch, pong, pongDue, pingDue) {
			if s.writeFailed != nil {
				s.writeFailed()
			}
			s.shut()
			return // writing stays true: nothing more is written
		}
		if closing {
			// Nothing is queued once closing, so this batch was the last.
			s.writeClose(closeMsg)
			return
		}
	}
}

// writeBatch writes a pong, a ping and the queued messages, each under the
// write deadline.
func (s *side) writeBatch(batch []message, pong []byte, pongDue, pingDue bool) bool {
	deadline := time.Now().Add(s.opt.WriteTimeout)
	if pongDue {
		if err := s.ws.WriteControl(websocket.PongMessage, pong, deadline); err != nil {
			return false
		}
	}
	if pingDue {
		if err := s.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
			return false
		}
	}
	for _, m := range batch {
		_ = s.ws.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
		if s.droppingQueue() {
			return true // closed meanwhile: what was queued is dropped
		}
		if err := s.ws.WriteMessage(m.typ, m.data); err != nil {
			return false
		}
	}
	return true
}

// writeClose writes the close frame (if any), waits a moment for the
// peer's answer so that closing TCP does not reset a close frame still
// unread, then closes the socket.
func (s *side) writeClose(payload []byte) {
	if payload != nil {
		_ = s.ws.WriteControl(websocket.CloseMessage, payload, time.Now().Add(closeWait))
		t := time.NewTimer(closeWait)
		select {
		case <-s.readEnded:
		case <-t.C:
		}
		t.Stop()
	}
	s.shut()
}

// shut closes the socket (its reader then fails too) and marks the side
// finished.
func (s *side) shut() {
	_ = s.ws.Close()
	s.finishedOnce.Do(func() { close(s.finished) })
}
