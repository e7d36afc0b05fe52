package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/wsguard/internal/browsertest"
)

// proxyAttackerServer serves a page on another origin that tries, from the
// victim's browser, to hijack the victim's proxied socket: with the
// backend's own protocol, with wsguard.v1, and with a CSRF token read from
// /session if it could read it (it cannot: no CORS). It reports "refused"
// when every attempt failed.
func proxyAttackerServer(t *testing.T, ts *testServer, host string) string {
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
const target = 'wss://` + ts.host + `/ws';
function attempt(protocols) {
  return new Promise((resolve) => {
    const ws = new WebSocket(target, protocols);
    ws.onmessage = (e) => resolve('received ' + e.data);
    ws.onclose = () => resolve('refused');
  });
}
(async () => {
  let token = '';
  try {
    const r = await fetch('https://` + ts.host + `/session', {credentials: 'include'});
    token = (await r.json()).csrf_token || '';
  } catch (e) {}
  const results = [await attempt(['chat.v1']), await attempt(['wsguard.v1']),
                   await attempt(['wsguard.v1', 'wsguard.csrf.' + (token || 'guess')])];
  const bad = results.filter((r) => r !== 'refused');
  out.textContent = token ? 'read token' : (bad.length ? bad[0] : 'refused');
})();
</script>`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(page))
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return fmt.Sprintf("https://%s:%d/", host, ln.Addr().(*net.TCPAddr).Port)
}

// TestBrowserProxyCSWSH: the signed-in victim visits attacker pages on a
// same-site sibling origin (same host, other port: the SameSite cookie IS
// sent) and on a cross-site origin, each trying to open the victim's
// socket through the proxy, in front of a backend that checks no Origin of
// its own. Every attempt is refused and the backend sees no connection;
// the application's own page, on the allowed origin, still connects as
// the victim.
func TestBrowserProxyCSWSH(t *testing.T) {
	secret := identitySecret(t)
	up := startUpstream(t, "python", secret)
	ts := startProxy(t, up.url, secret, nil)
	ts.addUser("alice", pw, false)
	victim := newChromium(t, ts)
	if err := chromedp.Do(victim,
		chromedp.Navigate(ts.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitReady(chromedp.CSS(`meta[name=csrf-token]`)),
	); err != nil {
		t.Fatalf("login in chromium: %v", err)
	}

	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := proxyAttackerServer(t, ts, host)
		if err := chromedp.Do(victim, chromedp.Navigate(url)); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, victim, `document.getElementById('out').textContent !== 'pending'`)
		if got := browsertest.Eval[string](t, victim, `document.getElementById('out').textContent`); got != "refused" {
			t.Fatalf("attack from %s: page saw %q", url, got)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if up.saw("open") {
		t.Fatalf("the backend saw a connection from an attacker page: %q", up.lines)
	}

	// The application's page on the allowed origin: /session, then the socket.
	if err := chromedp.Do(victim, chromedp.Navigate(ts.url+"/")); err != nil {
		t.Fatal(err)
	}
	_ = browsertest.Eval[bool](t, victim, `(window.hello = 'pending', (async () => {
  const s = await (await fetch('/session')).json();
  const ws = new WebSocket('wss://`+ts.host+`/ws', ['wsguard.v1', 'wsguard.csrf.' + s.csrf_token, 'chat.v1']);
  ws.onmessage = (e) => { window.hello = ws.protocol + ' ' + JSON.parse(e.data).user; };
  ws.onclose = () => { if (window.hello === 'pending') window.hello = 'closed'; };
})(), true)`)
	browsertest.WaitJS(t, victim, `window.hello !== 'pending'`)
	if got := browsertest.Eval[string](t, victim, `window.hello`); got != "chat.v1 alice" {
		t.Fatalf("the application's own page got %q, want the backend's hello to alice over chat.v1", got)
	}
	up.waitFor(t, "open alice", 5*time.Second)
}
