package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pquerna/otp/totp"
)

// TestReadmeTour follows README.md's "five-minute tour" step by step, as a
// new user would, against the real binary: no config file, data in
// ./wsguard-data of a fresh working directory, only the listen addresses
// moved to free ports through the documented environment overrides.
func TestReadmeTour(t *testing.T) {
	bin := binary(t)
	wd := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	host := fmt.Sprintf("localhost:%d", port)
	base := "https://" + host
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WSGUARD_") { // only the overrides below
			env = append(env, kv)
		}
	}
	env = append(env,
		fmt.Sprintf("WSGUARD_LISTEN=127.0.0.1:%d", port),
		"WSGUARD_PUBLIC_URL="+base,
		fmt.Sprintf("WSGUARD_ADMIN_LISTEN=127.0.0.1:%d", adminPort),
	)
	n := &node{host: host, env: env, bin: bin, dir: filepath.Join(wd, "wsguard-data")}
	// cli runs `wsguard ARGS` "from another terminal" in the same working directory.
	cli := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, wd
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Step 1: start the server; it prints the one-time setup URL.
	srv := startServe(t, bin, env, wd)
	setupURL := srv.setupURL
	if !strings.HasPrefix(setupURL, base+"/setup?token=") {
		t.Fatalf("setup URL %q is not on %s", setupURL, base)
	}

	// Step 2: the dev CA is in wsguard-data/tls/ca.pem, our only root of trust.
	for _, f := range []string{"tls/ca.pem", "wsguard.db", "audit.log"} {
		if _, err := os.Stat(filepath.Join(wd, "wsguard-data", f)); err != nil {
			t.Fatalf("wsguard-data/%s: %v", f, err)
		}
	}
	admin := n.client(t) // trusts ca.pem only

	// Step 3: create the admin through the setup page, then enrol 2FA.
	page := get(t, admin, setupURL)
	m := formTok.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token on the setup page:\n%s", page)
	}
	const adminName, adminPass = "admin", "a long password for the admin"
	tok := strings.TrimPrefix(setupURL, base+"/setup?token=")
	tok, err := url.QueryUnescape(tok)
	if err != nil {
		t.Fatal(err)
	}
	resp := postForm(t, admin, base, "/setup", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {m[1]}, "token": {tok}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/settings/2fa" {
		t.Fatalf("setup: %d to %q, want 303 to /settings/2fa", resp.StatusCode, loc)
	}
	// Before enrolling, the chat page sends the admin back to enrolment.
	resp, err = admin.Get(base + "/")
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/2fa" {
		t.Fatalf("chat before 2FA: %d to %q, want 303 to /settings/2fa", resp.StatusCode, resp.Header.Get("Location"))
	}
	page = get(t, admin, base+loc)
	secret := regexp.MustCompile(`<code id="totp-secret" class="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(page)
	csrfTok := formTok.FindStringSubmatch(page)
	if secret == nil || csrfTok == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("2FA page lacks the secret as text, the QR code or the form:\n%s", page)
	}
	code, err := totp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp = postForm(t, admin, base, "/settings/2fa", url.Values{"secret": {secret[1]}, "code": {code}, "csrf_token": {csrfTok[1]}})
	page = readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("2FA enrolment: %d\n%s", resp.StatusCode, page)
	}
	if got := len(regexp.MustCompile(`<li><code>[^<]+</code></li>`).FindAllString(page, -1)); got != 10 || !strings.Contains(page, `id="recovery-codes"`) {
		t.Fatalf("%d recovery codes shown, want 10:\n%s", got, page)
	}
	chat := get(t, admin, base+"/")
	adminCSRF := metaTok.FindStringSubmatch(chat)
	if adminCSRF == nil {
		t.Fatalf("admin did not reach the chat page:\n%s", chat)
	}
	// The setup URL works once.
	resp, err = admin.Get(setupURL)
	body(t, resp, err)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("setup URL after use: %d, want 404", resp.StatusCode)
	}

	// Step 4: a second user from another terminal, same data directory.
	const bobPass = "a long password for bob"
	if out, err := cli(bobPass+"\n", "user", "add", "bob", "--password-stdin"); err != nil || !strings.Contains(out, "user bob created") {
		t.Fatalf("user add bob: %v\n%s", err, out)
	}
	out, err := cli("", "user", "list")
	if err != nil {
		t.Fatalf("user list: %v\n%s", err, out)
	}
	users := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		users[f[0]] = f
	}
	// NAME ADMIN DISABLED 2FA CREATED
	if a := users[adminName]; len(a) < 4 || a[1] != "true" || a[3] != "true" {
		t.Fatalf("user list: admin row %q, want admin and 2FA true:\n%s", a, out)
	}
	if b := users["bob"]; len(b) < 4 || b[1] != "false" || b[3] != "false" {
		t.Fatalf("user list: bob row %q:\n%s", b, out)
	}

	// Step 5: chat from two "browsers", both in room:lobby.
	bob := &sock{ws: signIn(t, n, "bob", bobPass)}
	defer bob.ws.Close()
	adm := &sock{ws: dialChat(t, n, admin, adminCSRF[1])}
	defer adm.ws.Close()
	adm.subscribe(t, 1, nil)
	bob.subscribe(t, 1, nil)
	o1 := adm.publish(t, 2, "hello from the admin")
	bob.expectMessage(t, o1, adminName, "hello from the admin")
	adm.expectMessage(t, o1, adminName, "hello from the admin")
	o2 := bob.publish(t, 2, "hello from bob")
	adm.expectMessage(t, o2, "bob", "hello from bob")
	bob.expectMessage(t, o2, "bob", "hello from bob")

	// Close a tab, send from the other, reopen: the missed messages are replayed.
	_ = bob.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	bob.ws.Close()
	m1 := adm.publish(t, 3, "missed one")
	m2 := adm.publish(t, 4, "missed two")
	adm.expectMessage(t, m1, adminName, "missed one")
	adm.expectMessage(t, m2, adminName, "missed two")
	if m1 != o2+1 || m2 != m1+1 {
		t.Fatalf("offsets %d, %d, %d, %d are not consecutive", o1, o2, m1, m2)
	}
	bob = &sock{ws: signIn(t, n, "bob", bobPass)}
	defer bob.ws.Close()
	since := o2 // the last offset bob saw
	if latest := bob.subscribe(t, 1, &since); latest != m2 {
		t.Fatalf("resubscribe: latest %d, want %d", latest, m2)
	}
	bob.expectMessage(t, m1, adminName, "missed one")
	bob.expectMessage(t, m2, adminName, "missed two")
	// Exactly two: the next frame after a ping is its answer, not a third message.
	bob.send(t, map[string]any{"id": 2, "op": "ping"})
	if f := bob.next(t); f.ID != 2 || !f.OK || f.Push != "" {
		t.Fatalf("after the replay: %+v, want the ping answer", f)
	}

	// Step 6: behind the scenes.
	if out, err := cli("", "audit", "verify"); err != nil || !strings.Contains(out, "MAC chain intact, signed head at line") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	logb, err := os.ReadFile(filepath.Join(wd, "wsguard-data", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"type":"login\.ok"[^\n]*"user":"bob"|"user":"bob"[^\n]*"type":"login\.ok"`).Match(logb) {
		t.Fatalf("audit log has no login.ok event for bob:\n%s", logb)
	}
	mresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	if mb := body(t, mresp, err); mresp.StatusCode != http.StatusOK || !strings.Contains(mb, "# TYPE") {
		t.Fatalf("metrics: %d", mresp.StatusCode)
	}

	// Step 7: scan it, with the admin's session and CSRF token as the
	// credential: a node on its defaults has nothing above low.
	scan := []string{"check", "wss://" + host + "/ws", "--ca", filepath.Join("wsguard-data", "tls", "ca.pem"), "--json",
		"--subprotocol", "wsguard.v1", "--subprotocol", "wsguard.csrf." + adminCSRF[1]}
	baseURL, _ := url.Parse(base)
	for _, ck := range admin.Jar.Cookies(baseURL) {
		scan = append(scan, "--cookie", ck.Name+"="+ck.Value)
	}
	if out, err := cli("", scan...); err != nil || !strings.Contains(out, `"grade": "A"`) {
		t.Fatalf("wsguard check: %v\n%s", err, out)
	}

	// SIGTERM drains and exits 0 within the drain timeout (default 10 s).
	srv.terminate(12 * time.Second)
}

// servedBinary is `wsguard serve` running as a child process.
type servedBinary struct {
	t        *testing.T
	cmd      *exec.Cmd
	stderr   *syncBuf
	exited   chan error
	setupURL string // from the first-start banner on stdout
}

// startServe starts `bin serve` in wd with env, waits for the setup
// banner, and kills it at cleanup (showing its log if the test failed).
func startServe(t *testing.T, bin string, env []string, wd string) *servedBinary {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Dir = env, wd
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &servedBinary{t: t, cmd: cmd, stderr: &syncBuf{}, exited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr.String())
		}
	})
	s.setupURL = readBanner(t, stdout, 20*time.Second)
	return s
}

// terminate sends SIGTERM and fails unless serve exits 0 within limit.
func (s *servedBinary) terminate(limit time.Duration) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err // for the cleanup
		if err != nil {
			s.t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(limit):
		s.t.Fatal("serve did not exit within the drain timeout after SIGTERM")
	}
}

// syncBuf is a bytes.Buffer safe for the child's writer and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readBanner reads the child's stdout until the first-start banner and
// returns the setup URL on the line after it; the rest of stdout is drained.
func readBanner(t *testing.T, r io.Reader, timeout time.Duration) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		banner := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "First start: create the first admin at":
				banner = true
			case banner && line != "":
				found <- line
				_, _ = io.Copy(io.Discard, r)
				return
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("stdout ended without the first-start banner")
		}
		return u
	case <-time.After(timeout):
		t.Fatal("no first-start banner on stdout in time")
	}
	return ""
}

func postForm(t *testing.T, c *http.Client, base, path string, v url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	return body(t, resp, nil)
}

// dialChat opens the chat socket as a browser would: session cookie, CSRF
// subprotocol, allowed Origin.
func dialChat(t *testing.T, n *node, c *http.Client, csrfToken string) *websocket.Conn {
	t.Helper()
	base := "https://" + n.host
	u, _ := url.Parse(base)
	h := http.Header{"Origin": {base}}
	for _, ck := range c.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	d := websocket.Dialer{TLSClientConfig: c.Transport.(*http.Transport).TLSClientConfig, Subprotocols: []string{"wsguard.v1", "wsguard.csrf." + csrfToken}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss://"+n.host+"/ws", h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "wsguard.v1" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return ws
}

type frame struct {
	ID     int             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code string `json:"code"`
	} `json:"error"`
	Push    string `json:"push"`
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	From    string `json:"from"`
	Data    struct {
		Text string `json:"text"`
	} `json:"data"`
}

// sock is one chat socket; pushes that arrive before an answer are kept
// for expectMessage.
type sock struct {
	ws      *websocket.Conn
	pending []frame
}

func (s *sock) send(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	_ = s.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := s.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

// next returns the next frame that is not a presence push.
func (s *sock) next(t *testing.T) frame {
	t.Helper()
	for {
		_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if f.Push != "presence" {
			return f
		}
	}
}

// reply waits for the answer to request id, failing on an error answer;
// message pushes before it are kept in pending.
func (s *sock) reply(t *testing.T, id int) frame {
	t.Helper()
	for {
		f := s.next(t)
		if f.Push != "" {
			s.pending = append(s.pending, f)
			continue
		}
		if f.ID != id {
			t.Fatalf("reply %+v, want id %d", f, id)
		}
		if !f.OK {
			t.Fatalf("request %d failed: %+v", id, f.Error)
		}
		return f
	}
}

// subscribe joins room:lobby (replaying after since when non-nil) and
// returns the channel's latest offset.
func (s *sock) subscribe(t *testing.T, id int, since *uint64) uint64 {
	t.Helper()
	req := map[string]any{"id": id, "op": "subscribe", "channel": "room:lobby"}
	if since != nil {
		req["since"] = *since
	}
	s.send(t, req)
	f := s.reply(t, id)
	if len(s.pending) != 0 {
		t.Fatalf("pushes before the subscribe answer: %+v", s.pending)
	}
	var r struct {
		Offset    uint64 `json:"offset"`
		Recovered bool   `json:"recovered"`
	}
	if err := json.Unmarshal(f.Result, &r); err != nil || !r.Recovered {
		t.Fatalf("subscribe answer %s", f.Result)
	}
	return r.Offset
}

// publish sends text to room:lobby and returns its stored offset.
func (s *sock) publish(t *testing.T, id int, text string) uint64 {
	t.Helper()
	s.send(t, map[string]any{"id": id, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": text}})
	f := s.reply(t, id)
	var r struct {
		Offset uint64 `json:"offset"`
	}
	if err := json.Unmarshal(f.Result, &r); err != nil || r.Offset == 0 {
		t.Fatalf("publish answer %s", f.Result)
	}
	return r.Offset
}

// expectMessage asserts that the next message push is exactly this one.
func (s *sock) expectMessage(t *testing.T, offset uint64, from, text string) {
	t.Helper()
	var f frame
	if len(s.pending) > 0 {
		f, s.pending = s.pending[0], s.pending[1:]
	} else {
		f = s.next(t)
	}
	if f.Push != "message" || f.Channel != "room:lobby" || f.Offset != offset || f.From != from || f.Data.Text != text {
		t.Fatalf("got %+v, want message %d from %s: %q", f, offset, from, text)
	}
}
