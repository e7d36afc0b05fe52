package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/hooks"
)

// appBackend is the application's backend as a real HTTP server on
// loopback: it verifies each request's signature and decides.
type appBackend struct {
	t      *testing.T
	secret []byte
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func startAppBackend(t *testing.T) *appBackend {
	b := &appBackend{t: t, secret: []byte("a-hook-secret-of-at-least-32-bytes-long")}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *appBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := hooks.Verify(b.secret, r.Header.Get(hooks.SignatureHeader), body, time.Now(), 0); err != nil {
		b.t.Errorf("backend: signature refused: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	answer := map[string]any{"allow": true}
	switch r.URL.Path {
	case "/connect":
		switch m["user"] {
		case "mallory":
			answer["allow"] = false
		case "alice":
			answer["roles"] = []string{"member"}
		}
	case "/subscribe":
		if m["channel"] == "team:secret" {
			answer["allow"] = false
		}
	case "/publish":
		d, _ := m["data"].(map[string]any)
		d["checked"] = true
		answer["data"] = d
	case "/events":
		b.mu.Lock()
		b.events = append(b.events, m)
		b.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	_ = json.NewEncoder(w).Encode(answer)
}

func (b *appBackend) seen(event, user, channel string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.events {
		if e["event"] == event && e["user"] == user && (channel == "" || e["channel"] == channel) {
			return true
		}
	}
	return false
}

// TestHooksAtTheServer: a node wired to an application backend. The
// backend refuses mallory's connection, gives alice a role that the
// namespace rules honour, refuses one channel, amends published data, and
// hears of joins, leaves and the connection's end.
func TestHooksAtTheServer(t *testing.T) {
	app := startAppBackend(t)
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secretFile, append(app.secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) {
		c.Namespaces["team"] = config.Namespace{Subscribe: []string{"role:member"}, Publish: []string{"role:member"}, History: []string{"role:member"}, Presence: []string{"role:member"}}
		c.Hooks = config.Hooks{Connect: app.srv.URL + "/connect", Subscribe: app.srv.URL + "/subscribe",
			Publish: app.srv.URL + "/publish", Events: app.srv.URL + "/events", SecretFile: secretFile,
			Timeout: config.Duration(2 * time.Second), AllowLoopbackHTTP: true, EventsQueue: 100, EventsAttempts: 3}
	})
	for _, u := range []string{"alice", "bob", "mallory"} {
		ts.addUser(u, "correct horse battery", false)
	}

	// mallory passes every check of ours; the application says no.
	m := ts.newBrowser()
	mtok := m.login("mallory", "correct horse battery")
	if _, resp, err := m.dial(ts.url, "wsguard.v1", "wsguard.csrf."+mtok); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory's handshake: %v %v, want 403 from the connect hook", resp, err)
	}
	if !strings.Contains(ts.auditLog(t), "hook_denied") {
		t.Fatal("the refusal by the connect hook is not in the audit log")
	}

	// bob connects but has no role: team: stays closed to him.
	b := ts.newBrowser()
	bws := b.connect(b.login("bob", "correct horse battery"))
	if f, _ := call(t, bws, map[string]any{"id": 1, "op": "subscribe", "channel": "team:x"}); f.Error == nil || f.Error.Code != "forbidden" {
		t.Fatalf("bob on team:x without the role: %+v", f)
	}

	// alice gets role member from the connect hook.
	a := ts.newBrowser()
	ws := a.connect(a.login("alice", "correct horse battery"))
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "team:x"}); f.Error != nil {
		t.Fatalf("alice on team:x with the hook's role: %+v", f.Error)
	}
	if f, _ := call(t, ws, map[string]any{"id": 2, "op": "subscribe", "channel": "team:secret"}); f.Error == nil || f.Error.Code != "forbidden" {
		t.Fatalf("team:secret, refused by the subscribe hook: %+v", f)
	}
	f, pushes := call(t, ws, map[string]any{"id": 3, "op": "publish", "channel": "team:x", "data": map[string]any{"text": "hi"}})
	if f.Error != nil {
		t.Fatalf("publish: %+v", f.Error)
	}
	var msg frame
	for _, p := range pushes { // the push may overtake the answer
		if p.Push == "message" {
			msg = p
		}
	}
	if msg.Push == "" {
		msg = nextMessage(t, ws)
	}
	var data map[string]any
	_ = json.Unmarshal(msg.Data, &data)
	if data["text"] != "hi" || data["checked"] != true {
		t.Fatalf("delivered %s, want the publish hook's amended data", msg.Data)
	}

	// Webhooks: alice joined team:x; she leaves and disconnects.
	if f, _ := call(t, ws, map[string]any{"id": 4, "op": "unsubscribe", "channel": "team:x"}); f.Error != nil {
		t.Fatalf("unsubscribe: %+v", f.Error)
	}
	ws.Close()
	for i := 0; !(app.seen("join", "alice", "team:x") && app.seen("leave", "alice", "team:x") && app.seen("disconnect", "alice", "")); i++ {
		if i > 500 {
			app.mu.Lock()
			t.Fatalf("webhooks received: %v", app.events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHooksBackendDownFailsClosed: with the backend gone, connections are
// refused (503), not let through.
func TestHooksBackendDownFailsClosed(t *testing.T) {
	app := startAppBackend(t)
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secretFile, app.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	url := app.srv.URL
	app.srv.Close()
	ts := startServer(t, func(c *config.Config) {
		c.Hooks.Connect = url + "/connect"
		c.Hooks.SecretFile = secretFile
		c.Hooks.AllowLoopbackHTTP = true
		c.Hooks.Timeout = config.Duration(500 * time.Millisecond)
	})
	ts.addUser("alice", "correct horse battery", false)
	a := ts.newBrowser()
	tok := a.login("alice", "correct horse battery")
	if _, resp, err := a.dial(ts.url, "wsguard.v1", "wsguard.csrf."+tok); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake with the backend down: %v %v, want 503", resp, err)
	}
}

// TestWebhooksStuckBackendDoesNotDelayDelivery: with the events backend
// hanging, joins pile up in the bounded queue (the oldest dropped and
// counted) while subscribes and deliveries go on as before.
func TestWebhooksStuckBackendDoesNotDelayDelivery(t *testing.T) {
	stuck := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(app.Close)
	t.Cleanup(func() { close(stuck) }) // before app.Close, which waits for handlers
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secretFile, []byte("a-hook-secret-of-at-least-32-bytes-long"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) {
		c.Hooks.Events = app.URL + "/events"
		c.Hooks.SecretFile = secretFile
		c.Hooks.AllowLoopbackHTTP = true
		c.Hooks.EventsQueue = 2
		c.Hooks.Timeout = config.Duration(30 * time.Second)
	})
	ts.addUser("alice", "correct horse battery", false)
	a := ts.newBrowser()
	ws := a.connect(a.login("alice", "correct horse battery"))
	for i := range 10 {
		if f, _ := call(t, ws, map[string]any{"id": i + 1, "op": "subscribe", "channel": "room:r" + string(rune('a'+i))}); f.Error != nil {
			t.Fatalf("subscribe %d: %+v", i, f.Error)
		}
	}
	f, pushes := call(t, ws, map[string]any{"id": 20, "op": "publish", "channel": "room:rj", "data": 1})
	if f.Error != nil {
		t.Fatalf("publish: %+v", f.Error)
	}
	got := false
	for _, p := range pushes {
		got = got || p.Push == "message"
	}
	if !got {
		if m := nextMessage(t, ws); m.Channel != "room:rj" {
			t.Fatalf("push %+v", m)
		}
	}
	// 10 joins, one in flight, two queued: the rest were dropped.
	if d := ts.srv.hooks.Dropped(); d < 7 {
		t.Fatalf("dropped %d webhooks, want at least 7 with a queue of 2 and a stuck backend", d)
	}
}
