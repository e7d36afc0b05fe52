package server

// Tests for the findings of the security review: each plays the attacker
// (what must now be refused or closed) and the honest user (what must still
// work). Each would fail on the code before its fix.

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
)

// loginStatus posts one login attempt as client IP ip with a pre-session
// CSRF token already fetched; safe from any goroutine (no t.Fatal).
func (b *browser) loginStatus(name, password, csrfToken, ip string) (int, error) {
	form := url.Values{"username": {name}, "password": {password}, "csrf_token": {csrfToken}}
	req, _ := http.NewRequest("POST", b.ts.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestReviewLoginParallelGuesses: 120 wrong passwords posted at once (one
// per IP, so only the account key can stop them) get at most the 5 free
// guesses checked; the rest are 429 without hashing. Before reservations,
// all passed the check while argon2 ran for the others (107 in the PoC).
// The owner gets in once the window passes; an oversized password takes the
// same path and counts as a failure.
func TestReviewLoginParallelGuesses(t *testing.T) {
	ts, clk := startAccounts(t, func(c *config.Config) {
		c.Identity.MaxHashing = 8
	})
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	attacker := ts.newBrowser()
	tok := attacker.formToken("/login")

	const n = 120
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ip := "10.20." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1)
			statuses[i], errs[i] = attacker.loginStatus("alice", "wrong password "+strconv.Itoa(i), tok, ip)
		}()
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for i, st := range statuses {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		counts[st]++
	}
	// 503 (hasher busy) is not a checked guess either; it costs no failure.
	if counts[http.StatusUnauthorized] > 5 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests]+counts[http.StatusServiceUnavailable] != n {
		t.Fatalf("parallel guesses: %v, want at most 5 × 401 (checked), the rest 429", counts)
	}
	if got := counterValue(ts.srv.Metrics().Logins.WithLabelValues("failed")); got != float64(counts[http.StatusUnauthorized]) || got > 5 {
		t.Fatalf("%v failed logins counted, want %d ≤ 5", got, counts[http.StatusUnauthorized])
	}

	// The owner, once the window passes, signs in (and that clears the count).
	clk.Advance(16 * time.Minute)
	if r := ts.newBrowser().password("alice", pw, "10.30.0.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner after the window: %d, want 303", r.StatusCode)
	}

	// A password over 1024 bytes is refused unhashed but counted like any
	// failure: five of them, then even the right password waits.
	long := strings.Repeat("x", 1025)
	b := ts.newBrowser()
	for i := range 5 {
		if r := b.password("bob", long, "10.40.0."+strconv.Itoa(i+1)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("long password %d: %d, want 401", i, r.StatusCode)
		}
	}
	if r := b.password("bob", pw, "10.40.1.1"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 5 oversized passwords: %d, want 429", r.StatusCode)
	}
	clk.Advance(2 * time.Second)
	if r := b.password("bob", pw, "10.40.1.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob after the delay: %d, want 303", r.StatusCode)
	}
}

// TestReviewRevokedDuringHandshake: a logout (or a user disable) that lands
// between the guard's session check and the hub registration matched no
// socket, and the socket then lived on. The hook runs the revocation in
// exactly that window; the socket must close 4001 within 1 s. An honest
// socket opened without a revocation stays up.
func TestReviewRevokedDuringHandshake(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)

	inWindow := func(t *testing.T, revoke func()) {
		var once sync.Once
		h := func() { once.Do(revoke) }
		testHookHandshakeChecked.Store(&h)
		t.Cleanup(func() { testHookHandshakeChecked.Store(nil) })
	}

	t.Run("logout", func(t *testing.T) {
		b := ts.newBrowser()
		tok := b.login("alice", pw)
		hash := sessionHashOf(t, b)
		inWindow(t, func() {
			sess, err := ts.srv.store.SessionByHash(ctx, hash)
			if err != nil {
				t.Error(err)
				return
			}
			ts.srv.endSession(ctx, sess, "logout", "")
		})
		ws := b.connect(tok)
		testHookHandshakeChecked.Store(nil)
		expectClose4001(t, ws, "socket opened while logging out")
		if _, resp, err := b.dial(ts.url, "wsguard.v1", "wsguard.csrf."+tok); err == nil || status(resp) != http.StatusUnauthorized {
			t.Fatalf("handshake after logout: %v %d, want 401", err, status(resp))
		}
	})

	t.Run("user disabled", func(t *testing.T) {
		b := ts.newBrowser()
		tok := b.login("bob", pw)
		inWindow(t, func() {
			if err := SetUserDisabled(ctx, ts.srv.store, ts.srv.audit, "bob", true); err != nil {
				t.Error(err)
			}
		})
		ws := b.connect(tok)
		testHookHandshakeChecked.Store(nil)
		expectClose4001(t, ws, "socket opened while the user was disabled")
	})

	t.Run("honest socket stays", func(t *testing.T) {
		ts.addUser("carol", pw, false)
		b := ts.newBrowser()
		ws := b.connect(b.login("carol", pw))
		expectAlive(t, ws, 1, "carol")
	})
}

// TestReviewLogoutRaceLoop: handshakes in a loop with a session cookie
// while the session logs out concurrently; after logout, every socket that
// opened is closed 4001 within 1 s, and later handshakes are refused.
func TestReviewLogoutRaceLoop(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	deadline := time.Now().Add(20 * time.Second)
	for round := 0; round < 6 && time.Now().Before(deadline); round++ {
		b := ts.newBrowser()
		tok := b.login("alice", pw)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var opened []*websocket.Conn
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 {
					ws, _, err := b.dial(ts.url, "wsguard.v1", "wsguard.csrf."+tok)
					if err != nil {
						return // refused: the logout came first
					}
					mu.Lock()
					opened = append(opened, ws)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(round) * 2 * time.Millisecond)
		if r, _ := b.post("/logout", url.Values{"csrf_token": {tok}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.StatusCode)
		}
		wg.Wait()
		for i, ws := range opened {
			expectClose4001(t, ws, "round "+strconv.Itoa(round)+" socket "+strconv.Itoa(i))
			ws.Close()
		}
	}
}

// TestReviewAPIKeyWSNeedsClientCert: with tls.client_ca_file, an API key
// opens /ws only over a connection with a verified client certificate, as
// on /api/v1/publish. Before, the key alone upgraded and could publish.
func TestReviewAPIKeyWSNeedsClientCert(t *testing.T) {
	caPEM, good := clientCA(t, "svc")
	ts := startServer(t, func(c *config.Config) {
		p := filepath.Join(t.TempDir(), "client-ca.pem")
		if err := os.WriteFile(p, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		c.TLS.ClientCAFile = p
		tokenNamespaces(c)
	})
	key := ts.apiKey(t, "feed", "publish:news:*")
	dial := func(certs []tls.Certificate) (*websocket.Conn, int) {
		cfg := ts.tlsConfig()
		cfg.Certificates = certs
		d := websocket.Dialer{TLSClientConfig: cfg, Subprotocols: []string{"wsguard.v1"}, HandshakeTimeout: 10 * time.Second}
		ws, resp, err := d.Dial("wss://"+ts.host+"/ws", bearerHeader(key))
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { ws.Close() })
		return ws, 101
	}
	if _, st := dial(nil); st != http.StatusUnauthorized {
		t.Fatalf("API key without a client certificate: %d, want 401", st)
	}
	if !strings.Contains(ts.auditLog(t), `"reason":"client_cert_required"`) {
		t.Error("refusal not audited as client_cert_required")
	}
	ws, st := dial([]tls.Certificate{good})
	if st != 101 {
		t.Fatalf("API key with a client certificate: %d, want 101", st)
	}
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "publish", "channel": "news:eu", "data": 1}); !f.OK {
		t.Fatalf("publish with key and certificate: %+v", f.Error)
	}
	// Browsers (no certificate) are not affected.
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	if f, _ := call(t, b.connect(b.login("alice", pw)), map[string]any{"id": 1, "op": "ping"}); !f.OK {
		t.Fatal("browser socket refused")
	}
}

// TestReviewForeignOriginNoBan: refusals a third-party page can cause from
// its visitors' browsers (foreign Origin, Sec-Fetch-Site: cross-site) no
// longer count toward the IP ban; credential failures from an allowed
// Origin still do.
func TestReviewForeignOriginNoBan(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.BanAfterFailures = 50
		c.Limits.BanDuration = config.Duration(time.Minute)
	})
	const visitor, scanner = "127.0.0.90", "127.0.0.91"
	alice := ts.signIn("alice")

	// A foreign page opens 60 handshakes from its visitor's browser.
	for i := range 60 {
		h := http.Header{"Cookie": {alice.b.cookieHeader()}}
		origin := "https://evil.example"
		if i%3 == 2 {
			origin = ""
			h.Set("Sec-Fetch-Site", "cross-site")
			h.Set("Origin", ts.url)
		}
		ws, resp, err := ts.dialFrom(visitor, h, origin, false, "wsguard.v1")
		if err == nil {
			ws.Close()
			t.Fatalf("handshake %d accepted", i)
		}
		if status(resp) != http.StatusForbidden {
			t.Fatalf("handshake %d: %d, want 403", i, status(resp))
		}
	}
	// And 60 cross-origin fetches of the service API (from 127.0.0.1).
	for i := range 60 {
		if st, _ := ts.api(t, "/api/v1/publish", http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer x"}}, `{}`); st != http.StatusForbidden {
			t.Fatalf("api %d: %d, want 403", i, st)
		}
	}
	// The visitor, on the real site, still connects.
	ws := alice.connectFrom(visitor, nil)
	alive(t, "visitor", ws)
	if _, st := ts.dialStatus(t, http.Header{"Cookie": {alice.b.cookieHeader()}}, ts.url, "wsguard.v1", "wsguard.csrf."+alice.token); st != 101 {
		t.Fatalf("visitor after cross-origin API fetches: %d, want 101", st)
	}

	// A scanner with bad credentials from the allowed Origin is banned.
	bad := http.Header{"Cookie": {"__Host-wsguard=" + strings.Repeat("A", 43)}}
	for i := range 60 {
		ws, resp, err := ts.dialFrom(scanner, bad.Clone(), ts.url, false, "wsguard.v1", "wsguard.csrf."+alice.token)
		if err == nil {
			ws.Close()
			t.Fatalf("bad credential %d accepted", i)
		}
		if i < 50 && status(resp) != http.StatusUnauthorized {
			t.Fatalf("bad credential %d: %d, want 401", i, status(resp))
		}
		if i >= 50 && status(resp) != http.StatusTooManyRequests {
			t.Fatalf("bad credential %d past the threshold: %d, want 429 (banned)", i, status(resp))
		}
	}
	ws2, resp, err := alice.dialFrom(scanner, nil)
	wantTooMany(t, "banned scanner with a valid credential", ws2, resp, err)
}

// TestReviewSetupAfterAdmin: once an admin exists (here made as `wsguard
// user add --admin` does), the setup link printed at start creates nothing.
// On a fresh server the link works once.
func TestReviewSetupAfterAdmin(t *testing.T) {
	setupPost := func(b *browser, tok, name string) int {
		csrfTok := b.formToken("/setup?token=" + url.QueryEscape(tok))
		r, _ := b.post("/setup", url.Values{"token": {tok}, "username": {name}, "password": {pw}, "csrf_token": {csrfTok}})
		return r.StatusCode
	}
	tokenOf := func(ts *testServer) string {
		u, err := url.Parse(ts.srv.SetupURL())
		if err != nil || u.Query().Get("token") == "" {
			t.Fatalf("no setup URL on a server without an admin: %q", ts.srv.SetupURL())
		}
		return u.Query().Get("token")
	}

	t.Run("admin added outside setup", func(t *testing.T) {
		ts := startServer(t, nil)
		tok := tokenOf(ts)
		b := ts.newBrowser()
		csrfTok := b.formToken("/setup?token=" + url.QueryEscape(tok)) // page open before
		h := identity.NewHasher(identity.HasherOptions{})
		if _, err := CreateUser(context.Background(), ts.srv.Store(), h, "root", pw, true); err != nil {
			t.Fatal(err)
		}
		r, _ := b.post("/setup", url.Values{"token": {tok}, "username": {"mallory"}, "password": {pw}, "csrf_token": {csrfTok}})
		if r.StatusCode == http.StatusSeeOther || r.StatusCode < 400 {
			t.Fatalf("setup after an admin exists: %d, want refused", r.StatusCode)
		}
		if _, err := ts.srv.Store().UserByName(context.Background(), "mallory"); err == nil {
			t.Fatal("setup created a second admin")
		}
		if r, _ := b.get("/setup?token=" + url.QueryEscape(tok)); r.StatusCode != http.StatusNotFound {
			t.Fatalf("setup page after an admin exists: %d, want 404", r.StatusCode)
		}
		if ts.srv.SetupURL() != "" {
			t.Fatal("setup URL still offered")
		}
	})

	t.Run("fresh server, once", func(t *testing.T) {
		ts := startServer(t, nil)
		tok := tokenOf(ts)
		if st := setupPost(ts.newBrowser(), tok, "admin"); st != http.StatusSeeOther {
			t.Fatalf("first admin setup: %d, want 303", st)
		}
		if u, err := ts.srv.Store().UserByName(context.Background(), "admin"); err != nil || !u.Admin {
			t.Fatalf("first admin not created: %v", err)
		}
		b := ts.newBrowser()
		if r, _ := b.get("/setup?token=" + url.QueryEscape(tok)); r.StatusCode != http.StatusNotFound {
			t.Fatalf("used setup link: %d, want 404", r.StatusCode)
		}
	})
}

// TestReviewSessionTicketSocket: a socket opened with a ticket minted from
// a browser session stays open and usable past several sweeps (it was
// closed 4001 after ~250 ms: the sweep looked up an empty session hash),
// and still closes 4001 when the session logs out.
func TestReviewSessionTicketSocket(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	csrfTok := b.login("alice", pw)
	h := http.Header{"Cookie": {b.cookieHeader()}, "X-CSRF-Token": {csrfTok}, "Origin": {ts.url}}
	st, m := ts.api(t, "/api/v1/tickets", h, "")
	if st != http.StatusOK {
		t.Fatalf("mint: %d %v", st, m)
	}
	tk, _ := m["ticket"].(string)
	ws, code := ts.dialStatus(t, nil, ts.url, "wsguard.v1", "wsguard.ticket."+tk)
	if code != 101 {
		t.Fatalf("ticket handshake: %d", code)
	}
	// More than a second of wall time, a sweep every 250 ms: still usable.
	until := time.Now().Add(1200 * time.Millisecond)
	for id := 1; time.Now().Before(until); id++ {
		if f, _ := call(t, ws, map[string]any{"id": id, "op": "ping"}); !f.OK {
			t.Fatalf("ping %d refused: %+v", id, f.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r, _ := b.post("/logout", url.Values{"csrf_token": {csrfTok}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	expectClose4001(t, ws, "session ticket socket after logout")
}
