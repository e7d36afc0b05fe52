package hub

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/store"
)

// between is the in-process broker declaring itself distributed, so that
// the hub orders events and fills gaps as it does behind Redis, where
// events of one channel from two nodes may arrive in either order.
type between struct{ *broker.Memory }

func (between) Distributed() bool { return true }

// TestOrderedFillsGapsDropsDuplicatesAndResyncs: behind a broker between
// nodes, a subscriber receives a channel's messages in offset order with
// no gap and no duplicate whatever order the events arrive in: an event
// that jumps ahead makes the hub read the missing range from the store, a
// late or repeated one is dropped, and a resync replays what the store
// holds past the last offset delivered.
func TestOrderedFillsGapsDropsDuplicatesAndResyncs(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "s.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	pub := func() uint64 {
		res, err := st.Publish(ctx, store.Message{Channel: "room:a", From: "alice", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Offset
	}
	for range 3 {
		pub() // before the subscription: not delivered live
	}
	b := between{broker.NewMemory()}
	h := New(st, b)
	stop := h.Start()
	defer stop()
	r := &recorder{got: make(chan struct{}, 64)}
	h.PresencePushes = func(string) bool { return false }
	h.Subscribe("room:a", r, "bob", false)

	event := func(offs ...uint64) {
		e := broker.Event{Kind: broker.KindMessage, Channel: "room:a"}
		for _, o := range offs {
			e.Batch = append(e.Batch, broker.Encoded{Offset: o, Frame: []byte(`{}`)})
		}
		if err := b.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		pub() // 4, 5, 6
	}
	event(6)    // 4 and 5 come from the store
	event(4, 5) // late: dropped
	event(6)    // repeated: dropped
	pub()       // 7
	event(7)
	pub() // 8, 9: their events are lost (a broker outage)
	pub()
	if err := b.Publish(ctx, broker.Event{Kind: broker.KindResync}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	var got []uint64
	for len(got) < 6 {
		select {
		case <-r.got:
			r.mu.Lock()
			got = got[:0]
			for _, c := range r.calls {
				got = append(got, c...)
			}
			r.mu.Unlock()
		case <-deadline:
			t.Fatalf("got offsets %v, want 4 to 9", got)
		}
	}
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	got = got[:0]
	for _, c := range r.calls {
		got = append(got, c...)
	}
	want := []uint64{4, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("got offsets %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got offsets %v, want %v", got, want)
		}
	}
}
