package check

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// noOrigin asks handshake to send no Origin header at all.
const noOrigin = "\x00none"

// handshake is one way of opening the socket.
type handshake struct {
	origin   string // the Origin header; noOrigin for none
	compress bool   // offer permessage-deflate
	writeBuf int    // the largest frame written in one piece; 0 means 4 KiB
	silent   bool   // answer no pings
}

// tlsConfig is the client TLS config of every handshake. When the
// certificate did not verify, the scan goes on without verifying (the
// finding is already WS-CERT) so that the other checks still run.
func (s *scan) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.target.Hostname(),
		RootCAs:            s.opt.Roots,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.certErr != nil, // #nosec G402 -- only after WS-CERT reported why the certificate fails, so the remaining checks can run
	}
}

func (s *scan) header(origin string) http.Header {
	h := http.Header{}
	for k, vs := range s.opt.Header {
		h[k] = append([]string(nil), vs...)
	}
	if len(s.opt.Cookies) > 0 {
		h.Set("Cookie", strings.Join(s.opt.Cookies, "; "))
	}
	if origin != noOrigin {
		h.Set("Origin", origin)
	}
	return h
}

// dial makes one handshake to url (the target unless given) and returns
// the socket, or the answer that refused it.
func (s *scan) dial(ctx context.Context, target string, hs handshake) (*sock, *http.Response, error) {
	if target == "" {
		target = s.target.String()
	}
	wb := hs.writeBuf
	if wb == 0 {
		wb = 4096
	}
	d := websocket.Dialer{
		NetDialContext:    s.meter.dial,
		TLSClientConfig:   s.tlsConfig(),
		HandshakeTimeout:  s.opt.StepTimeout,
		Subprotocols:      s.opt.Subprotocols,
		EnableCompression: hs.compress,
		WriteBufferSize:   wb,
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.StepTimeout)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, target, s.header(hs.origin))
	if resp != nil {
		s.cookies = append(s.cookies, resp.Cookies()...)
	}
	if err != nil {
		return nil, resp, err
	}
	k := newSock(s, ws, hs.silent)
	k.compressed = hs.compress && resp.Header.Get("Sec-WebSocket-Extensions") != ""
	return k, resp, nil
}

// answer describes a handshake's outcome in a few words for evidence.
func answer(resp *http.Response, err error) string {
	switch {
	case resp != nil:
		a := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" && resp.StatusCode == http.StatusSwitchingProtocols {
			a += " (Sec-WebSocket-Protocol: " + maskProtocol(p) + ")"
		}
		return a
	case err != nil:
		return "failed: " + err.Error()
	}
	return "no answer"
}

// upgraded says whether a handshake answer opened the socket.
func upgraded(resp *http.Response, err error) bool {
	return err == nil && resp != nil && resp.StatusCode == http.StatusSwitchingProtocols
}

// clipN keeps the first n bytes of v (an answer quoted as evidence).
func clipN(v string, n int) string {
	if len(v) > n+4 {
		return v[:n] + "..."
	}
	return v
}

// event is one message read, or the error that ended the read loop.
type event struct {
	typ  int
	data []byte
	err  error
}

// sock is an open probe socket whose messages a goroutine reads, so that
// the writes of a probe never wait on the server's answers.
type sock struct {
	s      *scan
	ws     *websocket.Conn
	events chan event
	done   chan struct{}
	// compressed: permessage-deflate was negotiated, so a message's size
	// on the wire is not its length.
	compressed bool
}

// maxRead bounds what the scanner reads in one message (an echo of the
// inflated deflate probe is the largest it expects).
const maxRead = 5 << 20

func newSock(s *scan, ws *websocket.Conn, silent bool) *sock {
	k := &sock{s: s, ws: ws, events: make(chan event, 16), done: make(chan struct{})}
	ws.SetReadLimit(maxRead)
	ws.SetPingHandler(func(data string) error {
		if silent {
			return nil
		}
		if s.meter.frame(len(data)) != nil {
			return nil // over budget: let the server time us out
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.opt.StepTimeout))
	})
	go k.read()
	return k
}

func (k *sock) read() {
	for {
		typ, data, err := k.ws.ReadMessage()
		select {
		case k.events <- event{typ: typ, data: data, err: err}:
		case <-k.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// send writes one message within the budget.
func (k *sock) send(typ int, data []byte) error {
	reserve := len(data)
	if k.compressed {
		reserve = 0 // the wire size is unknown until deflated; the metered conn still counts every byte
	}
	if err := k.s.meter.frame(reserve); err != nil {
		return err
	}
	// A large message gets a second more per 256 KiB, for slow uplinks.
	_ = k.ws.SetWriteDeadline(time.Now().Add(k.s.opt.StepTimeout + time.Duration(len(data)>>18)*time.Second))
	return k.ws.WriteMessage(typ, data)
}

// close sends a close frame (when the budget allows) and drops the socket.
func (k *sock) close() {
	if k.s.meter.frame(2) == nil {
		_ = k.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	close(k.done)
	_ = k.ws.Close()
}

// verdict is what became of a socket after a probe.
type verdict struct {
	closed  string // non-empty: the server closed it (how)
	replies int    // messages read before the wait ended
	texts   []string
}

// wait reads answers until the server closes the socket, want messages
// have arrived (want > 0), or d passes.
func (k *sock) wait(ctx context.Context, want int, d time.Duration) verdict {
	var v verdict
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case e := <-k.events:
			if e.err != nil {
				v.closed = closeText(e.err)
				return v
			}
			v.replies++
			if len(v.texts) < 3 {
				v.texts = append(v.texts, clipN(string(e.data), 80))
			}
			if want > 0 && v.replies >= want {
				return v
			}
		case <-t.C:
			return v
		case <-ctx.Done():
			return v
		}
	}
}

// closeText says how a read ended: the close code and reason, or the error.
func closeText(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Text != "" {
			return fmt.Sprintf("close %d %q", ce.Code, clipN(ce.Text, 60))
		}
		return fmt.Sprintf("close %d", ce.Code)
	}
	return "connection dropped (" + err.Error() + ")"
}
