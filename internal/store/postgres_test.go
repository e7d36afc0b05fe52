package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// TestPostgresTwoNodes runs the shared-database suite on two separate
// store instances (two nodes) on one database, sealing with one key file.
func TestPostgresTwoNodes(t *testing.T) {
	sl := sealer(t)
	storetest.RunShared(t, func(t *testing.T, o storetest.Options) (store.Store, store.Store) {
		url := pgtest.NewDatabase(t)
		opts := store.PostgresOptions{Clock: o.Clock, Sealer: sl}
		return openPostgres(t, url, opts), openPostgres(t, url, opts)
	})
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
