package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
)

// serverRoutes lists the server's /api/v1 operations as "METHOD /path".
func serverRoutes() []string {
	out := make([]string, 0, len(apiRoutes))
	for _, r := range apiRoutes {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// TestOpenAPIRoutesMatchFile: every route the server registers is in
// docs/openapi.yaml and every operation of the file is a route; the check
// itself notices a route the file lacks and one the server lacks.
func TestOpenAPIRoutesMatchFile(t *testing.T) {
	sp := loadSpec(t)
	if errs := sp.checkRoutes(serverRoutes()); len(errs) > 0 {
		t.Fatalf("routes drift from docs/openapi.yaml:\n%s", strings.Join(errs, "\n"))
	}
	extra := append(serverRoutes(), "POST /api/v1/undocumented")
	if errs := sp.checkRoutes(extra); len(errs) != 1 || !strings.Contains(errs[0], "/api/v1/undocumented") {
		t.Fatalf("a route missing from the file was not noticed: %v", errs)
	}
	if errs := sp.checkRoutes(serverRoutes()[1:]); len(errs) != 1 || !strings.Contains(errs[0], "no such route") {
		t.Fatalf("an operation the server lacks was not noticed: %v", errs)
	}
}

// TestOpenAPIValidatorRefusesDrift: the validator is not a yes-man.
func TestOpenAPIValidatorRefusesDrift(t *testing.T) {
	sp := loadSpec(t)
	ct := "application/json"
	good := []struct {
		path string
		code int
		body string
	}{
		{"/api/v1/publish", 200, `{"offset":3}`},
		{"/api/v1/publish", 403, `{"error":{"code":"forbidden","message":"no"}}`},
		{"/api/v1/broadcast", 200, `{"results":[{"channel":"news:a","offset":1},{"channel":"news:b","error":{"code":"forbidden","message":"no"}}]}`},
	}
	for _, g := range good {
		if err := sp.checkAnswer("POST", g.path, g.code, ct, []byte(g.body)); err != nil {
			t.Errorf("valid answer refused: %v", err)
		}
	}
	bad := []struct {
		path string
		code int
		body string
	}{
		{"/api/v1/publish", 200, `{"offset":"3"}`},                         // wrong type
		{"/api/v1/publish", 200, `{"offset":3,"extra":1}`},                 // unknown field
		{"/api/v1/publish", 200, `{}`},                                     // required missing
		{"/api/v1/publish", 418, `{"offset":3}`},                           // status not listed
		{"/api/v1/publish", 403, `{"error":{"code":"nope","message":""}}`}, // code not in enum
		{"/api/v1/broadcast", 200, `{"results":[{"channel":"news:a","offset":1,"error":{"code":"forbidden","message":"x"}}]}`},
		{"/api/v1/history", 200, `{"messages":[{"channel":"news:a","offset":1,"from":"x","ts":"yesterday","data":1}]}`},
		{"/api/v1/nothing", 200, `{}`},
	}
	for _, b := range bad {
		if err := sp.checkAnswer("POST", b.path, b.code, ct, []byte(b.body)); err == nil {
			t.Errorf("drifted answer %s %d %s accepted", b.path, b.code, b.body)
		}
	}
	if err := sp.checkAnswer("POST", "/api/v1/publish", 200, "text/plain", []byte(`{"offset":1}`)); err == nil {
		t.Error("a non-JSON Content-Type was accepted")
	}
}

// apiTestServer is a node with a "news" namespace open to API keys for
// every action, a signed-in user alice subscribed to news:x and room:lobby.
func apiTestServer(t *testing.T) (*testServer, *browser, string) {
	ts := startServer(t, func(c *config.Config) {
		c.Namespaces["news"] = config.Namespace{
			Subscribe: []string{"users", "scope"}, Publish: []string{"scope"},
			History: []string{"users", "scope"}, Presence: []string{"users", "scope"},
		}
	})
	ts.addUser("alice", "correct horse battery", false)
	b := ts.newBrowser()
	tok := b.login("alice", "correct horse battery")
	return ts, b, tok
}

// TestOpenAPIEveryAnswer drives every route, answers that succeed and
// answers that refuse, through a client that checks each against
// docs/openapi.yaml; each operation must answer 2xx at least once.
func TestOpenAPIEveryAnswer(t *testing.T) {
	sp := loadSpec(t)
	ts, alice, tok := apiTestServer(t)
	c, rec := ts.specClient(t, sp)
	full := bearerHeader(ts.apiKey(t, "backend",
		"publish:news:*", "history:news:*", "presence:news:*", "channels:news:*", "channels:room:*", "info:node:*", "disconnect:user:*"))
	narrow := bearerHeader(ts.apiKey(t, "narrow", "publish:news:a"))
	ws := alice.connect(tok)
	for i, ch := range []string{"news:x", "room:lobby"} {
		if f, _ := call(t, ws, map[string]any{"id": i + 1, "op": "subscribe", "channel": ch}); f.Error != nil {
			t.Fatalf("subscribe %s: %+v", ch, f.Error)
		}
	}
	session := http.Header{"Cookie": {alice.cookieHeader()}, "X-Csrf-Token": {tok}, "Origin": {ts.url}}

	cases := []struct {
		method, path string
		h            http.Header
		body         string
		want         int
	}{
		{"POST", "/api/v1/publish", full, `{"channel":"news:x","data":{"n":1}}`, 200},
		{"POST", "/api/v1/publish", narrow, `{"channel":"news:x","data":{"n":1}}`, 403},
		{"POST", "/api/v1/publish", nil, `{"channel":"news:x","data":1}`, 401},
		{"POST", "/api/v1/publish", full, `{"channel":"news:x"}`, 400},
		{"POST", "/api/v1/publish", full, `{"channel":"news:x","data":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
		{"POST", "/api/v1/broadcast", full, `{"channels":["news:x","news:y","room:lobby"],"data":{"n":2}}`, 200},
		{"POST", "/api/v1/broadcast", full, `{"channels":[],"data":1}`, 400},
		{"POST", "/api/v1/broadcast", full, `{"channels":["news:x","news:x"],"data":1}`, 400},
		{"POST", "/api/v1/presence", full, `{"channel":"news:x"}`, 200},
		{"POST", "/api/v1/presence", narrow, `{"channel":"news:x"}`, 403},
		{"POST", "/api/v1/presence", full, `{"channel":"news"}`, 400},
		{"POST", "/api/v1/history", full, `{"channel":"news:x","limit":10}`, 200},
		{"POST", "/api/v1/history", full, `{"channel":"news:x","limit":-1}`, 400},
		{"POST", "/api/v1/history", narrow, `{"channel":"news:x"}`, 403},
		{"POST", "/api/v1/channels", full, ``, 200},
		{"POST", "/api/v1/channels", full, `{"pattern":"room:*"}`, 200},
		{"POST", "/api/v1/channels", full, `{"pattern":"bad pattern"}`, 400},
		{"POST", "/api/v1/channels", narrow, `{}`, 403},
		{"POST", "/api/v1/info", full, `{}`, 200},
		{"POST", "/api/v1/info", narrow, ``, 403},
		{"POST", "/api/v1/info", full, `{"x":1}`, 400},
		{"POST", "/api/v1/disconnect", narrow, `{"user":"bob"}`, 403},
		{"POST", "/api/v1/disconnect", full, `{"user":""}`, 400},
		{"POST", "/api/v1/disconnect", full, `{"user":"nobody"}`, 200},
		{"POST", "/api/v1/tickets", full, ``, 403},
		{"POST", "/api/v1/tickets", session, ``, 200},
		{"POST", "/api/v1/tickets", http.Header{"Origin": {ts.url}}, ``, 401},
		{"GET", "/api/v1/rooms", session, ``, 200},
		{"PUT", "/api/v1/rooms", session, `{"rooms":["room:lobby","room:lobby","news:x"]}`, 200},
		{"PUT", "/api/v1/rooms", session, `{"rooms":["nope"]}`, 400},
		{"GET", "/api/v1/rooms", http.Header{"Cookie": {alice.cookieHeader()}}, ``, 403},
		{"POST", "/api/v1/nothing-here", full, `{}`, 404},
		{"GET", "/api/v1/publish", full, ``, 404},
	}
	for _, k := range cases {
		st, m := specCall(t, c, ts, k.method, k.path, k.h, k.body)
		if st != k.want {
			t.Errorf("%s %s %.80s: %d %v, want %d", k.method, k.path, k.body, st, m, k.want)
		}
	}
	for _, r := range serverRoutes() {
		if !rec.seen[r] {
			t.Errorf("%s never answered 2xx in this test: drive it so its answer is checked", r)
		}
	}
}

// TestServiceAPIBroadcast: one message, many channels, per-channel
// results; a refused channel does not stop the others; a retry with the
// same cid stores nothing twice; subscribers receive it.
func TestServiceAPIBroadcast(t *testing.T) {
	sp := loadSpec(t)
	ts, alice, tok := apiTestServer(t)
	c, _ := ts.specClient(t, sp)
	key := bearerHeader(ts.apiKey(t, "backend", "publish:news:*"))
	ws := alice.connect(tok)
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "news:b"}); f.Error != nil {
		t.Fatalf("subscribe: %+v", f.Error)
	}
	body := `{"channels":["news:a","room:lobby","news:b"],"data":{"text":"hi"},"cid":"evt-1"}`
	var first []any
	for attempt := range 2 {
		st, m := specCall(t, c, ts, "POST", "/api/v1/broadcast", key, body)
		if st != 200 {
			t.Fatalf("broadcast: %d %v", st, m)
		}
		res := m["results"].([]any)
		if len(res) != 3 {
			t.Fatalf("results: %v", res)
		}
		r0, r1, r2 := res[0].(map[string]any), res[1].(map[string]any), res[2].(map[string]any)
		if r0["channel"] != "news:a" || r0["offset"] != float64(1) || r2["offset"] != float64(1) {
			t.Fatalf("attempt %d: results %v, want offset 1 in news:a and news:b", attempt, res)
		}
		if e, _ := r1["error"].(map[string]any); e["code"] != "forbidden" {
			t.Fatalf("room:lobby without a scope: %v, want forbidden", r1)
		}
		if attempt == 0 {
			first = res
		} else if !jsonEqual(first, res) {
			t.Fatalf("retry answered %v, first %v", res, first)
		}
	}
	f := nextMessage(t, ws)
	if f.Channel != "news:b" || f.Offset != 1 || !strings.Contains(string(f.Data), "hi") {
		t.Fatalf("push %+v", f)
	}
	// The retry stored nothing: history holds one message.
	hkey := bearerHeader(ts.apiKey(t, "reader", "history:news:*"))
	_, m := specCall(t, c, ts, "POST", "/api/v1/history", hkey, `{"channel":"news:b"}`)
	if msgs := m["messages"].([]any); len(msgs) != 1 {
		t.Fatalf("history after a retried broadcast: %v, want one message", msgs)
	}
	// More than 100 channels is refused whole.
	many := make([]string, 101)
	for i := range many {
		many[i] = `"news:c` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + `"`
	}
	if st, _ := specCall(t, c, ts, "POST", "/api/v1/broadcast", key, `{"channels":[`+strings.Join(many, ",")+`],"data":1}`); st != 400 {
		t.Fatalf("101 channels: %d, want 400", st)
	}
}

// TestServiceAPIReadsAsTheSocket: presence, history (paged), channels and
// info answer what the socket and the hub hold, and each is bounded by the
// key's scopes.
func TestServiceAPIReadsAsTheSocket(t *testing.T) {
	sp := loadSpec(t)
	ts, alice, tok := apiTestServer(t)
	c, _ := ts.specClient(t, sp)
	key := bearerHeader(ts.apiKey(t, "backend", "publish:news:*", "history:news:*", "presence:news:*", "channels:news:*", "info:node:*"))
	ws := alice.connect(tok)
	for i, ch := range []string{"news:x", "room:lobby"} {
		if f, _ := call(t, ws, map[string]any{"id": i + 1, "op": "subscribe", "channel": ch}); f.Error != nil {
			t.Fatalf("subscribe %s: %+v", ch, f.Error)
		}
	}
	for i := range 5 {
		if st, m := specCall(t, c, ts, "POST", "/api/v1/publish", key, `{"channel":"news:x","data":{"n":`+string(rune('0'+i))+`}}`); st != 200 {
			t.Fatalf("publish: %d %v", st, m)
		}
	}
	_, m := specCall(t, c, ts, "POST", "/api/v1/presence", key, `{"channel":"news:x"}`)
	if u := m["users"].([]any); len(u) != 1 || u[0] != "alice" {
		t.Fatalf("presence: %v", m)
	}
	// History pages as the socket's: oldest first, before exclusive.
	_, m = specCall(t, c, ts, "POST", "/api/v1/history", key, `{"channel":"news:x","limit":2}`)
	msgs := m["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["offset"] != float64(4) || msgs[1].(map[string]any)["offset"] != float64(5) {
		t.Fatalf("history limit 2: %v", msgs)
	}
	_, m = specCall(t, c, ts, "POST", "/api/v1/history", key, `{"channel":"news:x","before":4}`)
	msgs = m["messages"].([]any)
	if len(msgs) != 3 || msgs[0].(map[string]any)["offset"] != float64(1) || msgs[0].(map[string]any)["from"] != "api:backend" {
		t.Fatalf("history before 4: %v", msgs)
	}
	// Channels: only those the key's scopes cover (news, not room).
	_, m = specCall(t, c, ts, "POST", "/api/v1/channels", key, ``)
	b, _ := json.Marshal(m["channels"])
	if string(b) != `[{"channel":"news:x","subscribers":1,"users":1}]` {
		t.Fatalf("channels: %s", b)
	}
	_, m = specCall(t, c, ts, "POST", "/api/v1/channels", key, `{"pattern":"news:y*"}`)
	if len(m["channels"].([]any)) != 0 {
		t.Fatalf("channels news:y*: %v", m)
	}
	_, m = specCall(t, c, ts, "POST", "/api/v1/info", key, ``)
	nodes := m["nodes"].([]any)
	n := nodes[0].(map[string]any)
	if len(nodes) != 1 || n["id"] != m["node"] || n["connections"] != float64(1) || n["subscriptions"] != float64(2) || n["channels"] != float64(2) {
		t.Fatalf("info: %v", m)
	}
	// A user's JWT or session is not an operator: channels and info are
	// refused to anything but an API key with the scope.
	other := bearerHeader(ts.apiKey(t, "publisher", "publish:news:*"))
	for _, p := range []string{"/api/v1/channels", "/api/v1/info"} {
		if st, m := specCall(t, c, ts, "POST", p, other, `{}`); st != 403 || errCode(m) != "forbidden" {
			t.Fatalf("%s without its scope: %d %v", p, st, m)
		}
	}
	if !slices.Contains(serverRoutes(), "POST /api/v1/info") {
		t.Fatal("info route missing")
	}
}

// TestServiceAPIReadsRateLimited: reads through the service API are
// charged to the caller's message rate like socket requests; past it,
// 429 with Retry-After (checked against the file like every answer).
func TestServiceAPIReadsRateLimited(t *testing.T) {
	sp := loadSpec(t)
	ts := startServer(t, func(c *config.Config) {
		c.Limits.UserMessagesPerSecond = 1
		c.Namespaces["news"] = config.Namespace{Subscribe: []string{"scope"}, Presence: []string{"scope"}, History: []string{"scope"}}
	})
	c, _ := ts.specClient(t, sp)
	key := bearerHeader(ts.apiKey(t, "reader", "presence:news:*", "history:news:*", "channels:news:*", "info:node:*"))
	for _, p := range []struct{ path, body string }{
		{"/api/v1/presence", `{"channel":"news:x"}`}, {"/api/v1/history", `{"channel":"news:x"}`},
		{"/api/v1/channels", `{}`}, {"/api/v1/info", `{}`},
	} {
		limited := false
		for i := 0; i < 200 && !limited; i++ {
			st, m := specCall(t, c, ts, "POST", p.path, key, p.body)
			switch st {
			case 200:
			case 429:
				limited = errCode(m) == "rate_limited"
			default:
				t.Fatalf("%s: %d %v", p.path, st, m)
			}
		}
		if !limited {
			t.Fatalf("%s: 200 requests at once never hit the caller's rate", p.path)
		}
	}
}
