package bench

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/config"
)

// What a cluster run (Options.Nodes > 1) needs besides its nodes: a
// database of its own on the PostgreSQL server, a key prefix of its own
// on the Redis, and one certificate every node presents.

// createDatabase creates an empty database with a random name on the
// server admin points at, and returns its URL and how to drop it.
func createDatabase(ctx context.Context, admin string) (dbURL string, drop func(), err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("bench: a cluster run needs PostgreSQL (--postgres, now %s): %w", config.RedactURL(admin), err)
	}
	defer conn.Close(context.Background())
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "wsguard_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("bench: create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("bench: --postgres: %w", err)
	}
	u.Path = "/" + name
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}

// withPrefix returns the Redis URL with a key prefix of this run's own, so
// that runs (and tests) sharing a Redis never see each other's messages.
func withPrefix(redisURL string) (string, error) {
	u, err := url.Parse(redisURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return "", fmt.Errorf("bench: --redis %q is not a redis:// or rediss:// URL", config.RedactURL(redisURL))
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	q := u.Query()
	q.Set("prefix", "bench"+hex.EncodeToString(b[:]))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redisPrefix reads the prefix withPrefix set.
func redisPrefix(redisURL string) string {
	u, err := url.Parse(redisURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("prefix")
}

// redisAddress is the host:port of a redis:// URL.
func redisAddress(redisURL string) string {
	u, err := url.Parse(redisURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// writeCert writes one self-signed certificate for localhost into dir,
// the one every node of a cluster run presents.
func writeCert(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	certPEM, keyPEM, roots, err := selfSigned()
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	return certFile, keyFile, roots, nil
}

// stopAll stops every node at once: each gets its SIGTERM and drain.
func stopAll(ns []*node) {
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
}
