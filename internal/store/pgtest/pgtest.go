// Package pgtest gives tests a PostgreSQL database of their own: created
// with a random name on the test server, dropped when the test ends. A test
// that needs to restart PostgreSQL starts a private server (NewServer)
// instead.
//
// The server is the one at 127.0.0.1:5432 (user postgres, trust auth);
// WSGUARD_TEST_POSTGRES overrides the admin URL. A test that cannot reach
// it fails, saying what to install or start: it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/config"
)

// DefaultAdminURL is the server the tests use unless WSGUARD_TEST_POSTGRES says otherwise.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL of the test server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("WSGUARD_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabase creates an empty database with a random name and returns
// its URL; t.Cleanup drops it (closing whatever is still connected).
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, AdminURL())
}

// newDatabase creates a database on the server at admin (see NewDatabase).
func newDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s: %v\n"+
			"install and start it (Debian: apt-get install postgresql; pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start),\n"+
			"allow user postgres from 127.0.0.1 (pg_hba.conf: host all all 127.0.0.1/32 trust), or set WSGUARD_TEST_POSTGRES to an admin URL;\n"+
			"scripts/test.sh does this on a fresh Debian machine", config.RedactURL(admin), err)
	}
	defer conn.Close(context.Background())
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "wsguard_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("WSGUARD_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
