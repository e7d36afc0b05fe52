package conn

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/store"
)

// TestDeliverFillsGapsInOrder: commits of several nodes may reach a node
// out of order or twice. Whatever order the frames are delivered in, the
// client reads every offset once, in order: a gap is filled from the
// store, a repeat is dropped.
func TestDeliverFillsGapsInOrder(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "gap.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rules, err := authz.New(map[string]config.Namespace{"room": {Subscribe: []string{"users"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(st, broker.NewMemory())
	conns := make(chan *Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := New(ws, h, st, rules, Options{Principal: authz.Principal{Name: "alice"}})
		conns <- c
		c.Serve(r.Context())
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := <-conns

	const ch = "room:gap"
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"`+ch+`"}`)); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return v
	}
	if v := read(); v["ok"] != true {
		t.Fatalf("subscribe answered %v", v)
	}
	// Commits the store makes without live delivery (another node's), and
	// the frames this node's broker would carry for them.
	frames := map[uint64]*hub.Frame{}
	commit := func(n int) {
		for range n {
			r, err := st.Publish(t.Context(), store.Message{Channel: ch, From: "bob", Data: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			frames[r.Offset] = &hub.Frame{Channel: ch, Offset: r.Offset, Data: hub.EncodePush(r.Message)}
		}
	}
	deliver := func(offs ...uint64) {
		for _, o := range offs {
			c.Deliver(ch, []*hub.Frame{frames[o]})
		}
	}
	expect := func(from, to uint64) {
		t.Helper()
		for o := from; o <= to; o++ {
			v := read()
			if v["push"] != "message" || v["offset"] != float64(o) {
				t.Fatalf("read %v, want the push of offset %d", v, o)
			}
		}
	}
	commit(3)
	deliver(3) // 1 and 2 never arrive live: read from the store
	expect(1, 3)
	commit(1)
	deliver(2, 3, 4, 4) // repeats dropped
	expect(4, 4)
	commit(3)
	deliver(7, 5, 6, 6) // out of order
	expect(5, 7)
	// Nothing more was sent: a ping is answered next.
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":2,"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if v := read(); v["id"] != float64(2) {
		t.Fatalf("read %v after the last message, want the ping answer", v)
	}
}
