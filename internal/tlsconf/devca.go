package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dev CA file names inside the directory given to EnsureDevCA.
const (
	CAFile      = "ca.pem"
	CAKeyFile   = "ca-key.pem"
	LeafFile    = "cert.pem"
	LeafKeyFile = "key.pem"
)

// DevCAName is the CA's subject common name, as users see it in trust stores.
const DevCAName = "wsguard local development CA"

const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// devNames are the only names the dev CA may certify.
var (
	devDNS = []string{"localhost"}
	devIPs = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
)

// EnsureDevCA makes sure dir (created 0700) holds a local development CA
// (ca.pem, ca-key.pem) and a leaf certificate for localhost, 127.0.0.1 and
// ::1 signed by it (cert.pem, key.pem), and returns the leaf's paths. The
// CA is created once and kept across restarts, so a user trusts ca.pem
// once; the leaf is re-issued when it is unreadable, not signed by the CA,
// or expires within 30 days of now. Keys are ECDSA P-256; every file is
// written 0600 (the certificates too: nothing but wsguard and its owner
// needs to read them, and a user copies ca.pem once to trust it).
//
// The CA carries name constraints (localhost, 127.0.0.0/8, ::1): trusting
// it cannot let anyone with its key impersonate other sites.
func EnsureDevCA(dir string, now time.Time) (certFile, keyFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("dev CA directory: %w", err)
	}
	// #nosec G302 -- a directory needs x; 0700 is owner-only
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("dev CA directory: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, LeafFile), filepath.Join(dir, LeafKeyFile)
	ca, caKey, err := loadCA(dir, now)
	if err != nil {
		if ca, caKey, err = createCA(dir, now); err != nil {
			return "", "", err
		}
	}
	if leafOK(certFile, keyFile, ca, now) {
		return certFile, keyFile, nil
	}
	if err := issueLeaf(certFile, keyFile, ca, caKey, now); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// loadCA reads the CA; any problem (missing, unparsable, expiring within
// renewBefore) is an error and the caller makes a new one.
func loadCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA || now.Add(renewBefore).After(ca.NotAfter) || now.Before(ca.NotBefore) {
		return nil, nil, errors.New("dev CA unusable")
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("dev CA key cannot sign")
	}
	return ca, key, nil
}

func createCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("dev CA key: %w", err)
	}
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	tmpl := &x509.Certificate{
		SerialNumber:                serial(),
		Subject:                     pkix.Name{CommonName: DevCAName, Organization: []string{"wsguard"}},
		NotBefore:                   now.Add(-time.Hour),
		NotAfter:                    now.Add(caLifetime),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         devDNS,
		PermittedIPRanges:           []*net.IPNet{loop4, loop6},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("dev CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der, 0o600); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// leafOK reports whether the leaf pair loads, is signed by ca, covers the
// dev names and stays valid for more than renewBefore.
func leafOK(certFile, keyFile string, ca *x509.Certificate, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	if now.Add(renewBefore).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	for _, n := range devDNS {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	for _, ip := range devIPs {
		if leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

func issueLeaf(certFile, keyFile string, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("dev certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"wsguard development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     devDNS,
		IPAddresses:  devIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("dev certificate: %w", err)
	}
	// Key first: a crash between the writes leaves a mismatched pair,
	// which leafOK detects and re-issues.
	if err := writeKey(keyFile, key); err != nil {
		return err
	}
	return writePEM(certFile, "CERTIFICATE", der, 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM replaces path atomically (temp file in the same directory,
// then rename), created with mode from the start so a key is never
// readable by others, even briefly.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: typ, Bytes: der}); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("write %q: %w", path, err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
