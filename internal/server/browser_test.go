package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/wsguard/internal/browsertest"
)

// leafSPKI returns the base64 SHA-256 of the server leaf's public key, so
// Chromium trusts exactly that key and nothing else.
func leafSPKI(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newChromium starts one headless browser profile (its own cookies) that
// trusts exactly the server's key, nothing else.
func newChromium(t *testing.T, ts *testServer) context.Context {
	t.Helper()
	return browsertest.New(t, 90*time.Second,
		chromedp.Flag("ignore-certificate-errors-spki-list", leafSPKI(t, ts.cfg.DataDir)))
}

func browserLogin(t *testing.T, ctx context.Context, ts *testServer, name string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-input`)),
	)
	if err != nil {
		t.Fatalf("%s login in chromium: %v", name, err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'connected'`)
}

func say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#send-input`), text),
		chromedp.Submit(chromedp.CSS(`#send-input`)),
	); err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
}

// waitMessage waits until a message whose text is want appears in #messages.
func waitMessage(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, fmt.Sprintf(`Array.from(document.querySelectorAll('#messages li .text')).some(e => e.textContent === %q)`, want))
}

// TestBrowserChatAndXSS: two people chat live in Chromium (happy path), and
// an XSS payload arrives as text, never as markup (C6).
func TestBrowserChatAndXSS(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	a := newChromium(t, ts)
	b := newChromium(t, ts)
	browserLogin(t, a, ts, "alice")
	browserLogin(t, b, ts, "bob")

	say(t, a, "hello bob")
	waitMessage(t, b, "hello bob")
	say(t, b, "hi alice")
	waitMessage(t, a, "hi alice")

	payloads := []string{
		`<img src=x onerror="document.title='pwned'">`,
		`<script>document.title='pwned'</script>`,
	}
	for _, p := range payloads {
		say(t, a, p)
		waitMessage(t, b, p)
	}
	// Give an injected handler the time to fire if it had been injected.
	_ = chromedp.Do(b, chromedp.Sleep(300*time.Millisecond))
	title := browsertest.Eval[string](t, b, `document.title`)
	injected := browsertest.Eval[int](t, b, `document.querySelectorAll('#messages img, #messages script').length`)
	if title == "pwned" || injected != 0 {
		t.Fatalf("XSS executed or injected: title %q, %d elements", title, injected)
	}
}

// attackerServer serves a page on another origin that tries to open the
// victim's socket from the victim's browser (CSWSH), and reports what it saw.
func attackerServer(t *testing.T, ts *testServer, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(ts.cfg.DataDir, "tls", "cert.pem"), filepath.Join(ts.cfg.DataDir, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><title>attacker</title><p id=out>pending</p><script>
const out = document.getElementById('out');
const ws = new WebSocket('wss://` + ts.host + `/ws', ['wsguard.v1']);
ws.onopen = () => { out.textContent = 'opened'; ws.send(JSON.stringify({id:1, op:'subscribe', channel:'user:alice'})); };
ws.onmessage = (e) => { out.textContent = 'received ' + e.data; };
ws.onclose = (e) => { if (out.textContent === 'pending') out.textContent = 'refused'; };
</script>`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return fmt.Sprintf("https://%s:%d/", host, ln.Addr().(*net.TCPAddr).Port)
}

// TestBrowserCSWSH covers C1: the signed-in victim visits an attacker page
// on a same-site origin (same host, other port: SameSite cookies ARE sent,
// only the Origin check stops it) and on a cross-site origin; both
// handshakes are refused and the page receives nothing.
func TestBrowserCSWSH(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	victim := newChromium(t, ts)
	browserLogin(t, victim, ts, "alice")
	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := attackerServer(t, ts, host)
		if err := chromedp.Do(victim, chromedp.Navigate(url)); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, victim, `document.getElementById('out').textContent !== 'pending'`)
		if got := browsertest.Eval[string](t, victim, `document.getElementById('out').textContent`); got != "refused" {
			t.Fatalf("attack from %s: page saw %q", url, got)
		}
	}
	log, _ := os.ReadFile(ts.cfg.Audit.File)
	if n := strings.Count(string(log), `"reason":"origin_not_allowed"`); n < 2 {
		t.Fatalf("%d origin refusals audited, want 2", n)
	}
}
