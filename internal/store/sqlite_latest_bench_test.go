package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
)

// BenchmarkLatest is the read every subscribe makes for its answer's
// offset: a channel with messages, and channels nothing was published to
// (a fresh room that many distinct users join before anyone speaks).
func BenchmarkLatest(b *testing.B) {
	s := openTest(b, "", store.SQLiteOptions{Clock: clock.Real{}})
	publish(b, s, "room:busy", "alice", "")
	ctx := context.Background()
	b.Run("published", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if l, err := s.Latest(ctx, "room:busy"); err != nil || l != 1 {
				b.Fatalf("Latest = %d, %v; want 1", l, err)
			}
		}
	})
	b.Run("empty", func(b *testing.B) {
		names := make([]string, 64)
		for i := range names {
			names[i] = "room:empty" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if l, err := s.Latest(ctx, names[i%len(names)]); err != nil || l != 0 {
				b.Fatalf("Latest = %d, %v; want 0", l, err)
			}
		}
	})
}
