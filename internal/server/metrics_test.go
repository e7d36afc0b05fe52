package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
)

// scrape reads the admin handler's /metrics as a loopback peer.
func scrape(t *testing.T, ts *testServer) string {
	t.Helper()
	req := httptest.NewRequest("GET", "http://localhost:9443/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	ts.srv.AdminHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// series returns the value of one exposition line ("name{labels}"), or -1.
func series(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestMetricsMoveWithActivity scrapes the admin handler after real
// traffic and checks that each named series moved; the admin handler
// refuses a non-loopback peer.
func TestMetricsMoveWithActivity(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.MessagesPerSecond = 2
		c.Limits.MessageBurst = 500 // the slow-consumer publisher stays under it; the flood does not
		c.Limits.UserMessagesPerSecond = 10000
		c.Limits.IPMessagesPerSecond = 10000
		c.Limits.SendQueue = 4
		c.Limits.WriteTimeout = config.Duration(500 * time.Millisecond)
	})
	before := scrape(t, ts)
	if v := series(before, "wsguard_connections"); v != 0 {
		t.Fatalf("connections %v before any", v)
	}

	// Logins: one ok per signIn, one failed.
	ts.addUser("eve", pw, false)
	eve := ts.newBrowser()
	tok := eve.formToken("/login")
	if resp, _ := eve.post("/login", url.Values{"username": {"eve"}, "password": {"wrong password!!"}, "csrf_token": {tok}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", resp.StatusCode)
	}
	// Handshakes accepted and refused.
	a, b := honestPair(t, ts, "room:lobby")
	if ws, _, err := ts.dialFrom(attackerIP, nil, ts.url, false, "wsguard.v1"); err == nil {
		ws.Close()
		t.Fatal("handshake without credential accepted")
	}
	// Messages in and out, delivery latency, store commits.
	chat(t, a, b, "room:lobby", 3)
	mid := scrape(t, ts)
	if v := series(mid, "wsguard_connections"); v != 2 {
		t.Errorf("connections %v, want 2", v)
	}
	// A slow consumer: subscribed, never reading, while a publisher fills its queue.
	slow := ts.signIn("slow").connectFrom("127.0.0.4", nil)
	call(t, slow, map[string]any{"id": 1, "op": "subscribe", "channel": "room:busy"})
	pub := ts.signIn("pub").connectFrom("127.0.0.5", nil)
	payload := strings.Repeat("x", 32<<10)
	for i := 0; i < 450 && counterValue(ts.srv.Metrics().SlowConsumerCuts) == 0; i++ {
		f, _ := call(t, pub, map[string]any{"id": i + 1, "op": "publish", "channel": "room:busy", "data": map[string]any{"text": payload}})
		if f.Error != nil {
			t.Fatalf("publish %d: %+v", i, f.Error)
		}
	}
	// A flood, one ping at a time (a queue of 4 would cut a pipelined one
	// as a slow consumer first): rate_limited once the burst is spent.
	m := ts.signIn("mallory").connectFrom(attackerIP, nil)
	limited := false
	for i := 1; i <= 600 && !limited; i++ {
		f := readReply(t, m, map[string]any{"id": i, "op": "ping"})
		limited = f.Error != nil && f.Error.Code == "rate_limited"
	}
	if !limited {
		t.Fatal("never rate limited")
	}

	after := scrape(t, ts)
	for _, s := range []string{
		`wsguard_handshakes_total{outcome="accepted"}`,
		`wsguard_handshakes_total{outcome="refused"}`,
		`wsguard_refusals_total{reason="session_missing"}`,
		`wsguard_messages_in_total`,
		`wsguard_messages_out_total`,
		`wsguard_delivery_latency_seconds_count`,
		`wsguard_queue_drops_total`,
		`wsguard_slow_consumer_cuts_total`,
		`wsguard_rate_limited_total{limit="connection"}`,
		`wsguard_logins_total{outcome="ok"}`,
		`wsguard_logins_total{outcome="failed"}`,
		`wsguard_store_commit_seconds_count`,
	} {
		if v := series(after, s); v <= 0 {
			t.Errorf("%s = %v after activity, want > 0", s, v)
		}
	}
	if in, out := series(after, "wsguard_messages_in_total"), series(mid, "wsguard_messages_in_total"); in <= out {
		t.Errorf("messages_in did not grow with the flood: %v -> %v", out, in)
	}
	// Closed sockets leave the gauge.
	for _, ws := range []*websocket.Conn{a, b, pub, m} {
		ws.Close()
	}
	// Bounded wait, generous for a loaded CI machine: a socket leaves the
	// gauge when its server side has finished (an in-flight request first).
	var v float64
	for i := 0; i < 300; i++ {
		if v = series(scrape(t, ts), "wsguard_connections"); v == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v != 0 {
		t.Errorf("connections %v after every socket closed, want 0", v)
	}

	// The admin handler is for loopback peers only.
	req := httptest.NewRequest("GET", "http://localhost:9443/metrics", nil)
	req.RemoteAddr = "192.0.2.1:5555"
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	rec := httptest.NewRecorder()
	ts.srv.AdminHandler().ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusForbidden || strings.Contains(string(body), "wsguard_") {
		t.Errorf("non-loopback /metrics: %d", rec.Code)
	}
	// /metrics is not on the public handler.
	c := ts.httpClient(nil)
	resp, err := c.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", resp.StatusCode)
	}
}

// TestMetricsStandardNames: an operator's stock Go and process dashboards
// find their series on a running node's /metrics under the usual names,
// and wsguard_build_info says which build answers.
func TestMetricsStandardNames(t *testing.T) {
	ts := startServer(t, nil)
	body := scrape(t, ts)
	for _, s := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_open_fds", "process_resident_memory_bytes"} {
		if v := series(body, s); v <= 0 {
			t.Errorf("%s = %v, want > 0", s, v)
		}
	}
	if strings.Contains(body, "wsguard_go_") || strings.Contains(body, "wsguard_process_") {
		t.Error("runtime metrics still carry the wsguard_ prefix")
	}
	found := false
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "wsguard_build_info{") && strings.Contains(line, `goversion="go`) &&
			strings.Contains(line, "revision=") && strings.Contains(line, "version=") && strings.HasSuffix(line, "} 1") {
			found = true
		}
	}
	if !found {
		t.Error("no wsguard_build_info{goversion,revision,version} 1 series")
	}
}
