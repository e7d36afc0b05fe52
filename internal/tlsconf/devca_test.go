package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(path, filepath.Join(filepath.Dir(path), map[string]string{CAFile: CAKeyFile, LeafFile: LeafKeyFile}[filepath.Base(path)]))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDevCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	certFile, keyFile, err := EnsureDevCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, LeafFile) || keyFile != filepath.Join(dir, LeafKeyFile) {
		t.Fatalf("paths %q %q", certFile, keyFile)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, keyFile: 0o600, filepath.Join(dir, CAKeyFile): 0o600,
		certFile: 0o600, filepath.Join(dir, CAFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	ca := readCert(t, filepath.Join(dir, CAFile))
	if ca.Subject.CommonName != DevCAName || !ca.IsCA || ca.NotAfter.Before(now.Add(9*365*24*time.Hour)) {
		t.Errorf("CA %v %v %v", ca.Subject, ca.IsCA, ca.NotAfter)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Error("CA key is not ECDSA")
	}
	leaf := readCert(t, certFile)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com", CurrentTime: now}); err == nil {
		t.Error("leaf verifies for example.com")
	}

	// Second start: nothing changes.
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	leafPEM, _ := os.ReadFile(certFile)
	if _, _, err := EnsureDevCA(dir, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	caPEM2, _ := os.ReadFile(filepath.Join(dir, CAFile))
	leafPEM2, _ := os.ReadFile(certFile)
	if !bytes.Equal(caPEM, caPEM2) || !bytes.Equal(leafPEM, leafPEM2) {
		t.Error("restart re-issued the CA or leaf")
	}

	// 340 days on, the leaf expires within 30 days: re-issued, CA kept.
	later := now.Add(340 * 24 * time.Hour)
	if _, _, err := EnsureDevCA(dir, later); err != nil {
		t.Fatal(err)
	}
	caPEM3, _ := os.ReadFile(filepath.Join(dir, CAFile))
	leaf3 := readCert(t, certFile)
	if !bytes.Equal(caPEM, caPEM3) {
		t.Error("CA re-created on leaf renewal")
	}
	if !leaf3.NotAfter.After(leaf.NotAfter) {
		t.Error("leaf not renewed before expiry")
	}
	if _, err := leaf3.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost", CurrentTime: later}); err != nil {
		t.Errorf("renewed leaf: %v", err)
	}

	// An unreadable leaf is re-issued.
	os.WriteFile(certFile, []byte("garbage"), 0o644)
	if _, _, err := EnsureDevCA(dir, later); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("leaf not repaired: %v", err)
	}
}

// TestDevCANameConstrained: even with the CA key, a certificate for
// another site does not verify against ca.pem.
func TestDevCANameConstrained(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := EnsureDevCA(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(pair.Certificate[0])
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "bank.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"bank.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := evil.Verify(x509.VerifyOptions{Roots: roots, DNSName: "bank.example"}); err == nil {
		t.Fatal("dev CA can certify bank.example")
	}
}
