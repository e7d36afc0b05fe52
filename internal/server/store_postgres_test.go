package server

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/store/pgtest"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// postgresConfig is a node's config on a fresh shared database.
func postgresConfig(t *testing.T) (config.Config, string) {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Store = pgtest.NewDatabase(t)
	cfg.SecretsKeyFile = filepath.Join(t.TempDir(), "shared.key")
	// The certificate every node of a cluster is given (a dev CA's leaf
	// made apart from any node's data_dir stands in for the operator's).
	cfg.TLS.CertFile, cfg.TLS.KeyFile, err = tlsconf.EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cfg.Store
}

func writeSharedKey(t *testing.T, path string) {
	t.Helper()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSharedStoreNeedsGivenKey: with a shared store a node never makes the
// key that seals TOTP secrets; it refuses to start without the file every
// node is given, and starts with it.
func TestSharedStoreNeedsGivenKey(t *testing.T) {
	cfg, _ := postgresConfig(t)
	_, err := New(cfg, Options{Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "secrets_key_file") {
		t.Fatalf("New without the shared key = %v, want a refusal naming secrets_key_file", err)
	}
	if _, err := os.Stat(cfg.SecretsKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the node made its own key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "secrets.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the node made a key in data_dir: %v", err)
	}
	writeSharedKey(t, cfg.SecretsKeyFile)
	s, err := New(cfg, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("New with the shared key: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, ok := s.Store().(*store.Postgres); !ok {
		t.Fatalf("store is %T, want *store.Postgres", s.Store())
	}
}

// TestSharedStoreOutage: the database stops taking connections under a
// running node. /readyz answers 503 and a publish answers unavailable;
// once it takes them again the node is ready and publishes, with no
// restart.
func TestSharedStoreOutage(t *testing.T) {
	cfg, dbURL := postgresConfig(t)
	writeSharedKey(t, cfg.SecretsKeyFile)
	s, err := New(cfg, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ready := func() int {
		rec := httptest.NewRecorder()
		s.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	publish := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.Store().Publish(ctx, store.Message{Channel: "room:lobby", From: "alice", Data: []byte(`{}`)})
		return err
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the outage, want 200", code)
	}
	if err := publish(); err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(t.Context(), pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`) })
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `'`)

	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the database refusing connections, want 503", code)
	}
	if err := publish(); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("publish during the outage = %v, want unavailable", err)
	}

	exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`)
	deadline := time.Now().Add(10 * time.Second)
	for ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 200 10 s after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := publish(); err != nil {
		t.Fatalf("publish after the outage: %v", err)
	}
	if l, err := s.Store().Latest(t.Context(), "room:lobby"); err != nil || l != 2 {
		t.Fatalf("Latest = %d, %v; want 2 (gap-free across the outage)", l, err)
	}
}
