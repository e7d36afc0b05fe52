package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test")

// backend is a real HTTPS server playing the application's backend: it
// verifies every request's signature as the docs tell receivers to, and
// answers with answer.
func backend(t *testing.T, answer func(hook string, body map[string]any) (int, any)) (*httptest.Server, *[]map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := Verify(secret, r.Header.Get(SignatureHeader), b, time.Now(), 0); err != nil {
			t.Errorf("the backend refused wsguard's signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body is not JSON: %q", b)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		status, ans := answer(r.Header.Get("Wsguard-Hook"), m)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func newHooks(t *testing.T, srv *httptest.Server, mutate func(*Options)) *Hooks {
	t.Helper()
	o := Options{Connect: srv.URL + "/connect", Subscribe: srv.URL + "/subscribe", Publish: srv.URL + "/publish",
		Secret: secret, Timeout: 2 * time.Second, Client: srv.Client()}
	if mutate != nil {
		mutate(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHooksAllowDenyAndRoles: the backend's yes allows (with extra roles on
// connect), its no refuses with a forbidden error; each request it got
// carried what the docs say.
func TestHooksAllowDenyAndRoles(t *testing.T) {
	srv, got := backend(t, func(hook string, m map[string]any) (int, any) {
		if m["user"] == "mallory" {
			return 200, map[string]any{"allow": false, "reason": "banned in the app"}
		}
		if hook == "connect" {
			return 200, map[string]any{"allow": true, "roles": []string{"editor", "beta"}}
		}
		return 200, map[string]any{"allow": true}
	})
	h := newHooks(t, srv, nil)
	ctx := context.Background()
	roles, err := h.Connect(ctx, ConnectRequest{User: "alice", Kind: "session", IP: "192.0.2.1"})
	if err != nil || strings.Join(roles, ",") != "editor,beta" {
		t.Fatalf("connect alice: %v %v, want editor,beta", roles, err)
	}
	if err := h.Subscribe(ctx, "alice", "room:lobby"); err != nil {
		t.Fatalf("subscribe alice: %v", err)
	}
	if data, err := h.Publish(ctx, "alice", "room:lobby", json.RawMessage(`{"text":"hi"}`)); err != nil || string(data) != `{"text":"hi"}` {
		t.Fatalf("publish alice: %s %v, want the data unchanged", data, err)
	}
	if _, err := h.Connect(ctx, ConnectRequest{User: "mallory"}); !errors.Is(err, authz.ErrForbidden) {
		t.Fatalf("connect mallory: %v, want forbidden", err)
	}
	if err := h.Subscribe(ctx, "mallory", "room:lobby"); !errors.Is(err, authz.ErrForbidden) {
		t.Fatalf("subscribe mallory: %v, want forbidden", err)
	}
	if _, err := h.Publish(ctx, "mallory", "room:lobby", json.RawMessage(`1`)); !errors.Is(err, authz.ErrForbidden) {
		t.Fatalf("publish mallory: %v, want forbidden", err)
	}
	first := (*got)[0]
	if first["hook"] != "connect" || first["user"] != "alice" || first["kind"] != "session" || first["ip"] != "192.0.2.1" {
		t.Fatalf("connect request: %v", first)
	}
	if pub := (*got)[2]; pub["channel"] != "room:lobby" || pub["data"].(map[string]any)["text"] != "hi" {
		t.Fatalf("publish request: %v", pub)
	}
}

// TestHooksFailClosed: no answer within the timeout, an error status, a
// redirect, a malformed answer or an invalid role is a no, never a yes.
func TestHooksFailClosed(t *testing.T) {
	release := make(chan struct{})
	var mode string
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "slow":
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			_, _ = io.WriteString(w, `{"allow":true}`)
		case "500":
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"allow":true}`)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "garbage":
			_, _ = io.WriteString(w, `allow`)
		case "noallow":
			_, _ = io.WriteString(w, `{"roles":["x"]}`)
		case "badrole":
			_, _ = io.WriteString(w, `{"allow":true,"roles":["users"," admin"]}`)
		case "nulldata":
			_, _ = io.WriteString(w, `{"allow":true,"data":null}`)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	h := newHooks(t, srv, func(o *Options) { o.Timeout = 200 * time.Millisecond; o.Client = client })
	for _, m := range []string{"slow", "500", "redirect", "garbage", "noallow", "badrole"} {
		mu.Lock()
		mode = m
		mu.Unlock()
		roles, err := h.Connect(context.Background(), ConnectRequest{User: "alice"})
		if !errors.Is(err, ErrUnavailable) || roles != nil {
			t.Errorf("connect with backend %s: %v %v, want ErrUnavailable (fail closed)", m, roles, err)
		}
		if err := h.Subscribe(context.Background(), "alice", "room:a"); m != "badrole" && !errors.Is(err, ErrUnavailable) {
			t.Errorf("subscribe with backend %s: %v, want ErrUnavailable", m, err)
		}
	}
	mu.Lock()
	mode = "nulldata"
	mu.Unlock()
	if _, err := h.Publish(context.Background(), "alice", "room:a", json.RawMessage(`1`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("publish amended to null: %v, want ErrUnavailable", err)
	}
}

// TestHooksPublishAmendedData: the backend may rewrite a message.
func TestHooksPublishAmendedData(t *testing.T) {
	srv, _ := backend(t, func(hook string, m map[string]any) (int, any) {
		text := m["data"].(map[string]any)["text"].(string)
		return 200, map[string]any{"allow": true, "data": map[string]any{"text": strings.ReplaceAll(text, "darn", "****"), "checked": true}}
	})
	h := newHooks(t, srv, func(o *Options) { o.MaxData = 64 })
	data, err := h.Publish(context.Background(), "alice", "room:a", json.RawMessage(`{"text":"darn it"}`))
	if err != nil || string(data) != `{"checked":true,"text":"**** it"}` {
		t.Fatalf("amended: %s %v", data, err)
	}
	// Amended data past the size limit is refused, not stored.
	if _, err := h.Publish(context.Background(), "alice", "room:a", json.RawMessage(`{"text":"`+strings.Repeat("x", 80)+`"}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("oversized amendment: %v, want ErrUnavailable", err)
	}
}

// TestHooksOffAllow: with no URL a hook allows without asking.
func TestHooksOffAllow(t *testing.T) {
	h, err := New(Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if roles, err := h.Connect(context.Background(), ConnectRequest{User: "a"}); err != nil || roles != nil {
		t.Fatal(roles, err)
	}
	if _, err := New(Options{Secret: []byte("short")}); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

// TestVerifyRefusesForgery is the receiving side: Verify accepts what Sign
// made and refuses a forged, altered, unsigned or replayed request.
func TestVerifyRefusesForgery(t *testing.T) {
	body := []byte(`{"event":"join","user":"alice","channel":"room:a"}`)
	now := time.Now()
	good := Sign(secret, body, now)
	if err := Verify(secret, good, body, now, 0); err != nil {
		t.Fatalf("a good signature was refused: %v", err)
	}
	other := []byte("another secret of thirty-two bytes!!")
	cases := map[string]struct {
		header string
		body   []byte
		want   error
	}{
		"signed with another secret": {Sign(other, body, now), body, ErrBadSignature},
		"body altered":               {good, []byte(strings.Replace(string(body), "alice", "admin", 1)), ErrBadSignature},
		"no header":                  {"", body, ErrNoSignature},
		"garbage header":             {"sha256=abc", body, ErrBadSignature},
		"timestamp moved":            {strings.Replace(good, "t=", "t=1", 1), body, ErrStale},
		"replayed after 10 minutes":  {Sign(secret, body, now.Add(-10*time.Minute)), body, ErrStale},
		"signature truncated":        {good[:len(good)-2], body, ErrBadSignature},
	}
	for name, c := range cases {
		if err := Verify(secret, c.header, c.body, now, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// TestWebhookRetriedAfter500: a 500 is retried, with the same delivery id,
// until the backend takes it.
func TestWebhookRetriedAfter500(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	delivered := make(chan map[string]any, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := Verify(secret, r.Header.Get(SignatureHeader), b, time.Now(), 0); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("Wsguard-Delivery"))
		n := len(ids)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(500)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delivered <- m
	}))
	t.Cleanup(srv.Close)
	h := newHooks(t, srv, func(o *Options) { o.Events = srv.URL + "/events"; o.Backoff = 10 * time.Millisecond })
	stop := h.Start()
	t.Cleanup(stop)
	h.Emit(Event{Event: "join", User: "alice", Channel: "room:a"})
	select {
	case m := <-delivered:
		if m["event"] != "join" || m["user"] != "alice" || m["channel"] != "room:a" || m["id"] == "" {
			t.Fatalf("delivered %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not delivered after two 500s")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] || ids[0] == "" {
		t.Fatalf("delivery ids over the retries: %q, want one id three times", ids)
	}
}

// TestWebhookQueueFullDropsOldest: with the backend stuck, Emit still
// returns at once; past the queue's size the oldest events are dropped
// and counted, and the newest are delivered once the backend recovers.
func TestWebhookQueueFullDropsOldest(t *testing.T) {
	unblock := make(chan struct{})
	var mu sync.Mutex
	var users []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-unblock
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		users = append(users, m["user"].(string))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h := newHooks(t, srv, func(o *Options) {
		o.Events = srv.URL + "/events"
		o.QueueSize = 3
		o.Timeout = 20 * time.Second
	})
	stop := h.Start()
	t.Cleanup(stop)
	h.Emit(Event{Event: "join", User: "u0"})
	// Wait until u0 is in flight (taken off the queue), so the count below is exact.
	for i := 0; h.Queued() != 0; i++ {
		if i > 500 {
			t.Fatal("the first event was never taken for delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		for i := 1; i <= 10; i++ {
			h.Emit(Event{Event: "join", User: "u" + string(rune('0'+i%10)) + string(rune('a'+i))})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked while the backend was stuck")
	}
	if h.Dropped() != 7 || h.Queued() != 3 {
		t.Fatalf("dropped %d, queued %d; want 7 dropped (the oldest) and 3 queued", h.Dropped(), h.Queued())
	}
	close(unblock)
	for i := 0; ; i++ {
		mu.Lock()
		n := len(users)
		mu.Unlock()
		if n == 4 {
			break
		}
		if i > 1000 {
			t.Fatalf("delivered %d of 4", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(users, ","); got != "u0,u8i,u9j,u0k" {
		t.Fatalf("delivered %s, want the first (in flight) and the newest three", got)
	}
}
