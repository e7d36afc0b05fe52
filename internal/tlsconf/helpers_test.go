package tlsconf

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// devPair creates a dev CA and leaf in a temp dir and returns the leaf
// paths and a pool trusting the CA.
func devPair(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, err := EnsureDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("ca.pem does not parse")
	}
	return certFile, keyFile, roots
}

// serveTLS starts an HTTPS server on 127.0.0.1:0 the way wsguard does
// (http.Server over a tls listener) and returns its address.
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: nil}
	ServerTimeouts(srv, 5*time.Second)
	srv.ErrorLog = quietLog()
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
}

// get sends one HTTP/1.1 request on an open connection and returns the status.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) int {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
