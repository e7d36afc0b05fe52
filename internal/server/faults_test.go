package server

// Faults (SECURITY.md F4, F6, F7): draining under load, an unavailable or
// locked database, and a certificate replaced under live connections.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// ack is one acknowledged publish.
type ack struct {
	cid    string
	offset uint64
}

// publishUntilClosed publishes on channel, one request at a time, until
// the connection ends or n requests were sent; it returns the acknowledged
// publishes and the close code (-1 without a close frame).
func publishUntilClosed(ws *websocket.Conn, name, channel string, n int, acked chan<- ack) int {
	for i := 1; i <= n; i++ {
		cid := fmt.Sprintf("%s-%d", name, i)
		b, _ := json.Marshal(map[string]any{"id": i, "op": "publish", "channel": channel, "cid": cid, "data": map[string]any{"n": i}})
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			return endCodeNoT(ws)
		}
		for {
			_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, m, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return ce.Code
				}
				return -1
			}
			var f frame
			if json.Unmarshal(m, &f) != nil || f.Push != "" || f.ID != int64(i) {
				continue
			}
			if f.OK {
				var r struct{ Offset uint64 }
				_ = json.Unmarshal(f.Result, &r)
				acked <- ack{cid, r.Offset}
			}
			break
		}
	}
	return endCodeNoT(ws)
}

func endCodeNoT(ws *websocket.Conn) int {
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return -1
	}
}

// TestFaultDrainUnderLoad covers F4: while publishers publish, the server
// is told to stop (SIGTERM cancels Run's context). Every client gets 1001,
// every acknowledged publish is in the store, readiness is false, new
// handshakes are refused, and Run returns within the drain timeout.
func TestFaultDrainUnderLoad(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.DrainTimeout = config.Duration(3 * time.Second)
		c.Limits.MessagesPerSecond = 10000
		c.Limits.MessageBurst = 10000
		c.Limits.UserMessagesPerSecond = 10000
		c.Limits.IPMessagesPerSecond = 10000
	})
	subs := []*websocket.Conn{ts.signIn("s1").connectFrom(honestIP, nil), ts.signIn("s2").connectFrom(honestIP2, nil)}
	for _, ws := range subs {
		call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:drain"})
	}
	acked := make(chan ack, 10000)
	codes := make(chan int, 4)
	var wg sync.WaitGroup
	for i, name := range []string{"p1", "p2"} {
		ws := ts.signIn(name).connectFrom(fmt.Sprintf("127.0.0.%d", 10+i), nil)
		wg.Add(1)
		go func() { defer wg.Done(); codes <- publishUntilClosed(ws, name, "room:drain", 2000, acked) }()
	}
	for _, ws := range subs {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- endCodeNoT(ws) }()
	}
	// Let the load run, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for len(acked) < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d publishes acknowledged before the drain", len(acked))
	}
	start := time.Now()
	ts.cancel()
	select {
	case <-ts.done:
	case <-time.After(ts.cfg.DrainTimeout.D() + 5*time.Second):
		t.Fatal("Run did not return within the drain timeout")
	}
	took := time.Since(start)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 1001 {
			t.Errorf("client closed with %d, want 1001 (going away)", c)
		}
	}
	if took > ts.cfg.DrainTimeout.D()+2*time.Second {
		t.Errorf("drain took %s, past the drain timeout %s", took, ts.cfg.DrainTimeout.D())
	}

	// Nothing acknowledged is lost.
	close(acked)
	hist, err := ts.srv.Store().History(context.Background(), "room:drain", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	byOffset := map[uint64]string{}
	for _, m := range hist {
		byOffset[m.Offset] = m.CID
	}
	n := 0
	for a := range acked {
		n++
		if byOffset[a.offset] != a.cid {
			t.Errorf("acknowledged %s at offset %d, store has %q there", a.cid, a.offset, byOffset[a.offset])
		}
	}
	if n > len(hist) {
		t.Errorf("%d acknowledged, %d stored", n, len(hist))
	}

	// While draining: not ready, and new sockets are sent elsewhere.
	h := ts.srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ws", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("/ws while draining: %d Retry-After %q, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestFaultLockedDatabase covers F6 (locked database; a held write lock
// stands in for a full disk, which root cannot simulate with chmod): a
// publish is answered `unavailable`, never acknowledged, nothing is
// delivered, and publishing works again once the lock goes.
func TestFaultLockedDatabase(t *testing.T) {
	ts := startServer(t, nil)
	a, b := honestPair(t, ts, "room:lobby")
	chat(t, a, b, "room:lobby", 1)

	other, err := sql.Open("sqlite", filepath.Join(ts.cfg.DataDir, "wsguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	f, _ := call(t, a, map[string]any{"id": 50, "op": "publish", "channel": "room:lobby", "cid": "locked-1", "data": map[string]any{"text": "lost?"}})
	if f.OK || f.Error == nil || f.Error.Code != "unavailable" {
		t.Fatalf("publish while the database is locked: %+v, want error unavailable", f)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// Nothing was stored or delivered; the retry with the same cid is a
	// fresh message at the next offset, delivered once.
	f, pushes := call(t, b, map[string]any{"id": 51, "op": "ping"})
	for _, p := range pushes {
		if p.Push == "message" {
			t.Fatalf("a publish answered unavailable was delivered: %+v", p)
		}
	}
	_ = f
	f, _ = call(t, a, map[string]any{"id": 52, "op": "publish", "channel": "room:lobby", "cid": "locked-1", "data": map[string]any{"text": "retry"}})
	var r struct{ Offset uint64 }
	resultField(t, f, &r)
	if r.Offset != 2 {
		t.Fatalf("retry offset %d, want 2 (the failed publish left no gap)", r.Offset)
	}
	if m := nextMessage(t, b); m.Offset != 2 {
		t.Fatalf("subscriber got %+v", m)
	}
}

// TestFaultStoreUnavailable covers F6 and readiness: with the store gone,
// /readyz answers 503, publishes answer `unavailable`, and /healthz (the
// process is alive) still answers 200.
func TestFaultStoreUnavailable(t *testing.T) {
	ts := startServer(t, nil)
	a, b := honestPair(t, ts, "room:lobby")
	c := ts.httpClient(nil)
	get := func(path string) int {
		resp, err := c.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/readyz"); s != 200 {
		t.Fatalf("/readyz %d before the fault", s)
	}
	if err := ts.srv.Store().Close(); err != nil {
		t.Fatal(err)
	}
	if s := get("/readyz"); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store closed: %d, want 503", s)
	}
	if s := get("/healthz"); s != 200 {
		t.Errorf("/healthz with the store closed: %d, want 200", s)
	}
	f, _ := call(t, a, map[string]any{"id": 60, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "x"}})
	if f.OK || f.Error == nil || f.Error.Code != "unavailable" {
		t.Fatalf("publish with the store closed: %+v, want unavailable", f)
	}
	alive(t, "subscriber with the store down", b)
}

// TestFaultCertificateReplaced covers F7: the certificate files are
// replaced while a socket is open; new handshakes get the new certificate
// and the open socket keeps chatting.
func TestFaultCertificateReplaced(t *testing.T) {
	var certFile, keyFile string
	ts := startServer(t, func(c *config.Config) {
		// The dev CA in data_dir signs the first certificate (the harness
		// trusts it); the live files are copies the test replaces.
		cf, kf, err := tlsconf.EnsureDevCA(filepath.Join(c.DataDir, "tls"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(c.DataDir, "live.crt"), filepath.Join(c.DataDir, "live.key")
		copyFile(t, cf, certFile)
		copyFile(t, kf, keyFile)
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
	})
	// A second CA for the replacement; clients trust both.
	newDir := t.TempDir()
	newCert, newKey, err := tlsconf.EnsureDevCA(newDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(newDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ts.roots.AppendCertsFromPEM(caPEM)
	newLeaf, err := tls.LoadX509KeyPair(newCert, newKey)
	if err != nil {
		t.Fatal(err)
	}
	newDER := newLeaf.Certificate[0]

	a, b := honestPair(t, ts, "room:lobby")
	if served(t, ts).Equal(mustParse(t, newDER)) {
		t.Fatal("new certificate served before the swap")
	}
	// Replace both files atomically, key first.
	for _, p := range [][2]string{{newKey, keyFile}, {newCert, certFile}} {
		tmp := p[1] + ".tmp"
		copyFile(t, p[0], tmp)
		if err := os.Rename(tmp, p[1]); err != nil {
			t.Fatal(err)
		}
	}
	swapped := false
	for i := 0; i < 100 && !swapped; i++ { // the watcher polls every 2 s
		swapped = served(t, ts).Equal(mustParse(t, newDER))
		if !swapped {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !swapped {
		t.Fatal("the replaced certificate was never served")
	}
	// The sockets opened under the old certificate still chat.
	chat(t, a, b, "room:lobby", 3)
	// And a new one, under the new certificate, joins.
	c := ts.signIn("carol").connectFrom("127.0.0.4", nil)
	alive(t, "carol under the new certificate", c)
}

func served(t *testing.T, ts *testServer) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", ts.publicAddr(), ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
