package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/store"
)

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
