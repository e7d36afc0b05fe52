package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsguard/wsguard/internal/config"
)

func signedIn(t *testing.T, ts *testServer, name string) *websocket.Conn {
	t.Helper()
	ts.addUser(name, pw, false)
	b := ts.newBrowser()
	return b.connect(b.login(name, pw))
}

// TestChatHappyPath: two users chat live; offsets are gap-free; history
// returns what was said; the publisher sees its own message when subscribed.
func TestChatHappyPath(t *testing.T) {
	ts := startServer(t, nil)
	alice := signedIn(t, ts, "alice")
	bob := signedIn(t, ts, "bob")
	for _, ws := range []*websocket.Conn{alice, bob} {
		f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"})
		var r struct {
			Offset    uint64 `json:"offset"`
			Recovered bool   `json:"recovered"`
		}
		resultField(t, f, &r)
	}
	for i := 1; i <= 3; i++ {
		f, _ := call(t, alice, map[string]any{"id": 10 + i, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "hi " + string(rune('0'+i))}})
		var r struct{ Offset uint64 }
		resultField(t, f, &r)
		if r.Offset != uint64(i) {
			t.Fatalf("offset %d, want %d", r.Offset, i)
		}
	}
	for i := 1; i <= 3; i++ {
		m := nextMessage(t, bob)
		if m.Offset != uint64(i) || m.From != "alice" || m.Channel != "room:lobby" {
			t.Fatalf("bob got %+v", m)
		}
		var d struct{ Text string }
		_ = json.Unmarshal(m.Data, &d)
		if d.Text != "hi "+string(rune('0'+i)) {
			t.Fatalf("text %q", d.Text)
		}
	}
	f, _ := call(t, bob, map[string]any{"id": 20, "op": "history", "channel": "room:lobby", "limit": 2})
	var h struct {
		Messages []struct {
			Offset uint64 `json:"offset"`
			From   string `json:"from"`
		} `json:"messages"`
	}
	resultField(t, f, &h)
	if len(h.Messages) != 2 || h.Messages[0].Offset != 2 || h.Messages[1].Offset != 3 {
		t.Fatalf("history %+v", h)
	}
	f, _ = call(t, bob, map[string]any{"id": 21, "op": "presence", "channel": "room:lobby"})
	var p struct{ Users []string }
	resultField(t, f, &p)
	if strings.Join(p.Users, ",") != "alice,bob" {
		t.Fatalf("presence %v", p.Users)
	}
	// Unsubscribed: no more deliveries.
	call(t, bob, map[string]any{"id": 22, "op": "unsubscribe", "channel": "room:lobby"})
	call(t, alice, map[string]any{"id": 23, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "gone?"}})
	f, pushes := call(t, bob, map[string]any{"id": 24, "op": "ping"})
	for _, p := range pushes {
		if p.Push == "message" {
			t.Fatalf("delivered after unsubscribe: %+v", p)
		}
	}
	_ = f
}

// TestChannelAuthorization covers A1, A4 and unknown namespaces.
func TestChannelAuthorization(t *testing.T) {
	ts := startServer(t, nil)
	alice := signedIn(t, ts, "alice")
	tests := []struct {
		op, channel, code string
	}{
		{"subscribe", "user:bob", "forbidden"},
		{"publish", "user:bob", "forbidden"},
		{"history", "user:bob", "forbidden"},
		{"subscribe", "secret:x", "forbidden"},
		{"subscribe", "room:../etc", "bad_request"},
		{"subscribe", "room:*", "bad_request"},
		{"subscribe", "room:a\x00b", "bad_request"},
		{"subscribe", "room:" + strings.Repeat("a", 10240), "bad_request"},
		{"subscribe", "nocolon", "bad_request"},
	}
	for i, tc := range tests {
		req := map[string]any{"id": i + 1, "op": tc.op, "channel": tc.channel}
		if tc.op == "publish" {
			req["data"] = map[string]any{"text": "x"}
		}
		f, _ := call(t, alice, req)
		if f.Error == nil || f.Error.Code != tc.code {
			t.Errorf("%s %q: %+v, want %s", tc.op, tc.channel, f.Error, tc.code)
		}
	}
	// The owner's own channel works.
	f, _ := call(t, alice, map[string]any{"id": 100, "op": "subscribe", "channel": "user:alice"})
	if f.Error != nil {
		t.Fatalf("own user channel: %+v", f.Error)
	}
}

// TestMalformedInput covers M3: errors, and the connection stays usable.
func TestMalformedInput(t *testing.T) {
	ts := startServer(t, nil)
	ws := signedIn(t, ts, "alice")
	// Every error to a frame whose id can be read carries that id, so a
	// client can tell which request failed; only an unreadable id is 0.
	bad := []struct {
		frame string
		id    int64
	}{
		{`not json`, 0},
		{`{"id":3,"op":"ping","extra":1}`, 3},
		{`{"id":4,"op":"ping"} {"id":2}`, 4},
		{`{"id":6,"op":"teleport"}`, 6},
		{`{"id":99999999999999999999999,"op":"ping"}`, 0},
		{`{"id":-1,"op":"ping"}`, 0},
		{`{"id":7,"op":"publish","channel":"room:x","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, 7},
		{`{"id":8,"op":"publish","channel":"room:x","data":{"text":"a\u0000b"}}`, 8},
		{`{"id":9,"op":"publish","channel":"room:x","cid":"` + strings.Repeat("c", 65) + `","data":1}`, 9},
	}
	for _, b := range bad {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(b.frame)); err != nil {
			t.Fatal(err)
		}
		f := readFrame(t, ws)
		if f.Error == nil || f.Error.Code != "bad_request" || f.ID != b.id {
			t.Fatalf("%.60q answered %+v, want bad_request with id %d", b.frame, f, b.id)
		}
	}
	f, _ := call(t, ws, map[string]any{"id": 5, "op": "ping"})
	if !f.OK {
		t.Fatal("connection unusable after bad frames")
	}
	// Repeated bad frames close 1008.
	for i := 0; i < 20; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("{")); err != nil {
			break
		}
	}
	if code := closeCode(t, ws); code != 1008 {
		t.Fatalf("close %d, want 1008", code)
	}
}

// TestReadLimitAndUTF8 covers M1 and M2.
func TestReadLimitAndUTF8(t *testing.T) {
	ts := startServer(t, nil)
	ws := signedIn(t, ts, "alice")
	big := `{"id":1,"op":"publish","channel":"room:x","data":{"text":"` + strings.Repeat("a", 64<<10) + `"}}`
	_ = ws.WriteMessage(websocket.TextMessage, []byte(big))
	if code := closeCode(t, ws); code != 1009 {
		t.Fatalf("oversized: close %d, want 1009", code)
	}
	ws2 := signedIn(t, ts, "bob")
	_ = ws2.WriteMessage(websocket.TextMessage, []byte{'{', 0xff, 0xfe, '}'})
	if code := closeCode(t, ws2); code != 1007 {
		t.Fatalf("invalid UTF-8: close %d, want 1007", code)
	}
	// Nothing was stored by either.
	n, _ := ts.srv.Store().Latest(t.Context(), "room:x")
	if n != 0 {
		t.Fatalf("stored %d messages from refused frames", n)
	}
}

// TestReplayAndDedupe covers F2 (since replays exactly the missed messages)
// and F3 (a retried cid is stored once and answered with the same offset).
func TestReplayAndDedupe(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("bob", pw, false)
	bobBrowser := ts.newBrowser()
	bobTok := bobBrowser.login("bob", pw)
	alice := signedIn(t, ts, "alice")

	first, _ := call(t, alice, map[string]any{"id": 1, "op": "publish", "channel": "room:r", "cid": "c-1", "data": map[string]any{"text": "one"}})
	retry, _ := call(t, alice, map[string]any{"id": 2, "op": "publish", "channel": "room:r", "cid": "c-1", "data": map[string]any{"text": "one"}})
	var a, b struct{ Offset uint64 }
	resultField(t, first, &a)
	resultField(t, retry, &b)
	if a.Offset != b.Offset {
		t.Fatalf("retry got offset %d, first %d", b.Offset, a.Offset)
	}
	for i := 2; i <= 5; i++ {
		call(t, alice, map[string]any{"id": 10 + i, "op": "publish", "channel": "room:r", "data": map[string]any{"n": i}})
	}
	if n, _ := ts.srv.Store().Latest(t.Context(), "room:r"); n != 5 {
		t.Fatalf("latest %d, want 5 (dedupe failed)", n)
	}
	// Bob was away after offset 2: he asks since 2 and gets 3, 4, 5 in order.
	bob := bobBrowser.connect(bobTok)
	f, _ := call(t, bob, map[string]any{"id": 1, "op": "subscribe", "channel": "room:r", "since": 2})
	var r struct {
		Offset    uint64 `json:"offset"`
		Recovered bool   `json:"recovered"`
	}
	resultField(t, f, &r)
	if r.Offset != 5 || !r.Recovered {
		t.Fatalf("subscribe answered %+v", r)
	}
	for want := uint64(3); want <= 5; want++ {
		m := nextMessage(t, bob)
		if m.Offset != want {
			t.Fatalf("replay offset %d, want %d", m.Offset, want)
		}
	}
	// Then live, with no duplicate.
	call(t, alice, map[string]any{"id": 30, "op": "publish", "channel": "room:r", "data": map[string]any{"n": 6}})
	if m := nextMessage(t, bob); m.Offset != 6 {
		t.Fatalf("live offset %d, want 6", m.Offset)
	}
}

// TestSlowConsumerCut covers M6: a subscriber that never reads is cut with
// 4008 once its queue fills, and everyone else keeps receiving.
func TestSlowConsumerCut(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.SendQueue = 8
		c.Limits.MessagesPerSecond = 10000
		c.Limits.MessageBurst = 10000
		c.Limits.UserMessagesPerSecond = 10000
		c.Limits.IPMessagesPerSecond = 10000
		c.Limits.WriteTimeout = config.Duration(500 * time.Millisecond)
	})
	slow := signedIn(t, ts, "slow")
	call(t, slow, map[string]any{"id": 1, "op": "subscribe", "channel": "room:busy"})
	honest := signedIn(t, ts, "honest")
	call(t, honest, map[string]any{"id": 1, "op": "subscribe", "channel": "room:busy"})
	pub := signedIn(t, ts, "pub")
	payload := strings.Repeat("x", 32<<10)
	// The slow reader's TCP buffers absorb some; then its queue fills.
	go func() {
		for {
			if _, _, err := honest.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 400; i++ {
		f, _ := call(t, pub, map[string]any{"id": i + 1, "op": "publish", "channel": "room:busy", "data": map[string]any{"text": payload}})
		if f.Error != nil {
			t.Fatalf("publish %d: %+v", i, f.Error)
		}
		if counterValue(ts.srv.Metrics().SlowConsumerCuts) > 0 {
			break
		}
	}
	if counterValue(ts.srv.Metrics().SlowConsumerCuts) == 0 {
		t.Fatal("slow consumer never cut")
	}
	// The slow one now reads: its connection ends, with 4008 when the close
	// frame could still be written behind the data its buffers held.
	if code := endCode(t, slow); code != 4008 && code != -1 {
		t.Fatalf("slow consumer closed with %d, want 4008", code)
	}
	// The honest subscriber still gets new messages.
	honest2 := signedIn(t, ts, "honest2")
	call(t, honest2, map[string]any{"id": 1, "op": "subscribe", "channel": "room:busy"})
	call(t, pub, map[string]any{"id": 1000, "op": "publish", "channel": "room:busy", "data": map[string]any{"text": "after"}})
	if m := nextMessage(t, honest2); m.From != "pub" {
		t.Fatalf("honest subscriber got %+v", m)
	}
}

func counterValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// endCode reads until the connection ends: the close code, or -1 when it
// ended without a close frame.
func endCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		return -1
	}
}
