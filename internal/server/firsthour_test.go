package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// onlyListen replaces the harness's config with what a newcomer writes:
// listen on the harness's port and nothing else (data_dir and admin_listen
// keep the test from touching the working directory and a fixed port).
func onlyListen(t *testing.T) func(*config.Config) {
	return func(c *config.Config) {
		u, err := url.Parse(c.PublicURL) // the harness put its random port here
		if err != nil {
			t.Fatal(err)
		}
		yml := "listen: localhost:" + u.Port() + "\ndata_dir: " + c.DataDir + "\nadmin_listen: \"\"\n"
		fresh, err := config.LoadBytes("wsguard.yaml", []byte(yml), nil)
		if err != nil {
			t.Fatal(err)
		}
		*c = fresh
	}
}

func logTo(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// A newcomer changes only the port: the setup link, the origin allowlist
// and so the chat all follow it, and nothing is warned about.
func TestListenOnlyChatConnects(t *testing.T) {
	var logs syncBuffer
	ts := startServerWith(t, onlyListen(t), Options{Logger: logTo(&logs)})
	if got := ts.srv.cfg.PublicURL; got != ts.url {
		t.Fatalf("public_url = %q, want %q (following listen)", got, ts.url)
	}
	if u := ts.srv.SetupURL(); !strings.HasPrefix(u, ts.url+"/setup?token=") {
		t.Errorf("setup link %q is not on the listen port %s", u, ts.url)
	}
	ts.addUser("alice", "correct horse battery", false)
	b := ts.newBrowser()
	ws := b.connect(b.login("alice", "correct horse battery"))
	if err := ws.WriteJSON(map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var reply map[string]any
	if err := ws.ReadJSON(&reply); err != nil || reply["error"] != nil {
		t.Fatalf("subscribe over the socket: %v %v", reply, err)
	}
	if strings.Contains(logs.String(), "setting probably wrong") {
		t.Errorf("a listen-only config was warned about:\n%s", logs.String())
	}
}

// A public_url on another port, and a wildcard listen with the loopback-only
// development certificate, are each warned about at start.
func TestStartWarnsAboutUnreachableSettings(t *testing.T) {
	var logs syncBuffer
	startServerWith(t, func(c *config.Config) {
		c.Listen = "0.0.0.0:8446" // the harness hands Run its own listener
		c.PublicURL = "https://localhost:8443"
	}, Options{Logger: logTo(&logs)})
	out := logs.String()
	for _, want := range []string{
		"public_url: https://localhost:8443 points at port 8443 but listen is on port 8446",
		"development certificate is valid for localhost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start log lacks %q:\n%s", want, out)
		}
	}
}

// A handshake refused for its origin shows on the terminal, once a minute
// per reason, with the setting to change; the audit log keeps every one.
func TestRefusedHandshakeLoggedOnTerminal(t *testing.T) {
	var logs syncBuffer
	ts := startServerWith(t, nil, Options{Logger: logTo(&logs)})
	ts.addUser("alice", "correct horse battery", false)
	b := ts.newBrowser()
	tok := b.login("alice", "correct horse battery")
	for i := 0; i < 5; i++ {
		_, resp, err := b.dial("https://localhost:1", "wsguard.v1", "wsguard.csrf."+tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("handshake from another origin: %v %v", resp, err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "WebSocket handshake refused"); n != 1 {
		t.Fatalf("%d terminal lines for 5 refusals, want 1 (rate-limited):\n%s", n, out)
	}
	for _, want := range []string{"level=WARN", "reason=origin_not_allowed", "change=\"allowed_origins", "origin=https://localhost:1", ts.url} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal line lacks %q:\n%s", want, out)
		}
	}
	// The page's own origin still connects.
	b.connect(tok)
}

// The chat page asks POST /ws/origin why its handshake failed; the answer
// is a reason code, nothing more.
func TestOriginProbe(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.httpClient(nil)
	for origin, want := range map[string]string{ts.url: "", "https://localhost:1": "origin_not_allowed", "": "origin_missing", "null": "origin_null"} {
		req, _ := http.NewRequest("POST", ts.url+"/ws/origin", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]string
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(v) != 1 || v["reason"] != want {
			t.Errorf("Origin %q: %d %v %v, want reason %q only", origin, resp.StatusCode, v, err, want)
		}
	}
}

// The first start says what it creates; shutdown's last line says how many
// sockets were drained and how long it took.
func TestStartAndStopSayWhatTheyDid(t *testing.T) {
	var logs syncBuffer
	ts := startServerWith(t, nil, Options{Logger: logTo(&logs)})
	out := logs.String()
	for _, want := range []string{"first start: creating a development CA", "development CA created", "first start: creating the database"} {
		if !strings.Contains(out, want) {
			t.Errorf("start log lacks %q:\n%s", want, out)
		}
	}
	ts.addUser("alice", "correct horse battery", false)
	b := ts.newBrowser()
	ws := b.connect(b.login("alice", "correct horse battery"))
	// The client's upgrade completes before the server has counted the
	// socket; an answered request shows that it has.
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "ping"}); !f.OK {
		t.Fatalf("ping before the stop: %+v", f)
	}
	go func() { // answer the server's close frame, as a browser does
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ts.cancel()
	select {
	case <-ts.done:
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
	out = logs.String()
	last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	if !strings.Contains(last, "wsguard stopped") || !strings.Contains(last, "sockets_drained=1") ||
		!strings.Contains(last, "sockets_left_at_timeout=0") || !strings.Contains(last, "took=") {
		t.Errorf("last log line %q; want the drain summary\n%s", last, out)
	}
}
