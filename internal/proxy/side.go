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
// writeLoop is the only goroutine that writes to ws.
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
	closing  bool   // close was called: nothing more is queued
	closeMsg []byte // the close frame's payload; nil for "close without a frame"
	graceful bool   // write what is queued before the close frame
	code     int    // the close code written, for Stats
	wake     chan struct{}

	// writeFailed runs when a write fails or times out: the peer is not
	// reading (or is gone), and the connection ends.
	writeFailed func()

	readEnded chan struct{} // closed when the reader has stopped reading
	readOnce  sync.Once
	peerCode  int // the code of the peer's close frame, 0 if none yet
}

func newSide(name string, ws *websocket.Conn, opt *Options) *side {
	return &side{name: name, ws: ws, opt: opt, wake: make(chan struct{}, 1), readEnded: make(chan struct{})}
}

func (s *side) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
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
	s.mu.Unlock()
	s.signal()
	return true
}

func (s *side) queuePong(data []byte) {
	s.mu.Lock()
	s.pong, s.pongDue = data, true
	s.mu.Unlock()
	s.signal()
}

// close asks the writer to send a close frame with code (none when code is
// 1005 or less than 1000) and then close the socket.
func (s *side) close(code int, reason string, graceful bool) {
	s.mu.Lock()
	if !s.closing {
		s.closing, s.graceful = true, graceful
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
			// A write blocked on a peer that does not read gives up
			// within closeWait instead of WriteTimeout.
			_ = s.ws.NetConn().SetWriteDeadline(time.Now().Add(closeWait))
		}
	}
	s.mu.Unlock()
	s.signal()
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

// writeLoop writes what is queued until the side is closed. Pings go out
// every PingInterval; a write that fails or does not finish within
// WriteTimeout means the peer does not read: the caller's reader sees the
// socket close and the connection ends.
func (s *side) writeLoop() {
	ping := time.NewTicker(s.opt.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.wake:
		case <-ping.C:
			s.mu.Lock()
			s.pingDue = true
			s.mu.Unlock()
		}
		for {
			s.mu.Lock()
			batch := s.queue
			s.queue, s.bytes = nil, 0
			pong, pongDue, pingDue := s.pong, s.pongDue, s.pingDue
			s.pong, s.pongDue, s.pingDue = nil, false, false
			closing, graceful, closeMsg := s.closing, s.graceful, s.closeMsg
			s.mu.Unlock()
			if closing && !graceful {
				batch = nil
			}
			if len(batch) == 0 && !pongDue && !pingDue && !closing {
				break
			}
			if !s.writeBatch(batch, pong, pongDue, pingDue) {
				if s.writeFailed != nil {
					s.writeFailed()
				}
				s.shut()
				return
			}
			if closing {
				s.mu.Lock()
				more := graceful && len(s.queue) > 0
				s.mu.Unlock()
				if more {
					continue
				}
				s.writeClose(closeMsg)
				return
			}
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
	_ = s.ws.Close()
}

// shut closes the socket after a failed write; its reader then fails too.
func (s *side) shut() { _ = s.ws.Close() }
