package client_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/wsguard/wsguard/clients/go"
)

// The tests run against a real wsguard server without importing it: the
// server module is built once from the repository (../../cmd/wsguard) and
// started as a process with its own config on a free loopback port, as a
// user of this module would run it.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// serverBinary builds wsguard from the repository root once per test run.
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			buildErr = err
			return
		}
		if _, err := os.Stat(filepath.Join(root, "cmd", "wsguard")); err != nil {
			buildErr = fmt.Errorf("these tests need the wsguard repository around this module (../../cmd/wsguard): %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "wsguard-client-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wsguard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/wsguard")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/wsguard: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type env struct {
	t      *testing.T
	bin    string
	base   string // https://localhost:PORT
	wsURL  string
	roots  *x509.CertPool
	secret []byte
	dir    string
	cfg    string // config file
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs `wsguard serve` on loopback with its dev CA, one HS256 JWT
// key and a "news" namespace open to API keys.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bin: serverBinary(t), dir: t.TempDir()}
	port := freePort(t)
	host := "localhost:" + strconv.Itoa(port)
	e.base, e.wsURL = "https://"+host, "wss://"+host+"/ws"
	e.secret = make([]byte, 32)
	_, _ = rand.Read(e.secret)
	e.secret[len(e.secret)-1] |= 0x80 // never '\n': secret_file drops one trailing newline
	secretFile := filepath.Join(e.dir, "hs.secret")
	if err := os.WriteFile(secretFile, e.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(e.dir, "data")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
public_url: %s
data_dir: %s
admin_listen: ""
limits:
  handshakes_per_second: 1000
  handshake_burst: 1000
  ban_after_failures: 1000
jwt:
  audience: app
  issuer: https://app.example
  keys:
    - {kid: k1, alg: HS256, secret_file: %s}
namespaces:
  news:
    subscribe: [users, scope]
    publish: [scope]
    history: [users, scope]
    presence: [users, scope]
`, port, e.base, data, secretFile)
	e.cfg = filepath.Join(e.dir, "wsguard.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.bin, "serve", "--config", e.cfg)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("wsguard serve exited:\n%s", logs.String())
		default:
		}
		if pemBytes, err := os.ReadFile(filepath.Join(data, "tls", "ca.pem")); err == nil && e.roots == nil {
			e.roots = x509.NewCertPool()
			e.roots.AppendCertsFromPEM(pemBytes)
		}
		if e.roots != nil {
			if resp, err := e.http(nil).Get(e.base + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsguard serve did not answer:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsguard runs a CLI command against the test server's config.
func (e *env) wsguard(stdin string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(args, "--config", e.cfg)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("wsguard %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return strings.TrimSpace(out.String())
}

func (e *env) http(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// jwt signs an HS256 token by hand (no JWT library in this module).
func (e *env) jwt(sub string, ttl time.Duration) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	signing := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." +
		enc(map[string]any{"sub": sub, "aud": "app", "iss": "https://app.example", "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	m := hmac.New(sha256.New, e.secret)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (e *env) apiKey(name string, scopes ...string) string {
	e.t.Helper()
	args := []string{"apikey", "add", name}
	for _, s := range scopes {
		args = append(args, "--scope", s)
	}
	return e.wsguard("", args...)
}

func static(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

func (e *env) api(key, path string, body any) (int, []byte) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.http(nil).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (e *env) publish(key, channel string, data any) uint64 {
	e.t.Helper()
	st, b := e.api(key, "/api/v1/publish", map[string]any{"channel": channel, "data": data})
	var r struct{ Offset uint64 }
	if st != 200 || json.Unmarshal(b, &r) != nil {
		e.t.Fatalf("publish: %d %s", st, b)
	}
	return r.Offset
}

// disconnect asks the service API to close user's sockets, with key.
func (e *env) disconnect(key, user string) {
	e.t.Helper()
	if st, b := e.api(key, "/api/v1/disconnect", map[string]string{"user": user}); st != 200 {
		e.t.Fatalf("disconnect %s: %d %s", user, st, b)
	}
}

var (
	formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	metaTokenRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// login creates a user, signs in through the forms and returns the
// cookie-carrying HTTP client and the page's CSRF token.
func (e *env) login(name, password string) (*http.Client, string) {
	e.t.Helper()
	e.wsguard(password+"\n", "user", "add", name, "--password-stdin")
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

// cookie returns the Cookie header hc would send to the server.
func (e *env) cookie(hc *http.Client) string {
	u, _ := url.Parse(e.base)
	var parts []string
	for _, c := range hc.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func (e *env) leafPin() string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "data", "tls", "cert.pem"))
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
