package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/store/storetest"
)

const totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func sealer(t *testing.T) *atrest.Sealer {
	t.Helper()
	s, _, err := atrest.LoadOrCreateKey(filepath.Join(t.TempDir(), atrest.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rawTOTP(t *testing.T, path string, id int64) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT totp_secret FROM users WHERE id = ?`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The whole store contract holds with sealing on.
func TestConformanceSealed(t *testing.T) {
	sl := sealer(t)
	storetest.Run(t, sqliteOpener(store.SQLiteOptions{Sealer: sl}))
}

// TestTOTPSealedInColumn: the column holds sealed text, the store hands
// back the secret, and a stale whole-row write with the same secret still
// cannot move the last accepted step back (sealing is deterministic).
func TestTOTPSealedInColumn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s := openTest(t, path, store.SQLiteOptions{Sealer: sealer(t)})
	u, err := s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "h", TOTPSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
	if v := rawTOTP(t, path, u.ID); strings.Contains(v, totpSecret) || !strings.HasPrefix(v, "sealed1:") {
		t.Fatalf("column holds %q", v)
	}
	got, err := s.UserByName(ctx, "alice")
	if err != nil || got.TOTPSecret != totpSecret {
		t.Fatalf("UserByName: %q %v", got.TOTPSecret, err)
	}
	stale := got
	if ok, err := s.AcceptTOTPStep(ctx, u.ID, 100); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := s.SetTOTP(ctx, u.ID, stale.TOTPSecret, stale.TOTPLastStep); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, u.ID); got.TOTPLastStep != 100 || got.TOTPSecret != totpSecret {
		t.Errorf("after a stale write: step %d secret %q, want 100 and the secret", got.TOTPLastStep, got.TOTPSecret)
	}
	if v := rawTOTP(t, path, u.ID); strings.Contains(v, totpSecret) {
		t.Fatal("SetTOTP wrote the secret in clear")
	}
}

// TestSealSecrets: clear secrets left by an earlier version are sealed;
// ones sealed under another key are reported and stay as they are.
func TestSealSecrets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	old := openTest(t, path, store.SQLiteOptions{})
	bob, err := old.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "h", TOTPSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.CreateUser(ctx, store.User{Name: "nobody", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	foreign, _ := sealer(t).Seal("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	carol, err := old.CreateUser(ctx, store.User{Name: "carol", PasswordHash: "h", TOTPSecret: foreign})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := openTest(t, path, store.SQLiteOptions{Sealer: sealer(t)})
	n, unopened, err := s.SealSecrets(ctx)
	if err != nil || n != 1 || len(unopened) != 1 || unopened[0] != "carol" {
		t.Fatalf("SealSecrets: %d %q %v, want 1 [carol]", n, unopened, err)
	}
	if v := rawTOTP(t, path, bob.ID); !strings.HasPrefix(v, "sealed1:") {
		t.Errorf("bob's column %q, want sealed", v)
	}
	if u, _ := s.UserByID(ctx, bob.ID); u.TOTPSecret != totpSecret {
		t.Errorf("bob's secret %q after sealing", u.TOTPSecret)
	}
	// Carol's value is kept as stored: non-empty (2FA still required) and
	// not base32 (no code matches it); writing her row back keeps it.
	u, _ := s.UserByID(ctx, carol.ID)
	if u.TOTPSecret != foreign {
		t.Errorf("carol's unopened secret came back as %q", u.TOTPSecret)
	}
	if err := s.SetTOTP(ctx, u.ID, u.TOTPSecret, u.TOTPLastStep); err != nil || rawTOTP(t, path, carol.ID) != foreign {
		t.Errorf("carol's row written back: %v, column %q", err, rawTOTP(t, path, carol.ID))
	}
	if n, _, _ := s.SealSecrets(ctx); n != 0 {
		t.Errorf("second run sealed %d", n)
	}
}

// TestPendingTOTPSealed: an enrolment secret not yet confirmed is sealed
// at rest like a confirmed one.
func TestPendingTOTPSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s := openTest(t, path, store.SQLiteOptions{Sealer: sealer(t)})
	u, err := s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got, err := s.PendingTOTP(ctx, u.ID, totpSecret, now, now.Add(time.Minute)); err != nil || got != totpSecret {
		t.Fatalf("PendingTOTP: %q %v", got, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT secret FROM totp_pending WHERE user_id = ?`, u.ID).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, totpSecret) || !strings.HasPrefix(v, "sealed1:") {
		t.Fatalf("column holds %q", v)
	}
}
