package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// clientCA makes a CA and one client certificate it signed.
func clientCA(t *testing.T, name string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAPIMutualTLS: with tls.client_ca_file, the service API needs a client
// certificate from that CA besides the key; browsers and sockets are unaffected.
func TestAPIMutualTLS(t *testing.T) {
	caPEM, good := clientCA(t, "svc")
	_, foreign := clientCA(t, "evil")
	ts := startServer(t, func(c *config.Config) {
		p := filepath.Join(t.TempDir(), "client-ca.pem")
		if err := os.WriteFile(p, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		c.TLS.ClientCAFile = p
		tokenNamespaces(c)
	})
	key := ts.apiKey(t, "feed", "publish:news:*")
	post := func(certs []tls.Certificate) (int, error) {
		cfg := ts.tlsConfig()
		cfg.Certificates = certs
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("POST", ts.url+"/api/v1/publish", strings.NewReader(`{"channel":"news:eu","data":1}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := post(nil); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("no client certificate: %d %v, want 401", st, err)
	}
	// Go's client does not even send a certificate the server's CA list
	// does not cover; either way the request is refused.
	if st, err := post([]tls.Certificate{foreign}); err == nil && st != http.StatusUnauthorized {
		t.Fatalf("certificate from another CA: %d, want 401 or a TLS failure", st)
	}
	forced := ts.tlsConfig()
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: forced}, Timeout: 10 * time.Second}
	if resp, err := hc.Post(ts.url+"/api/v1/publish", "application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		t.Fatalf("foreign certificate forced on the server: %d, want a TLS failure", resp.StatusCode)
	}
	if st, err := post([]tls.Certificate{good}); err != nil || st != http.StatusOK {
		t.Fatalf("client certificate: %d %v, want 200", st, err)
	}
	// Browsers (no certificate) still sign in and connect.
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	ws := b.connect(b.login("alice", pw))
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "ping"}); !f.OK {
		t.Fatal("socket without a client certificate refused")
	}
	if !strings.Contains(ts.auditLog(t), `"reason":"client_cert_missing"`) {
		t.Error("missing client certificate not audited")
	}
}
