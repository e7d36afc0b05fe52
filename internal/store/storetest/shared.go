package storetest

import (
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

// SharedOpener opens two stores on one fresh database, as two nodes (or a
// node and the CLI) sharing it would, both built with o.
type SharedOpener func(t *testing.T, o Options) (a, b store.Store)

// RunShared runs the tests of what two stores sharing one database must
// keep between them: offsets gap-free and unique under concurrent
// publishes from both, a cid deduplicated across them, and one-time
// credentials spent once whichever asks.
func RunShared(t *testing.T, open SharedOpener) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"PublishFromBoth", testSharedPublish},
		{"CredentialsAcross", testSharedCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t, Options{Clock: clock.NewFake(ClockStart)})
			tc.fn(t, a, b)
		})
	}
}

// testSharedPublish: both publish into one channel at once. Every stored
// offset is acknowledged once, together they are 1..N with no gap, the log
// holds exactly them, and a cid sent to both is stored once, both answered
// its offset.
func testSharedPublish(t *testing.T, a, b store.Store) {
	const perNode, workers = 150, 6
	var mu sync.Mutex
	acked := map[uint64]int{}
	byCID := map[string]uint64{}
	var wg sync.WaitGroup
	for n, s := range []store.Store{a, b} {
		for w := range workers {
			wg.Go(func() {
				for i := w; i < perNode; i += workers {
					cid := ""
					if i%3 == 0 {
						cid = fmt.Sprint("shared-", i) // sent by both: stored once
					}
					r, err := s.Publish(ctx(t), store.Message{Channel: "room:many", From: "alice", CID: cid, Data: json.RawMessage(fmt.Sprint(i))})
					if err != nil {
						t.Errorf("store %d publish %d: %v", n, i, err)
						return
					}
					mu.Lock()
					if cid != "" {
						if prev, ok := byCID[cid]; ok && prev != r.Offset {
							t.Errorf("cid %s answered %d and %d", cid, prev, r.Offset)
						}
						byCID[cid] = r.Offset
					}
					if !r.Duplicate {
						if other, ok := acked[r.Offset]; ok {
							t.Errorf("offset %d stored twice (stores %d and %d)", r.Offset, other, n)
						}
						acked[r.Offset] = n
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	want := uint64(2*perNode - perNode/3)
	if uint64(len(acked)) != want {
		t.Fatalf("%d offsets stored, want %d", len(acked), want)
	}
	for o := uint64(1); o <= want; o++ {
		if _, ok := acked[o]; !ok {
			t.Fatalf("offset %d missing: stored offsets are not gap-free 1..%d", o, want)
		}
	}
	for i, s := range []store.Store{a, b} {
		if l, err := s.Latest(ctx(t), "room:many"); err != nil || l != want {
			t.Fatalf("store %d Latest = %d, %v; want %d", i, l, err, want)
		}
	}
	var got []uint64
	for after := uint64(0); ; {
		page, complete, err := b.Since(ctx(t), "room:many", after, 100)
		if err != nil || !complete {
			t.Fatalf("Since: complete=%v err=%v", complete, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, offsets(page)...)
		after = page[len(page)-1].Offset
	}
	if !slices.Equal(got, seq(1, want)) {
		t.Fatalf("the log holds %d messages, want 1..%d in order", len(got), want)
	}
}

// testSharedCredentials: what one store grants, the other honours once.
func testSharedCredentials(t *testing.T, a, b store.Store) {
	if err := a.CreateTicket(ctx(t), store.Ticket{Hash: "tk", Subject: "alice", ExpiresAt: ClockStart.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b, a, b} {
		wg.Go(func() {
			_, err := s.TakeTicket(ctx(t), "tk")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrNotFound):
				losses++
			default:
				t.Errorf("TakeTicket: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || losses != 3 {
		t.Fatalf("ticket redeemed %d times (%d refused), want once", wins, losses)
	}

	alice, err := a.CreateUser(ctx(t), store.User{Name: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := b.UserByName(ctx(t), "alice"); err != nil || u.ID != alice.ID {
		t.Fatalf("b UserByName = %+v, %v", u, err)
	}
	if err := a.SetTOTP(ctx(t), alice.ID, "JBSWY3DPEHPK3PXP", 0); err != nil {
		t.Fatal(err)
	}
	if u, err := b.UserByID(ctx(t), alice.ID); err != nil || u.TOTPSecret != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("b reads the TOTP secret a stored as %q, %v", u.TOTPSecret, err)
	}
	if ok, err := a.AcceptTOTPStep(ctx(t), alice.ID, 100); err != nil || !ok {
		t.Fatalf("a AcceptTOTPStep(100) = %v, %v; want accepted", ok, err)
	}
	for _, step := range []int64{100, 99} {
		if ok, err := b.AcceptTOTPStep(ctx(t), alice.ID, step); err != nil || ok {
			t.Fatalf("b AcceptTOTPStep(%d) = %v, %v; want refused (used through a)", step, ok, err)
		}
	}
	if ok, err := b.AcceptTOTPStep(ctx(t), alice.ID, 101); err != nil || !ok {
		t.Fatalf("b AcceptTOTPStep(101) = %v, %v; want accepted", ok, err)
	}
	if err := a.SetRecoveryCodes(ctx(t), alice.ID, []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.UseRecoveryCode(ctx(t), alice.ID, "r1"); err != nil || !ok {
		t.Fatalf("b UseRecoveryCode = %v, %v", ok, err)
	}
	if ok, err := a.UseRecoveryCode(ctx(t), alice.ID, "r1"); err != nil || ok {
		t.Fatalf("a UseRecoveryCode after b spent it = %v, %v; want refused", ok, err)
	}

	if err := a.CreateSession(ctx(t), store.Session{IDHash: "sh", PublicID: "p1", UserID: alice.ID, Username: "alice", CSRFSecret: "c"}); err != nil {
		t.Fatal(err)
	}
	if ss, err := b.SessionByHash(ctx(t), "sh"); err != nil || ss.CSRFSecret != "c" {
		t.Fatalf("b SessionByHash = %+v, %v", ss, err)
	}
	if err := b.DeleteSession(ctx(t), "sh"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SessionByHash(ctx(t), "sh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a still sees the session b deleted: %v", err)
	}
	if _, err := a.CreateAPIKey(ctx(t), store.APIKey{Name: "svc", Hash: "kh", Scopes: []string{"publish:room:*"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeAPIKey(ctx(t), "svc"); err != nil {
		t.Fatal(err)
	}
	if k, err := a.APIKeyByHash(ctx(t), "kh"); err != nil || !k.Revoked {
		t.Fatalf("a APIKeyByHash = %+v, %v; want revoked through b", k, err)
	}
	if err := b.AddRevocation(ctx(t), store.Revocation{User: "alice", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if rs, err := a.RevocationsAfter(ctx(t), 0); err != nil || len(rs) != 1 || rs[0].User != "alice" {
		t.Fatalf("a RevocationsAfter = %+v, %v", rs, err)
	}
}
