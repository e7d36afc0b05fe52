package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
)

// testServer is a real wsguard node on a loopback port, TLS from its own dev CA.
type testServer struct {
	t      *testing.T
	srv    *Server
	url    string // https://localhost:PORT
	host   string // localhost:PORT
	cfg    config.Config
	roots  *x509.CertPool
	cancel context.CancelFunc
	done   chan struct{}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a server with test-friendly limits; mutate adjusts the config.
func startServer(t *testing.T, mutate func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, mutate, Options{})
}

// startServerWith is startServer with Options (a settable clock, say).
func startServerWith(t *testing.T, mutate func(*config.Config), opts Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	host := "localhost:" + strconv.Itoa(port)
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "https://" + host
	cfg.AllowedOrigins = []string{"https://" + host}
	cfg.Audit.File = filepath.Join(cfg.DataDir, "audit.log")
	cfg.Audit.KeyFile = filepath.Join(cfg.DataDir, "audit.key")
	cfg.AdminListen = ""
	cfg.Identity.MaxHashing = 2
	cfg.Limits.HandshakesPerSecond = 1000
	cfg.Limits.HandshakeBurst = 1000
	cfg.Limits.BanAfterFailures = 1000
	if mutate != nil {
		mutate(&cfg)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard // the setup banner, printed on every start without an admin
	}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: srv, url: "https://" + host, host: host, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		if err := srv.Run(ctx, Listeners{Public: ln}, nil); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	pem, err := os.ReadFile(filepath.Join(cfg.DataDir, "tls", "ca.pem"))
	for i := 0; err != nil && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		pem, err = os.ReadFile(filepath.Join(cfg.DataDir, "tls", "ca.pem"))
	}
	if err != nil {
		t.Fatalf("dev CA not written: %v", err)
	}
	ts.roots = x509.NewCertPool()
	ts.roots.AppendCertsFromPEM(pem)
	t.Cleanup(ts.stop)
	// Wait until it answers.
	c := ts.httpClient(nil)
	for i := 0; ; i++ {
		resp, err := c.Get(ts.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ts
}

func (ts *testServer) stop() {
	ts.cancel()
	select {
	case <-ts.done:
	case <-time.After(15 * time.Second):
		ts.t.Error("server did not stop")
	}
	_ = ts.srv.Close()
}

func (ts *testServer) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: ts.roots, ServerName: "localhost"}
}

// httpClient returns a client trusting the dev CA that does not follow redirects.
func (ts *testServer) httpClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: ts.tlsConfig()},
		Timeout:   20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (ts *testServer) addUser(name, password string, admin bool) {
	ts.t.Helper()
	h := identity.NewHasher(identity.HasherOptions{})
	if _, err := CreateUser(context.Background(), ts.srv.Store(), h, name, password, admin); err != nil {
		ts.t.Fatal(err)
	}
}

// browser is a cookie-carrying HTTP client, like one browser profile.
type browser struct {
	ts     *testServer
	client *http.Client
	jar    *cookiejar.Jar
}

func (ts *testServer) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{ts: ts, client: ts.httpClient(jar), jar: jar}
}

var (
	formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	metaTokenRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

func (b *browser) get(path string) (*http.Response, string) {
	b.ts.t.Helper()
	resp, err := b.client.Get(b.ts.url + path)
	if err != nil {
		b.ts.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// formToken fetches path and returns the csrf_token of its form.
func (b *browser) formToken(path string) string {
	b.ts.t.Helper()
	_, body := b.get(path)
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil {
		b.ts.t.Fatalf("no csrf_token on %s: %.300s", path, body)
	}
	return m[1]
}

// post submits a form as a same-origin browser would.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	return b.postWithOrigin(path, form, b.ts.url)
}

func (b *browser) postWithOrigin(path string, form url.Values, origin string) (*http.Response, string) {
	b.ts.t.Helper()
	req, _ := http.NewRequest("POST", b.ts.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
		if origin == b.ts.url {
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		} else {
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.ts.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// login signs in with password only (users without 2FA) and returns the
// chat page's CSRF token.
func (b *browser) login(name, password string) string {
	b.ts.t.Helper()
	tok := b.formToken("/login")
	resp, body := b.post("/login", url.Values{"username": {name}, "password": {password}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.ts.t.Fatalf("login %s: %d %s %.300s", name, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return b.chatToken()
}

func (b *browser) chatToken() string {
	b.ts.t.Helper()
	_, body := b.get("/")
	m := metaTokenRE.FindStringSubmatch(body)
	if m == nil {
		b.ts.t.Fatalf("no csrf-token meta on /: %.300s", body)
	}
	return m[1]
}

func (b *browser) cookieHeader() string {
	u, _ := url.Parse(b.ts.url)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// dial opens /ws with this browser's cookies, the given Origin and subprotocols.
func (b *browser) dial(origin string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if c := b.cookieHeader(); c != "" {
		h.Set("Cookie", c)
	}
	return b.ts.dial(h, origin, protocols...)
}

func (ts *testServer) dial(h http.Header, origin string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	if h == nil {
		h = http.Header{}
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{TLSClientConfig: ts.tlsConfig(), Subprotocols: protocols, HandshakeTimeout: 10 * time.Second}
	return d.Dial("wss://"+ts.host+"/ws", h)
}

// connect is the happy path: a signed-in browser's socket.
func (b *browser) connect(token string) *websocket.Conn {
	b.ts.t.Helper()
	ws, resp, err := b.dial(b.ts.url, "wsguard.v1", "wsguard.csrf."+token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		b.ts.t.Fatalf("dial: %v (status %d)", err, status)
	}
	b.ts.t.Cleanup(func() { ws.Close() })
	return ws
}
