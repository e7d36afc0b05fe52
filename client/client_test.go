package client_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/client"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/server"
)

type env struct {
	t      *testing.T
	srv    *server.Server
	base   string // https://localhost:PORT
	wsURL  string
	roots  *x509.CertPool
	secret []byte
	dir    string
}

// start runs a real wsguard node on loopback with its dev CA and one
// HS256 key, like the server's own integration tests.
func start(t *testing.T) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := "localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, base: "https://" + host, wsURL: "wss://" + host + "/ws", dir: t.TempDir()}
	e.secret = make([]byte, 32)
	_, _ = rand.Read(e.secret)
	e.secret[len(e.secret)-1] |= 0x80 // never '\n': secret_file drops one trailing newline
	secretFile := filepath.Join(e.dir, "hs.secret")
	if err := os.WriteFile(secretFile, e.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = e.dir
	cfg.PublicURL = e.base
	cfg.AllowedOrigins = []string{e.base}
	cfg.Audit.File = filepath.Join(e.dir, "audit.log")
	cfg.Audit.KeyFile = filepath.Join(e.dir, "audit.key")
	cfg.AdminListen = ""
	cfg.Identity.MaxHashing = 2
	cfg.Limits.HandshakesPerSecond, cfg.Limits.HandshakeBurst, cfg.Limits.BanAfterFailures = 1000, 1000, 1000
	cfg.JWT = config.JWT{Audience: "app", Issuer: "https://app.example", Keys: []config.JWTKey{{KID: "k1", Alg: "HS256", SecretFile: secretFile}}}
	cfg.Namespaces["news"] = config.Namespace{Subscribe: []string{"users", "scope"}, Publish: []string{"scope"}, History: []string{"users", "scope"}}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx, server.Listeners{Public: ln}, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
	})
	var pemBytes []byte
	for i := 0; i < 200; i++ {
		if pemBytes, err = os.ReadFile(filepath.Join(e.dir, "tls", "ca.pem")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(pemBytes)
	for i := 0; ; i++ {
		resp, err := e.http(nil).Get(e.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

func (e *env) http(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) jwt(sub string, ttl time.Duration) string {
	e.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "aud": "app", "iss": "https://app.example", "iat": time.Now().Unix(), "exp": time.Now().Add(ttl).Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(e.secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) apiKey(name string, scopes ...string) string {
	e.t.Helper()
	k, err := server.CreateAPIKey(context.Background(), e.srv.Store(), name, scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func static(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

func (e *env) publish(key, channel string, data any) uint64 {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"channel": channel, "data": data})
	req, _ := http.NewRequest("POST", e.base+"/api/v1/publish", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.http(nil).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Offset uint64 }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil {
		e.t.Fatalf("publish: %d", resp.StatusCode)
	}
	return r.Offset
}

// disconnect asks the service API to close user's sockets, with key.
func (e *env) disconnect(key, user string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"user": user})
	req, _ := http.NewRequest("POST", e.base+"/api/v1/disconnect", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.http(nil).Do(req)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("disconnect %s: %v %v", user, err, resp)
	}
	resp.Body.Close()
}

var (
	formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	metaTokenRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// login signs a user in through the forms and returns the cookie-carrying
// HTTP client and the page's CSRF token.
func (e *env) login(name, password string) (*http.Client, string) {
	e.t.Helper()
	h := identity.NewHasher(identity.HasherOptions{})
	if _, err := server.CreateUser(context.Background(), e.srv.Store(), h, name, password, false); err != nil {
		e.t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := e.http(jar)
	get := func(path string) string {
		resp, err := hc.Get(e.base + path)
		if err != nil {
			e.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := formTokenRE.FindStringSubmatch(get("/login"))
	if m == nil {
		e.t.Fatal("no login form token")
	}
	form := url.Values{"username": {name}, "password": {password}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest("POST", e.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login: %v %v", err, resp)
	}
	resp.Body.Close()
	m = metaTokenRE.FindStringSubmatch(get("/"))
	if m == nil {
		e.t.Fatal("no csrf meta")
	}
	return hc, m[1]
}

func (e *env) leafPin() string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "tls", "cert.pem"))
	if err != nil {
		e.t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
}

func next(t *testing.T, c *client.Client) client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("client stopped: %v", c.Err())
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	return client.Message{}
}

func roundTrip(t *testing.T, c *client.Client, channel string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Subscribe(ctx, channel); err != nil {
		t.Fatalf("subscribe %s: %v", channel, err)
	}
	off, err := c.Publish(ctx, channel, map[string]string{"text": "hi"}, "c-1")
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if m := next(t, c); m.Offset != off || m.Channel != channel {
		t.Fatalf("got %+v, want offset %d", m, off)
	}
}

// TestDialCredentials dials with each credential type.
func TestDialCredentials(t *testing.T) {
	e := start(t)
	ctx := context.Background()

	t.Run("jwt", func(t *testing.T) {
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(e.jwt("alice", time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "user:alice")
	})
	t.Run("api key", func(t *testing.T) {
		key := e.apiKey("feed", "subscribe:news:*")
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe(ctx, "news:eu"); err != nil {
			t.Fatal(err)
		}
		pub := e.apiKey("pub", "publish:news:*")
		off := e.publish(pub, "news:eu", "flash")
		if m := next(t, c); m.Offset != off || m.From != "api:pub" {
			t.Fatalf("got %+v", m)
		}
		var fe *client.Error
		if _, err := c.Publish(ctx, "news:eu", 1, ""); !errors.As(err, &fe) || fe.Code != "forbidden" {
			t.Fatalf("publish without scope: %v", err)
		}
	})
	t.Run("session ticket", func(t *testing.T) {
		hc, csrf := e.login("bob", "correct horse battery staple")
		h := http.Header{"X-Csrf-Token": {csrf}, "Origin": {e.base}}
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Origin: e.base,
			Ticket: client.TicketFetcher(hc, e.base+"/api/v1/tickets", h)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "user:bob")
	})
	t.Run("jwt ticket", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + e.jwt("carol", time.Hour)}}
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots,
			Ticket: client.TicketFetcher(e.http(nil), e.base+"/api/v1/tickets", h)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "room:lobby")
	})
	t.Run("refused credential", func(t *testing.T) {
		_, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(e.jwt("x", -time.Hour))})
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.Status != 401 {
			t.Fatalf("expired token: %v, want 401", err)
		}
	})
	t.Run("plain ws refused", func(t *testing.T) {
		if _, err := client.Dial(ctx, client.Config{URL: strings.Replace(e.wsURL, "wss:", "ws:", 1), Token: static("x")}); err == nil {
			t.Fatal("ws:// accepted")
		}
	})
}

// TestCertificateChecks covers T5: a certificate the client does not trust
// is refused, and so is a trusted one whose key is not pinned.
func TestCertificateChecks(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	tok := static(e.jwt("alice", time.Hour))
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, Token: tok}); err == nil {
		t.Fatal("dev CA certificate accepted with the system roots")
	}
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: x509.NewCertPool(), Token: tok}); err == nil {
		t.Fatal("accepted with an empty root pool")
	}
	wrong := sha256.Sum256([]byte("another key"))
	_, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{base64.StdEncoding.EncodeToString(wrong[:])}})
	if err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("SPKI pin mismatch: %v", err)
	}
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{e.leafPin()}})
	if err != nil {
		t.Fatalf("matching pin: %v", err)
	}
	c.Close()
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{"not base64!"}}); err == nil {
		t.Fatal("malformed pin accepted")
	}
}

// TestReconnectResume covers F2 through the client: the socket is cut, the
// client reconnects with a fresh token and resumes with since; every
// message arrives exactly once, in order.
func TestReconnectResume(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	pub := e.apiKey("pub", "publish:news:*")
	ops := e.apiKey("ops", "disconnect:user:*")
	var dials atomic.Int32
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 600 * time.Millisecond,
		Token: func(context.Context) (string, error) { dials.Add(1); return e.jwt("dana", time.Hour), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "news:eu"); err != nil {
		t.Fatal(err)
	}
	e.publish(pub, "news:eu", 1)
	if m := next(t, c); m.Offset != 1 {
		t.Fatalf("first %+v", m)
	}
	e.disconnect(ops, "dana")
	for i := 2; i <= 4; i++ { // published while the client is away
		e.publish(pub, "news:eu", i)
	}
	for want := uint64(2); want <= 5; want++ {
		if want == 5 {
			e.publish(pub, "news:eu", 5) // and one live after the resume
		}
		m := next(t, c)
		if m.Offset != want || m.Gap {
			t.Fatalf("got %+v, want offset %d", m, want)
		}
	}
	if n := c.Connects(); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
	if dials.Load() < 2 {
		t.Fatal("reconnect did not ask for a fresh token")
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("extra message %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestReconnectWithoutHistoryRight: a credential that may subscribe but not
// read history cannot resume with since (the server answers forbidden). The
// client still resumes the subscription live, marks the gap, and delivers
// what follows.
func TestReconnectWithoutHistoryRight(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	pub := e.apiKey("pub", "publish:news:*")
	ops := e.apiKey("ops", "disconnect:api:watch")
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 600 * time.Millisecond,
		Token: static(e.apiKey("watch", "subscribe:news:*"))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "news:eu"); err != nil {
		t.Fatal(err)
	}
	e.publish(pub, "news:eu", 1)
	if m := next(t, c); m.Offset != 1 {
		t.Fatalf("first %+v", m)
	}
	e.disconnect(ops, "api:watch")
	e.publish(pub, "news:eu", 2) // missed while away
	if m := next(t, c); !m.Gap || m.Channel != "news:eu" {
		t.Fatalf("got %+v, want a gap marker for news:eu", m)
	}
	off := e.publish(pub, "news:eu", 3)
	if m := next(t, c); m.Offset != off || m.Gap {
		t.Fatalf("got %+v, want the live message %d", m, off)
	}
}

// TestTokenRefresh covers K3 through the client: on the expiring push it
// refreshes with a new token and keeps the same connection past exp.
func TestTokenRefresh(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	var calls atomic.Int32
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return e.jwt("erin", 2*time.Second), nil // the dial's token is short-lived
		}
		return e.jwt("erin", time.Hour), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(3 * time.Second)
	if _, err := c.Presence(ctx, "user:erin"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || c.Connects() != 1 {
		t.Fatalf("token calls %d, connects %d; want a refresh on one connection", calls.Load(), c.Connects())
	}
}

// TestPermanentRefusal: a client whose credential is refused on reconnect
// stops and reports why.
func TestPermanentRefusal(t *testing.T) {
	e := start(t)
	key := e.apiKey("gone", "subscribe:news:*")
	c, err := client.Dial(context.Background(), client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 50 * time.Millisecond, Token: static(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := server.RevokeAPIKey(context.Background(), e.srv.Store(), "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client still running with a revoked key")
	}
	var he *client.HandshakeError
	if !errors.As(c.Err(), &he) || he.Status != 401 {
		t.Fatalf("Err %v, want a 401 handshake error", c.Err())
	}
}
