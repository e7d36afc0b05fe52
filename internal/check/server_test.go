package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// weakness switches off one defence of the test server; the zero value is
// a server that gives the scanner nothing to report.
type weakness struct {
	plain       bool   // serve ws:// only
	tlsMin      uint16 // accept this TLS version and CBC suites (TLS 1.0, say)
	noHSTS      bool
	anyOrigin   bool // gorilla CheckOrigin returning true
	echoProto   bool // select the first offered subprotocol, credential or not
	noReadLimit bool
	deflate     bool // permessage-deflate on; gorilla's read limit counts compressed bytes
	looseCookie bool // Set-Cookie without Secure, HttpOnly, SameSite
	expiredCert bool
	noRateLimit bool
	idle        time.Duration // close a socket silent this long; zero means 30 s
}

const (
	testCookie = "sid"
	testSecret = "s3cret-session-value"
)

// testServer is a gorilla/websocket echo server on a loopback port. Its
// defences: TLS 1.2+ with AEAD suites, HSTS, an exact Origin check, a
// session cookie required, only its own subprotocol selected, a 64 KiB
// read limit, UTF-8 checked, 50 messages a second, and idle sockets closed.
type testServer struct {
	url    string // ws(s)://localhost:PORT/ws
	origin string
	caFile string
	roots  *x509.CertPool
	count  *counter
}

func startTestServer(t *testing.T, w weakness) *testServer {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{}
	var ln net.Listener = &countingListener{Listener: raw, c: cnt}
	port := raw.Addr().(*net.TCPAddr).Port
	host := net.JoinHostPort("localhost", strconv.Itoa(port))
	ts := &testServer{count: cnt}
	scheme := "wss"
	ts.origin = "https://" + host
	if w.plain {
		scheme = "ws"
		ts.origin = "http://" + host
	} else {
		ca, cert := testCerts(t, w.expiredCert)
		ts.roots = x509.NewCertPool()
		ts.roots.AddCert(ca.Leaf)
		ts.caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ts.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate[0]}), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		}
		if w.tlsMin != 0 {
			cfg.MinVersion = w.tlsMin
			cfg.CipherSuites = nil // Go's defaults, CBC suites included
		}
		ln = tls.NewListener(ln, cfg)
	}
	ln = &frameListener{Listener: ln, c: cnt} // above TLS: frames in the clear
	ts.url = scheme + "://" + host + "/ws"
	up := websocket.Upgrader{
		Subprotocols:      []string{"app.v1"},
		EnableCompression: w.deflate,
		CheckOrigin:       func(r *http.Request) bool { return r.Header.Get("Origin") == ts.origin },
	}
	if w.echoProto {
		up.Subprotocols = nil // gorilla then answers with the one the handler sets
	}
	if w.anyOrigin {
		up.CheckOrigin = func(*http.Request) bool { return true }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		c := &http.Cookie{Name: testCookie, Value: testSecret, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
		if w.looseCookie {
			c = &http.Cookie{Name: testCookie, Value: testSecret, Path: "/"}
		}
		http.SetCookie(rw, c)
		_, _ = rw.Write([]byte("hello\n"))
	})
	mux.HandleFunc("/ws", func(rw http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(testCookie); err != nil || c.Value != testSecret {
			http.Error(rw, "sign in first", http.StatusUnauthorized)
			return
		}
		h := http.Header{}
		if w.echoProto {
			if ps := websocket.Subprotocols(r); len(ps) > 0 {
				h.Set("Sec-WebSocket-Protocol", ps[0])
			}
		}
		ws, err := up.Upgrade(rw, r, h)
		if err != nil {
			return
		}
		serveEcho(ws, w)
	})
	var handler http.Handler = mux
	if !w.noHSTS && !w.plain {
		handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			mux.ServeHTTP(rw, r)
		})
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return ts
}

// serveEcho echoes every message, with the defences the weakness leaves.
func serveEcho(ws *websocket.Conn, w weakness) {
	defer ws.Close()
	if !w.noReadLimit {
		ws.SetReadLimit(64 << 10)
	}
	closeWith := func(code int, why string) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, why), time.Now().Add(time.Second))
	}
	idle := w.idle
	if idle == 0 {
		idle = 30 * time.Second
	}
	window, n := time.Now(), 0
	for {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			closeWith(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
			return
		}
		if time.Since(window) > time.Second {
			window, n = time.Now(), 0
		}
		if n++; n > 50 && !w.noRateLimit {
			closeWith(websocket.ClosePolicyViolation, "too fast")
			return
		}
		if err := ws.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

// testCerts makes a CA and a certificate for localhost it signed.
func testCerts(t *testing.T, expired bool) (ca, leaf tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "check test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notAfter := time.Now().Add(90 * 24 * time.Hour)
	if expired {
		notAfter = time.Now().Add(-time.Minute)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca = tls.Certificate{Certificate: [][]byte{caDER}, PrivateKey: caKey, Leaf: caCert}
	leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return ca, leaf
}

// counter is what the scanner sent to a test server: connections accepted,
// bytes read on the wire (TLS included), and WebSocket frames read.
type counter struct {
	mu     sync.Mutex
	conns  int
	bytes  int64
	frames int
}

func (c *counter) get() (conns int, bytes int64, frames int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns, c.bytes, c.frames
}

// countingListener counts connections and the raw bytes read from them.
type countingListener struct {
	net.Listener
	c *counter
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	l.c.conns++
	l.c.mu.Unlock()
	return &countingConn{Conn: conn, c: l.c}, nil
}

type countingConn struct {
	net.Conn
	c *counter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.mu.Lock()
	c.c.bytes += int64(n)
	c.c.mu.Unlock()
	return n, err
}

// frameListener parses the (decrypted) client stream of each connection:
// after the HTTP request head, it counts WebSocket frames by their headers.
type frameListener struct {
	net.Listener
	c *counter
}

func (l *frameListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameConn{Conn: conn, c: l.c}, nil
}

type frameConn struct {
	net.Conn
	c      *counter
	head   []byte // the HTTP request head, until its blank line
	inBody bool
	hdr    []byte // the frame header being read
	skip   int64  // payload bytes of the current frame still to pass
}

func (f *frameConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.scan(p[:n])
	return n, err
}

func (f *frameConn) scan(b []byte) {
	for len(b) > 0 {
		if !f.inBody {
			f.head = append(f.head, b[0])
			b = b[1:]
			if l := len(f.head); l >= 4 && string(f.head[l-4:]) == "\r\n\r\n" {
				f.inBody = true
			}
			continue
		}
		if f.skip > 0 {
			k := min(f.skip, int64(len(b)))
			f.skip -= k
			b = b[k:]
			continue
		}
		f.hdr = append(f.hdr, b[0])
		b = b[1:]
		if need := frameHeaderLen(f.hdr); need > 0 && len(f.hdr) == need {
			f.skip = payloadLen(f.hdr)
			f.hdr = f.hdr[:0]
			f.c.mu.Lock()
			f.c.frames++
			f.c.mu.Unlock()
		}
	}
}

// frameHeaderLen is the length of a client frame header (mask included)
// once its first two bytes are known, else 0.
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2 + 4
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	return n
}

func payloadLen(h []byte) int64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return int64(h[2])<<8 | int64(h[3])
	case 127:
		var v int64
		for _, c := range h[2:10] {
			v = v<<8 | int64(c)
		}
		return v
	default:
		return int64(l)
	}
}
