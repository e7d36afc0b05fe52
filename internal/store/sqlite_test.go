package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openTest(t testing.TB, path string, opts store.SQLiteOptions) *store.SQLite {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(t0)
	}
	s, err := store.OpenSQLite(path, opts)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sqliteOpener maps the suite's options onto SQLiteOptions; base carries
// the rest (a sealer).
func sqliteOpener(base store.SQLiteOptions) storetest.Opener {
	return func(t *testing.T, o storetest.Options) store.Store {
		opts := base
		opts.Clock, opts.DedupeWindow, opts.Retention, opts.PruneInterval = o.Clock, o.DedupeWindow, o.Retention, o.PruneInterval
		return openTest(t, "", opts)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, sqliteOpener(store.SQLiteOptions{}))
}

// TestTwoOpenersOneFile runs the shared-database suite on two stores
// opened on one SQLite file, as a server and the CLI are.
func TestTwoOpenersOneFile(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, o storetest.Options) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "shared.db")
		// Both publish here, which a server that owns its file never sees.
		so := store.SQLiteOptions{Clock: o.Clock, OtherWriters: true}
		return openTest(t, path, so), openTest(t, path, so)
	})
}

func publish(t testing.TB, s store.Store, ch, from, cid string) store.PublishResult {
	t.Helper()
	r, err := s.Publish(context.Background(), store.Message{Channel: ch, From: from, CID: cid, Data: json.RawMessage(`{"x":1}`)})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return r
}

func TestOpenSetsDurabilityAndMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openTest(t, path, store.SQLiteOptions{})
	publish(t, s, "room:a", "alice", "c1")
	// Every embedded migration is applied: 0001_init, 0002_ticket_credential, 0003_audit_head,
	// 0005_user_prefs.
	if v, err := s.SchemaVersion(context.Background()); err != nil || v != 5 {
		t.Fatalf("SchemaVersion = %d, %v; want 5", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.Publish(context.Background(), store.Message{Channel: "room:a"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Publish after Close = %v, want ErrUnavailable", err)
	}
	// Reopening applies no migration twice and keeps offsets and dedupe.
	s2 := openTest(t, path, store.SQLiteOptions{})
	if r := publish(t, s2, "room:a", "alice", "c1"); !r.Duplicate || r.Offset != 1 {
		t.Fatalf("after reopen the cid was forgotten: %+v", r)
	}
	if r := publish(t, s2, "room:a", "alice", "c2"); r.Offset != 2 {
		t.Fatalf("after reopen offset %d, want 2", r.Offset)
	}
	if v, _ := s2.SchemaVersion(context.Background()); v != 5 {
		t.Fatalf("SchemaVersion after reopen = %d", v)
	}
}

func TestOpenRefusesBadPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=ro", "file:x.db"} {
		if s, err := store.OpenSQLite(p, store.SQLiteOptions{}); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q) succeeded", p)
		}
	}
}

// TestLockedDatabaseUnavailable is SECURITY.md F6: another process holds the
// write lock past the busy timeout. Every publish of the batch fails with
// ErrUnavailable, nothing is stored, and the store recovers afterwards.
// (Root ignores chmod, so a held lock stands in for an unwritable disk.)
func TestLockedDatabaseUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	s := openTest(t, path, store.SQLiteOptions{BusyTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	publish(t, s, "room:l", "alice", "")

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			_, err := s.Publish(ctx, store.Message{Channel: "room:l", From: "bob", CID: fmt.Sprint("c", i), Data: json.RawMessage(`2`)})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Publish while locked = %v, want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// Nothing of the failed batches was stored: the next offset is 2 and
	// the cids are still free.
	if r := publish(t, s, "room:l", "bob", "c0"); r.Offset != 2 || r.Duplicate {
		t.Fatalf("after the lock: %+v, want offset 2, not duplicate", r)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
}

// TestFailedBatchStoresNothing: a statement failing in the middle of a
// batch (here an injected trigger; in life disk full or an I/O error) rolls
// back the whole batch: every caller gets ErrUnavailable, no offset is
// consumed on any channel, and the next batch works.
func TestFailedBatchStoresNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fail.db")
	var committed atomic.Int32
	s := openTest(t, path, store.SQLiteOptions{OnCommit: func(ms []store.Message) { committed.Add(int32(len(ms))) }})
	ctx := context.Background()
	publish(t, s, "room:ok", "alice", "")
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `CREATE TRIGGER inject BEFORE INSERT ON messages WHEN NEW.channel = 'room:fail'
		BEGIN SELECT RAISE(ABORT, 'injected fault'); END`); err != nil {
		t.Fatal(err)
	}
	// Publishes to the healthy channel are interleaved with the failing one,
	// so some share a batch with it; all of them must fail or succeed whole.
	var wg sync.WaitGroup
	var okCount atomic.Int32
	for i := range 16 {
		wg.Go(func() {
			ch := []string{"room:ok", "room:fail"}[i%2]
			_, err := s.Publish(ctx, store.Message{Channel: ch, From: "bob", CID: fmt.Sprint("c", i), Data: json.RawMessage(`1`)})
			switch {
			case err == nil && ch == "room:ok":
				okCount.Add(1)
			case err == nil:
				t.Errorf("publish to the failing channel acknowledged")
			case !errors.Is(err, store.ErrUnavailable):
				t.Errorf("Publish = %v, want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	if _, err := other.ExecContext(ctx, `DROP TRIGGER inject`); err != nil {
		t.Fatal(err)
	}
	latest, _ := s.Latest(ctx, "room:ok")
	if latest != 1+uint64(okCount.Load()) {
		t.Fatalf("room:ok latest %d, but %d publishes acknowledged after offset 1", latest, okCount.Load())
	}
	if l, _ := s.Latest(ctx, "room:fail"); l != 0 {
		t.Fatalf("room:fail latest %d, want 0", l)
	}
	if r := publish(t, s, "room:fail", "bob", "c1"); r.Offset != 1 || r.Duplicate {
		t.Fatalf("after the fault: %+v, want offset 1", r)
	}
	if int(committed.Load()) != int(latest)+1 {
		t.Fatalf("OnCommit saw %d messages, want %d: a failed batch was handed on", committed.Load(), latest+1)
	}
}

// TestCloseDrainsPending: publishes racing Close either commit (and are
// then on disk) or fail with ErrUnavailable; none is silently dropped.
func TestCloseDrainsPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	s, err := store.OpenSQLite(path, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var acked sync.Map
	var wg sync.WaitGroup
	var started atomic.Int32
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				started.Add(1)
				r, err := s.Publish(context.Background(), store.Message{Channel: "room:z", From: fmt.Sprint(w), Data: json.RawMessage(`0`)})
				if err != nil {
					if !errors.Is(err, store.ErrUnavailable) {
						t.Errorf("Publish during Close = %v, want ErrUnavailable", err)
					}
					return
				}
				acked.Store(r.Offset, true)
			}
		})
	}
	for started.Load() < 200 {
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2 := openTest(t, path, store.SQLiteOptions{})
	latest, _ := s2.Latest(context.Background(), "room:z")
	acked.Range(func(k, _ any) bool {
		if k.(uint64) > latest {
			t.Errorf("acknowledged offset %d missing after Close (latest %d)", k, latest)
		}
		return true
	})
}

// TestCrashSafety is SECURITY.md F1: a child process publishes and prints each
// acknowledged offset; the parent kill -9s it mid-stream, reopens the
// database and finds every acknowledged message, offsets gap-free.
func TestCrashSafety(t *testing.T) {
	if path := os.Getenv("WSGUARD_STORE_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WSGUARD_STORE_CRASH_CHILD="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		channel string
		offset  uint64
		data    string
	}
	var acks []ack
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "ack" {
			continue
		}
		off, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad ack line %q", sc.Text())
		}
		acks = append(acks, ack{f[1], off, f[3]})
		if len(acks) == 400 && !killed {
			cmd.Process.Kill() // SIGKILL: no deferred code, no Close
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks without being killed", len(acks))
	}
	s := openTest(t, path, store.SQLiteOptions{})
	ctx := context.Background()
	stored := map[string]map[uint64]string{}
	for _, ch := range []string{"room:a", "room:b"} {
		latest, err := s.Latest(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		stored[ch] = map[uint64]string{}
		for after := uint64(0); after < latest; {
			msgs, complete, err := s.Since(ctx, ch, after, 1000)
			if err != nil || !complete || len(msgs) == 0 {
				t.Fatalf("Since(%q, %d) = %d, %v, %v", ch, after, len(msgs), complete, err)
			}
			for _, m := range msgs {
				if m.Offset != after+1 {
					t.Fatalf("%q: offset %d after %d: gap", ch, m.Offset, after)
				}
				stored[ch][m.Offset] = string(m.Data)
				after = m.Offset
			}
		}
	}
	for _, a := range acks {
		if got, ok := stored[a.channel][a.offset]; !ok || got != a.data {
			t.Fatalf("acknowledged %q offset %d (%s) after kill -9: got %q, present %v", a.channel, a.offset, a.data, got, ok)
		}
	}
	t.Logf("%d acknowledged, %d+%d stored", len(acks), len(stored["room:a"]), len(stored["room:b"]))
}

// crashChild publishes from 8 goroutines until killed, printing each
// acknowledgement only after Publish returned.
func crashChild(path string) {
	s, err := store.OpenSQLite(path, store.SQLiteOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				ch := []string{"room:a", "room:b"}[(g+i)%2]
				data := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				r, err := s.Publish(context.Background(), store.Message{Channel: ch, From: "child", Data: json.RawMessage(data)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s %d %s\n", ch, r.Offset, data)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// FuzzPublishRoundTrip feeds arbitrary channel, sender, cid and body bytes
// (quotes, NULs, SQL fragments, invalid UTF-8) through Publish and History:
// what comes back is byte-for-byte what went in, and nothing panics.
func FuzzPublishRoundTrip(f *testing.F) {
	f.Add("room:a", "alice", "c1", []byte(`{"text":"hi"}`))
	f.Add("room:'; DROP TABLE messages;--", "bob\"", "", []byte("\x00\xff\xfe"))
	f.Add("x", "", "c\x00d", []byte(`null`))
	f.Add("\u2603", "\n", "\u00e9", []byte{})
	s := openTest(f, "", store.SQLiteOptions{})
	f.Fuzz(func(t *testing.T, channel, from, cid string, data []byte) {
		if channel == "" {
			return
		}
		r, err := s.Publish(context.Background(), store.Message{Channel: channel, From: from, CID: cid, Data: data})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if r.Duplicate {
			return
		}
		h, err := s.History(context.Background(), channel, r.Offset+1, 1)
		if err != nil || len(h) != 1 {
			t.Fatalf("History = %v, %v", h, err)
		}
		m := h[0]
		want := string(data)
		if want == "" {
			want = "null"
		}
		if m.Channel != channel || m.From != from || m.CID != cid || string(m.Data) != want || m.Offset != r.Offset {
			t.Fatalf("round trip: got %+v", m)
		}
	})
}

// BenchmarkPublishParallel measures group commit with 64 concurrent
// publishers on one channel; see msgs/s.
func BenchmarkPublishParallel(b *testing.B) {
	s := openTest(b, "", store.SQLiteOptions{Clock: clock.Real{}})
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	data := json.RawMessage(`{"text":"hello, world"}`)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Publish(context.Background(), store.Message{Channel: "room:bench", From: "bench", Data: data}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
