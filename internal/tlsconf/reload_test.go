package tlsconf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// reloadFixture: two independent dev pairs A and B, the served files
// holding A, and a client that trusts both CAs.
func reloadFixture(t *testing.T) (r *Reloader, cert, key, aCert, aKey, bCert, bKey string, client *tls.Config) {
	aCert, aKey, rootsA := devPair(t)
	bCert, bKey, _ = devPair(t)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, aCert, cert)
	copyFile(t, aKey, key)
	r, err := NewReloader(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := rootsA.Clone()
	caB, _ := os.ReadFile(filepath.Join(filepath.Dir(bCert), CAFile))
	pool.AppendCertsFromPEM(caB)
	return r, cert, key, aCert, aKey, bCert, bKey, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func servedCert(t *testing.T, addr string, client *tls.Config) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

func pemCertDER(t *testing.T, certFile, keyFile string) []byte {
	t.Helper()
	p, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return p.Certificate[0]
}

// TestReloadKeepsLiveConnections is SECURITY.md F7.
func TestReloadKeepsLiveConnections(t *testing.T) {
	r, cert, key, aCert, aKey, bCert, bKey, client := reloadFixture(t)
	cfg, _ := ServerConfig(ProfileIntermediate, r)
	addr := serveTLS(t, cfg, okHandler())

	old, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	br := bufio.NewReader(old)
	if get(t, old, br, "/") != 200 {
		t.Fatal("first request failed")
	}
	if !bytes.Equal(old.ConnectionState().PeerCertificates[0].Raw, pemCertDER(t, aCert, aKey)) {
		t.Fatal("not serving A")
	}

	copyFile(t, bCert, cert)
	copyFile(t, bKey, key)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedCert(t, addr, client), pemCertDER(t, bCert, bKey)) {
		t.Error("new handshake does not get B")
	}
	if get(t, old, br, "/again") != 200 {
		t.Error("connection opened before the reload stopped working")
	}
}

func TestBadReplacementKeepsOld(t *testing.T) {
	r, cert, key, aCert, aKey, _, bKey, client := reloadFixture(t)
	cfg, _ := ServerConfig(ProfileModern, r)
	addr := serveTLS(t, cfg, okHandler())
	want := pemCertDER(t, aCert, aKey)
	for _, tc := range []struct {
		name string
		mut  func()
	}{
		{"garbage cert", func() { os.WriteFile(cert, []byte("not a cert"), 0o600) }},
		{"key of another pair", func() { copyFile(t, aCert, cert); copyFile(t, bKey, key) }},
		{"missing key", func() { copyFile(t, aCert, cert); os.Remove(key) }},
		{"empty files", func() { os.WriteFile(cert, nil, 0o600); os.WriteFile(key, nil, 0o600) }},
	} {
		tc.mut()
		if err := r.Reload(); err == nil {
			t.Errorf("%s: reload accepted", tc.name)
		}
		if !bytes.Equal(servedCert(t, addr, client), want) {
			t.Errorf("%s: served certificate changed", tc.name)
		}
	}
}

func TestNewReloaderRefusesBadPair(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewReloader(filepath.Join(dir, "nope.pem"), filepath.Join(dir, "nope-key.pem")); err == nil {
		t.Fatal("missing files accepted")
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	r, cert, key, _, _, bCert, bKey, _ := reloadFixture(t)
	done := make(chan error, 4)
	r.OnReload = func(err error) { done <- err }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 5*time.Millisecond)

	copyFile(t, bKey, key)
	copyFile(t, bCert, cert)
	want := pemCertDER(t, bCert, bKey)
	deadline := time.After(10 * time.Second)
	for !bytes.Equal(r.Current().Certificate[0], want) {
		select {
		case <-done: // an attempt finished (possibly between the two copies)
		case <-deadline:
			t.Fatal("Watch did not pick up the new pair")
		}
	}
}
