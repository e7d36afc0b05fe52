package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gorilla/websocket"
	wsguardjs "github.com/wsguard/wsguard/clients/js"
	"github.com/wsguard/wsguard/internal/browsertest"
)

// csp is the policy the server sends; the chat must work under it.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type fakeMsg struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    string          `json:"from"`
	TS      string          `json:"ts"`
	Data    json.RawMessage `json:"data"`
}

// fakeServer speaks just enough of the protocol (docs/PROTOCOL.md) to drive the chat client:
// subscribe (with since replay), history, publish (with cid dedupe), ping.
type fakeServer struct {
	t        *testing.T
	mu       sync.Mutex
	log      map[string][]fakeMsg
	cids     map[string]uint64
	conns    []*websocket.Conn
	frames   []map[string]any // every request received, in order
	loseAcks int              // publishes to store but answer by dropping the connection
	subs     map[*websocket.Conn][]string
}

func (f *fakeServer) append(ch, from, text string) fakeMsg {
	data, _ := json.Marshal(map[string]string{"text": text})
	m := fakeMsg{Channel: ch, Offset: uint64(len(f.log[ch]) + 1), From: from, TS: "2026-11-22T10:00:00Z", Data: data}
	f.log[ch] = append(f.log[ch], m)
	return m
}

func (f *fakeServer) pushLocked(m fakeMsg) {
	b, _ := json.Marshal(struct {
		Push string `json:"push"`
		fakeMsg
	}{"message", m})
	for c, chans := range f.subs {
		if slices.Contains(chans, m.Channel) {
			_ = c.WriteMessage(websocket.TextMessage, b)
		}
	}
}

// Push stores a message as another user would and fans it out.
func (f *fakeServer) Push(ch, from, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushLocked(f.append(ch, from, text))
}

func (f *fakeServer) ws(w http.ResponseWriter, r *http.Request) {
	protos := websocket.Subprotocols(r)
	if len(protos) != 2 || protos[0] != "wsguard.v1" || protos[1] != "wsguard.csrf.tok-123" {
		http.Error(w, "bad subprotocols", http.StatusForbidden)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{"wsguard.v1"}}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, c)
		f.mu.Unlock()
		c.Close()
	}()
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		var req map[string]any
		if json.Unmarshal(b, &req) != nil {
			return
		}
		if !f.handle(c, req) {
			return
		}
	}
}

func (f *fakeServer) handle(c *websocket.Conn, req map[string]any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames = append(f.frames, req)
	id := req["id"]
	ch, _ := req["channel"].(string)
	reply := func(result any) {
		_ = c.WriteJSON(map[string]any{"id": id, "ok": true, "result": result})
	}
	switch req["op"] {
	case "subscribe":
		f.subs[c] = append(f.subs[c], ch)
		latest := len(f.log[ch])
		reply(map[string]any{"offset": latest, "recovered": true})
		if since, ok := req["since"].(float64); ok && int(since) <= latest {
			for _, m := range f.log[ch][int(since):] {
				b, _ := json.Marshal(struct {
					Push string `json:"push"`
					fakeMsg
				}{"message", m})
				_ = c.WriteMessage(websocket.TextMessage, b)
			}
		}
	case "history":
		msgs := f.log[ch]
		if msgs == nil {
			msgs = []fakeMsg{}
		}
		reply(map[string]any{"messages": msgs})
	case "ping":
		_ = c.WriteJSON(map[string]any{"id": id, "ok": true})
	case "publish":
		cid, _ := req["cid"].(string)
		if off, ok := f.cids[cid]; ok {
			reply(map[string]any{"offset": off})
			return true
		}
		text, _ := req["data"].(map[string]any)["text"].(string)
		m := f.append(ch, "bob", text)
		f.cids[cid] = m.Offset
		f.pushLocked(m)
		if f.loseAcks > 0 {
			f.loseAcks--
			_ = c.UnderlyingConn().Close() // stored, but the answer is lost
			return false
		}
		reply(map[string]any{"offset": m.Offset})
	}
	return true
}

func (f *fakeServer) count(fn func() int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn()
}

// TestBrowserChatClient drives static/app.js in headless Chromium under the
// production CSP against a fake server: history in order, markup shown as
// text (C6), unread counts, a publish whose answer is lost retried with the
// same cid after reconnecting with since (F2, F3), and close 4001 ending the
// session without reconnecting.
func TestBrowserChatClient(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	pages := newPages(t)
	fs := &fakeServer{t: t, log: map[string][]fakeMsg{}, cids: map[string]uint64{}, subs: map[*websocket.Conn][]string{}}
	fs.append("room:lobby", "alice", "first")
	fs.append("room:lobby", "mallory", `<img src=x onerror="document.title='pwned'">`)
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", Static()))
	mux.Handle("GET "+wsguardjs.Path, wsguardjs.Handler())
	mux.HandleFunc("GET /ws", fs.ws)
	var savedMu sync.Mutex
	var saved []string // the last rooms list the page saved, with the page's token
	mux.HandleFunc("PUT /api/v1/rooms", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Rooms []string `json:"rooms"`
		}
		if r.Header.Get("X-CSRF-Token") != "tok-123" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "bad save", http.StatusBadRequest)
			return
		}
		savedMu.Lock()
		saved = body.Rooms
		savedMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"rooms":[]}`))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pages.Render(w, 200, "chat", PageData{Title: "Chat", CSRFToken: "tok-123", User: "bob", Rooms: []string{"room:lobby", "room:random"}})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx := browsertest.New(t, 60*time.Second)

	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var consoleMu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			if e.Entry != nil && e.Entry.Level == log.EntryLevelError {
				problems = append(problems, e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			if e.ExceptionDetails != nil {
				problems = append(problems, e.ExceptionDetails.Text)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("load: %v", err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'connected'`)
	browsertest.WaitJS(t, ctx, `document.querySelectorAll('#messages li[data-channel="room:lobby"]').length === 2`)

	texts := browsertest.Eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#messages li .text'), e => e.textContent)`)
	injected := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#messages img, #messages script').length`)
	title := browsertest.Eval[string](t, ctx, `document.title`)
	if len(texts) != 2 || texts[0] != "first" || !strings.HasPrefix(texts[1], "<img") || injected != 0 || title == "pwned" {
		t.Fatalf("history rendered %q, %d injected elements, title %q", texts, injected, title)
	}

	// A message in a room not on screen counts as unread, and is hidden.
	fs.Push("room:random", "carol", "psst")
	browsertest.WaitJS(t, ctx, `document.querySelector('#rooms [data-channel="room:random"] .unread').textContent === '1'`)
	if !browsertest.Eval[bool](t, ctx, `document.querySelector('#messages li[data-channel="room:random"]').hidden`) {
		t.Fatal("another room's message is visible")
	}

	// The publish is stored but its answer lost with the connection: the
	// client reconnects, resubscribes with since, retries the same cid.
	// chromedp.Submit calls form.submit(), which fires no submit event.
	fs.mu.Lock()
	fs.loseAcks = 1
	fs.mu.Unlock()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#send-input"), "exactly once"), chromedp.Submit(chromedp.CSS("#send-input"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	for {
		n := fs.count(func() int { return len(fs.conns) })
		p := fs.count(func() int {
			c := 0
			for _, fr := range fs.frames {
				if fr["op"] == "publish" {
					c++
				}
			}
			return c
		})
		if n >= 2 && p >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reconnect and retry: %d connections, %d publishes", n, p)
		case <-time.After(25 * time.Millisecond):
		}
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'connected'`)
	browsertest.WaitJS(t, ctx, `Array.from(document.querySelectorAll('#messages li .text')).filter(e => e.textContent === 'exactly once').length === 1`)
	fs.mu.Lock()
	var cids []string
	var sinces []any
	for _, fr := range fs.frames {
		if fr["op"] == "publish" {
			cids = append(cids, fr["cid"].(string))
		}
		if fr["op"] == "subscribe" && fr["channel"] == "room:lobby" {
			sinces = append(sinces, fr["since"])
		}
	}
	stored := len(fs.log["room:lobby"])
	fs.mu.Unlock()
	if len(cids) != 2 || cids[0] != cids[1] || !strings.HasPrefix(cids[0], "c-") {
		t.Fatalf("publish cids %q, want the same one twice", cids)
	}
	if stored != 3 {
		t.Fatalf("%d messages stored, want 3", stored)
	}
	// The push of the lost publish may or may not beat the close: since is
	// 2 (then the replay brings 3) or 3.
	if len(sinces) != 2 || sinces[0] != nil || (sinces[1] != float64(2) && sinces[1] != float64(3)) {
		t.Fatalf("subscribe since values %v, want [none 2|3]", sinces)
	}
	if shown := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#messages li[data-channel="room:lobby"]').length`); shown != 3 {
		t.Fatalf("%d lobby messages shown, want 3 (duplicates dropped)", shown)
	}

	// The user's ordinary paths: Enter in the join box, a click on Send.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#join-input"), "dev\r")); err != nil {
		t.Fatalf("join: %v", err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('room-title').textContent === 'room:dev' && document.querySelectorAll('#rooms li[data-channel="room:dev"]').length === 1`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#send-input"), "via click"), chromedp.Click(chromedp.CSS("#send-form button"))); err != nil {
		t.Fatalf("click send: %v", err)
	}
	browsertest.WaitJS(t, ctx, `Array.from(document.querySelectorAll('#messages li[data-channel="room:dev"] .text'), e => e.textContent).join('|') === 'via click'`)
	if n := fs.count(func() int { return len(fs.log["room:dev"]) }); n != 1 {
		t.Fatalf("%d messages stored in room:dev, want 1", n)
	}
	// The joined room was saved for the next visit.
	for i := 0; ; i++ {
		savedMu.Lock()
		got := strings.Join(saved, " ")
		savedMu.Unlock()
		if got == "room:lobby room:random room:dev" {
			break
		}
		if i > 200 {
			t.Fatalf("rooms saved %q, want room:lobby room:random room:dev", got)
		}
		time.Sleep(25 * time.Millisecond)
	}
	// A name outside the channel grammar is refused in the page.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#join-input"), "room:../x\r")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('error').textContent.includes('bad_request') && document.querySelectorAll('#rooms li').length === 3`)

	// Close 4001: the session is over; no reconnect.
	fs.mu.Lock()
	last := fs.conns[len(fs.conns)-1]
	_ = last.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "session ended"), time.Now().Add(time.Second))
	fs.mu.Unlock()
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'session ended' && !document.getElementById('session-ended').hidden`)
	time.Sleep(1200 * time.Millisecond) // longer than the first backoff steps: a reconnect would show
	if n := fs.count(func() int { return len(fs.conns) }); n != 2 {
		t.Fatalf("%d connections after 4001, want 2 (no reconnect)", n)
	}

	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("browser errors (CSP or script): %q", problems)
	}
}
