package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/wsguard/wsguard/internal/broker/brokertest"
	"github.com/wsguard/wsguard/internal/store/pgtest"
)

// binary builds wsguard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wsguard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

type node struct {
	cmd  *exec.Cmd
	host string
	env  []string
	bin  string
	dir  string
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

func (n *node) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wsguard %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (n *node) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(n.bin, "serve")
	n.cmd.Env = n.env
	n.cmd.Stdout = io.Discard
	n.cmd.Stderr = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.cmd.Process.Kill(); _, _ = n.cmd.Process.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", strings.Replace(n.host, "localhost", "127.0.0.1", 1))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newNode(t *testing.T) *node {
	port := freePort(t)
	dir := t.TempDir()
	host := fmt.Sprintf("localhost:%d", port)
	env := append(os.Environ(),
		"WSGUARD_LISTEN=127.0.0.1:"+fmt.Sprint(port),
		"WSGUARD_PUBLIC_URL=https://"+host,
		"WSGUARD_DATA_DIR="+dir,
		"WSGUARD_ADMIN_LISTEN=127.0.0.1:"+fmt.Sprint(freePort(t)),
		"WSGUARD_LIMITS_MESSAGES_PER_SECOND=100000",
		"WSGUARD_LIMITS_MESSAGE_BURST=100000",
		"WSGUARD_LIMITS_USER_MESSAGES_PER_SECOND=100000",
		"WSGUARD_LIMITS_IP_MESSAGES_PER_SECOND=100000",
	)
	return &node{host: host, env: env, bin: binary(t), dir: dir}
}

func (n *node) client(t *testing.T) *http.Client {
	pem, err := os.ReadFile(filepath.Join(n.dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	formTok = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	metaTok = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// get fetches url and returns the body.
func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	return body(t, resp, err)
}

func body(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// signIn logs in through the real forms and opens the chat socket.
func signIn(t *testing.T, n *node, user, password string) *websocket.Conn {
	t.Helper()
	c := n.client(t)
	base := "https://" + n.host
	m := formTok.FindStringSubmatch(get(t, c, base+"/login"))
	if m == nil {
		t.Fatal("no login form")
	}
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	mt := metaTok.FindStringSubmatch(get(t, c, base+"/"))
	if mt == nil {
		t.Fatal("no csrf meta")
	}
	u, _ := url.Parse(base)
	h := http.Header{"Origin": {base}}
	for _, ck := range c.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	d := websocket.Dialer{TLSClientConfig: c.Transport.(*http.Transport).TLSClientConfig, Subprotocols: []string{"wsguard.v1", "wsguard.csrf." + mt[1]}}
	ws, _, err := d.Dial("wss://"+n.host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestKill9KeepsAcknowledged covers F1: kill -9 right after publishes were
// acknowledged loses none of them, and offsets stay gap-free.
func TestKill9KeepsAcknowledged(t *testing.T) {
	n := newNode(t)
	cmd := exec.Command(n.bin, "user", "add", "alice", "--password-stdin")
	cmd.Env = n.env
	cmd.Stdin = strings.NewReader("correct horse battery staple\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	n.start(t)
	ws := signIn(t, n, "alice", "correct horse battery staple")

	// Pipeline publishes, then kill -9 as soon as some are acknowledged.
	const total = 300
	go func() {
		for i := 1; i <= total; i++ {
			msg, _ := json.Marshal(map[string]any{"id": i, "op": "publish", "channel": "room:crash", "data": map[string]any{"n": i}})
			if ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	acked := map[uint64]bool{}
	var maxAck uint64
	for len(acked) < 100 {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f struct {
			OK     bool `json:"ok"`
			Result struct {
				Offset uint64 `json:"offset"`
			} `json:"result"`
		}
		_ = json.Unmarshal(b, &f)
		if f.OK && f.Result.Offset > 0 {
			acked[f.Result.Offset] = true
			if f.Result.Offset > maxAck {
				maxAck = f.Result.Offset
			}
		}
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = n.cmd.Process.Wait()

	n.start(t)
	ws2 := signIn(t, n, "alice", "correct horse battery staple")
	msg, _ := json.Marshal(map[string]any{"id": 1, "op": "history", "channel": "room:crash", "limit": 1000})
	if err := ws2.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	var hist struct {
		ID     int `json:"id"`
		Result struct {
			Messages []struct {
				Offset uint64 `json:"offset"`
			} `json:"messages"`
		} `json:"result"`
	}
	for hist.ID != 1 {
		_ = ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws2.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(b, &hist)
	}
	have := map[uint64]bool{}
	for i, m := range hist.Result.Messages {
		if m.Offset != uint64(i+1) {
			t.Fatalf("offsets not gap-free: position %d has %d", i, m.Offset)
		}
		have[m.Offset] = true
	}
	for off := range acked {
		if !have[off] {
			t.Fatalf("acknowledged offset %d lost after kill -9 (history has %d)", off, len(have))
		}
	}
	t.Logf("%d acknowledged (max %d), %d in history after kill -9", len(acked), maxAck, len(have))
}

// TestBenchDeliversEverything runs `wsguard bench` small: every published
// message must reach every subscriber over wss through a real child server,
// with each subscriber its own user and the service API publishing (the
// defaults), and with one user, a socket publisher and the coder/websocket
// client. It checks that the bench works, not how fast (figures live in
// BENCHMARKS.md).
func TestBenchDeliversEverything(t *testing.T) {
	bin := binary(t)
	benchDatabases := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgtest.AdminURL())
		if err != nil {
			t.Fatalf("PostgreSQL for the cluster bench: %v", err)
		}
		defer c.Close(context.Background())
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE 'wsguard_bench_%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	databases := benchDatabases()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"| users | 20: each subscriber its own user |", "| publisher / load client | http (service API, one call at a time) / gorilla |"}},
		{[]string{"--one-user", "--publisher", "socket", "--client", "coder"},
			[]string{"| users | 1: one user for all subscribers (--one-user) |", "/ coder |", "--one-user"}},
		// Three nodes on PostgreSQL and Redis: publishes go through node 1
		// and reach subscribers on nodes 2 and 3 only across the broker.
		{[]string{"--nodes", "3", "--postgres", pgtest.AdminURL(), "--redis", brokertest.RedisURL(t)},
			[]string{"| nodes | 3, one cluster", "| PostgreSQL and Redis CPU per delivery |", "--nodes 3"}},
	} {
		args := append([]string{"bench", "--conns", "20", "--messages", "5", "--inflight", "2", "--timeout", "60s", "--memory-samples", "2"}, tc.args...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bench %v: %v\n%s", tc.args, err, out)
		}
		for _, want := range append([]string{"| deliveries per second |", "(100 delivered)", "| idle memory per connection (server RSS) |"}, tc.want...) {
			if !strings.Contains(string(out), want) {
				t.Fatalf("bench %v output lacks %q:\n%s", tc.args, want, out)
			}
		}
	}
	if n := benchDatabases(); n != databases {
		t.Fatalf("the cluster bench left its database behind: %d wsguard_bench_ databases, %d before", n, databases)
	}
}
