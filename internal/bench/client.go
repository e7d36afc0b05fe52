package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// The load client's WebSocket library. Two are offered so that a figure
// that depends on one library's costs (its allocations per read, its
// buffering) shows up as a difference between them rather than as a
// property of the server.
const (
	ClientGorilla = "gorilla" // github.com/gorilla/websocket
	ClientCoder   = "coder"   // github.com/coder/websocket
)

// wsConn is one client socket, whichever library holds it. read and write
// take the run's context so both libraries stop at the same deadline.
type wsConn interface {
	// read returns the next text or binary message; control frames
	// (ping, pong, close) are handled inside, as each library does.
	read(ctx context.Context) ([]byte, error)
	// write sends one text message. It is safe to call from two
	// goroutines (a publisher and the reader answering a ping).
	write(ctx context.Context, b []byte) error
	close()
}

// dialSpec is what a server's driver asks of the client library.
type dialSpec struct {
	url       string
	tls       *tls.Config
	header    http.Header // Origin, Authorization
	protocols []string
}

// dialWS opens a socket with the named library.
func dialWS(ctx context.Context, client string, s dialSpec) (wsConn, error) {
	switch client {
	case "", ClientGorilla:
		d := websocket.Dialer{
			TLSClientConfig:  s.tls,
			Subprotocols:     s.protocols,
			HandshakeTimeout: 30 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
		}
		ws, resp, err := d.DialContext(ctx, s.url, s.header)
		if err != nil {
			return nil, handshakeErr(err, resp)
		}
		// gorilla's own ping handler fails the read when the pong's write
		// misses its 1 s deadline, which a load client sharing two busy
		// cores with the servers sometimes does: that ends a subscriber
		// for the client's sake, not the server's. A late pong is the
		// server's to judge (its idle timeout), so answer and go on.
		ws.SetPingHandler(func(data string) error {
			_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
			return nil
		})
		return &gorillaConn{ws: ws}, nil
	case ClientCoder:
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: s.tls}}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ws, resp, err := coder.Dial(dctx, s.url, &coder.DialOptions{
			HTTPClient:   hc,
			HTTPHeader:   s.header,
			Subprotocols: s.protocols,
		})
		if err != nil {
			return nil, handshakeErr(err, resp)
		}
		// The servers' own read limits (64 KiB for wsguard) bound what
		// they send; coder's 32 KiB default would cut a replay page.
		ws.SetReadLimit(1 << 20)
		return &coderConn{ws: ws}, nil
	}
	return nil, fmt.Errorf("bench: unknown client %q (allowed: %s, %s)", client, ClientGorilla, ClientCoder)
}

// handshakeErr adds the server's status to a refused handshake, which is
// what tells a refused credential from a cap or a ban.
func handshakeErr(err error, resp *http.Response) error {
	if resp != nil {
		_ = resp.Body.Close()
		return fmt.Errorf("%w (status %d)", err, resp.StatusCode)
	}
	return err
}

// gorillaConn adapts gorilla's deadline-based API. gorilla allows one
// concurrent writer, so writes take a lock.
type gorillaConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *gorillaConn) read(ctx context.Context) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ws.SetReadDeadline(dl)
	}
	_, b, err := c.ws.ReadMessage()
	return b, err
}

func (c *gorillaConn) write(ctx context.Context, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dl := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.ws.SetWriteDeadline(dl)
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *gorillaConn) close() { _ = c.ws.Close() }

// coderConn adapts coder's context-based API; its writes are already
// safe for concurrent use.
type coderConn struct{ ws *coder.Conn }

func (c *coderConn) read(ctx context.Context) ([]byte, error) {
	_, b, err := c.ws.Read(ctx)
	return b, err
}

func (c *coderConn) write(ctx context.Context, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.ws.Write(wctx, coder.MessageText, b)
}

// close drops the TCP connection without the closing handshake: the bench
// ends thousands of sockets at once and waits for none of them.
func (c *coderConn) close() { _ = c.ws.CloseNow() }
