package server

import (
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
	"github.com/wsguard/wsguard/internal/browsertest"
	"github.com/wsguard/wsguard/internal/config"
)

// thirdPartyApp is a web app on another origin with its own sign-in: its
// backend signs a JWT for the signed-in user and trades it for a one-time
// ticket at wsguard (bound to the app's Origin), and its page chats through
// the browser client loaded from wsguard with its SRI hash, as
// docs/CLIENTS.md shows.
type thirdPartyApp struct {
	origin  string
	mu      sync.Mutex
	tickets int // tickets the backend handed out
}

// listenThirdParty reserves the app's port first: wsguard must list the
// app's origin in allowed_origins before it starts. The app is served as
// 127.0.0.1, another site than wsguard's localhost.
func listenThirdParty(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "https://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func serveThirdParty(t *testing.T, ts *testServer, keys *testKeys, ln net.Listener, origin string) *thirdPartyApp {
	t.Helper()
	app := &thirdPartyApp{origin: origin}
	wsguardHTTP := ts.url
	clientURL := wsguardHTTP + wsguardjs.Path
	page := `<!doctype html><meta charset="utf-8"><title>third-party app</title>
<script type="module" integrity="` + wsguardjs.Integrity() + `" crossorigin="anonymous" src="` + html.EscapeString(clientURL) + `"></script>
<script type="module" src="/chat.js"></script>
<p id="out">pending</p><ul id="messages"></ul>`
	chat := `import { Client } from '` + clientURL + `';
const out = document.getElementById('out');
const list = document.getElementById('messages');
const withTicket = new URLSearchParams(location.search).get('ticket') !== 'none';
const credential = withTicket
  ? { ticket: async () => {
      const r = await fetch('/wsguard-ticket', { method: 'POST' });
      if (!r.ok) throw new Error('no ticket: ' + r.status);
      return (await r.json()).ticket;
    } }
  : 'session'; // what a page holds without a ticket: nothing wsguard gave it
const c = new Client('wss://` + ts.host + `/ws', { credential, csrfToken: '', backoff: { min: 5000, max: 5000 } });
window.__errors = [];
c.on('error', (e) => {
  window.__errors.push(e.code);
  if (e.code === 'handshake_failed') { out.textContent = 'refused'; c.close(); }
});
c.on('state', (s) => { if (s === 'connected') out.textContent = 'connected'; });
c.subscribe('room:lobby', { onMessage: (m) => {
  const li = document.createElement('li');
  li.textContent = m.from + ': ' + m.data.text;
  list.append(li);
} });
window.say = (text) => { c.publish('room:lobby', { text }).then((r) => { window.__said = r.offset; }); };
`
	mux := http.NewServeMux()
	// The app's own sign-in, reduced to a cookie naming the user.
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "app_user", Value: r.URL.Query().Get("user"), Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' "+wsguardHTTP+"; connect-src 'self' wss://"+ts.host)
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("GET /chat.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = io.WriteString(w, chat)
	})
	// The backend route: its own session, then a JWT for that user traded
	// for a ticket usable only from the app's origin.
	mux.HandleFunc("POST /wsguard-ticket", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("app_user")
		if err != nil || c.Value == "" {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": testIssuer, "aud": testAudience, "sub": c.Value,
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		})
		tok.Header["kid"] = "hs"
		signed, err := tok.SignedString(keys.hmac)
		if err != nil {
			http.Error(w, "cannot sign", http.StatusInternalServerError)
			return
		}
		req, _ := http.NewRequest(http.MethodPost, wsguardHTTP+"/api/v1/tickets", nil)
		req.Header.Set("Authorization", "Bearer "+signed)
		req.Header.Set("Origin", app.origin)
		resp, err := ts.httpClient(nil).Do(req)
		if err != nil {
			http.Error(w, "wsguard unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("wsguard refused the backend's ticket: %d %s", resp.StatusCode, b)
			http.Error(w, "no ticket", http.StatusBadGateway)
			return
		}
		app.mu.Lock()
		app.tickets++
		app.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.Copy(w, resp.Body)
	})
	cert, err := tls.LoadX509KeyPair(filepath.Join(ts.cfg.DataDir, "tls", "cert.pem"), filepath.Join(ts.cfg.DataDir, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return app
}

// TestBrowserClientThirdParty: a page on another site (127.0.0.1 beside
// wsguard's localhost, as app.example to chat.example.com) loads the
// browser client from wsguard with its SRI hash, connects with a ticket
// its own backend minted, and chats both ways with a bearer client. The
// same page without a ticket is refused and receives nothing.
func TestBrowserClientThirdParty(t *testing.T) {
	ln, origin := listenThirdParty(t)
	ts, keys := startTokenServer(t, func(c *config.Config) {
		c.AllowedOrigins = append(c.AllowedOrigins, origin)
	})
	app := serveThirdParty(t, ts, keys, ln, origin)

	// dave is on the other end, a program dialling with its JWT.
	dave, _, err := ts.dial(bearerHeader(sign(t, jwt.SigningMethodHS256, keys.hmac, "hs", claims("dave", time.Hour))), "", "wsguard.v1")
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	f, _ := call(t, dave, map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"})
	resultField(t, f, &struct{}{})

	ctx := newChromium(t, ts)
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/login?user=carol")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('out').textContent === 'connected'`)

	// dave writes; the page shows it, as text.
	f, _ = call(t, dave, map[string]any{"id": 2, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "hi carol <b>"}})
	resultField(t, f, &struct{}{})
	browsertest.WaitJS(t, ctx, `Array.from(document.querySelectorAll('#messages li')).some(e => e.textContent === 'dave: hi carol <b>')`)
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#messages b').length`); n != 0 {
		t.Fatal("message text became markup")
	}
	// carol writes; dave gets it from her (the JWT's sub), the page too.
	browsertest.Eval[any](t, ctx, `window.say('hello dave'), null`)
	m := nextMessage(t, dave)
	var data struct{ Text string }
	_ = json.Unmarshal(m.Data, &data)
	for m.From == "dave" {
		m = nextMessage(t, dave)
		_ = json.Unmarshal(m.Data, &data)
	}
	if m.From != "carol" || data.Text != "hello dave" {
		t.Fatalf("dave got %+v %q, want carol's hello", m, data.Text)
	}
	browsertest.WaitJS(t, ctx, `Array.from(document.querySelectorAll('#messages li')).some(e => e.textContent === 'carol: hello dave')`)
	app.mu.Lock()
	minted := app.tickets
	app.mu.Unlock()
	if minted != 1 {
		t.Fatalf("the backend minted %d tickets, want 1", minted)
	}
	if errs := browsertest.Eval[[]string](t, ctx, `window.__errors`); len(errs) != 0 {
		t.Fatalf("the page saw errors: %q", errs)
	}

	// The same page without a ticket: refused, nothing received.
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/?ticket=none")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('out').textContent === 'refused'`)
	f, _ = call(t, dave, map[string]any{"id": 3, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": "not for you"}})
	resultField(t, f, &struct{}{})
	time.Sleep(300 * time.Millisecond) // a socket that had opened would have shown it by now
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#messages li').length`); n != 0 {
		t.Fatalf("the page without a ticket received %d messages", n)
	}
	if !strings.Contains(ts.auditLog(t), `"reason":"session_missing"`) {
		t.Fatal("the refused handshake was not audited as session_missing")
	}
}
