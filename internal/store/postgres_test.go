package store_test

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

	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/store/pgtest"
	"github.com/wsguard/wsguard/internal/store/storetest"
)

// openPostgres opens a store on url, closed with the test.
func openPostgres(t testing.TB, url string, opts store.PostgresOptions) *store.Postgres {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(t0)
	}
	s, err := store.OpenPostgres(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func postgresOpener(base store.PostgresOptions) storetest.Opener {
	return func(t *testing.T, o storetest.Options) store.Store {
		opts := base
		opts.Clock, opts.DedupeWindow, opts.Retention, opts.PruneInterval = o.Clock, o.DedupeWindow, o.Retention, o.PruneInterval
		return openPostgres(t, pgtest.NewDatabase(t), opts)
	}
}

// TestPostgresConformance runs the store suite against PostgreSQL, plain
// and with TOTP secrets sealed.
func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, postgresOpener(store.PostgresOptions{}))
}

func TestPostgresConformanceSealed(t *testing.T) {
	storetest.Run(t, postgresOpener(store.PostgresOptions{Sealer: sealer(t)}))
}

// TestPostgresTwoNodesPublish: two store instances on one database (two
// nodes) publish into one channel at once. Every acknowledged offset is
// unique, together they are 1..N with no gap, the log holds exactly them,
// and a cid retried on the other node answers the first result.
func TestPostgresTwoNodesPublish(t *testing.T) {
	url := pgtest.NewDatabase(t)
	nodes := []*store.Postgres{openPostgres(t, url, store.PostgresOptions{}), openPostgres(t, url, store.PostgresOptions{})}
	const perNode, workers = 150, 6
	var mu sync.Mutex
	acked := map[uint64]string{}
	byCID := map[string]uint64{}
	var wg sync.WaitGroup
	for n, s := range nodes {
		for w := range workers {
			wg.Go(func() {
				for i := w; i < perNode; i += workers {
					// Every third message carries a cid that both nodes send:
					// one stores it, the other answers its offset.
					cid := ""
					if i%3 == 0 {
						cid = fmt.Sprint("shared-", i)
					}
					r, err := s.Publish(t.Context(), store.Message{Channel: "room:many", From: "alice", CID: cid, Data: json.RawMessage(fmt.Sprint(i))})
					if err != nil {
						t.Errorf("node %d publish %d: %v", n, i, err)
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
							t.Errorf("offset %d acknowledged twice (%s and node %d)", r.Offset, other, n)
						}
						acked[r.Offset] = fmt.Sprint("node ", n)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	shared := perNode / 3
	want := uint64(2*perNode - shared) // each shared cid stored once
	if uint64(len(acked)) != want {
		t.Fatalf("%d offsets stored, want %d", len(acked), want)
	}
	for o := uint64(1); o <= want; o++ {
		if _, ok := acked[o]; !ok {
			t.Fatalf("offset %d missing: acknowledged offsets are not gap-free 1..%d", o, want)
		}
	}
	for i, s := range nodes {
		if l, err := s.Latest(t.Context(), "room:many"); err != nil || l != want {
			t.Fatalf("node %d Latest = %d, %v; want %d", i, l, err, want)
		}
	}
	var got []uint64
	for after := uint64(0); ; {
		page, complete, err := nodes[1].Since(t.Context(), "room:many", after, 100)
		if err != nil || !complete {
			t.Fatalf("Since: complete=%v err=%v", complete, err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.Offset)
		}
		after = page[len(page)-1].Offset
	}
	if len(got) != int(want) || got[0] != 1 || got[len(got)-1] != want || !slices.IsSorted(got) {
		t.Fatalf("the log holds %d messages (%v...), want 1..%d", len(got), got[:min(5, len(got))], want)
	}
}

// TestPostgresCrossNodeCredentials: what one node grants, the other
// honours once: a ticket minted on one is redeemed once on the other (and
// refused again on either), a TOTP step used on one is refused on the
// other, and a user, session and API key made on one are seen by the other.
func TestPostgresCrossNodeCredentials(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openPostgres(t, url, store.PostgresOptions{}), openPostgres(t, url, store.PostgresOptions{})
	ctx := t.Context()

	if err := a.CreateTicket(ctx, store.Ticket{Hash: "tk", Subject: "alice", ExpiresAt: t0.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	// Both nodes race to redeem it: exactly one gets it.
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range []*store.Postgres{a, b, a, b} {
		wg.Go(func() {
			_, err := s.TakeTicket(ctx, "tk")
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

	alice, err := a.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := b.UserByName(ctx, "alice"); err != nil || u.ID != alice.ID {
		t.Fatalf("node b UserByName = %+v, %v", u, err)
	}
	if err := a.SetTOTP(ctx, alice.ID, "JBSWY3DPEHPK3PXP", 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.AcceptTOTPStep(ctx, alice.ID, 100); err != nil || !ok {
		t.Fatalf("node a AcceptTOTPStep(100) = %v, %v; want accepted", ok, err)
	}
	for _, step := range []int64{100, 99} {
		if ok, err := b.AcceptTOTPStep(ctx, alice.ID, step); err != nil || ok {
			t.Fatalf("node b AcceptTOTPStep(%d) = %v, %v; want refused (used on node a)", step, ok, err)
		}
	}
	if ok, err := b.AcceptTOTPStep(ctx, alice.ID, 101); err != nil || !ok {
		t.Fatalf("node b AcceptTOTPStep(101) = %v, %v; want accepted", ok, err)
	}

	if err := a.CreateSession(ctx, store.Session{IDHash: "sh", PublicID: "p1", UserID: alice.ID, Username: "alice", CSRFSecret: "c"}); err != nil {
		t.Fatal(err)
	}
	if ss, err := b.SessionByHash(ctx, "sh"); err != nil || ss.CSRFSecret != "c" {
		t.Fatalf("node b SessionByHash = %+v, %v", ss, err)
	}
	if err := b.DeleteSession(ctx, "sh"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SessionByHash(ctx, "sh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("node a still sees the session node b deleted: %v", err)
	}
	if _, err := a.CreateAPIKey(ctx, store.APIKey{Name: "svc", Hash: "kh", Scopes: []string{"publish:room:*"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeAPIKey(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if k, err := a.APIKeyByHash(ctx, "kh"); err != nil || !k.Revoked {
		t.Fatalf("node a APIKeyByHash = %+v, %v; want revoked by node b", k, err)
	}
}

// TestPostgresMigrationsRaced: several nodes starting at once on an empty
// database migrate it once, under the advisory lock, and all open.
func TestPostgresMigrationsRaced(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 4
	var migrations sync.Map
	var wg sync.WaitGroup
	stores := make([]*store.Postgres, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = store.OpenPostgres(context.Background(), url, store.PostgresOptions{
				OnMigrate: func(from, to int, name string) {
					if _, dup := migrations.LoadOrStore(to, i); dup {
						t.Errorf("migration to %d applied twice", to)
					}
				}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if _, ok := migrations.Load(1); !ok {
		t.Fatal("no node applied migration 1")
	}
	for i, s := range stores {
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != 1 {
			t.Fatalf("node %d SchemaVersion = %d, %v; want 1", i, v, err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("node %d Ping: %v", i, err)
		}
	}
}

// TestPostgresUnreachable: a store URL nobody answers fails to open with
// ErrUnavailable-style detail and never leaks the password.
func TestPostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := store.OpenPostgres(ctx, "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", store.PostgresOptions{})
	if err == nil {
		t.Fatal("OpenPostgres on a closed port succeeded")
	}
	if s := err.Error(); strings.Contains(s, "hunter2") {
		t.Fatalf("error leaks the password: %s", s)
	}
	if _, err := store.OpenPostgres(ctx, "postgres://u:hunter2@[bad", store.PostgresOptions{}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestPostgresStalledCommitUnavailable: another session holds the channels
// table past CommitTimeout (in life: a database that stops answering).
// Every publish of the batch fails with ErrUnavailable, nothing is stored
// and no offset consumed, and the store recovers once the lock is gone.
func TestPostgresStalledCommitUnavailable(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openPostgres(t, url, store.PostgresOptions{CommitTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	publish(t, s, "room:l", "alice", "")

	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE channels IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_, err := s.Publish(ctx, store.Message{Channel: "room:l", From: "bob", CID: fmt.Sprint("c", i), Data: json.RawMessage(`2`)})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Publish while stalled = %v, want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if r := publish(t, s, "room:l", "bob", "c0"); r.Offset != 2 || r.Duplicate {
		t.Fatalf("after the stall: %+v, want offset 2, not a duplicate", r)
	}
}
