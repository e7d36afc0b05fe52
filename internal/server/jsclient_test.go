package server

// The browser client (clients/js/wsguard.js) against a real server: Node's
// own test runner drives it (clients/js/test/client.test.mjs), and
// TypeScript checks its types. Chromium drives it from a page on another
// origin in browser_client_test.go.

import (
	"context"
	"crypto/sha512"
	"database/sql"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
	"github.com/wsguard/wsguard/internal/config"
)

// jsClientDir is clients/js, from this package's directory.
func jsClientDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "clients", "js"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeCommand returns node with the flag its version needs for the global
// WebSocket (Node 20: --experimental-websocket; 22 and later have it).
func nodeCommand(t *testing.T) (string, []string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found: install Node.js 20 or later (scripts/test.sh does)")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	switch {
	case major < 20:
		t.Fatalf("node %s is too old: the client needs Node.js 20 or later", v)
	case major < 22:
		return node, []string{"--experimental-websocket"}
	}
	return node, nil
}

// dbLock holds (or releases) an exclusive lock on the server's SQLite
// database, so publishes answer unavailable while it is held.
type dbLock struct {
	mu   sync.Mutex
	db   *sql.DB
	conn *sql.Conn
}

func (l *dbLock) lock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return nil
	}
	c, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		c.Close()
		return err
	}
	l.conn = c
	return nil
}

func (l *dbLock) unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	_, err := l.conn.ExecContext(ctx, "ROLLBACK")
	l.conn.Close()
	l.conn = nil
	return err
}

// controlServer lets the Node tests lock and unlock the database: a plain
// HTTP listener on loopback that lives as long as the test.
func controlServer(t *testing.T, ts *testServer) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(ts.cfg.DataDir, "wsguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	l := &dbLock{db: db}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /lock", func(w http.ResponseWriter, r *http.Request) {
		if err := l.lock(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /unlock", func(w http.ResponseWriter, r *http.Request) {
		if err := l.unlock(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = l.unlock(context.Background())
		_ = db.Close()
	})
	return "http://" + ln.Addr().String()
}

// TestJSClientNode runs clients/js/test/client.test.mjs with node --test
// against a real server: reconnect after the server drops the socket,
// resume with since, recovered:false after retention, token refresh on
// expiring, a publish retried exactly once, every error code, presence
// and history.
func TestJSClientNode(t *testing.T) {
	ts, keys := startTokenServer(t, func(c *config.Config) {
		c.Limits.MessageBurst = 10
		c.Namespaces["short"] = config.Namespace{
			Subscribe: []string{"users"}, Publish: []string{"users"}, History: []string{"users"}, Presence: []string{"users"},
			HistorySize: 3,
		}
		// Subscribe without the history right: a resume with since is
		// forbidden there, and the client joins from the head instead.
		c.Namespaces["nohist"] = config.Namespace{Subscribe: []string{"users"}, Publish: []string{"users"}}
	})
	key := ts.apiKey(t, "jsclient-tests", "disconnect:user:*")
	node, flags := nodeCommand(t)
	dir := jsClientDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append(flags, "--test", "--test-reporter=spec", filepath.Join("test", "client.test.mjs"))
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+filepath.Join(ts.cfg.DataDir, "tls", "ca.pem"),
		"WSGUARD_URL=wss://"+ts.host+"/ws",
		"WSGUARD_HTTP="+ts.url,
		"WSGUARD_JWT_SECRET="+base64.StdEncoding.EncodeToString(keys.hmac),
		"WSGUARD_JWT_KID=hs",
		"WSGUARD_JWT_AUD="+testAudience,
		"WSGUARD_JWT_ISS="+testIssuer,
		"WSGUARD_API_KEY="+key,
		"WSGUARD_CONTROL="+controlServer(t, ts),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test clients/js/test/client.test.mjs: %v\n%s", err, out)
	}
	// The spec reporter ends with "ℹ pass N" and "ℹ fail N".
	pass := regexp.MustCompile(`(?m)^\S* ?pass (\d+)$`).FindStringSubmatch(string(out))
	if pass == nil || pass[1] == "0" || !regexp.MustCompile(`(?m)^\S* ?fail 0$`).MatchString(string(out)) {
		t.Fatalf("node --test ran no passing tests, or some failed:\n%s", out)
	}
	t.Logf("%s", out)
}

// TestJSClientTypes checks wsguard.d.ts (and a use of every part of it)
// with TypeScript: npx tsc --noEmit -p clients/js.
func TestJSClientTypes(t *testing.T) {
	dir := jsClientDir(t)
	tsc := filepath.Join(dir, "node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		t.Fatalf("typescript is not installed: run npm ci in %s (scripts/test.sh does)", dir)
	}
	node, _ := nodeCommand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, tsc, "--noEmit", "-p", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc --noEmit -p clients/js: %v\n%s", err, out)
	}
}

// TestJSClientServed: every node serves the client at /client/wsguard.js,
// cached for a year, as JavaScript, loadable from other origins, and
// byte for byte the file whose SRI hash docs/CLIENTS.md gives.
func TestJSClientServed(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.httpClient(nil)
	resp, err := c.Get(ts.url + "/client/wsguard.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := map[string]string{
		"Content-Type":                "text/javascript; charset=utf-8",
		"Cache-Control":               "public, max-age=31536000, immutable",
		"X-Content-Type-Options":      "nosniff",
		"Access-Control-Allow-Origin": "*",
		"Strict-Transport-Security":   "max-age=63072000; includeSubDomains",
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /client/wsguard.js: %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	sum := sha512.Sum384(body)
	served := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	src, err := os.ReadFile(filepath.Join(jsClientDir(t), "wsguard.js"))
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != string(body) || served != wsguardjs.Integrity() {
		t.Fatalf("served file differs from clients/js/wsguard.js")
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLIENTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`sha384-[A-Za-z0-9+/=]{64}`).FindAllString(string(docs), -1)
	if len(found) == 0 {
		t.Fatal("docs/CLIENTS.md gives no sha384 hash for /client/wsguard.js")
	}
	for _, h := range found {
		if h != served {
			t.Errorf("docs/CLIENTS.md gives %s; the served file is %s: update the docs", h, served)
		}
	}
	// Only GET and HEAD.
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/client/wsguard.js", nil)
	if resp, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /client/wsguard.js: %d, want 405", resp.StatusCode)
		}
	}
}
