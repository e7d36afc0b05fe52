package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
)

// testOnCommitOrderBeforeAck checks the broker hand-off: OnCommit sees
// every stored message once, in offset order per channel, before Publish
// returns; duplicates are not handed on.
func testOnCommitOrderBeforeAck(t *testing.T, open Opener) {
	s := open(t, Options{Clock: clock.NewFake(ClockStart)})
	var mu sync.Mutex
	var seen []store.Message
	handed := map[string]bool{}
	s.OnCommit(func(ms []store.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			seen = append(seen, m)
			handed[fmt.Sprint(m.Channel, m.Offset)] = true
		}
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 30 {
				ch := []string{"room:a", "room:b"}[i%2]
				r, err := s.Publish(ctx(t), msg(ch, fmt.Sprint("u", w), fmt.Sprint("c", i%10), i)) // every cid used 3 times
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				ok := handed[fmt.Sprint(r.Message.Channel, r.Offset)]
				mu.Unlock()
				if !ok {
					t.Errorf("Publish returned offset %d of %q before OnCommit saw it", r.Offset, r.Message.Channel)
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	next := map[string]uint64{}
	for _, m := range seen {
		if m.Offset != next[m.Channel]+1 {
			t.Fatalf("OnCommit saw %q offset %d after %d", m.Channel, m.Offset, next[m.Channel])
		}
		next[m.Channel] = m.Offset
	}
	if len(seen) != 8*10 {
		t.Fatalf("OnCommit saw %d messages, want %d (duplicates are not handed on)", len(seen), 8*10)
	}
	// nil stops the calls.
	s.OnCommit(nil)
	mustPublish(t, s, msg("room:a", "x", "", 1))
	if len(seen) != 8*10 {
		t.Fatalf("OnCommit(nil) still calls")
	}
}

func testCanceledPublishStoresNothing(t *testing.T, open Opener) {
	s := open(t, Options{Clock: clock.NewFake(ClockStart)})
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	for range 20 {
		if _, err := s.Publish(c, store.Message{Channel: "room:c", Data: json.RawMessage(`1`)}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish(canceled) = %v, want context.Canceled", err)
		}
	}
	if l, _ := s.Latest(ctx(t), "room:c"); l != 0 {
		t.Fatalf("canceled publishes stored %d messages", l)
	}
	if r := mustPublish(t, s, msg("room:c", "a", "", 1)); r.Offset != 1 {
		t.Fatalf("offset %d after canceled publishes, want 1 (gap-free)", r.Offset)
	}
}

// testDedupeWindow: a (From, CID) pair is remembered for the window and
// may be forgotten after it (the store prunes it on a later commit).
func testDedupeWindow(t *testing.T, open Opener) {
	clk := clock.NewFake(ClockStart)
	s := open(t, Options{Clock: clk, DedupeWindow: time.Hour})
	first := mustPublish(t, s, msg("room:a", "alice", "c1", 1))
	clk.Advance(59 * time.Minute)
	mustPublish(t, s, msg("room:a", "alice", "other", 2)) // a commit that prunes
	if r := mustPublish(t, s, msg("room:a", "alice", "c1", 3)); !r.Duplicate || r.Offset != first.Offset {
		t.Fatalf("inside the window: %+v, want the first result", r)
	}
	clk.Advance(2 * time.Minute)
	mustPublish(t, s, msg("room:a", "alice", "trigger", 4))
	if r := mustPublish(t, s, msg("room:a", "alice", "c1", 5)); r.Duplicate {
		t.Fatalf("past the window the cid is still remembered: %+v", r)
	}
}

// testRetentionSize: history_size is kept at commit; offsets go on, Since
// reports a reader from before what is kept, and a retry of a pruned
// message still answers its offset.
func testRetentionSize(t *testing.T, open Opener) {
	s := open(t, Options{Clock: clock.NewFake(ClockStart), Retention: func(string) store.Retention { return store.Retention{Size: 5} }})
	first := mustPublish(t, s, msg("room:r", "alice", "keep-me", 0))
	for i := range 11 {
		mustPublish(t, s, msg("room:r", "alice", "", i+1))
	}
	for _, tc := range []struct {
		after    uint64
		want     []uint64
		complete bool
	}{
		{0, seq(8, 12), false},
		{6, seq(8, 12), false},
		{7, seq(8, 12), true},
		{10, []uint64{11, 12}, true},
		{12, nil, true},
	} {
		got, complete, err := s.Since(ctx(t), "room:r", tc.after, 100)
		if err != nil || complete != tc.complete || !slices.Equal(offsets(got), tc.want) {
			t.Errorf("Since(%d) = %v complete=%v err=%v; want %v complete=%v", tc.after, offsets(got), complete, err, tc.want, tc.complete)
		}
	}
	h, err := s.History(ctx(t), "room:r", 0, 100)
	if err != nil || !slices.Equal(offsets(h), seq(8, 12)) {
		t.Fatalf("History = %v, %v; want 8..12", offsets(h), err)
	}
	if l, _ := s.Latest(ctx(t), "room:r"); l != 12 {
		t.Fatalf("Latest = %d, want 12", l)
	}
	if r := mustPublish(t, s, msg("room:r", "alice", "keep-me", 99)); !r.Duplicate || r.Offset != first.Offset {
		t.Fatalf("retry after retention: %+v, want the first offset", r)
	}
}

// testRetentionTTL: messages older than their channel's TTL are pruned by
// the sweep even when nothing more is published; offsets go on from where
// they were (no reuse), Since reports the gap, and a longer TTL elsewhere
// keeps its messages.
func testRetentionTTL(t *testing.T, open Opener) {
	clk := clock.NewFake(ClockStart)
	perNamespace := func(ch string) store.Retention {
		if strings.HasPrefix(ch, "news:") {
			return store.Retention{Size: 1000, TTL: 10 * time.Hour}
		}
		return store.Retention{Size: 1000, TTL: time.Hour}
	}
	s := open(t, Options{Clock: clk, Retention: perNamespace, PruneInterval: 10 * time.Millisecond})
	for i := range 3 {
		mustPublish(t, s, msg("room:old", "alice", "", i))
		mustPublish(t, s, msg("news:eu", "alice", "", i))
	}
	clk.Advance(30 * time.Minute)
	mustPublish(t, s, msg("room:old", "alice", "", 3))
	mustPublish(t, s, msg("room:old", "alice", "", 4))
	clk.Advance(45 * time.Minute) // the first three are 75 min old, the last two 45 min

	waitHistory(t, s, "room:old", []uint64{4, 5})
	if got := historyOffsets(t, s, "news:eu"); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("news:eu (10 h TTL) history %v, want all three", got)
	}
	for _, tc := range []struct {
		after    uint64
		complete bool
	}{{0, false}, {2, false}, {3, true}, {5, true}} {
		if _, complete, err := s.Since(ctx(t), "room:old", tc.after, 100); err != nil || complete != tc.complete {
			t.Errorf("Since(%d): complete=%v err=%v, want complete=%v", tc.after, complete, err, tc.complete)
		}
	}
	if r := mustPublish(t, s, msg("room:old", "alice", "", 5)); r.Offset != 6 {
		t.Fatalf("next offset %d, want 6", r.Offset)
	}
	// Everything expired: the channel is empty, its offsets still go on.
	clk.Advance(2 * time.Hour)
	waitHistory(t, s, "room:old", nil)
	if l, _ := s.Latest(ctx(t), "room:old"); l != 6 {
		t.Fatalf("Latest after pruning everything = %d, want 6", l)
	}
	if _, complete, _ := s.Since(ctx(t), "room:old", 6, 100); !complete {
		t.Fatal("a reader that saw everything is told it missed something")
	}
	if r := mustPublish(t, s, msg("room:old", "alice", "", 6)); r.Offset != 7 {
		t.Fatalf("next offset %d, want 7", r.Offset)
	}
	if got := historyOffsets(t, s, "room:old"); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("history %v, want [7]", got)
	}
}

func historyOffsets(t *testing.T, s store.Store, ch string) []uint64 {
	t.Helper()
	h, err := s.History(ctx(t), ch, 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	return offsets(h)
}

// waitHistory polls until ch's history is want: the sweep runs on its own
// ticker. Bounded in time.
func waitHistory(t *testing.T, s store.Store, ch string, want []uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := historyOffsets(t, s, ch)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s history %v, want %v", ch, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
