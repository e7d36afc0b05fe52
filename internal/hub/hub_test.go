package hub

import (
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/store"
)

// recorder is a subscriber that remembers every Deliver call.
type recorder struct {
	mu    sync.Mutex
	calls [][]uint64 // offsets per call
	got   chan struct{}
}

func (r *recorder) Deliver(channel string, fs []*Frame) {
	r.mu.Lock()
	var offs []uint64
	for _, f := range fs {
		offs = append(offs, f.Offset)
	}
	r.calls = append(r.calls, offs)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func msg(channel string, off uint64) store.Message {
	return store.Message{Channel: channel, Offset: off, From: "alice", TS: time.Unix(0, 0), Data: json.RawMessage(`{}`)}
}

// TestCommitReachesSubscriberAsOneBatch: the messages of one group commit
// reach a subscriber in one call, per channel, in offset order, and other
// channels' messages do not reach it.
func TestCommitReachesSubscriberAsOneBatch(t *testing.T) {
	h := New(nil, broker.NewMemory())
	stop := h.Start()
	defer stop()
	r := &recorder{got: make(chan struct{}, 16)}
	h.Subscribe("room:a", r, "bob", true)
	<-r.got // bob's own presence join

	h.Committed([]store.Message{msg("room:a", 1), msg("room:b", 1), msg("room:a", 2), msg("room:a", 3)})
	select {
	case <-r.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	select {
	case <-r.got:
		t.Fatal("a second delivery: the commit was split or room:b leaked")
	case <-time.After(100 * time.Millisecond):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.calls[len(r.calls)-1]
	if len(last) != 3 || last[0] != 1 || last[1] != 2 || last[2] != 3 {
		t.Fatalf("delivered %v, want [1 2 3] in one call", last)
	}
}

// TestCommittedAfterStopDoesNotBlock: the store may report a last commit
// while the node shuts down; the committer must not hang on it.
func TestCommittedAfterStopDoesNotBlock(t *testing.T) {
	h := New(nil, broker.NewMemory())
	stop := h.Start()
	stop()
	done := make(chan struct{})
	go func() {
		for i := range fanoutBacklog + 10 {
			h.Committed([]store.Message{msg("room:a", uint64(i+1))})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Committed blocked after Stop")
	}
}

// TestPresencePushOnlyWithTheRight (A5): a subscriber without the presence
// right on a channel receives its messages but never who joins or leaves;
// one holding the right receives both.
func TestPresencePushOnlyWithTheRight(t *testing.T) {
	h := New(nil, broker.NewMemory())
	stop := h.Start()
	defer stop()
	blind := &recorder{got: make(chan struct{}, 16)}
	watcher := &recorder{got: make(chan struct{}, 16)}
	h.Subscribe("room:a", blind, "mallory", false)
	h.Subscribe("room:a", watcher, "alice", true)
	<-watcher.got // alice's own join
	h.Subscribe("room:a", &recorder{got: make(chan struct{}, 16)}, "bob", true)
	<-watcher.got // bob's join
	h.Committed([]store.Message{msg("room:a", 1)})
	for _, r := range []*recorder{blind, watcher} {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			t.Fatal("the message was not delivered")
		}
	}
	blind.mu.Lock()
	defer blind.mu.Unlock()
	for _, offs := range blind.calls {
		for _, o := range offs {
			if o == 0 {
				t.Fatalf("a presence push reached a subscriber without the presence right: %v", blind.calls)
			}
		}
	}
	if len(blind.calls) != 1 {
		t.Fatalf("blind subscriber got %v, want only the message", blind.calls)
	}
}

// counter is a subscriber that counts its frames, safe for concurrent use.
type counter struct{ frames, presence atomic.Int64 }

func (c *counter) Deliver(_ string, fs []*Frame) {
	for _, f := range fs {
		if f.Offset == 0 {
			c.presence.Add(1)
		} else {
			c.frames.Add(1)
		}
	}
}

// TestFanoutSplitReachesEachOnce: a channel large enough to be split over
// the cores gets every message to every subscriber exactly once, in one
// call per batch, and presence pushes only to those with the right; a
// subscriber that left gets nothing more and one that joined gets the
// next message.
func TestFanoutSplitReachesEachOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // split even on one core
	h := New(nil, broker.NewMemory())
	h.PresencePushes = func(string) bool { return false } // only the push sent below
	defer h.Start()()
	const n = 3*fanoutChunk + 7
	subs := make([]*counter, n)
	for i := range subs {
		subs[i] = &counter{}
		h.Subscribe("room:big", subs[i], "u"+strconv.Itoa(i), i%2 == 0)
	}
	h.publishCommitted([]store.Message{msg("room:big", 1), msg("room:big", 2)})
	h.onEvent(broker.Event{Kind: broker.KindPresence, Channel: "room:big", Frame: []byte(`{}`)})
	h.Unsubscribe("room:big", subs[0], "u0")
	late := &counter{}
	h.Subscribe("room:big", late, "late", false)
	h.publishCommitted([]store.Message{msg("room:big", 3)})
	for i, s := range subs {
		wantFrames, wantPresence := int64(3), int64(0)
		if i == 0 {
			wantFrames = 2
		}
		if i%2 == 0 {
			wantPresence = 1
		}
		if s.frames.Load() != wantFrames || s.presence.Load() != wantPresence {
			t.Fatalf("subscriber %d got %d messages and %d presence pushes; want %d and %d",
				i, s.frames.Load(), s.presence.Load(), wantFrames, wantPresence)
		}
	}
	if late.frames.Load() != 1 {
		t.Fatalf("the late subscriber got %d messages, want 1", late.frames.Load())
	}
}

// On one node the hub does not order events and never answers Latest:
// the store, which keeps each channel's last offset in memory, does.
func TestLatestOnlyWhenOrdering(t *testing.T) {
	h := New(nil, broker.NewMemory())
	stop := h.Start()
	defer stop()
	r := &recorder{got: make(chan struct{}, 4)}
	h.Subscribe("room:a", r, "alice", false)
	h.Committed([]store.Message{msg("room:a", 1)})
	<-r.got
	if latest, ok := h.Latest("room:a"); ok {
		t.Fatalf("an unordered hub answered Latest = %d, true", latest)
	}
}
