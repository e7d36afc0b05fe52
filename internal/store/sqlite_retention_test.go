package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
)

// perNamespace is a Retention like the server's: room keeps 1000 messages
// for an hour, news 1000 for ten hours.
func perNamespace(ch string) store.Retention {
	if strings.HasPrefix(ch, "news:") {
		return store.Retention{Size: 1000, TTL: 10 * time.Hour}
	}
	return store.Retention{Size: 1000, TTL: time.Hour}
}

// offsets lists the offsets of ch's history, oldest first.
func offsets(t *testing.T, s store.Store, ch string) []uint64 {
	t.Helper()
	h, err := s.History(context.Background(), ch, 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range h {
		out = append(out, m.Offset)
	}
	return out
}

// waitOffsets polls until ch's history is want: the sweep runs on its own
// ticker. Bounded in time.
func waitOffsets(t *testing.T, s store.Store, ch string, want []uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := offsets(t, s, ch)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s history %v, want %v", ch, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRetentionTTL: messages older than their namespace's history_ttl are
// pruned by the sweep even when nothing more is published; offsets go on
// from where they were (strictly increasing, no reuse), Since reports the
// gap, and another namespace's longer TTL keeps its messages.
func TestRetentionTTL(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, "", store.SQLiteOptions{Clock: clk, Retention: perNamespace, PruneInterval: 10 * time.Millisecond})
	ctx := context.Background()
	for range 3 {
		publish(t, s, "room:old", "alice", "")
		publish(t, s, "news:eu", "alice", "")
	}
	clk.Advance(30 * time.Minute)
	publish(t, s, "room:old", "alice", "")
	publish(t, s, "room:old", "alice", "")
	clk.Advance(45 * time.Minute) // the first three are 75 min old, the last two 45 min

	waitOffsets(t, s, "room:old", []uint64{4, 5})
	if got := offsets(t, s, "news:eu"); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("news:eu (10 h TTL) history %v, want all three", got)
	}
	for _, tc := range []struct {
		after    uint64
		complete bool
	}{{0, false}, {2, false}, {3, true}, {5, true}} {
		if _, complete, err := s.Since(ctx, "room:old", tc.after, 100); err != nil || complete != tc.complete {
			t.Errorf("Since(%d): complete=%v err=%v, want complete=%v", tc.after, complete, err, tc.complete)
		}
	}
	if r := publish(t, s, "room:old", "alice", ""); r.Offset != 6 {
		t.Fatalf("next offset %d, want 6", r.Offset)
	}

	// Everything expired: the channel is empty, its offsets still go on.
	clk.Advance(2 * time.Hour)
	waitOffsets(t, s, "room:old", nil)
	if l, _ := s.Latest(ctx, "room:old"); l != 6 {
		t.Fatalf("Latest after pruning everything = %d, want 6", l)
	}
	if _, complete, _ := s.Since(ctx, "room:old", 6, 100); !complete {
		t.Fatal("a reader that saw everything is told it missed something")
	}
	if r := publish(t, s, "room:old", "alice", ""); r.Offset != 7 {
		t.Fatalf("next offset %d, want 7", r.Offset)
	}
	if got := offsets(t, s, "room:old"); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("history %v, want [7]", got)
	}
}

// TestRetentionLoweredCatchesUp: an operator lowers history_size on a
// channel holding more than a pass may delete; the sweep prunes it in
// bounded passes until only the kept messages remain, with no gap.
func TestRetentionLoweredCatchesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s := openTest(t, path, store.SQLiteOptions{})
	ctx := context.Background()
	const n = 2500
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Publish(ctx, store.Message{Channel: "room:big", From: "alice", Data: json.RawMessage(`1`)})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, store.SQLiteOptions{PruneInterval: 10 * time.Millisecond,
		Retention: func(string) store.Retention { return store.Retention{Size: 10} }})
	want := make([]uint64, 0, 10)
	for o := uint64(n - 9); o <= n; o++ {
		want = append(want, o)
	}
	waitOffsets(t, s, "room:big", want)
	if r := publish(t, s, "room:big", "alice", ""); r.Offset != n+1 {
		t.Fatalf("next offset %d, want %d", r.Offset, n+1)
	}
}
