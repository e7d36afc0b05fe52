package server

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/store"
)

// seedLarge stores n messages of about size bytes in channel, straight
// through the store, several at a time so they share group commits.
func seedLarge(t *testing.T, ts *testServer, channel string, n, size int) {
	t.Helper()
	data := json.RawMessage(`{"text":"` + strings.Repeat("x", size) + `"}`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := ts.srv.store.Publish(context.Background(), store.Message{Channel: channel, From: "seed", Data: data}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestReplayAmplificationBounded is M12 as it was found: one signed-in user
// opens 20 sockets that never read; each subscribes with since=0 to a room
// holding 1000 messages of 60 KB, and five ask for history with limit 1000.
// The server used to queue every replayed message and build every history
// answer whole: +2 GiB. Now what is queued per socket is bounded in bytes,
// replays and history are paged, a user has at most 4 in progress, and
// sockets that do not drain are cut (4008). Server memory must stay under
// the bound stated here while honest users keep chatting.
func TestReplayAmplificationBounded(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.WriteTimeout = config.Duration(3 * time.Second)
	})
	seedLarge(t, ts, "room:big", 1000, 60_000)
	alice := signedIn(t, ts, "alice")
	bob := signedIn(t, ts, "bob")
	call(t, alice, map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"})

	base := heapInUse()
	const bound = 64 << 20 // the attack's whole cost; it was over 2 GiB
	ts.addUser("mallory", pw, false)
	b := ts.newBrowser()
	tok := b.login("mallory", pw)
	var socks []*websocket.Conn
	for i := 0; i < 20; i++ {
		ws := b.connect(tok)
		socks = append(socks, ws)
		send(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:big", "since": 0})
		if i < 5 {
			send(t, ws, map[string]any{"id": 2, "op": "history", "channel": "room:big", "limit": 1000})
		}
	}
	var peak uint64
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if h := heapInUse(); h > peak {
			peak = h
		}
		if i%8 == 0 { // honest users are served throughout
			chat(t, bob, alice, "room:lobby", 1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	grew := int64(peak) - int64(base)
	t.Logf("heap before %d MiB, peak during the attack %d MiB (+%d MiB)", base>>20, peak>>20, grew>>20)
	if grew > bound {
		t.Fatalf("the attack grew the heap by %d MiB, bound %d MiB", grew>>20, bound>>20)
	}
	if counterValue(ts.srv.Metrics().SlowConsumerCuts) == 0 {
		t.Error("no socket that did not drain was cut")
	}
	chat(t, bob, alice, "room:lobby", 3)
	_ = socks
}

// TestReplayAndHistoryOfLargeMessages is the user's side of the bounds: a
// client that reads gets a full replay of 1000 messages of 60 KB, exactly
// once and in order, and pages through history with "more" and before.
func TestReplayAndHistoryOfLargeMessages(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.MessagesPerSecond, c.Limits.MessageBurst = 1000, 1000 // 125 pages, asked back to back
	})
	seedLarge(t, ts, "room:big", 1000, 60_000)
	ws := signedIn(t, ts, "alice")
	f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:big", "since": 0})
	var sub struct {
		Offset    uint64
		Recovered bool
	}
	resultField(t, f, &sub)
	if sub.Offset != 1000 || !sub.Recovered {
		t.Fatalf("subscribe: %+v", sub)
	}
	for want := uint64(1); want <= 1000; want++ {
		m := nextMessage(t, ws)
		if m.Offset != want {
			t.Fatalf("replay: got offset %d, want %d", m.Offset, want)
		}
	}

	// History: limit 1000 of 60 KB would be 60 MB in one frame; the answer
	// holds what fits half the socket's budget and says there is more.
	seen := map[uint64]bool{}
	before := uint64(0)
	for page := 0; page < 200; page++ {
		req := map[string]any{"id": 10 + page, "op": "history", "channel": "room:big", "limit": 1000}
		if before != 0 {
			req["before"] = before
		}
		f, _ := call(t, ws, req)
		var h struct {
			Messages []struct{ Offset uint64 }
			More     bool
		}
		resultField(t, f, &h)
		if len(h.Messages) == 0 {
			t.Fatalf("page %d: empty answer", page)
		}
		for i, m := range h.Messages {
			if seen[m.Offset] || (i > 0 && m.Offset != h.Messages[i-1].Offset+1) {
				t.Fatalf("page %d: offsets %v", page, h.Messages)
			}
			seen[m.Offset] = true
		}
		if !h.More {
			break
		}
		if page == 0 && len(h.Messages) >= 1000 {
			t.Fatal("the first page was not bounded")
		}
		before = h.Messages[0].Offset
	}
	if len(seen) != 1000 {
		t.Fatalf("history pages covered %d messages, want 1000", len(seen))
	}
}

// TestReplaysPerUserCapped: a user may have limits.replays_per_user (4)
// replays and history answers in progress across its sockets; the next is
// refused rate_limited, naming its request, and goes through once one of
// the others has ended.
func TestReplaysPerUserCapped(t *testing.T) {
	ts := startServer(t, nil)
	seedLarge(t, ts, "room:big", 300, 60_000) // 18 MB: more than a socket's buffers hold
	ts.addUser("mallory", pw, false)
	b := ts.newBrowser()
	tok := b.login("mallory", pw)
	var stalled []*websocket.Conn
	for i := 0; i < 4; i++ {
		ws := b.connect(tok)
		// Answered before the replay starts; the replay then stalls on a
		// reader that reads nothing more, holding its slot.
		if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:big", "since": 0}); !f.OK {
			t.Fatalf("replay %d: %+v", i, f)
		}
		stalled = append(stalled, ws)
	}
	fifth := b.connect(tok)
	for _, req := range []map[string]any{
		{"id": 7, "op": "subscribe", "channel": "room:big", "since": 0},
		{"id": 8, "op": "history", "channel": "room:big", "limit": 10},
	} {
		send(t, fifth, req)
		f := readFrame(t, fifth)
		if f.Error == nil || f.Error.Code != "rate_limited" || f.ID != int64(req["id"].(int)) {
			t.Fatalf("%s past the cap: %+v, want rate_limited with id %v", req["op"], f, req["id"])
		}
	}
	// Another user is not held to mallory's cap.
	alice := signedIn(t, ts, "alice")
	if f, _ := call(t, alice, map[string]any{"id": 1, "op": "history", "channel": "room:big", "limit": 1}); !f.OK {
		t.Fatalf("another user's history: %+v", f)
	}
	// Once a stalled socket is gone its slot is free again.
	stalled[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for id := 10; ; id++ {
		f, _ := call(t, fifth, map[string]any{"id": id, "op": "history", "channel": "room:big", "limit": 1})
		if f.OK {
			break
		}
		if f.Error == nil || f.Error.Code != "rate_limited" || time.Now().After(deadline) {
			t.Fatalf("history after a slot was freed: %+v", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
