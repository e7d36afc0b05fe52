package deploy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/server"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// kubeletSecretDir lays out dir as the kubelet lays out a mounted Secret:
// the files live in a timestamped directory, ..data links to it, and each
// key is a link through ..data. update swaps ..data atomically to a new
// directory, the way a renewed Secret reaches a pod.
type kubeletSecretDir struct {
	t   *testing.T
	dir string
	gen int
}

func (k *kubeletSecretDir) update(files map[string][]byte) {
	k.t.Helper()
	k.gen++
	ts := filepath.Join(k.dir, "..2026_12_01_00_00_0"+string(rune('0'+k.gen)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		k.t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(ts, name), b, 0o600); err != nil {
			k.t.Fatal(err)
		}
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				k.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
}

// pair is a certificate and key for localhost from a CA of its own.
type pair struct {
	cert, key []byte
	leaf      []byte // DER of the certificate, to recognise it in a handshake
	caPEM     []byte // the CA that signed it
}

func newPair(t *testing.T) pair {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, err := tlsconf.EnsureDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var p pair
	for dst, src := range map[*[]byte]string{&p.cert: certFile, &p.key: keyFile} {
		if *dst, err = os.ReadFile(src); err != nil { // #nosec G304 -- the test's own files
			t.Fatal(err)
		}
	}
	kp, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf = kp.Certificate[0]
	if p.caPEM, err = os.ReadFile(filepath.Join(dir, tlsconf.CAFile)); err != nil { // #nosec G304 -- the test's own file
		t.Fatal(err)
	}
	return p
}

// TestNodesShareOneCertificate: three nodes given the same certificate
// files (a Kubernetes Secret mounted as a directory on each) present the
// same certificate; when the Secret is renewed they all present the new
// one without a restart; a renewal whose key does not match is refused by
// every node, which keeps serving the certificate it had.
func TestNodesShareOneCertificate(t *testing.T) {
	first, second := newPair(t), newPair(t)
	mount := &kubeletSecretDir{t: t, dir: t.TempDir()}
	mount.update(map[string][]byte{"tls.crt": first.cert, "tls.key": first.key})

	// Trust both CAs, so the handshake succeeds whichever certificate a
	// node presents; which one it is, is what the test looks at.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(first.caPEM)
	roots.AppendCertsFromPEM(second.caPEM)
	var addrs []string
	for range 3 {
		addrs = append(addrs, startNode(t, filepath.Join(mount.dir, "tls.crt"), filepath.Join(mount.dir, "tls.key")))
	}

	// presented is the leaf a node shows a new handshake.
	presented := func(addr string) []byte {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12, RootCAs: roots})
		if err != nil {
			t.Fatalf("handshake with %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	for i, a := range addrs {
		if !bytes.Equal(presented(a), first.leaf) {
			t.Fatalf("node %d does not present the mounted certificate", i+1)
		}
	}

	// The Secret is renewed: every node follows within a few polls.
	mount.update(map[string][]byte{"tls.crt": second.cert, "tls.key": second.key})
	for i, a := range addrs {
		deadline := time.Now().Add(15 * time.Second)
		for !bytes.Equal(presented(a), second.leaf) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d still presents the old certificate 15 s after the Secret changed", i+1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A renewal gone wrong (the first certificate with the second key):
	// refused everywhere, the second certificate stays in service.
	mount.update(map[string][]byte{"tls.crt": first.cert, "tls.key": second.key})
	time.Sleep(5 * time.Second) // two polls and more
	for i, a := range addrs {
		if !bytes.Equal(presented(a), second.leaf) {
			t.Errorf("node %d took a certificate whose key does not match", i+1)
		}
	}
}

// startNode runs a node with the given certificate files and returns its
// address; it is stopped when the test ends.
func startNode(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Audit.File = filepath.Join(cfg.DataDir, "audit.log")
	cfg.Audit.KeyFile = filepath.Join(cfg.DataDir, "audit.key")
	cfg.AdminListen = ""
	cfg.Identity.MaxHashing = 1
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	if err := server.CheckConfig(cfg); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, server.Listeners{Public: ln}, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("node did not stop")
		}
		_ = srv.Close()
	})
	return ln.Addr().String()
}
