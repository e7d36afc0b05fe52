package conn

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sinkConn is a net.Conn that takes every write whole and keeps nothing,
// so that benchmarks count the server's work per delivery without a
// client's or the kernel's. Reads block until Close. writes counts the
// Write calls (each is one write syscall on a real socket); wrote, when
// set, is told of each.
type sinkConn struct {
	closed    chan struct{}
	closeOnce sync.Once
	writes    atomic.Int64
	wrote     func(p []byte)
}

func newSinkConn() *sinkConn { return &sinkConn{closed: make(chan struct{})} }

func (s *sinkConn) Read([]byte) (int, error) { <-s.closed; return 0, net.ErrClosed }
func (s *sinkConn) Write(p []byte) (int, error) {
	s.writes.Add(1)
	if s.wrote != nil {
		s.wrote(p)
	}
	return len(p), nil
}
func (s *sinkConn) Close() error                     { s.closeOnce.Do(func() { close(s.closed) }); return nil }
func (s *sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *sinkConn) SetDeadline(time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }

// hijacker is the ResponseWriter the upgrade runs on: it hands over nc.
type hijacker struct {
	nc net.Conn
	h  http.Header
}

func (h *hijacker) Header() http.Header         { return h.h }
func (h *hijacker) Write(p []byte) (int, error) { return len(p), nil }
func (h *hijacker) WriteHeader(int)             {}
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.nc, bufio.NewReadWriter(bufio.NewReader(h.nc), bufio.NewWriter(h.nc)), nil
}

// sinkSocket upgrades a server-side WebSocket on nc, as the server's
// handshake does, with no client behind it.
func sinkSocket(tb testing.TB, nc net.Conn) *websocket.Conn {
	tb.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://localhost/ws", nil)
	if err != nil {
		tb.Fatal(err)
	}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(&hijacker{nc: nc, h: http.Header{}}, r, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ws
}
