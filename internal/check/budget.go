package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Budget bounds the traffic one scan sends. A check whose next connection,
// frame or write would cross it is not made and is reported as skipped.
type Budget struct {
	Connections int   `json:"connections"` // TCP connections opened
	Frames      int   `json:"frames"`      // WebSocket frames sent (data and control)
	Bytes       int64 `json:"bytes"`       // bytes written to the network, TLS and HTTP included
}

// DefaultBudget is what one scan may send at most. A full scan of an
// endpoint that accepts everything uses about 16 connections, 215 frames
// and 1.1 MiB (TestScanStaysWithinBudget), so every check fits with room.
var DefaultBudget = Budget{Connections: 32, Frames: 300, Bytes: 3 << 20}

// errBudget is returned by a step that would cross the budget.
var errBudget = errors.New("the scan's traffic budget is spent")

// meter counts what a scan sends against its budget.
type meter struct {
	limit Budget
	mu    sync.Mutex
	used  Budget
}

func (m *meter) spent() Budget {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// conn reserves one connection.
func (m *meter) conn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used.Connections >= m.limit.Connections {
		return fmt.Errorf("%w (%d connections)", errBudget, m.limit.Connections)
	}
	m.used.Connections++
	return nil
}

// frame reserves one frame of about n payload bytes; the bytes themselves
// are counted as they are written, this only refuses a frame that could not
// fit.
func (m *meter) frame(n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used.Frames >= m.limit.Frames {
		return fmt.Errorf("%w (%d frames)", errBudget, m.limit.Frames)
	}
	if m.used.Bytes+int64(n) > m.limit.Bytes {
		return fmt.Errorf("%w (%d bytes)", errBudget, m.limit.Bytes)
	}
	m.used.Frames++
	return nil
}

// wrote counts n bytes written and says whether they fit.
func (m *meter) wrote(n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used.Bytes+int64(n) > m.limit.Bytes {
		return fmt.Errorf("%w (%d bytes)", errBudget, m.limit.Bytes)
	}
	m.used.Bytes += int64(n)
	return nil
}

// dial opens a counted TCP connection.
func (m *meter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := m.conn(); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &meteredConn{Conn: c, m: m}, nil
}

// meteredConn counts every byte written against the budget.
type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Write(p []byte) (int, error) {
	if err := c.m.wrote(len(p)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
