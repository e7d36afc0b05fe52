package server

import (
	"bytes"
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/store"
)

// startOnDataDir runs a server on the given data_dir with a fake clock and
// a log the test can read.
func startOnDataDir(t *testing.T, dataDir string) (*testServer, *clock.Fake, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	clk := clock.NewFake(time.Now())
	ts := startServerWith(t, func(c *config.Config) {
		c.DataDir = dataDir
		c.Audit.File = filepath.Join(dataDir, "audit.log")
	}, Options{Clock: clk, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	return ts, clk, logs
}

// storedTOTP reads alice's totp_secret column straight from the database
// file, as someone holding a copy of it would.
func storedTOTP(t *testing.T, dbPath, user string) string {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT totp_secret FROM users WHERE name = ?`, user).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// signInWith2FA signs in with the password and a fresh code for secret.
func signInWith2FA(t *testing.T, ts *testServer, clk *clock.Fake, name, secret string) int {
	t.Helper()
	clk.Advance(60 * time.Second) // a step no earlier login used
	b := ts.newBrowser()
	if r := b.password(name, pw, ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/2fa" {
		t.Fatalf("password step: %d %s, want 303 /login/2fa", r.StatusCode, r.Header.Get("Location"))
	}
	return b.secondFactor(codeAt(t, secret, clk.Now())).StatusCode
}

// TestFilesAtRest is the other local user's and the backup thief's view:
// under the usual umask 022, with a data_dir that already existed 0755,
// nothing wsguard writes is readable by others, the start warns about the
// loose directory, and the database file alone does not hold the TOTP
// secret. The user still signs in with 2FA.
func TestFilesAtRest(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ts, clk, logs := startOnDataDir(t, dataDir)
	if !strings.Contains(logs.String(), `"path":"`+dataDir+`","was":"0755","now":"0700"`) {
		t.Errorf("no warning about the 0755 data_dir in the log:\n%s", logs.String())
	}

	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	secret, _ := b.enrol(clk)
	if code := signInWith2FA(t, ts, clk, "alice", secret); code != http.StatusSeeOther {
		t.Fatalf("2FA sign-in: %d, want 303", code)
	}

	// Every file 0600, every directory 0700, the SQLite side files included.
	db := filepath.Join(dataDir, "wsguard.db")
	for _, f := range []string{db, db + "-wal", db + "-shm", filepath.Join(dataDir, atrest.KeyFile), filepath.Join(dataDir, "audit.log"), filepath.Join(dataDir, "tls", "ca.pem")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	n := 0
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := atrest.FileMode
		if d.IsDir() {
			want = atrest.DirMode
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d entries: %v", n, err)
	}

	// The column holds sealed text, and no database file holds the secret.
	if v := storedTOTP(t, db, "alice"); v == "" || strings.Contains(v, secret) || !strings.HasPrefix(v, "sealed1:") {
		t.Errorf("totp_secret column holds %q, want sealed text", v)
	}
	for _, f := range []string{db, db + "-wal"} {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("TOTP secret in clear in %s", f)
		}
	}
	// What the store hands the server is the secret itself.
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != secret {
		t.Error("store does not open the sealed secret")
	}
}

// TestClearSecretsSealedAtStart is the upgrade: a database written by an
// earlier version holds a TOTP secret in clear; the first start seals it,
// and the user signs in with the authenticator they already have.
func TestClearSecretsSealedAtStart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dataDir, "wsguard.db")
	key, err := identity.NewTOTPSecret("wsguard", "bob")
	if err != nil {
		t.Fatal(err)
	}
	secret := key.Secret()
	old, err := store.OpenSQLite(db, store.SQLiteOptions{}) // no sealer: as before
	if err != nil {
		t.Fatal(err)
	}
	hash, err := identity.NewHasher(identity.HasherOptions{}).Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.CreateUser(context.Background(), store.User{Name: "bob", PasswordHash: hash, TOTPSecret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if storedTOTP(t, db, "bob") != secret {
		t.Fatal("setup: the secret is not in clear")
	}

	ts, clk, logs := startOnDataDir(t, dataDir)
	if v := storedTOTP(t, db, "bob"); strings.Contains(v, secret) || !strings.HasPrefix(v, "sealed1:") {
		t.Errorf("after start the column holds %q, want sealed text", v)
	}
	if !strings.Contains(logs.String(), "sealed TOTP secrets stored in clear") {
		t.Errorf("the start does not say it sealed clear secrets:\n%s", logs.String())
	}
	if code := signInWith2FA(t, ts, clk, "bob", secret); code != http.StatusSeeOther {
		t.Fatalf("2FA sign-in after sealing: %d, want 303", code)
	}
}

// TestSealingKeyReplaced: with another key file in place the sealed secret
// does not open; the start says which users are affected, and their
// second factor fails closed (refused, never skipped).
func TestSealingKeyReplaced(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	ts, clk, _ := startOnDataDir(t, dataDir)
	ts.addUser("carol", pw, false)
	b := ts.newBrowser()
	b.login("carol", pw)
	secret, _ := b.enrol(clk)
	ts.stop()

	keyPath := filepath.Join(dataDir, atrest.KeyFile)
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := atrest.LoadOrCreateKey(keyPath); err != nil {
		t.Fatal(err)
	}
	ts2, clk2, logs := startOnDataDir(t, dataDir)
	if !strings.Contains(logs.String(), "do not open with the sealing key") || !strings.Contains(logs.String(), `"users":["carol"]`) {
		t.Errorf("the start does not name the user whose secret does not open:\n%s", logs.String())
	}
	if code := signInWith2FA(t, ts2, clk2, "carol", secret); code == http.StatusSeeOther {
		t.Fatal("2FA passed with a secret that does not open")
	}
}
