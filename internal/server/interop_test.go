package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/wsguard/wsguard/internal/config"
)

// These tests read the server's frames with WebSocket implementations
// nobody here wrote: coder/websocket in Go and Python's websockets. Our own
// framing is checked against gorilla elsewhere; a defect that both sides of
// one library agree on would pass that check and still break real clients.

// coderDial opens /ws as a signed-in browser would, with coder/websocket.
func coderDial(t *testing.T, ts *testServer, name string) *cws.Conn {
	t.Helper()
	ts.addUser(name, pw, false)
	b := ts.newBrowser()
	tok := b.login(name, pw)
	h := http.Header{}
	h.Set("Cookie", b.cookieHeader())
	h.Set("Origin", ts.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, "wss://"+ts.host+"/ws", &cws.DialOptions{
		HTTPClient:   ts.httpClient(nil),
		HTTPHeader:   h,
		Subprotocols: []string{"wsguard.v1", "wsguard.csrf." + tok},
	})
	if err != nil {
		t.Fatalf("coder/websocket dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// TestClientPingThenDeliveries is M13 as it was found: a client pings, and
// deliveries 0.5, 1.5, 3 and 6 s later must arrive intact. The server used
// to write the pong itself with a 1 s write deadline on the socket its
// flusher writes to, and a later delivery failed in the middle of a TLS
// record ("bad record MAC" at the client).
func TestClientPingThenDeliveries(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := coderDial(t, ts, "carol")
	bob := signedIn(t, ts, "bob")

	frames := make(chan map[string]any, 64)
	readErr := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { // coder/websocket reads pongs only while something reads
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			var f map[string]any
			if err := json.Unmarshal(b, &f); err != nil {
				readErr <- fmt.Errorf("frame is not JSON (%v): %.80q", err, b)
				return
			}
			frames <- f
		}
	}()
	var next func(what string) map[string]any
	next = func(what string) map[string]any {
		t.Helper()
		select {
		case f := <-frames:
			if f["push"] == "presence" {
				return next(what)
			}
			return f
		case err := <-readErr:
			t.Fatalf("%s: the client's read failed: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing arrived", what)
		}
		return nil
	}
	if err := c.Write(ctx, cws.MessageText, []byte(`{"id":1,"op":"subscribe","channel":"room:pings"}`)); err != nil {
		t.Fatal(err)
	}
	if f := next("subscribe"); f["ok"] != true {
		t.Fatalf("subscribe: %v", f)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := c.Ping(pctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	pcancel()
	pinged := time.Now()
	for i, after := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second} {
		time.Sleep(time.Until(pinged.Add(after)))
		text := fmt.Sprintf("after %s", after)
		send(t, bob, map[string]any{"id": i + 10, "op": "publish", "channel": "room:pings", "data": map[string]string{"text": text}})
		f := next(text)
		data, _ := f["data"].(map[string]any)
		if f["push"] != "message" || data["text"] != text {
			t.Fatalf("delivery %s: got %v", text, f)
		}
		if i == 1 { // and pinging again between deliveries changes nothing
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			if err := c.Ping(pctx); err != nil {
				t.Fatalf("second ping: %v", err)
			}
			pcancel()
		}
	}
}

// TestPingsDuringBurst: a client pinging continuously while a burst of
// messages streams to it reads every message, in order, and every pong.
func TestPingsDuringBurst(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *config.Config) {
		c.Limits.MessagesPerSecond = 1000
		c.Limits.MessageBurst = 1000
		c.Limits.UserMessagesPerSecond = 1000
	})
	c := coderDial(t, ts, "carol")
	bob := signedIn(t, ts, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Write(ctx, cws.MessageText, []byte(`{"id":1,"op":"subscribe","channel":"room:burst"}`)); err != nil {
		t.Fatal(err)
	}
	const n = 300
	got := make(chan error, 1)
	go func() {
		want := 1
		for want <= n {
			_, b, err := c.Read(ctx)
			if err != nil {
				got <- fmt.Errorf("after %d messages: %v", want-1, err)
				return
			}
			var f struct {
				Push string
				Data struct{ N int }
			}
			if json.Unmarshal(b, &f) != nil {
				got <- fmt.Errorf("frame is not JSON: %.80q", b)
				return
			}
			if f.Push != "message" {
				continue
			}
			if f.Data.N != want {
				got <- fmt.Errorf("message %d arrived as number %d", want, f.Data.N)
				return
			}
			want++
		}
		got <- nil
	}()
	pings := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Ping(pctx)
			pcancel()
			if err != nil {
				pings <- fmt.Errorf("ping %d: %v", i, err)
				return
			}
		}
		pings <- nil
	}()
	time.Sleep(100 * time.Millisecond) // the subscribe is answered before the burst
	for i := 1; i <= n; i++ {
		send(t, bob, map[string]any{"id": i + 1, "op": "publish", "channel": "room:burst", "data": map[string]int{"n": i}})
	}
	for _, ch := range []chan error{got, pings} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
}

// systemPython finds a Python 3 that has the websockets package (Debian's
// python3-websockets installs it for /usr/bin/python3). The test needs it:
// it says what to install rather than skip.
func systemPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import websockets").Run() == nil {
			return py
		}
	}
	t.Fatal("this test needs Python 3 with the websockets package: apt-get install python3-websockets (scripts/test.sh does it)")
	return ""
}

// TestPythonWebsocketsKeepalive: Python's websockets client, with its
// default keepalive (a ping every 20 s), stays subscribed through two and a
// half minutes of bounded traffic and reads every message intact and in
// order. It runs in parallel with the rest of the package.
func TestPythonWebsocketsKeepalive(t *testing.T) {
	t.Parallel()
	py := systemPython(t)
	ts := startServer(t, nil)
	ts.addUser("pyuser", pw, false)
	b := ts.newBrowser()
	tok := b.login("pyuser", pw)
	bob := signedIn(t, ts, "bob")
	ca := filepath.Join(ts.cfg.DataDir, "tls", "ca.pem")

	const n, every = 100, 1500 * time.Millisecond // about 150 s: seven keepalive pings
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "pyclient.py"), // #nosec G204 -- test runs our own script
		"wss://"+ts.host+"/ws", ts.url, b.cookieHeader(), tok, ca, "room:py", fmt.Sprint(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "subscribed" {
		t.Fatalf("python client: %q", lines.Text())
	}
	go func() {
		for i := 1; i <= n && ctx.Err() == nil; i++ {
			send(t, bob, map[string]any{"id": i + 1, "op": "publish", "channel": "room:py", "data": map[string]int{"n": i}})
			time.Sleep(every)
		}
	}()
	var got []string
	for lines.Scan() {
		got = append(got, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python client failed after %d lines %v: %v", len(got), got, err)
	}
	if len(got) != n+1 || got[n] != "done" {
		t.Fatalf("python client read %v, want %d messages then done", got, n)
	}
	for i := 0; i < n; i++ {
		if got[i] != fmt.Sprint(i+1) {
			t.Fatalf("message %d read as %q (all: %v)", i+1, got[i], strings.Join(got, ","))
		}
	}
}
