package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/store/pgtest"
)

// TestServerStopStartKeepsData: a private server refuses connections while
// stopped, takes them again on the same port after Start and after
// Restart, and keeps what was committed.
func TestServerStopStartKeepsData(t *testing.T) {
	s := pgtest.NewServer(t)
	db := s.NewDatabase(t)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, db)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec(`CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := exec(`SELECT 1`); err == nil {
		t.Fatal("a stopped server took a connection")
	}
	s.Start()
	s.Restart()
	if err := exec(`INSERT INTO kept SELECT n + 1 FROM kept`); err != nil {
		t.Fatalf("after Stop, Start and Restart: %v", err)
	}
}
