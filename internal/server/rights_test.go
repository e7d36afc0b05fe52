package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
)

// rightsClient is one socket of the rights tests with its own request ids.
type rightsClient struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

func (ts *testServer) rightsClient(t *testing.T, bearer string) *rightsClient {
	t.Helper()
	ws, st := ts.dialStatus(t, bearerHeader(bearer), "", "wsguard.v1")
	if st != 101 {
		t.Fatalf("dial: %d", st)
	}
	return &rightsClient{t: t, ws: ws}
}

// do sends one request (extra fields in req) and returns its reply and the
// pushes read before it.
func (c *rightsClient) do(op, channel string, req map[string]any) (frame, []frame) {
	c.t.Helper()
	c.id++
	if req == nil {
		req = map[string]any{}
	}
	req["id"], req["op"], req["channel"] = c.id, op, channel
	if op == "publish" && req["data"] == nil {
		req["data"] = map[string]any{"text": "x"}
	}
	return call(c.t, c.ws, req)
}

// TestRightsSinceNeedsHistory covers A5's first row from the attacker's
// side: a credential that may subscribe but not read history asks for the
// past with since. It is refused with forbidden and nothing is replayed, its
// socket still works, and a holder of the history right still recovers.
func TestRightsSinceNeedsHistory(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	editorClaims := claims("ed", time.Hour)
	editorClaims["roles"] = []string{"editor"}
	editor := ts.rightsClient(t, k.rs(t, editorClaims))
	for range 3 {
		if f, _ := editor.do("publish", "feed:prices", nil); !f.OK {
			t.Fatalf("editor publish: %+v", f)
		}
	}
	pub := ts.apiKey(t, "pub", "publish:news:*")
	for range 3 {
		if st, m := ts.api(t, "/api/v1/publish", bearerHeader(pub), `{"channel":"news:eu","data":{"t":1}}`); st != 200 {
			t.Fatalf("news publish: %d %v", st, m)
		}
	}

	// The attackers: a user who may only subscribe to feed, and an API key
	// holding subscribe:news:* and nothing else.
	bob := ts.rightsClient(t, k.rs(t, claims("bob", time.Hour)))
	watch := ts.rightsClient(t, ts.apiKey(t, "watch", "subscribe:news:*"))
	for _, tc := range []struct {
		c       *rightsClient
		channel string
	}{{bob, "feed:prices"}, {watch, "news:eu"}} {
		f, pushes := tc.c.do("subscribe", tc.channel, map[string]any{"since": 0})
		if f.Error == nil || f.Error.Code != "forbidden" {
			t.Errorf("%s: subscribe with since = %+v, want forbidden", tc.channel, f)
		}
		// A ping's answer comes after anything the refused subscribe queued.
		p, more := call(t, tc.c.ws, map[string]any{"id": 999, "op": "ping"})
		if !p.OK {
			t.Fatalf("%s: ping after the refusal: %+v", tc.channel, p)
		}
		if all := append(pushes, more...); len(all) > 0 {
			t.Errorf("%s: the refused subscribe replayed %d pushes, first %+v", tc.channel, len(all), all[0])
		}
		// The user's side of the same credential: a live subscription, no past.
		if f, pushes := tc.c.do("subscribe", tc.channel, nil); !f.OK || len(pushes) != 0 {
			t.Errorf("%s: subscribe without since = %+v, %d pushes", tc.channel, f, len(pushes))
		}
	}

	// The user's side: the history right still replays the past, in order.
	f, _ := editor.do("subscribe", "feed:prices", map[string]any{"since": 0})
	if !f.OK {
		t.Fatalf("editor subscribe with since: %+v", f)
	}
	var res struct {
		Offset    uint64 `json:"offset"`
		Recovered bool   `json:"recovered"`
	}
	if err := json.Unmarshal(f.Result, &res); err != nil || res.Offset != 3 || !res.Recovered {
		t.Fatalf("editor subscribe answered %s", f.Result)
	}
	for want := uint64(1); want <= 3; want++ {
		if m := nextMessage(t, editor.ws); m.Offset != want {
			t.Fatalf("replay: offset %d, want %d", m.Offset, want)
		}
	}
}

// TestRightsPresencePushes covers A5's second row: a subscriber without the
// presence right never hears who joins or leaves; one with it does.
func TestRightsPresencePushes(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	// feed: users subscribe; editors hold presence and publish.
	bob := ts.rightsClient(t, k.rs(t, claims("bob", time.Hour)))
	if f, pushes := bob.do("subscribe", "feed:prices", nil); !f.OK || len(pushes) != 0 {
		t.Fatalf("bob subscribe: %+v, pushes %+v", f, pushes)
	}
	editor := func(name string) *rightsClient {
		c := claims(name, time.Hour)
		c["roles"] = []string{"editor"}
		return ts.rightsClient(t, k.rs(t, c))
	}
	ed := editor("ed")
	f, early := ed.do("subscribe", "feed:prices", nil)
	if !f.OK {
		t.Fatalf("ed subscribe: %+v", f)
	}
	// ed hears its own join first: presence pushes go out gathered, a
	// short interval after the change.
	awaitPresence(t, ed, early, "ed", "")
	// The user's side: the presence right brings joins and leaves.
	ann := editor("ann")
	f, early = ann.do("subscribe", "feed:prices", nil)
	if !f.OK {
		t.Fatalf("ann subscribe: %+v", f)
	}
	awaitPresence(t, ed, nil, "ann", "")
	awaitPresence(t, ann, early, "ann", "") // ann hears of itself too
	if f, _ := ann.do("unsubscribe", "feed:prices", nil); !f.OK {
		t.Fatalf("ann unsubscribe: %+v", f)
	}
	awaitPresence(t, ed, nil, "", "ann")
	if f, _ = ed.do("publish", "feed:prices", nil); !f.OK {
		t.Fatalf("ed publish: %+v", f)
	}
	// Every presence push reached bob (had it been sent to him) before ed
	// published, so reading up to the message sees all of them.
	for range 20 {
		f := readFrame(t, bob.ws)
		if f.Push == "presence" {
			t.Fatalf("bob, without the presence right, heard joins %v and leaves %v", f.Join, f.Leave)
		}
		if f.Push == "message" {
			return
		}
	}
	t.Fatal("bob: no message push within 20 frames")
}

// awaitPresence reads c's frames (after the pushes already read, early)
// until a presence push tells join (or leave), within 20 frames.
func awaitPresence(t *testing.T, c *rightsClient, early []frame, join, leave string) {
	t.Helper()
	heard := func(f frame) bool {
		return f.Push == "presence" && (join == "" || slices.Contains(f.Join, join)) && (leave == "" || slices.Contains(f.Leave, leave))
	}
	for _, f := range early {
		if heard(f) {
			return
		}
	}
	for range 20 {
		if heard(readFrame(t, c.ws)) {
			return
		}
	}
	t.Fatalf("no presence push telling join %q leave %q within 20 frames", join, leave)
}

// TestRightsDisconnectServicePrincipals covers A5's third row: a key that
// may disconnect users, even disconnect:user:*, cannot close another API
// key's sockets; only a disconnect:api:<pattern> scope naming the key can.
func TestRightsDisconnectServicePrincipals(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	ops := ts.apiKey(t, "ops", "disconnect:user:*")
	other := ts.rightsClient(t, ts.apiKey(t, "other", "subscribe:news:*"))
	dave := ts.rightsClient(t, k.rs(t, claims("dave", time.Hour)))

	for _, target := range []string{"api:other", "api:*", "api:"} {
		body, _ := json.Marshal(map[string]string{"user": target})
		if st, m := ts.api(t, "/api/v1/disconnect", bearerHeader(ops), string(body)); st != 403 || errCode(m) != "forbidden" {
			t.Errorf("disconnect:user:* against %q: %d %v, want 403 forbidden", target, st, m)
		}
	}
	if f, _ := call(t, other.ws, map[string]any{"id": 1, "op": "ping"}); !f.OK {
		t.Fatalf("the other key's socket did not survive: %+v", f)
	}

	// The user's side: the same key still reaches people.
	if st, m := ts.api(t, "/api/v1/disconnect", bearerHeader(ops), `{"user":"dave"}`); st != 200 {
		t.Fatalf("disconnect dave: %d %v", st, m)
	}
	if code := closeCode(t, dave.ws); code != 4001 {
		t.Fatalf("dave closed %d, want 4001", code)
	}
	// And a scope that names the service reaches it.
	sweeper := ts.apiKey(t, "sweeper", "disconnect:api:oth*")
	if st, m := ts.api(t, "/api/v1/disconnect", bearerHeader(sweeper), `{"user":"dave"}`); st != 403 {
		t.Errorf("disconnect:api:oth* against a user: %d %v, want 403", st, m)
	}
	if st, m := ts.api(t, "/api/v1/disconnect", bearerHeader(sweeper), `{"user":"api:other"}`); st != 200 {
		t.Fatalf("disconnect:api:oth* against api:other: %d %v", st, m)
	}
	if code := closeCode(t, other.ws); code != 4001 {
		t.Fatalf("the other key's socket closed %d, want 4001", code)
	}
}

// TestRightsAPIKeyPublishesToRoom: with the default namespaces, a backend
// key holding publish:room:* posts into a chat room through
// /api/v1/publish and the room's subscribers receive it; the scope stays
// within its action and namespace (K5).
func TestRightsAPIKeyPublishesToRoom(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	alice := ts.rightsClient(t, k.rs(t, claims("alice", time.Hour)))
	if f, _ := alice.do("subscribe", "room:lobby", nil); !f.OK {
		t.Fatalf("subscribe: %+v", f)
	}
	backend := ts.apiKey(t, "backend", "publish:room:*")
	st, m := ts.api(t, "/api/v1/publish", bearerHeader(backend), `{"channel":"room:lobby","data":{"text":"deploy done"}}`)
	if st != 200 || m["offset"] != float64(1) {
		t.Fatalf("publish to room with publish:room:*: %d %v, want 200 offset 1", st, m)
	}
	if got := nextMessage(t, alice.ws); got.From != "api:backend" || got.Offset != 1 {
		t.Fatalf("alice got %+v", got)
	}
	news := ts.apiKey(t, "newsonly", "publish:news:*")
	if st, m := ts.api(t, "/api/v1/publish", bearerHeader(news), `{"channel":"room:lobby","data":1}`); st != 403 {
		t.Fatalf("publish:news:* into room: %d %v, want 403", st, m)
	}
	// publish:room:* grants publish only: not history.
	sock := ts.rightsClient(t, backend)
	if f, _ := sock.do("history", "room:lobby", nil); f.Error == nil || f.Error.Code != "forbidden" {
		t.Fatalf("history with publish:room:*: %+v, want forbidden", f)
	}
}

// TestRetentionSinceOlderThanKept: a room keeps its last history_size
// messages; a client resuming from before them is told recovered:false and
// gets no partial replay, while one resuming within them gets exactly the
// missed messages.
func TestRetentionSinceOlderThanKept(t *testing.T) {
	ts, k := startTokenServer(t, func(c *config.Config) {
		room := c.Namespaces["room"]
		room.HistorySize = 5
		c.Namespaces["room"] = room
	})
	alice := ts.rightsClient(t, k.rs(t, claims("alice", time.Hour)))
	for range 8 {
		if f, _ := alice.do("publish", "room:kept", nil); !f.OK {
			t.Fatalf("publish: %+v", f)
		}
	}
	type answer struct {
		Offset    uint64 `json:"offset"`
		Recovered bool   `json:"recovered"`
	}
	for _, tc := range []struct {
		since     uint64
		recovered bool
		replay    []uint64
	}{
		{2, false, nil}, // 3 was pruned: the gap cannot be filled
		{3, true, []uint64{4, 5, 6, 7, 8}},
		{6, true, []uint64{7, 8}},
	} {
		c := ts.rightsClient(t, k.rs(t, claims("bob", time.Hour)))
		f, pushes := c.do("subscribe", "room:kept", map[string]any{"since": tc.since})
		var a answer
		if !f.OK || json.Unmarshal(f.Result, &a) != nil || a.Offset != 8 || a.Recovered != tc.recovered {
			t.Fatalf("since %d: %+v %s, want offset 8 recovered %v", tc.since, f, f.Result, tc.recovered)
		}
		_, more := call(t, c.ws, map[string]any{"id": 999, "op": "ping"})
		var got []uint64
		for _, p := range append(pushes, more...) {
			if p.Push == "message" {
				got = append(got, p.Offset)
			}
		}
		if !slices.Equal(got, tc.replay) {
			t.Errorf("since %d: replayed %v, want %v", tc.since, got, tc.replay)
		}
	}
	// history holds only what is kept.
	f, _ := alice.do("history", "room:kept", map[string]any{"limit": 100})
	var h struct {
		Messages []struct {
			Offset uint64 `json:"offset"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(f.Result, &h); err != nil || len(h.Messages) != 5 || h.Messages[0].Offset != 4 {
		t.Fatalf("history: %s", f.Result)
	}
}

// TestRetentionOvertakesSlowReplay: a client resumes with since, is told
// recovered:true, then reads so slowly that retention prunes what the
// replay had not sent yet. It must not receive a silent gap: it gets a
// contiguous start of the replay, then the socket is cut (4008, audited as
// replay_overtaken), so its resume with since answers recovered:false.
func TestRetentionOvertakesSlowReplay(t *testing.T) {
	const kept = 20
	ts, k := startTokenServer(t, func(c *config.Config) {
		room := c.Namespaces["room"]
		room.HistorySize = kept
		c.Namespaces["room"] = room
		c.Limits.UserMessagesPerSecond = 1e6
		c.Limits.IPMessagesPerSecond = 1e6
		c.Limits.WriteTimeout = config.Duration(60 * time.Second) // the stall is the reader's, not a dead peer
		c.Limits.MaxMessageBytes = 1 << 20
		c.Limits.SendQueueBytes = 2 << 20
	})
	backend := ts.apiKey(t, "backend", "publish:room:*")
	big := `{"channel":"room:slow","data":{"t":"` + strings.Repeat("x", 700<<10) + `"}}`
	for range kept { // 14 MB: more than the socket buffers and the send queue hold
		if st, m := ts.api(t, "/api/v1/publish", bearerHeader(backend), big); st != 200 {
			t.Fatalf("publish: %d %v", st, m)
		}
	}
	// A reader with a small receive buffer, so the replay stalls early.
	d := websocket.Dialer{TLSClientConfig: ts.tlsConfig(), Subprotocols: []string{"wsguard.v1"}, HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", ts.publicAddr())
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
			}
			return c, err
		}}
	ws, _, err := d.Dial("wss://"+ts.host+"/ws", bearerHeader(k.rs(t, claims("reader", time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:slow", "since": 0})
	if f := readFrame(t, ws); !f.OK || !strings.Contains(string(f.Result), `"recovered":true`) {
		t.Fatalf("subscribe: %+v %s", f, f.Result)
	}
	// While the replay waits for the reader in its first page (16
	// messages, 11 MB), the channel moves on by 19: offsets 20 on are all
	// that is kept, so the second page would start after a gap.
	for range 19 {
		if st, m := ts.api(t, "/api/v1/publish", bearerHeader(backend), `{"channel":"room:slow","data":1}`); st != 200 {
			t.Fatalf("publish: %d %v", st, m)
		}
	}
	// The reader catches up. Whatever reached it is contiguous from 1; the
	// socket ends (the close frame may be lost behind what the reader left
	// unread: the cut happened while it was not reading).
	var next uint64 = 1
	ended := false
	for i := 0; i < 2*kept && !ended; i++ {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			if ce.Code != 4008 || !strings.Contains(ce.Text, "retention") {
				t.Fatalf("closed %d %q, want 4008 naming retention", ce.Code, ce.Text)
			}
			ended = true
			continue
		case err != nil:
			ended = true
			continue
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.Push != "message" {
			continue
		}
		if f.Offset != next {
			t.Fatalf("received offset %d after %d: a gap passed silently", f.Offset, next-1)
		}
		next++
	}
	if next > 17 {
		t.Fatalf("the replay reached offset %d; the test wants it stalled in its first page", next-1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ts.auditLog(t), `"reason":"replay_overtaken"`) {
		if time.Now().After(deadline) {
			t.Fatal("no connection.cut with reason replay_overtaken in the audit log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The resume the client makes next is told the gap cannot be filled.
	ws2 := ts.rightsClient(t, k.rs(t, claims("reader", time.Hour)))
	f, _ := ws2.do("subscribe", "room:slow", map[string]any{"since": next - 1})
	if !f.OK || !strings.Contains(string(f.Result), `"recovered":false`) {
		t.Fatalf("resume from %d: %+v %s, want recovered:false", next-1, f, f.Result)
	}
}

// TestPresencePushesOffPerNamespace: an operator with a room too big for
// join/leave pushes sets presence_pushes: false on its namespace; its
// subscribers hear no joins, yet presence still lists everyone, and other
// namespaces keep their pushes.
func TestPresencePushesOffPerNamespace(t *testing.T) {
	ts, k := startTokenServer(t, func(c *config.Config) {
		c.Namespaces["hall"] = config.Namespace{Subscribe: []string{"users"}, Publish: []string{"users"},
			Presence: []string{"users"}, PresencePushes: config.Off}
	})
	alice := ts.rightsClient(t, k.rs(t, claims("alice", time.Hour)))
	bob := ts.rightsClient(t, k.rs(t, claims("bob", time.Hour)))
	for _, c := range []*rightsClient{alice, bob} {
		for _, ch := range []string{"hall:big", "room:small"} {
			if f, _ := c.do("subscribe", ch, nil); !f.OK {
				t.Fatalf("subscribe %s: %+v", ch, f)
			}
		}
	}
	// room keeps its pushes: alice hears bob join there.
	awaitPresence(t, alice, nil, "bob", "")
	f, early := alice.do("presence", "hall:big", nil)
	var res struct{ Users []string }
	if err := json.Unmarshal(f.Result, &res); !f.OK || err != nil || len(res.Users) != 2 {
		t.Fatalf("presence hall:big: %+v %s, want alice and bob", f, f.Result)
	}
	// hall's joins were gathered with room's and would have gone out by
	// now; bob publishes and alice reads up to his message.
	if f, _ := bob.do("publish", "hall:big", nil); !f.OK {
		t.Fatalf("publish: %+v", f)
	}
	frames := early
	for range 20 {
		g := readFrame(t, alice.ws)
		frames = append(frames, g)
		if g.Push == "message" {
			break
		}
	}
	for _, g := range frames {
		if g.Push == "presence" && g.Channel == "hall:big" {
			t.Fatalf("a presence push in hall, whose pushes are off: %+v", g)
		}
	}
}
