package store_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wsguard/wsguard/internal/store"
)

// TestDatabaseFilesOwnerOnly: under umask 022 SQLite would create the
// database, -wal and -shm 0644; the store creates them 0600, and tightens
// ones an earlier version left 0644.
func TestDatabaseFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "test.db")
	s := openTest(t, path, store.SQLiteOptions{})
	if _, err := s.CreateUser(context.Background(), store.User{Name: "a", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is %04o, want 0600", when, filepath.Base(f), fi.Mode().Perm())
			}
		}
	}
	check("created")
	s.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(f, 0o644)
	}
	s2 := openTest(t, path, store.SQLiteOptions{})
	if _, err := s2.UserByName(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	check("reopened")
}
