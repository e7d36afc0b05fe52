package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	benchUser     = "bench"
	benchPassword = "bench password long enough"
	benchChannel  = "room:bench"
)

// wsguardConfig is the server config for a run. Every control stays on
// (TLS, Origin, session + CSRF, read limit, bounded queues, durable
// publishes); only the caps that a single load client on one IP and one
// user would hit are raised, because the bench deliberately is that client.
const wsguardConfig = `listen: 127.0.0.1:%d
public_url: https://localhost:%d
data_dir: %s
admin_listen: 127.0.0.1:%d
admin:
  pprof: true
limits:
  conns_per_user: %d
  conns_per_ip: %d
  handshakes_per_second: 1000000
  handshake_burst: 1000000
  messages_per_second: 100000
  message_burst: 100000
  user_messages_per_second: 100000
  ip_messages_per_second: 100000
`

// wsguardSys drives a wsguard node through its real sign-in and the
// cookie + CSRF handshake, the browser's path.
type wsguardSys struct {
	n            *node
	host         string // localhost:PORT
	roots        *x509.CertPool
	cookie, csrf string
}

func startWSGuard(ctx context.Context, bin string, conns int) (*wsguardSys, error) {
	dir, err := os.MkdirTemp("", "wsguard-bench-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "wsguard.yaml")
	cfg := fmt.Sprintf(wsguardConfig, port, port, filepath.Join(dir, "data"), adminPort, conns+10, conns+10)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "WSGUARD_CONFIG="+cfgPath)
	w := &wsguardSys{host: "localhost:" + strconv.Itoa(port),
		n: &node{dir: dir, admin: "127.0.0.1:" + strconv.Itoa(adminPort), clkTick: 100}}
	w.n.cmd = exec.CommandContext(ctx, bin, "serve")
	w.n.cmd.Env = env
	if err := w.n.cmd.Start(); err != nil {
		return nil, err
	}
	if err := w.waitCA(filepath.Join(dir, "data", "tls", "ca.pem")); err != nil {
		w.stop()
		return nil, err
	}
	if err := waitHealthy(w.httpClient(nil), "https://"+w.host+"/healthz"); err != nil {
		w.stop()
		return nil, err
	}
	add := exec.Command(bin, "user", "add", benchUser, "--password-stdin")
	add.Env = env
	add.Stdin = strings.NewReader(benchPassword + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		w.stop()
		return nil, fmt.Errorf("bench: user add: %w: %s", err, out)
	}
	if w.cookie, w.csrf, err = w.signIn(); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// waitCA waits for the dev CA the server writes on first start.
func (w *wsguardSys) waitCA(path string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		pem, err := os.ReadFile(path) // #nosec G304 -- the CA the child server wrote in our scratch dir
		if err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				w.roots = pool
				return nil
			}
		}
	}
	return errors.New("bench: the server wrote no dev CA within 30s")
}

func (w *wsguardSys) proc() *node { return w.n }
func (w *wsguardSys) stop()       { w.n.stop() }

func (w *wsguardSys) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: w.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func (w *wsguardSys) httpClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: w.tlsConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (w *wsguardSys) dial(ctx context.Context) (*websocket.Conn, error) {
	d := websocket.Dialer{
		TLSClientConfig:  w.tlsConfig(),
		Subprotocols:     []string{"wsguard.v1", "wsguard.csrf." + w.csrf},
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
	}
	h := http.Header{"Origin": {"https://" + w.host}, "Cookie": {w.cookie}}
	ws, _, err := d.DialContext(ctx, "wss://"+w.host+"/ws", h)
	return ws, err
}

func (w *wsguardSys) subscribe(ws *websocket.Conn) error {
	_ = ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"`+benchChannel+`"}`)); err != nil {
		return err
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for { // skip presence pushes until the answer
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `"push"`) {
			continue
		}
		if !strings.Contains(string(b), `"ok":true`) {
			return fmt.Errorf("subscribe refused: %s", b)
		}
		return nil
	}
}

// publisher publishes over a connection of its own, as a browser would:
// every publish is acknowledged only once durable.
func (w *wsguardSys) publisher(ctx context.Context) (func(int, []byte) error, error) {
	pub, err := w.dial(ctx)
	if err != nil {
		return nil, err
	}
	go func() { // drain the acknowledgements until the run ends
		defer pub.Close()
		for {
			if _, _, err := pub.ReadMessage(); err != nil {
				return
			}
		}
	}()
	context.AfterFunc(ctx, func() { _ = pub.Close() })
	return func(i int, data []byte) error {
		msg := fmt.Sprintf(`{"id":%d,"op":"publish","channel":"%s","data":%s}`, i+1, benchChannel, data)
		return pub.WriteMessage(websocket.TextMessage, []byte(msg))
	}, nil
}

// sentAt reads the publisher's timestamp from a message push. The load
// client shares the cores with the server, so it looks for the one field
// it needs rather than decoding the whole frame.
func (w *wsguardSys) sentAt(_ *websocket.Conn, b []byte) []int64 {
	if !bytes.HasPrefix(b, []byte(`{"push":"message"`)) {
		return nil // a presence push or other frame
	}
	if t, ok := stampIn(b); ok {
		return []int64{t}
	}
	return nil
}

// stampIn finds the "t":<nanoseconds> the bench publisher put in data.
func stampIn(b []byte) (int64, bool) {
	i := bytes.Index(b, []byte(`"t":`))
	if i < 0 {
		return 0, false
	}
	var t int64
	for _, c := range b[i+4:] {
		if c < '0' || c > '9' {
			break
		}
		t = t*10 + int64(c-'0')
	}
	return t, t > 0
}

var (
	formToken = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	metaToken = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// signIn logs the bench user in through the real forms and returns the
// session cookie header and the CSRF token for the handshake.
func (w *wsguardSys) signIn() (cookie, csrf string, err error) {
	jar, _ := cookiejar.New(nil)
	c := w.httpClient(jar)
	base := "https://" + w.host
	page, err := fetch(c, base+"/login")
	if err != nil {
		return "", "", err
	}
	m := formToken.FindStringSubmatch(page)
	if m == nil {
		return "", "", errors.New("bench: no CSRF token on the login page")
	}
	form := url.Values{"username": {benchUser}, "password": {benchPassword}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", "", fmt.Errorf("bench: login answered %d", resp.StatusCode)
	}
	page, err = fetch(c, base+"/")
	if err != nil {
		return "", "", err
	}
	mt := metaToken.FindStringSubmatch(page)
	if mt == nil {
		return "", "", errors.New("bench: no csrf-token meta on the chat page")
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; "), mt[1], nil
}

func fetch(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), err
}
