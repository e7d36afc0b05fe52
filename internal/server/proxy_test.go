package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
)

// These tests run `wsguard proxy` in front of backends nobody here wrote:
// a Python server on Debian's python3-websockets and a Node server on the
// ws npm package. Each verifies the identity headers itself, with the few
// lines docs/PROXY.md gives, and refuses a handshake that does not verify.

const proxyTestdata = "../proxy/testdata"

// upstreamProc is a backend process and the lines it prints.
type upstreamProc struct {
	url   string
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
}

// saw reports whether the backend printed a line starting with prefix.
func (u *upstreamProc) saw(prefix string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// waitFor waits up to d for a line starting with prefix.
func (u *upstreamProc) waitFor(t *testing.T, prefix string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !u.saw(prefix) {
		if time.Now().After(deadline) {
			u.mu.Lock()
			defer u.mu.Unlock()
			t.Fatalf("backend did not print %q within %s; it printed %q", prefix, d, u.lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// identitySecret writes a fresh 32-byte secret file.
func identitySecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startUpstream starts the Python or Node backend with the secret file.
func startUpstream(t *testing.T, kind, secretFile string) *upstreamProc {
	t.Helper()
	var cmd *exec.Cmd
	switch kind {
	case "python":
		if _, err := os.Stat("/usr/bin/python3"); err != nil {
			t.Fatal("needs /usr/bin/python3 with websockets: apt-get install python3-websockets")
		}
		if err := exec.Command("/usr/bin/python3", "-c", "import websockets").Run(); err != nil {
			t.Fatal("needs Python's websockets: apt-get install python3-websockets")
		}
		cmd = exec.Command("/usr/bin/python3", filepath.Join(proxyTestdata, "upstream.py"), secretFile) // #nosec G204 -- test fixture
	case "node":
		dir := filepath.Join(proxyTestdata, "node")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
			t.Fatalf("run npm ci in internal/proxy/testdata/node (scripts/test.sh does): %v", err)
		}
		node, err := exec.LookPath("node")
		if err != nil {
			t.Fatal("needs Node 20 or later on PATH (apt-get install nodejs npm)")
		}
		cmd = exec.Command(node, filepath.Join(dir, "upstream.js"), secretFile) // #nosec G204 -- test fixture
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &upstreamProc{cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if p, ok := strings.CutPrefix(line, "listening "); ok {
				port <- p
			}
			u.mu.Lock()
			u.lines = append(u.lines, line)
			u.mu.Unlock()
		}
	}()
	select {
	case p := <-port:
		u.url = "ws://127.0.0.1:" + p + "/app"
	case <-time.After(20 * time.Second):
		t.Fatalf("%s backend did not start", kind)
	}
	return u
}

// startProxy runs a node in proxy mode in front of upstream.
func startProxy(t *testing.T, upstream, secretFile string, mutate func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, func(c *config.Config) {
		c.Proxy.Upstream = upstream
		c.Proxy.IdentitySecretFile = secretFile
		if mutate != nil {
			mutate(c)
		}
	}, Options{Mode: ModeProxy})
}

// proxyHello is the backend's first message: what its handshake carried.
type proxyHello struct {
	User        string   `json:"user"`
	Roles       string   `json:"roles"`
	Credential  string   `json:"credential"`
	UserHeaders []string `json:"user_headers"`
	Authz       string   `json:"authorization"`
	Cookie      string   `json:"cookie"`
	Subprotocol string   `json:"subprotocol"`
	Path        string   `json:"path"`
}

// proxySignIn signs name in and dials the proxied socket with the session
// cookie, CSRF token, the given extra subprotocols and a forged
// X-Wsguard-User header.
func proxySignIn(t *testing.T, ts *testServer, name string, protocols ...string) (*websocket.Conn, *browser) {
	t.Helper()
	ts.addUser(name, pw, false)
	b := ts.newBrowser()
	tok := b.login(name, pw)
	return proxyDial(t, b, tok, protocols...), b
}

func proxyDial(t *testing.T, b *browser, tok string, protocols ...string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Cookie", b.cookieHeader()+"; app_pref=dark")
	h.Set("X-Wsguard-User", "mallory")
	h.Add("X-Wsguard-Signature", "00")
	offered := append([]string{"wsguard.v1", "wsguard.csrf." + tok}, protocols...)
	ws, resp, err := b.ts.dial(h, b.ts.url, offered...)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial through the proxy: %v (status %d)", err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func readHello(t *testing.T, ws *websocket.Conn) proxyHello {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := ws.ReadMessage()
	if err != nil || typ != websocket.TextMessage {
		t.Fatalf("backend hello: %v (type %d)", err, typ)
	}
	var h proxyHello
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("backend hello %q: %v", b, err)
	}
	return h
}

// echoExact sends a text and a binary message and checks each comes back
// byte for byte with its type.
func echoExact(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	bin := make([]byte, 4096)
	for i := range bin {
		bin[i] = byte(i)
	}
	text := []byte(`{"msg":"héllo ✓ 🙂","n":[1,2,3]}` + "\t tail ")
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, text}, {websocket.BinaryMessage, bin}, {websocket.TextMessage, []byte{}}} {
		if err := ws.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("echo: %v", err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo changed the message: sent type %d %d bytes, got type %d %d bytes", m.typ, len(m.data), typ, len(got))
		}
	}
}

// checkHello checks that the backend saw the verified user, only once,
// and none of the client's credentials.
func checkHello(t *testing.T, h proxyHello, user string) {
	t.Helper()
	if h.User != user || h.Credential != "session" {
		t.Errorf("backend saw user %q credential %q, want %q session", h.User, h.Credential, user)
	}
	if len(h.UserHeaders) != 1 || h.UserHeaders[0] != user {
		t.Errorf("backend saw X-Wsguard-User %q: a forged header reached it", h.UserHeaders)
	}
	if h.Authz != "" || strings.Contains(h.Cookie, "__Host-wsguard") {
		t.Errorf("backend saw the client's wsguard credential: authorization %q cookie %q", h.Authz, h.Cookie)
	}
	if !strings.Contains(h.Cookie, "app_pref=dark") {
		t.Errorf("backend did not get the application's own cookie: %q", h.Cookie)
	}
}

func testProxyInterop(t *testing.T, kind string) {
	secret := identitySecret(t)
	up := startUpstream(t, kind, secret)
	ts := startProxy(t, up.url, secret, nil)

	// A direct handshake without signed headers is refused by the backend:
	// what the proxy's signature is for.
	if _, resp, err := websocket.DefaultDialer.Dial(up.url, http.Header{"X-Wsguard-User": {"mallory"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("backend accepted an unsigned handshake: %v", err)
	}

	ws, _ := proxySignIn(t, ts, "alice", "chat.v1")
	if ws.Subprotocol() != "chat.v1" {
		t.Errorf("client got subprotocol %q, want the backend's choice chat.v1", ws.Subprotocol())
	}
	h := readHello(t, ws)
	checkHello(t, h, "alice")
	if h.Subprotocol != "chat.v1" {
		t.Errorf("backend negotiated %q; wsguard's own protocols must not reach it", h.Subprotocol)
	}
	echoExact(t, ws)

	// Offering no protocol of the backend's: it chooses none, and the
	// browser-style client still gets wsguard.v1 back.
	b := ts.newBrowser()
	ts.addUser("bob", pw, false)
	bobWS := proxyDial(t, b, b.login("bob", pw))
	if bobWS.Subprotocol() != "wsguard.v1" {
		t.Errorf("with no protocol chosen upstream, client got %q, want wsguard.v1", bobWS.Subprotocol())
	}
	checkHello(t, readHello(t, bobWS), "bob")

	// The backend's close code reaches the client.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("close 4123")); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, ws); code != 4123 {
		t.Errorf("backend closed with 4123, client got %d", code)
	}
	echoExact(t, bobWS) // bob is unaffected
}

// TestProxyPythonUpstream: frames byte for byte both ways, the verified
// user and no forged header at a Python websockets backend.
func TestProxyPythonUpstream(t *testing.T) {
	t.Parallel()
	testProxyInterop(t, "python")
}

// TestProxyNodeUpstream: the same in front of a Node ws backend.
func TestProxyNodeUpstream(t *testing.T) {
	t.Parallel()
	testProxyInterop(t, "node")
}

// TestProxyRefusesBeforeDial: a handshake the guard refuses never reaches
// the backend; a good one still does.
func TestProxyRefusesBeforeDial(t *testing.T) {
	t.Parallel()
	secret := identitySecret(t)
	up := startUpstream(t, "python", secret)
	ts := startProxy(t, up.url, secret, nil)
	ts.addUser("victim", pw, false)
	b := ts.newBrowser()
	tok := b.login("victim", pw)
	cookie := http.Header{"Cookie": {b.cookieHeader()}}
	for _, c := range []struct {
		name, origin string
		protocols    []string
		want         int
	}{
		{"foreign origin", "https://evil.example", []string{"wsguard.v1", "wsguard.csrf." + tok}, 403},
		{"sibling origin", "https://chat.localhost:1", []string{"wsguard.v1", "wsguard.csrf." + tok}, 403},
		{"no csrf token", ts.url, []string{"wsguard.v1"}, 403},
		{"wrong csrf token", ts.url, []string{"wsguard.v1", "wsguard.csrf.AAAA"}, 403},
	} {
		h := cookie.Clone()
		_, resp, err := ts.dial(h, c.origin, c.protocols...)
		if err == nil || resp == nil || resp.StatusCode != c.want {
			t.Errorf("%s: got %v, want %d", c.name, err, c.want)
		}
	}
	if _, resp, err := ts.dial(nil, ts.url, "chat.v1"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("no credential: got %v, want 401", err)
	}
	time.Sleep(200 * time.Millisecond)
	if up.saw("open") || up.saw("refused") {
		t.Fatalf("refused handshakes reached the backend: %q", up.lines)
	}
	ws := proxyDial(t, b, tok)
	checkHello(t, readHello(t, ws), "victim")
}

// TestProxyUpstreamDown: 502 and nothing upgraded when the backend cannot
// be reached; 1014 when it dies mid-stream.
func TestProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	secret := identitySecret(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String() + "/app"
	ln.Close()
	ts := startProxy(t, dead, secret, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	tok := b.login("alice", pw)
	_, resp, err := b.dial(ts.url, "wsguard.v1", "wsguard.csrf."+tok)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("unreachable backend: got %v, want 502", err)
	}

	up := startUpstream(t, "python", secret)
	ts2 := startProxy(t, up.url, secret, nil)
	ws, _ := proxySignIn(t, ts2, "alice")
	readHello(t, ws)
	_ = up.cmd.Process.Kill()
	start := time.Now()
	if code := proxyCloseCode(ws); code != 1014 {
		t.Fatalf("backend died: client got %d, want 1014", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("1014 took %s", d)
	}
}

// TestProxyLogoutClosesBothSides: logout closes the proxied socket within
// 1 s, 4001 to the client and 1000 to the backend.
func TestProxyLogoutClosesBothSides(t *testing.T) {
	t.Parallel()
	secret := identitySecret(t)
	up := startUpstream(t, "python", secret)
	ts := startProxy(t, up.url, secret, nil)
	ws, b := proxySignIn(t, ts, "alice")
	readHello(t, ws)
	other, _ := proxySignIn(t, ts, "bob")
	readHello(t, other)

	resp, _ := b.post("/logout", url.Values{"csrf_token": {b.chatToken()}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	start := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("after logout the client got %v, want close 4001 within 1 s", err)
	}
	up.waitFor(t, "closed alice 1000", time.Second-time.Since(start)+50*time.Millisecond)
	echoExact(t, other)
}

// TestProxyAbuse: a flood, an oversize message, invalid UTF-8 and a slow
// reader, on either side, are cut with their codes while another proxied
// user keeps working.
func TestProxyAbuse(t *testing.T) {
	t.Parallel()
	secret := identitySecret(t)
	up := startUpstream(t, "python", secret)
	strict := startProxy(t, up.url, secret, func(c *config.Config) {
		c.Limits.MaxMessageBytes = 8192
		c.Limits.MessagesPerSecond = 5
		c.Limits.MessageBurst = 5
	})
	bystander, _ := proxySignIn(t, strict, "bystander")
	readHello(t, bystander)

	expect := func(t *testing.T, ws *websocket.Conn, want int) {
		t.Helper()
		if code := proxyCloseCode(ws); code != want {
			t.Errorf("client got close %d, want %d", code, want)
		}
	}
	t.Run("client flood", func(t *testing.T) {
		ws, _ := proxySignIn(t, strict, "flooder")
		readHello(t, ws)
		go func() {
			for i := 0; i < 50; i++ {
				if ws.WriteMessage(websocket.TextMessage, []byte("x")) != nil {
					return
				}
			}
		}()
		expectAfterEchoes(t, ws, 4008)
	})
	t.Run("client oversize", func(t *testing.T) {
		ws, _ := proxySignIn(t, strict, "bigmouth")
		readHello(t, ws)
		_ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 8193))
		expect(t, ws, 1009)
		up.waitFor(t, "closed bigmouth 1000", 5*time.Second)
	})
	t.Run("client invalid utf8", func(t *testing.T) {
		ws, _ := proxySignIn(t, strict, "badtext")
		readHello(t, ws)
		// gorilla checks nothing on send: the frame goes out as is.
		_ = ws.WriteMessage(websocket.TextMessage, []byte{0xff, 0xfe})
		expect(t, ws, 1007)
	})
	t.Run("upstream oversize", func(t *testing.T) {
		ws, _ := proxySignIn(t, strict, "askbig")
		readHello(t, ws)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("big 9000"))
		expect(t, ws, 1014)
		up.waitFor(t, "closed askbig 1009", 5*time.Second)
	})
	echoExact(t, bystander)

	loose := startProxy(t, up.url, secret, func(c *config.Config) {
		c.Limits.MaxMessageBytes = 4096
		c.Limits.MessagesPerSecond = 100000
		c.Limits.MessageBurst = 100000
		c.Limits.UserMessagesPerSecond = 100000
		c.Limits.IPMessagesPerSecond = 100000
		c.Limits.SendQueue = 16
		c.Limits.SendQueueBytes = 16 << 10
		c.Limits.WriteTimeout = config.Duration(time.Second)
	})
	bystander2, _ := proxySignIn(t, loose, "bystander2")
	readHello(t, bystander2)
	t.Run("slow client", func(t *testing.T) {
		ws, _ := proxySignIn(t, loose, "slowreader")
		readHello(t, ws)
		// The backend sends 20000 messages of about 1 KiB; the client reads
		// none until the proxy has had to cut it.
		_ = ws.WriteMessage(websocket.TextMessage, []byte("spam 20000"))
		// The backend is sent 1000; whether its close handshake completes
		// (1000) or not (1006) depends on how far its own sends got.
		up.waitFor(t, "closed slowreader", 20*time.Second)
		cuts := loose.srv.Metrics().Proxy.Cuts.WithLabelValues(up.url, "client", "slow_consumer")
		if n := counterValue(cuts); n != 1 {
			t.Errorf("slow client cuts = %v, want 1", n)
		}
		// The close frame (4008) goes out only if the socket's buffers had
		// room for it; a reader that reads nothing may not see it.
		if code := proxyCloseCode(ws); code != 4008 && code != -1 {
			t.Errorf("slow client got close %d, want 4008 or none", code)
		}
	})
	t.Run("slow upstream", func(t *testing.T) {
		ws, _ := proxySignIn(t, loose, "stuffer")
		readHello(t, ws)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("stall"))
		msg := bytes.Repeat([]byte("y"), 4000)
		go func() {
			for i := 0; i < 20000; i++ {
				_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if ws.WriteMessage(websocket.TextMessage, msg) != nil {
					return
				}
			}
		}()
		expectAfterEchoes(t, ws, 1014)
	})
	echoExact(t, bystander2)
}

// expectAfterEchoes reads (and drops) relayed messages until the close,
// which must carry want.
func expectAfterEchoes(t *testing.T, ws *websocket.Conn, want int) {
	t.Helper()
	if code := proxyCloseCode(ws); code != want {
		t.Fatalf("got close %d, want %d", code, want)
	}
}

// proxyCloseCode reads (and drops) messages until the close and returns
// its code, -1 when the connection ended without one. gorilla refuses to
// parse 1014 (bad gateway, registered after it was written) and reports
// it as an error naming the code: read from that error.
func proxyCloseCode(ws *websocket.Conn) int {
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if strings.Contains(err.Error(), "bad close code 1014") {
			return 1014
		}
		return -1
	}
}

// TestProxyLiveIdentity: a JWT's expiry and a user disabled from the CLI
// (through the store, as a separate process would) close the proxied
// socket on both sides, 4001 to the client and 1000 to the backend. A
// bearer client offers no wsguard protocol and needs no Origin.
func TestProxyLiveIdentity(t *testing.T) {
	t.Parallel()
	secret := identitySecret(t)
	up := startUpstream(t, "python", secret)
	keys := newTestKeys(t)
	ts := startProxy(t, up.url, secret, func(c *config.Config) {
		keys.configure(c)
		c.JWT.Leeway = 0
	})

	t.Run("token expiry", func(t *testing.T) {
		exp := time.Now().Add(2 * time.Second)
		c := claims("carol", 2*time.Second)
		c["exp"] = exp.Unix()
		h := bearerHeader(keys.rs(t, c))
		ws, resp, err := ts.dial(h, "", "chat.v2")
		if err != nil {
			t.Fatalf("bearer dial: %v (%v)", err, resp)
		}
		defer ws.Close()
		if ws.Subprotocol() != "chat.v2" {
			t.Errorf("subprotocol %q, want chat.v2", ws.Subprotocol())
		}
		hello := readHello(t, ws)
		if hello.User != "carol" || hello.Credential != "jwt" || hello.Authz != "" {
			t.Errorf("backend saw %+v, want carol by jwt and no Authorization", hello)
		}
		echoExact(t, ws)
		if code := proxyCloseCode(ws); code != 4001 {
			t.Fatalf("at exp the client got %d, want 4001", code)
		}
		if late := time.Since(exp); late > 1500*time.Millisecond {
			t.Errorf("closed %s after exp, want within 1 s (exp has whole-second precision)", late)
		}
		up.waitFor(t, "closed carol 1000", time.Second)
	})

	t.Run("user disabled", func(t *testing.T) {
		ws, _ := proxySignIn(t, ts, "dana")
		readHello(t, ws)
		if err := SetUserDisabled(context.Background(), ts.srv.Store(), ts.srv.audit, "dana", true); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if code := proxyCloseCode(ws); code != 4001 {
			t.Fatalf("after disable the client got %d, want 4001", code)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("closed %s after the disable, want within 1 s", d)
		}
		up.waitFor(t, "closed dana 1000", time.Second)
	})

	log := ts.auditLog(t)
	for _, want := range []string{`"type":"proxy.open"`, `"type":"proxy.close"`, `"frames_in":"3"`, `"bytes_in":"4` /* 4096 + text */} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(log, "héllo") {
		t.Error("the audit log holds message contents")
	}
}

// TestProxyWSSUpstream: a wss:// backend is verified against
// proxy.upstream_ca_file; without it (system roots) the same backend's
// private certificate is refused, 502, and nothing is upgraded.
func TestProxyWSSUpstream(t *testing.T) {
	t.Parallel()
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The backend sees the browser's Origin (the proxy's public origin),
		// not its own host: a backend that checks Origin must allow it.
		u := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") != "" }}
		ws, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"user":"`+r.Header.Get("X-Wsguard-User")+`"}`))
		for {
			typ, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			_ = ws.WriteMessage(typ, b)
		}
	}))
	t.Cleanup(up.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	wss := "wss://" + up.Listener.Addr().String() + "/app"
	secret := identitySecret(t)

	trusting := startProxy(t, wss, secret, func(c *config.Config) { c.Proxy.UpstreamCAFile = caFile })
	ws, _ := proxySignIn(t, trusting, "alice")
	if h := readHello(t, ws); h.User != "alice" {
		t.Errorf("backend saw %q", h.User)
	}
	echoExact(t, ws)

	roots := startProxy(t, wss, secret, nil)
	roots.addUser("bob", pw, false)
	b := roots.newBrowser()
	tok := b.login("bob", pw)
	if _, resp, err := b.dial(roots.url, "wsguard.v1", "wsguard.csrf."+tok); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("backend with an untrusted certificate: %v, want 502", err)
	}
	if n := counterValue(roots.srv.Metrics().Proxy.UpstreamErrors.WithLabelValues(wss, "dial")); n != 1 {
		t.Errorf("dial errors = %v, want 1", n)
	}
}
