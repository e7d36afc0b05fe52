// Package storetest is the conformance suite every store.Store must pass,
// so SQLite and PostgreSQL keep the same behaviour (offsets, dedupe,
// one-time credentials) and the server can rely on it whichever is used.
//
// Run it from the implementation's own test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store { ... })
//	}
//
// RunShared checks what two stores opened on one database (two nodes, or a
// node and the CLI) keep between them: gap-free offsets from both, a cid
// deduplicated across them, one-time credentials spent once.
//
// open must return a fresh, empty store built with o (its clock, dedupe
// window, retention and prune interval mapped onto the implementation's own
// options), and should close it with t.Cleanup. Subtests do not run in
// parallel with each other; some start many goroutines themselves.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
)

// Options are what a test asks of the store it opens. The suite always
// sets Clock; the other fields' zero values mean the store's defaults.
type Options struct {
	// Clock stamps messages and decides ticket expiry, the dedupe window
	// and message age. The suite's fake clock reads a time between the
	// years 2001 and 2099 (tickets that expire in 2000 and 2100).
	Clock *clock.Fake
	// DedupeWindow is how long a (From, CID) pair is remembered. Zero means
	// the store's default (24 hours).
	DedupeWindow time.Duration
	// Retention gives each channel's retention. Nil keeps everything.
	Retention func(channel string) store.Retention
	// PruneInterval is how often the retention sweep runs. Zero means the
	// store's default.
	PruneInterval time.Duration
}

// Opener makes a fresh, empty store for one test.
type Opener func(t *testing.T, o Options) store.Store

// ClockStart is where the suite's clock starts.
var ClockStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open Opener) {
	simple := func(fn func(t *testing.T, s store.Store)) func(t *testing.T, open Opener) {
		return func(t *testing.T, open Opener) { fn(t, open(t, Options{Clock: clock.NewFake(ClockStart)})) }
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PublishAssignsOffsets", testPublishAssignsOffsets},
		{"ConcurrentOffsetsGapFree", testConcurrentOffsetsGapFree},
		{"DedupeByCID", testDedupeByCID},
		{"DedupeWithinOneBatch", testDedupeWithinOneBatch},
		{"SinceAndHistory", testSinceAndHistory},
		{"LimitClamped", testLimitClamped},
		{"Users", testUsers},
		{"TOTPStepReplay", testTOTPStepReplay},
		{"RecoveryCodes", testRecoveryCodes},
		{"Sessions", testSessions},
		{"ExpiredSessions", testExpiredSessions},
		{"ConcurrentUserSetters", testConcurrentUserSetters},
		{"APIKeys", testAPIKeys},
		{"Tickets", testTickets},
		{"Revocations", testRevocations},
		{"AuditHeads", testAuditHeads},
		{"Rooms", testRooms},
		{"PendingTOTP", testPendingTOTP},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { simple(tc.fn)(t, open) })
	}
	// These need options of their own (a clock they move, a window, a
	// retention policy).
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"OnCommitOrderBeforeAck", testOnCommitOrderBeforeAck},
		{"CanceledPublishStoresNothing", testCanceledPublishStoresNothing},
		{"DedupeWindow", testDedupeWindow},
		{"RetentionSize", testRetentionSize},
		{"RetentionTTL", testRetentionTTL},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func msg(channel, from, cid string, data any) store.Message {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return store.Message{Channel: channel, From: from, CID: cid, Data: b}
}

func mustPublish(t *testing.T, s store.Store, m store.Message) store.PublishResult {
	t.Helper()
	r, err := s.Publish(ctx(t), m)
	if err != nil {
		t.Fatalf("Publish(%q): %v", m.Channel, err)
	}
	return r
}

// publishMany publishes n messages to channel from workers goroutines, so a
// group-committing store batches them. Data is {"i": k} for k in [0, n).
func publishMany(t *testing.T, s store.Store, channel string, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < n; k += workers {
				if _, err := s.Publish(ctx(t), msg(channel, "loader", "", map[string]int{"i": k})); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
}

func offsets(msgs []store.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Offset
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func testPublishAssignsOffsets(t *testing.T, s store.Store) {
	for i, tc := range []struct {
		channel string
		want    uint64
	}{
		{"room:a", 1}, {"room:a", 2}, {"room:b", 1}, {"room:a", 3}, {"room:b", 2},
	} {
		r := mustPublish(t, s, msg(tc.channel, "alice", "", map[string]int{"n": i}))
		if r.Offset != tc.want || r.Duplicate {
			t.Fatalf("publish %d to %q: offset %d duplicate %v, want %d", i, tc.channel, r.Offset, r.Duplicate, tc.want)
		}
		if r.Message.Offset != tc.want || r.Message.TS.IsZero() || r.Message.From != "alice" || r.Message.Channel != tc.channel {
			t.Fatalf("publish %d: result message %+v", i, r.Message)
		}
	}
	for ch, want := range map[string]uint64{"room:a": 3, "room:b": 2, "room:none": 0} {
		got, err := s.Latest(ctx(t), ch)
		if err != nil || got != want {
			t.Fatalf("Latest(%q) = %d, %v; want %d", ch, got, err, want)
		}
	}
	// The stored copy matches what Publish answered, TS to the nanosecond.
	r := mustPublish(t, s, msg("room:a", "bob", "", map[string]string{"text": "<b>hi</b> \u2603"}))
	h, err := s.History(ctx(t), "room:a", 0, 1)
	if err != nil || len(h) != 1 {
		t.Fatalf("History = %v, %v", h, err)
	}
	got := h[0]
	if got.Offset != 4 || got.From != "bob" || !got.TS.Equal(r.Message.TS) || got.TS.Location() != time.UTC ||
		string(got.Data) != string(r.Message.Data) || got.Channel != "room:a" {
		t.Fatalf("stored %+v, published %+v", got, r.Message)
	}
}

func testConcurrentOffsetsGapFree(t *testing.T, s store.Store) {
	const writers, perWriter = 8, 40
	channels := []string{"room:x", "room:y"}
	type ack struct {
		writer, seq int
		channel     string
		offset      uint64
	}
	acks := make(chan ack, writers*perWriter)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				ch := channels[(w+i)%2]
				r, err := s.Publish(ctx(t), msg(ch, fmt.Sprintf("w%d", w), "", map[string]int{"w": w, "i": i}))
				if err != nil {
					t.Errorf("writer %d publish %d: %v", w, i, err)
					return
				}
				acks <- ack{w, i, ch, r.Offset}
			}
		})
	}
	wg.Wait()
	close(acks)
	byChan := map[string][]uint64{}
	last := map[[2]any]uint64{} // (writer, channel) -> last offset: each writer's own order is kept
	for a := range acks {
		byChan[a.channel] = append(byChan[a.channel], a.offset)
		k := [2]any{a.writer, a.channel}
		if a.offset <= last[k] {
			t.Fatalf("writer %d on %q: offset %d after %d", a.writer, a.channel, a.offset, last[k])
		}
		last[k] = a.offset
	}
	for _, ch := range channels {
		got := byChan[ch]
		slices.Sort(got)
		want := seq(1, uint64(len(got)))
		if !slices.Equal(got, want) {
			t.Fatalf("%q acknowledged offsets %v, want gap-free 1..%d", ch, got, len(got))
		}
		stored, complete, err := s.Since(ctx(t), ch, 0, 1000)
		if err != nil || !complete {
			t.Fatalf("Since(%q) complete=%v err=%v", ch, complete, err)
		}
		if !slices.Equal(offsets(stored), want) {
			t.Fatalf("%q stored offsets %v, want 1..%d", ch, offsets(stored), len(want))
		}
		if latest, _ := s.Latest(ctx(t), ch); latest != uint64(len(want)) {
			t.Fatalf("Latest(%q) = %d, want %d", ch, latest, len(want))
		}
	}
	if n := len(byChan["room:x"]) + len(byChan["room:y"]); n != writers*perWriter {
		t.Fatalf("%d acknowledgements, want %d", n, writers*perWriter)
	}
}

func testDedupeByCID(t *testing.T, s store.Store) {
	first := mustPublish(t, s, msg("room:d", "alice", "c-1", "first"))
	for _, tc := range []struct {
		name      string
		m         store.Message
		duplicate bool
		offset    uint64
		channel   string
	}{
		{"retry answers the first result", msg("room:d", "alice", "c-1", "retry"), true, first.Offset, "room:d"},
		{"retry to another channel is still the same message", msg("room:e", "alice", "c-1", "x"), true, first.Offset, "room:d"},
		{"same cid from another user is new", msg("room:d", "bob", "c-1", "bob"), false, 2, "room:d"},
		{"another cid is new", msg("room:d", "alice", "c-2", "second"), false, 3, "room:d"},
		{"no cid never dedupes", msg("room:d", "alice", "", "a"), false, 4, "room:d"},
		{"no cid never dedupes, again", msg("room:d", "alice", "", "a"), false, 5, "room:d"},
	} {
		r := mustPublish(t, s, tc.m)
		if r.Duplicate != tc.duplicate || r.Offset != tc.offset || r.Message.Channel != tc.channel {
			t.Fatalf("%s: got offset %d duplicate %v channel %q; want %d %v %q", tc.name, r.Offset, r.Duplicate, r.Message.Channel, tc.offset, tc.duplicate, tc.channel)
		}
		if tc.duplicate && string(r.Message.Data) != `"first"` {
			t.Fatalf("%s: duplicate answered data %s, want the first message's", tc.name, r.Message.Data)
		}
	}
	if l, _ := s.Latest(ctx(t), "room:d"); l != 5 {
		t.Fatalf("Latest = %d, want 5: a duplicate was stored", l)
	}
	if l, _ := s.Latest(ctx(t), "room:e"); l != 0 {
		t.Fatalf("Latest(room:e) = %d, want 0", l)
	}
}

func testDedupeWithinOneBatch(t *testing.T, s store.Store) {
	// Many concurrent retries of one (from, cid): a group-committing store
	// sees several in one batch, and still stores exactly one.
	const n = 16
	results := make([]store.PublishResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := s.Publish(ctx(t), msg("room:batch", "carol", "same", i))
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
			results[i] = r
		})
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, r := range results {
		if r.Offset != 1 {
			t.Fatalf("publish %d answered offset %d, want 1", i, r.Offset)
		}
		if !r.Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d publishes stored, want exactly 1", fresh)
	}
	msgs, _, err := s.Since(ctx(t), "room:batch", 0, 100)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("stored %d messages (err %v), want 1", len(msgs), err)
	}
}

func testSinceAndHistory(t *testing.T, s store.Store) {
	for i := 1; i <= 10; i++ {
		mustPublish(t, s, msg("room:h", "alice", "", i))
	}
	for _, tc := range []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"all", 0, 100, seq(1, 10)},
		{"after 5, limit 3", 5, 3, []uint64{6, 7, 8}},
		{"after the last", 10, 100, nil},
		{"far past the last", 1 << 62, 100, nil},
		{"limit 1", 0, 1, []uint64{1}},
	} {
		got, complete, err := s.Since(ctx(t), "room:h", tc.after, tc.limit)
		if err != nil || !complete || !slices.Equal(offsets(got), tc.want) {
			t.Errorf("Since %s: %v complete=%v err=%v; want %v", tc.name, offsets(got), complete, err, tc.want)
		}
	}
	for i, m := range must(s.Since(ctx(t), "room:h", 0, 100)) {
		if string(m.Data) != fmt.Sprint(i+1) {
			t.Fatalf("message %d data %s", m.Offset, m.Data)
		}
	}
	if got, complete, err := s.Since(ctx(t), "room:unknown", 0, 10); err != nil || !complete || len(got) != 0 {
		t.Errorf("Since(unknown channel) = %v, %v, %v; want empty, complete", got, complete, err)
	}
	for _, tc := range []struct {
		name   string
		before uint64
		limit  int
		want   []uint64
	}{
		{"latest 3", 0, 3, []uint64{8, 9, 10}},
		{"before 5", 5, 10, seq(1, 4)},
		{"before 5, limit 2", 5, 2, []uint64{3, 4}},
		{"before is exclusive", 11, 1, []uint64{10}},
		{"before 1", 1, 10, nil},
		{"before past the end", 1 << 62, 2, []uint64{9, 10}},
	} {
		got, err := s.History(ctx(t), "room:h", tc.before, tc.limit)
		if err != nil || !slices.Equal(offsets(got), tc.want) {
			t.Errorf("History %s: %v err=%v; want %v", tc.name, offsets(got), err, tc.want)
		}
	}
	if got, err := s.History(ctx(t), "room:unknown", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("History(unknown channel) = %v, %v", got, err)
	}
}

func must[T any](v T, _ bool, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testLimitClamped(t *testing.T, s store.Store) {
	const n = 1005
	publishMany(t, s, "room:big", n, 32)
	for _, limit := range []int{0, -1, 1001, 1 << 30} {
		got, complete, err := s.Since(ctx(t), "room:big", 0, limit)
		if err != nil || !complete || len(got) != 1000 || got[0].Offset != 1 || got[999].Offset != 1000 {
			t.Errorf("Since(limit %d): %d messages, complete=%v, err=%v; want 1..1000", limit, len(got), complete, err)
		}
		h, err := s.History(ctx(t), "room:big", 0, limit)
		if err != nil || len(h) != 1000 || h[0].Offset != 6 || h[999].Offset != n {
			t.Errorf("History(limit %d): %d messages, err=%v; want 6..%d", limit, len(h), err, n)
		}
	}
}

func testUsers(t *testing.T, s store.Store) {
	if any, err := s.AnyAdmin(ctx(t)); err != nil || any {
		t.Fatalf("AnyAdmin on empty store = %v, %v", any, err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	alice, err := s.CreateUser(ctx(t), store.User{Name: "alice", PasswordHash: "$argon2id$x", Roles: []string{"ops", "dev"}, CreatedAt: created})
	if err != nil || alice.ID == 0 {
		t.Fatalf("CreateUser = %+v, %v", alice, err)
	}
	if _, err := s.CreateUser(ctx(t), store.User{Name: "alice", PasswordHash: "other"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateUser(taken name) = %v, want ErrExists", err)
	}
	bob, err := s.CreateUser(ctx(t), store.User{Name: "bob", Admin: true})
	if err != nil || bob.ID == alice.ID || bob.CreatedAt.IsZero() {
		t.Fatalf("CreateUser(bob) = %+v, %v", bob, err)
	}
	if any, err := s.AnyAdmin(ctx(t)); err != nil || !any {
		t.Fatalf("AnyAdmin = %v, %v; want true", any, err)
	}
	got, err := s.UserByName(ctx(t), "alice")
	if err != nil || got.ID != alice.ID || got.PasswordHash != "$argon2id$x" || !slices.Equal(got.Roles, []string{"ops", "dev"}) ||
		!got.CreatedAt.Equal(created) || got.Admin || got.Disabled {
		t.Fatalf("UserByName = %+v, %v", got, err)
	}
	if got, err := s.UserByID(ctx(t), bob.ID); err != nil || got.Name != "bob" || !got.Admin {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
	for _, name := range []string{"carol", "Alice", "alice ", ""} {
		if _, err := s.UserByName(ctx(t), name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByName(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.UserByID(ctx(t), 99999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.SetPassword(ctx(t), alice.ID, "$argon2id$new"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if err := s.SetDisabled(ctx(t), alice.ID, true); err != nil {
		t.Fatalf("SetDisabled: %v", err)
	}
	if err := s.SetRoles(ctx(t), alice.ID, []string{"viewer"}); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	if err := s.SetTOTP(ctx(t), alice.ID, "JBSWY3DPEHPK3PXP", 7); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
	want := got
	want.PasswordHash, want.Disabled, want.Roles, want.TOTPSecret, want.TOTPLastStep = "$argon2id$new", true, []string{"viewer"}, "JBSWY3DPEHPK3PXP", 7
	if u, _ := s.UserByID(ctx(t), alice.ID); !sameUser(u, want) {
		t.Fatalf("after the setters: %+v, want %+v", u, want)
	}
	if err := s.SetDisabled(ctx(t), alice.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTOTP(ctx(t), alice.ID, "", 0); err != nil {
		t.Fatal(err)
	}
	want.Disabled, want.TOTPSecret, want.TOTPLastStep = false, "", 0
	if u, _ := s.UserByID(ctx(t), alice.ID); !sameUser(u, want) {
		t.Fatalf("after enable and TOTP removal: %+v, want %+v", u, want)
	}
	for name, set := range map[string]func() error{
		"SetPassword": func() error { return s.SetPassword(ctx(t), 99999, "h") },
		"SetDisabled": func() error { return s.SetDisabled(ctx(t), 99999, true) },
		"SetRoles":    func() error { return s.SetRoles(ctx(t), 99999, nil) },
		"SetTOTP":     func() error { return s.SetTOTP(ctx(t), 99999, "JBSWY3DPEHPK3PXP", 1) },
	} {
		if err := set(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(unknown user) = %v, want ErrNotFound", name, err)
		}
	}
	if u, _ := s.UserByID(ctx(t), bob.ID); u.Disabled || u.PasswordHash != "" || len(u.Roles) != 0 || u.TOTPSecret != "" {
		t.Fatalf("setting alice changed bob: %+v", u)
	}
	list, err := s.ListUsers(ctx(t))
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("ListUsers = %+v, %v", list, err)
	}
}

func testTOTPStepReplay(t *testing.T, s store.Store) {
	u, err := s.CreateUser(ctx(t), store.User{Name: "alice", TOTPSecret: "JBSWY3DPEHPK3PXP"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step int64
		want bool
	}{
		{100, true}, {100, false}, {99, false}, {101, true}, {50, false}, {103, true}, {102, false},
	} {
		if ok, err := s.AcceptTOTPStep(ctx(t), u.ID, tc.step); err != nil || ok != tc.want {
			t.Fatalf("AcceptTOTPStep(%d) = %v, %v; want %v", tc.step, ok, err, tc.want)
		}
	}
	// Writing the same secret again with a stale step must not reopen the
	// replay window; a new secret starts from the step it was confirmed at.
	if err := s.SetTOTP(ctx(t), u.ID, u.TOTPSecret, 0); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcceptTOTPStep(ctx(t), u.ID, 103); ok {
		t.Fatal("step 103 accepted again after SetTOTP with the same secret and a stale step")
	}
	if err := s.SetTOTP(ctx(t), u.ID, "KRSXG5CTMVRXEZLU", 40); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcceptTOTPStep(ctx(t), u.ID, 41); !ok {
		t.Fatal("a new secret kept the old secret's last step")
	}
	// Concurrent logins with the same code: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			ok, err := s.AcceptTOTPStep(ctx(t), u.ID, 200)
			if err != nil {
				t.Errorf("AcceptTOTPStep: %v", err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent acceptances of one step, want 1", wins)
	}
	if _, err := s.AcceptTOTPStep(ctx(t), 99999, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AcceptTOTPStep(unknown user) = %v, want ErrNotFound", err)
	}
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	alice, _ := s.CreateUser(ctx(t), store.User{Name: "alice"})
	bob, _ := s.CreateUser(ctx(t), store.User{Name: "bob"})
	if err := s.SetRecoveryCodes(ctx(t), alice.ID, []string{"h1", "h2"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		user int64
		hash string
		want bool
	}{
		{"valid code", alice.ID, "h1", true},
		{"reused code", alice.ID, "h1", false},
		{"another user's code", bob.ID, "h2", false},
		{"unknown code", alice.ID, "nope", false},
		{"empty code", alice.ID, "", false},
	} {
		if ok, err := s.UseRecoveryCode(ctx(t), tc.user, tc.hash); err != nil || ok != tc.want {
			t.Errorf("%s: UseRecoveryCode = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
	if err := s.SetRecoveryCodes(ctx(t), alice.ID, []string{"h3"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx(t), alice.ID, "h2"); ok {
		t.Error("a replaced recovery code still works")
	}
	if ok, _ := s.UseRecoveryCode(ctx(t), alice.ID, "h3"); !ok {
		t.Error("the new recovery code does not work")
	}
}

func testSessions(t *testing.T, s store.Store) {
	alice, _ := s.CreateUser(ctx(t), store.User{Name: "alice"})
	bob, _ := s.CreateUser(ctx(t), store.User{Name: "bob"})
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)
	mk := func(hash string, u store.User, i int) store.Session {
		return store.Session{IDHash: hash, PublicID: "p-" + hash, UserID: u.ID, Username: u.Name, CSRFSecret: "secret-" + hash,
			CreatedAt: at.Add(time.Duration(i) * time.Second), LastSeen: at.Add(time.Duration(i) * time.Second), IP: "127.0.0.1", UserAgent: "test"}
	}
	sessions := []store.Session{mk("a1", alice, 1), mk("a2", alice, 2), mk("a3", alice, 3), mk("b1", bob, 4)}
	for _, ss := range sessions {
		if err := s.CreateSession(ctx(t), ss); err != nil {
			t.Fatalf("CreateSession(%q): %v", ss.IDHash, err)
		}
	}
	if err := s.CreateSession(ctx(t), mk("a1", alice, 9)); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateSession(same hash) = %v, want ErrExists", err)
	}
	if err := s.CreateSession(ctx(t), store.Session{IDHash: "x1", PublicID: "p-x1", UserID: 99999, Username: "ghost"}); err == nil {
		t.Errorf("CreateSession(unknown user) succeeded")
	}
	got, err := s.SessionByHash(ctx(t), "a1")
	if err != nil || !sameSession(got, sessions[0]) {
		t.Fatalf("SessionByHash = %+v, %v; want %+v", got, err, sessions[0])
	}
	if _, err := s.SessionByHash(ctx(t), "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByHash(unknown) = %v, want ErrNotFound", err)
	}
	// TouchSession moves LastSeen forward only and writes nothing else.
	if err := s.TouchSession(ctx(t), "a1", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx(t), "a1", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := sessions[0]
	want.LastSeen = at.Add(time.Hour)
	if again, _ := s.SessionByHash(ctx(t), "a1"); !sameSession(again, want) {
		t.Fatalf("after TouchSession: %+v, want %+v", again, want)
	}
	if err := s.TouchSession(ctx(t), "zz", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchSession(unknown) = %v, want ErrNotFound", err)
	}
	list, err := s.ListSessions(ctx(t), alice.ID)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListSessions = %d, %v; want 3", len(list), err)
	}
	deleted, err := s.DeleteUserSessions(ctx(t), alice.ID, "a1")
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, d := range deleted {
		hashes = append(hashes, d.IDHash)
		if d.PublicID != "p-"+d.IDHash || d.Username != "alice" {
			t.Errorf("deleted session %+v lacks its fields", d)
		}
	}
	slices.Sort(hashes)
	if !slices.Equal(hashes, []string{"a2", "a3"}) {
		t.Fatalf("DeleteUserSessions deleted %v, want [a2 a3]", hashes)
	}
	if list, _ := s.ListSessions(ctx(t), alice.ID); len(list) != 1 || list[0].IDHash != "a1" {
		t.Fatalf("after DeleteUserSessions: %+v", list)
	}
	if list, _ := s.ListSessions(ctx(t), bob.ID); len(list) != 1 {
		t.Fatalf("bob's session was touched: %+v", list)
	}
	if err := s.DeleteSession(ctx(t), "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx(t), "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSession twice = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByHash(ctx(t), "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session still found: %v", err)
	}
	// Deleting every session (keep nothing) returns them all.
	if deleted, err := s.DeleteUserSessions(ctx(t), bob.ID, ""); err != nil || len(deleted) != 1 {
		t.Fatalf("DeleteUserSessions(bob) = %v, %v", deleted, err)
	}
}

// testExpiredSessions: DeleteExpiredSessions removes sessions past either
// lifetime, of every user, returns exactly those, and keeps the rest.
func testExpiredSessions(t *testing.T, s store.Store) {
	alice, _ := s.CreateUser(ctx(t), store.User{Name: "alice"})
	bob, _ := s.CreateUser(ctx(t), store.User{Name: "bob"})
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	createdBy, seenBy := now.Add(-12*time.Hour), now.Add(-30*time.Minute)
	for _, ss := range []store.Session{
		{IDHash: "old", UserID: alice.ID, CreatedAt: createdBy, LastSeen: now},                               // absolute, exactly at the limit
		{IDHash: "idle", UserID: bob.ID, CreatedAt: now.Add(-time.Hour), LastSeen: seenBy.Add(-time.Second)}, // idle
		{IDHash: "live", UserID: alice.ID, CreatedAt: createdBy.Add(time.Nanosecond), LastSeen: seenBy.Add(time.Nanosecond)},
		{IDHash: "new", UserID: bob.ID, CreatedAt: now, LastSeen: now},
	} {
		ss.PublicID, ss.Username, ss.CSRFSecret = "p-"+ss.IDHash, "u", "c"
		if err := s.CreateSession(ctx(t), ss); err != nil {
			t.Fatalf("CreateSession(%q): %v", ss.IDHash, err)
		}
	}
	deleted, err := s.DeleteExpiredSessions(ctx(t), createdBy, seenBy)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, d := range deleted {
		hashes = append(hashes, d.IDHash)
		if d.PublicID != "p-"+d.IDHash {
			t.Errorf("deleted session %+v lacks its fields", d)
		}
	}
	slices.Sort(hashes)
	if !slices.Equal(hashes, []string{"idle", "old"}) {
		t.Fatalf("DeleteExpiredSessions deleted %v, want [idle old]", hashes)
	}
	for _, h := range []string{"idle", "old"} {
		if _, err := s.SessionByHash(ctx(t), h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired session %q still found: %v", h, err)
		}
	}
	for _, h := range []string{"live", "new"} {
		if _, err := s.SessionByHash(ctx(t), h); err != nil {
			t.Errorf("live session %q gone: %v", h, err)
		}
	}
	if again, err := s.DeleteExpiredSessions(ctx(t), createdBy, seenBy); err != nil || len(again) != 0 {
		t.Fatalf("second sweep = %v, %v; want nothing", again, err)
	}
}

// testConcurrentUserSetters races each setter against the others, as a
// password change and a 2FA enrolment race an admin's disable and role
// change: every write stands, none undoes another.
func testConcurrentUserSetters(t *testing.T, s store.Store) {
	for i := range 20 {
		u, err := s.CreateUser(ctx(t), store.User{Name: fmt.Sprintf("u%d", i), PasswordHash: "old", Roles: []string{"ops", "dev"}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, set := range []func() error{
			func() error { return s.SetPassword(ctx(t), u.ID, "new") },
			func() error { return s.SetTOTP(ctx(t), u.ID, "JBSWY3DPEHPK3PXP", 9) },
			func() error { return s.SetDisabled(ctx(t), u.ID, true) },
			func() error { return s.SetRoles(ctx(t), u.ID, []string{"dev"}) },
		} {
			wg.Go(func() {
				if err := set(); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := s.UserByID(ctx(t), u.ID)
		if err != nil || got.PasswordHash != "new" || got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.TOTPLastStep != 9 ||
			!got.Disabled || !slices.Equal(got.Roles, []string{"dev"}) {
			t.Fatalf("round %d: %+v, %v; want every concurrent write to stand", i, got, err)
		}
	}
}

func testAPIKeys(t *testing.T, s store.Store) {
	k, err := s.CreateAPIKey(ctx(t), store.APIKey{Name: "news", Hash: "kh1", Scopes: []string{"publish:news:*"}})
	if err != nil || k.ID == 0 || k.CreatedAt.IsZero() {
		t.Fatalf("CreateAPIKey = %+v, %v", k, err)
	}
	if _, err := s.CreateAPIKey(ctx(t), store.APIKey{Name: "news", Hash: "kh2"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateAPIKey(taken name) = %v, want ErrExists", err)
	}
	if _, err := s.CreateAPIKey(ctx(t), store.APIKey{Name: "other", Hash: "kh3"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKeyByHash(ctx(t), "kh1")
	if err != nil || got.Name != "news" || got.Revoked || !slices.Equal(got.Scopes, []string{"publish:news:*"}) {
		t.Fatalf("APIKeyByHash = %+v, %v", got, err)
	}
	if _, err := s.APIKeyByHash(ctx(t), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("APIKeyByHash(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx(t), "news"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.APIKeyByHash(ctx(t), "kh1"); err == nil && !got.Revoked {
		t.Fatal("revoked key still usable")
	}
	if err := s.RevokeAPIKey(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeAPIKey(unknown) = %v, want ErrNotFound", err)
	}
	list, err := s.ListAPIKeys(ctx(t))
	if err != nil || len(list) != 2 || list[0].Name != "news" || !list[0].Revoked || list[1].Revoked {
		t.Fatalf("ListAPIKeys = %+v, %v", list, err)
	}
}

func testTickets(t *testing.T, s store.Store) {
	future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	want := store.Ticket{Hash: "t1", Subject: "alice", Roles: []string{"ops"}, Origin: "https://localhost:8443", ExpiresAt: future}
	if err := s.CreateTicket(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTicket(ctx(t), want); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateTicket(same hash) = %v, want ErrExists", err)
	}
	got, err := s.TakeTicket(ctx(t), "t1")
	if err != nil || got.Subject != "alice" || got.Origin != want.Origin || !got.ExpiresAt.Equal(future) || !slices.Equal(got.Roles, want.Roles) {
		t.Fatalf("TakeTicket = %+v, %v", got, err)
	}
	if _, err := s.TakeTicket(ctx(t), "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeTicket twice = %v, want ErrNotFound", err)
	}
	// The minting credential travels with the ticket; nil and empty
	// channel lists stay apart (unrestricted versus none allowed).
	exp := time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []store.Ticket{
		{Hash: "s1", Subject: "alice", ExpiresAt: future, Kind: "session", SessionHash: "abc"},
		{Hash: "j1", Subject: "svc", ExpiresAt: future, Kind: "jwt", CredExpires: exp, Channels: []string{"news:*"}},
		{Hash: "j2", Subject: "svc", ExpiresAt: future, Kind: "jwt", CredExpires: exp, Channels: []string{}},
	} {
		if err := s.CreateTicket(ctx(t), tc); err != nil {
			t.Fatal(err)
		}
		got, err := s.TakeTicket(ctx(t), tc.Hash)
		if err != nil || got.Kind != tc.Kind || got.SessionHash != tc.SessionHash || !got.CredExpires.Equal(tc.CredExpires) ||
			(got.Channels == nil) != (tc.Channels == nil) || !slices.Equal(got.Channels, tc.Channels) {
			t.Fatalf("TakeTicket(%s) = %+v, %v; want %+v", tc.Hash, got, err, tc)
		}
	}
	if _, err := s.TakeTicket(ctx(t), "never"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeTicket(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CreateTicket(ctx(t), store.Ticket{Hash: "old", Subject: "alice", ExpiresAt: past}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeTicket(ctx(t), "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeTicket(expired) = %v, want ErrNotFound", err)
	}
	// Racing handshakes with one ticket: exactly one gets it.
	if err := s.CreateTicket(ctx(t), store.Ticket{Hash: "race", Subject: "bob", ExpiresAt: future}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			_, err := s.TakeTicket(ctx(t), "race")
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("TakeTicket: %v", err)
			}
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent takes of one ticket succeeded, want 1", wins)
	}
}

func testRevocations(t *testing.T, s store.Store) {
	if id, err := s.LastRevocationID(ctx(t)); err != nil || id != 0 {
		t.Fatalf("LastRevocationID on empty store = %d, %v", id, err)
	}
	if err := s.AddRevocation(ctx(t), store.Revocation{SessionID: "p-1", User: "alice", Reason: "logout"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRevocation(ctx(t), store.Revocation{User: "bob", Reason: "disabled"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.RevocationsAfter(ctx(t), 0)
	if err != nil || len(all) != 2 || all[0].SessionID != "p-1" || all[1].User != "bob" || all[0].ID >= all[1].ID || all[0].CreatedAt.IsZero() {
		t.Fatalf("RevocationsAfter(0) = %+v, %v", all, err)
	}
	rest, err := s.RevocationsAfter(ctx(t), all[0].ID)
	if err != nil || len(rest) != 1 || rest[0].Reason != "disabled" {
		t.Fatalf("RevocationsAfter(first) = %+v, %v", rest, err)
	}
	if id, err := s.LastRevocationID(ctx(t)); err != nil || id != all[1].ID {
		t.Fatalf("LastRevocationID = %d, %v; want %d", id, err, all[1].ID)
	}
}

func testAuditHeads(t *testing.T, s store.Store) {
	if seq, sig, err := s.AuditHead(ctx(t), "c1"); err != nil || seq != 0 || sig != "" {
		t.Fatalf("AuditHead before any = %d, %q, %v; want 0, \"\"", seq, sig, err)
	}
	for _, h := range []struct {
		seq uint64
		sig string
	}{{1, "aa"}, {2, "bb"}, {1 << 40, "cc"}} {
		if err := s.SetAuditHead(ctx(t), "c1", h.seq, h.sig); err != nil {
			t.Fatal(err)
		}
		if seq, sig, err := s.AuditHead(ctx(t), "c1"); err != nil || seq != h.seq || sig != h.sig {
			t.Fatalf("AuditHead = %d, %q, %v; want %d, %q", seq, sig, err, h.seq, h.sig)
		}
	}
	// Chains are apart: a second node's key names another row.
	if err := s.SetAuditHead(ctx(t), "c2", 7, "dd"); err != nil {
		t.Fatal(err)
	}
	if seq, _, _ := s.AuditHead(ctx(t), "c1"); seq != 1<<40 {
		t.Fatalf("c1 moved to %d when c2 was set", seq)
	}
	// Both a server and a CLI command save heads: concurrent saves all land.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range uint64(8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.SetAuditHead(ctx(t), "c3", i+1, fmt.Sprint(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if seq, sig, err := s.AuditHead(ctx(t), "c3"); err != nil || sig != fmt.Sprint(seq-1) {
		t.Fatalf("after concurrent saves: %d, %q, %v", seq, sig, err)
	}
}

func testRooms(t *testing.T, s store.Store) {
	alice, err := s.CreateUser(ctx(t), store.User{Name: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.CreateUser(ctx(t), store.User{Name: "bob", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if rooms, saved, err := s.Rooms(ctx(t), alice.ID); err != nil || saved || rooms != nil {
		t.Fatalf("Rooms before any = %q, %v, %v; want nil, false", rooms, saved, err)
	}
	want := []string{"room:lobby", "team:ops"}
	if err := s.SetRooms(ctx(t), alice.ID, want); err != nil {
		t.Fatal(err)
	}
	if rooms, saved, err := s.Rooms(ctx(t), alice.ID); err != nil || !saved || !slices.Equal(rooms, want) {
		t.Fatalf("Rooms = %q, %v, %v; want %q", rooms, saved, err, want)
	}
	// Leaving every room is remembered too: saved, and empty.
	if err := s.SetRooms(ctx(t), alice.ID, nil); err != nil {
		t.Fatal(err)
	}
	if rooms, saved, err := s.Rooms(ctx(t), alice.ID); err != nil || !saved || len(rooms) != 0 {
		t.Fatalf("Rooms after saving none = %q, %v, %v; want [], true", rooms, saved, err)
	}
	// Users are apart.
	if _, saved, _ := s.Rooms(ctx(t), bob.ID); saved {
		t.Fatal("bob sees alice's saved rooms")
	}
}

func testPendingTOTP(t *testing.T, s store.Store) {
	alice, err := s.CreateUser(ctx(t), store.User{Name: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	const first, second = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := s.PendingTOTPSecret(ctx(t), alice.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PendingTOTPSecret before any = %v, want ErrNotFound", err)
	}
	got, err := s.PendingTOTP(ctx(t), alice.ID, first, t0, t0.Add(10*time.Minute))
	if err != nil || got != first {
		t.Fatalf("PendingTOTP first = %q, %v", got, err)
	}
	// A second visit before expiry keeps the first secret.
	if got, err := s.PendingTOTP(ctx(t), alice.ID, second, t0.Add(9*time.Minute), t0.Add(19*time.Minute)); err != nil || got != first {
		t.Fatalf("PendingTOTP again = %q, %v; want the first secret", got, err)
	}
	if got, err := s.PendingTOTPSecret(ctx(t), alice.ID, t0.Add(9*time.Minute)); err != nil || got != first {
		t.Fatalf("PendingTOTPSecret = %q, %v", got, err)
	}
	// Once expired it is neither confirmed nor kept: a new one replaces it.
	if _, err := s.PendingTOTPSecret(ctx(t), alice.ID, t0.Add(10*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PendingTOTPSecret at expiry = %v, want ErrNotFound", err)
	}
	if got, err := s.PendingTOTP(ctx(t), alice.ID, second, t0.Add(10*time.Minute), t0.Add(20*time.Minute)); err != nil || got != second {
		t.Fatalf("PendingTOTP after expiry = %q, %v; want the new secret", got, err)
	}
	if err := s.ClearPendingTOTP(ctx(t), alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PendingTOTPSecret(ctx(t), alice.ID, t0.Add(11*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PendingTOTPSecret after clear = %v, want ErrNotFound", err)
	}
	if err := s.ClearPendingTOTP(ctx(t), alice.ID); err != nil {
		t.Fatalf("ClearPendingTOTP with none kept: %v", err)
	}
	// Two pages opened at once show one secret.
	var wg sync.WaitGroup
	out := make([]string, 8)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], _ = s.PendingTOTP(ctx(t), alice.ID, fmt.Sprintf("%032d", i), t0, t0.Add(time.Minute))
		}()
	}
	wg.Wait()
	for _, v := range out {
		if v == "" || v != out[0] {
			t.Fatalf("concurrent PendingTOTP gave different secrets: %q", out)
		}
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func sameSession(a, b store.Session) bool {
	ta, tb := a.CreatedAt, a.LastSeen
	a.CreatedAt, a.LastSeen = time.Time{}, time.Time{}
	ok := ta.Equal(b.CreatedAt) && tb.Equal(b.LastSeen)
	b.CreatedAt, b.LastSeen = time.Time{}, time.Time{}
	return ok && a == b
}

// sameUser compares users field by field (roles as lists, times as instants).
func sameUser(a, b store.User) bool {
	return a.ID == b.ID && a.Name == b.Name && a.PasswordHash == b.PasswordHash && a.Admin == b.Admin &&
		a.Disabled == b.Disabled && slices.Equal(a.Roles, b.Roles) && a.TOTPSecret == b.TOTPSecret &&
		a.TOTPLastStep == b.TOTPLastStep && a.CreatedAt.Equal(b.CreatedAt)
}
