package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pquerna/otp/totp"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
)

// Tests for issue 3 (accounts): two-factor, throttling, session control,
// live revocation. Time moves on a settable clock, never by sleeping; "within
// 1 s" is a read deadline on the socket.

// startAccounts runs a server on a fake clock that starts at the wall time
// (the connection's own wall-clock timers then agree with it). Loopback is a
// trusted proxy, so a test can speak from many client IPs via X-Forwarded-For.
func startAccounts(t *testing.T, mutate func(*config.Config)) (*testServer, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	ts := startServerWith(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
		if mutate != nil {
			mutate(c)
		}
	}, Options{Clock: clk})
	return ts, clk
}

type auditLine struct {
	Type   string            `json:"type"`
	Reason string            `json:"reason"`
	IP     string            `json:"ip"`
	User   string            `json:"user"`
	Fields map[string]string `json:"fields"`
}

func auditLines(t *testing.T, ts *testServer) []auditLine {
	t.Helper()
	b, err := os.ReadFile(ts.cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// auditCount counts events of type typ for user ("" any) that satisfy match (nil: all).
func auditCount(t *testing.T, ts *testServer, typ, user string, match func(auditLine) bool) int {
	t.Helper()
	n := 0
	for _, l := range auditLines(t, ts) {
		if l.Type == typ && (user == "" || l.User == user) && (match == nil || match(l)) {
			n++
		}
	}
	return n
}

func wantAudit(t *testing.T, ts *testServer, typ, user string, min int, match func(auditLine) bool) {
	t.Helper()
	if n := auditCount(t, ts, typ, user, match); n < min {
		t.Fatalf("audit: %d %q events for %q, want at least %d", n, typ, user, min)
	}
}

// postFrom submits a form same-origin, as client IP ip (via the trusted proxy).
func (b *browser) postFrom(path string, form url.Values, ip string) (*http.Response, string) {
	b.ts.t.Helper()
	req, _ := http.NewRequest("POST", b.ts.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.ts.t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp, buf.String()
}

// password posts the login form and returns the response.
func (b *browser) password(name, password, ip string) *http.Response {
	b.ts.t.Helper()
	tok := b.formToken("/login")
	resp, _ := b.postFrom("/login", url.Values{"username": {name}, "password": {password}, "csrf_token": {tok}}, ip)
	return resp
}

// secondFactor posts /login/2fa with code.
func (b *browser) secondFactor(code string) *http.Response {
	b.ts.t.Helper()
	tok := b.formToken("/login/2fa")
	resp, _ := b.post("/login/2fa", url.Values{"code": {code}, "csrf_token": {tok}})
	return resp
}

var (
	secretRE   = regexp.MustCompile(`id="totp-secret" class="secret">([A-Z2-7]+)<`)
	qrRE       = regexp.MustCompile(`<img class="qr" src="data:image/png;base64,([^"]+)"`)
	recoveryRE = regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`)
	sessionRE  = regexp.MustCompile(`name="session" value="([^"]+)"`)
)

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol runs /settings/2fa for a signed-in (or enrolment-pending) browser
// and returns the secret and the recovery codes shown.
func (b *browser) enrol(clk *clock.Fake) (string, []string) {
	t := b.ts.t
	t.Helper()
	resp, body := b.get("/settings/2fa")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /settings/2fa: %d", resp.StatusCode)
	}
	qr := qrRE.FindStringSubmatch(body)
	if qr == nil {
		t.Fatalf("no inline server-generated QR code on /settings/2fa: %.400s", body)
	}
	if png, err := base64.StdEncoding.DecodeString(html.UnescapeString(qr[1])); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("QR code is not an inline PNG: %v", err)
	}
	m := secretRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no secret shown as text: %.400s", body)
	}
	secret := m[1]
	tok := formTokenRE.FindStringSubmatch(body)[1]
	resp, body = b.post("/settings/2fa", url.Values{"secret": {secret}, "code": {codeAt(t, secret, clk.Now())}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm enrolment: %d %.300s", resp.StatusCode, body)
	}
	var codes []string
	for _, m := range recoveryRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	return secret, codes
}

// expectClose asserts the socket is closed with 4001 within 1 s.
func expectClose4001(t *testing.T, ws *websocket.Conn, what string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			t.Fatalf("%s: socket not closed with a close frame within 1 s: %v", what, err)
		}
		if ce.Code != 4001 {
			t.Fatalf("%s: close code %d, want 4001", what, ce.Code)
		}
		return
	}
}

// expectAlive asserts the socket still answers a ping, after a sweep had time to run.
func expectAlive(t *testing.T, ws *websocket.Conn, id int, what string) {
	t.Helper()
	time.Sleep(2 * revocationPoll) // let the lifetime sweep run at least once
	f, _ := call(t, ws, map[string]any{"id": id, "op": "ping"})
	if !f.OK {
		t.Fatalf("%s: ping refused: %+v", what, f)
	}
}

// cookieRefused asserts a copied cookie opens nothing: no page, no socket.
func cookieRefused(t *testing.T, ts *testServer, cookie, token, what string) {
	t.Helper()
	thief := ts.newBrowser()
	u, _ := url.Parse(ts.url)
	thief.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-wsguard", Value: cookie, Path: "/", Secure: true}})
	if r, _ := thief.get("/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("%s: old cookie still opens /: %d %s", what, r.StatusCode, r.Header.Get("Location"))
	}
	_, resp, err := thief.dial(ts.url, "wsguard.v1", "wsguard.csrf."+token)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Fatalf("%s: old cookie handshake: %v status %d, want 401", what, err, st)
	}
}

// TestAccountsTwoFactor: the user's side of TOTP (enrol with QR and secret,
// second step at login, ±1 step, rotation), and I4's replay and recovery rows.
func TestAccountsTwoFactor(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	before := cookieValue(b.cookieHeader())

	// A wrong confirmation code enrols nothing.
	_, body := b.get("/settings/2fa")
	secret0 := secretRE.FindStringSubmatch(body)[1]
	tok := formTokenRE.FindStringSubmatch(body)[1]
	bad := codeAt(t, secret0, clk.Now().Add(-5*time.Minute))
	if r, _ := b.post("/settings/2fa", url.Values{"secret": {secret0}, "code": {bad}, "csrf_token": {tok}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong enrolment code: %d, want 400", r.StatusCode)
	}
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != "" {
		t.Fatal("a wrong code enrolled the secret")
	}
	wantAudit(t, ts, "2fa.failed", "alice", 1, nil)

	secret, codes := b.enrol(clk)
	enrolStep := clk.Now()
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != secret {
		t.Fatal("secret not stored after confirmation")
	}
	if after := cookieValue(b.cookieHeader()); after == before || after == "" {
		t.Fatal("session id not rotated at enrolment")
	}
	wantAudit(t, ts, "2fa.enrolled", "alice", 1, nil)
	// Recovery codes are stored hashed: no code appears in the database files.
	for _, f := range []string{"wsguard.db", "wsguard.db-wal"} {
		raw, _ := os.ReadFile(filepath.Join(ts.cfg.DataDir, f))
		for _, c := range codes {
			if bytes.Contains(raw, []byte(c)) || bytes.Contains(raw, []byte(strings.ReplaceAll(c, "-", ""))) {
				t.Fatalf("recovery code stored in clear in %s", f)
			}
		}
	}
	// Shown once: the page never shows them again.
	if _, body := b.get("/settings/2fa"); recoveryRE.MatchString(body) {
		t.Fatal("recovery codes shown a second time")
	}

	// Log out, log in: the password alone is only half a session.
	b.post("/logout", url.Values{"csrf_token": {b.chatToken()}})
	if r := b.password("alice", pw, ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/2fa" {
		t.Fatalf("password step: %d %s, want 303 /login/2fa", r.StatusCode, r.Header.Get("Location"))
	}
	pending := cookieValue(b.cookieHeader())
	if r, _ := b.get("/"); r.Header.Get("Location") != "/login/2fa" {
		t.Fatalf("half-signed-in session reached /: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if _, resp, err := b.dial(ts.url, "wsguard.v1"); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatal("half-signed-in session opened a socket")
	}
	// The enrolment code, replayed in its own window: refused (I4).
	if r := b.secondFactor(codeAt(t, secret, enrolStep)); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed enrolment code: %d, want 401", r.StatusCode)
	}
	// Two steps away either side: refused; one step back: accepted (±1).
	clk.Advance(90 * time.Second)
	for _, d := range []time.Duration{-60 * time.Second, 60 * time.Second} {
		if r := b.secondFactor(codeAt(t, secret, clk.Now().Add(d))); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("code %v away accepted: %d", d, r.StatusCode)
		}
	}
	used := codeAt(t, secret, clk.Now().Add(-30*time.Second))
	if r := b.secondFactor(used); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("code one step back: %d %s, want 303 /", r.StatusCode, r.Header.Get("Location"))
	}
	if full := cookieValue(b.cookieHeader()); full == pending || full == "" {
		t.Fatal("session id not rotated when the second factor completed (I3)")
	}
	b.connect(b.chatToken())
	wantAudit(t, ts, "session.created", "alice", 3, nil)
	wantAudit(t, ts, "login.ok", "alice", 1, nil)

	// The same code from another browser, still inside its window: refused.
	c := ts.newBrowser()
	c.password("alice", pw, "")
	if r := c.secondFactor(used); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed code in a second browser: %d, want 401", r.StatusCode)
	}
	// One step ahead is still inside ±1 and newer than the last use.
	if r := c.secondFactor(codeAt(t, secret, clk.Now().Add(30*time.Second))); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("code one step ahead: %d, want 303", r.StatusCode)
	}

	// A recovery code works once, in any case, and is audited.
	d := ts.newBrowser()
	d.password("alice", pw, "")
	if r := d.secondFactor(strings.ToUpper(codes[0])); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %d, want 303", r.StatusCode)
	}
	wantAudit(t, ts, "2fa.recovery_used", "alice", 1, nil)
	e := ts.newBrowser()
	e.password("alice", pw, "")
	if r := e.secondFactor(codes[0]); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("recovery code reused: %d, want 401", r.StatusCode)
	}
	if r := e.secondFactor(codes[1]); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("second recovery code: %d, want 303", r.StatusCode)
	}
	wantAudit(t, ts, "2fa.failed", "alice", 5, nil)
}

// TestAccountsTOTPBruteForce covers I4's brute-force row: attempts are
// limited per account (not per session), answered 429 with Retry-After and
// audited; the owner gets in once the window passes; 100 consecutive
// failures lock the account's second factor.
func TestAccountsTOTPBruteForce(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	owner := ts.newBrowser()
	owner.login("alice", pw)
	secret, _ := owner.enrol(clk)

	attacker := ts.newBrowser() // knows the password, guesses codes
	attacker.password("alice", pw, "")
	guess := func(b *browser) *http.Response {
		// The half-session ends at its lifetimes while the clock races
		// through a day of paced guessing: sign in with the password again.
		if r, _ := b.get("/login/2fa"); r.StatusCode != http.StatusOK {
			b.password("alice", pw, "")
		}
		return b.secondFactor("000000")
	}
	for i := 0; i < 5; i++ {
		if r := guess(attacker); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, r.StatusCode)
		}
	}
	r := guess(attacker)
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th guess: %d, want 429", r.StatusCode)
	}
	wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || wait < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	wantAudit(t, ts, "2fa.throttled", "alice", 1, nil)
	// A new half-session does not reset the count: the limit is per account.
	owner2 := ts.newBrowser()
	owner2.password("alice", pw, "")
	next := codeAt(t, secret, clk.Now().Add(30*time.Second)) // the next step: not a replay
	if r := owner2.secondFactor(next); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("correct code inside the window: %d, want 429", r.StatusCode)
	}
	clk.Advance(time.Duration(wait) * time.Second)
	if r := owner2.secondFactor(next); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner after the window: %d, want 303", r.StatusCode)
	}

	// Paced guessing: every window waited out, at most 100 failures, then
	// locked for the lock window (15 min), not for good.
	failures := 0
	for i := 0; i < 400 && failures < 100; i++ {
		r := guess(attacker)
		switch r.StatusCode {
		case http.StatusUnauthorized:
			failures++
		case http.StatusTooManyRequests:
			w, _ := strconv.Atoi(r.Header.Get("Retry-After"))
			clk.Advance(time.Duration(w) * time.Second)
		default:
			t.Fatalf("guess: %d", r.StatusCode)
		}
	}
	if failures != 100 {
		t.Fatalf("%d failures counted", failures)
	}
	clk.Advance(14 * time.Minute)
	late := ts.newBrowser()
	late.password("alice", pw, "")
	if r := late.secondFactor(codeAt(t, secret, clk.Now())); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 100 consecutive failures: %d, want 429 (locked)", r.StatusCode)
	}
	// The lock ends: the owner gets in after its window (SECURITY.md I1).
	clk.Advance(2 * time.Minute)
	late = ts.newBrowser()
	late.password("alice", pw, "")
	if r := late.secondFactor(codeAt(t, secret, clk.Now())); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner after the lock window: %d, want 303", r.StatusCode)
	}
}

// TestAccountsLoginThrottle covers I1: brute force on one account from many
// IPs and spraying across accounts from one IP are both throttled (429,
// Retry-After, audited); the owner gets in once the window passes.
func TestAccountsLoginThrottle(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	b := ts.newBrowser()

	// Brute force on alice, one guess per IP: the account key stops it.
	for i := 0; i < 5; i++ {
		if r := b.password("alice", "wrong password "+strconv.Itoa(i), "10.0.0."+strconv.Itoa(i+1)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.StatusCode)
		}
	}
	r := b.password("alice", pw, "10.0.1.1") // even the right password, from a fresh IP
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th attempt on alice: %d Retry-After %q, want 429", r.StatusCode, r.Header.Get("Retry-After"))
	}
	wantAudit(t, ts, "login.throttled", "alice", 1, nil)
	wantAudit(t, ts, "login.failed", "alice", 5, nil)
	wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	clk.Advance(time.Duration(wait) * time.Second)
	if r := b.password("alice", pw, "10.0.1.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner after the window: %d, want 303", r.StatusCode)
	}

	// Spraying from one IP across accounts, existing or not: the IP key stops it.
	sprayer := ts.newBrowser()
	names := []string{"bob", "carol", "dave", "erin", "frank"}
	for _, n := range names {
		if r := sprayer.password(n, "Winter2026!Winter", "10.9.9.9"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("spray %s: %d", n, r.StatusCode)
		}
	}
	r = sprayer.password("grace", "Winter2026!Winter", "10.9.9.9")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th spray from one IP: %d, want 429 with Retry-After", r.StatusCode)
	}
	wantAudit(t, ts, "login.throttled", "grace", 1, func(l auditLine) bool { return l.IP == "10.9.9.9" })
	// Bob, from his own IP, is not punished for the sprayer.
	if r := ts.newBrowser().password("bob", pw, "10.1.1.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob from another IP: %d, want 303", r.StatusCode)
	}
	clk.Advance(time.Hour)
	if r := sprayer.password("bob", pw, "10.9.9.9"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the sprayed IP after the window: %d, want 303", r.StatusCode)
	}
}

// TestAccountsLoginTiming covers I2's timing half: unknown user, disabled
// user and wrong password cost comparable time (the dummy hash).
func TestAccountsLoginTiming(t *testing.T) {
	ts, _ := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("mallory", pw, false)
	if err := SetUserDisabled(context.Background(), ts.srv.Store(), ts.srv.audit, "mallory", true); err != nil {
		t.Fatal(err)
	}
	b := ts.newBrowser()
	median := func(name string, n int) time.Duration {
		var ds []time.Duration
		for i := 0; i < n; i++ {
			tok := b.formToken("/login")
			start := time.Now()
			u := name
			if name == "" {
				u = "nobody" + strconv.Itoa(i)
			}
			resp, body := b.postFrom("/login", url.Values{"username": {u}, "password": {"wrong password here"}, "csrf_token": {tok}}, "10.2.0."+strconv.Itoa(len(ds)+10*len(name)+1))
			ds = append(ds, time.Since(start))
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, loginFailed) {
				t.Fatalf("%q: %d", u, resp.StatusCode)
			}
		}
		slices.Sort(ds)
		return ds[n/2]
	}
	wrong, unknown, disabled := median("alice", 3), median("", 3), median("mallory", 3)
	for what, d := range map[string]time.Duration{"unknown user": unknown, "disabled user": disabled} {
		if d*3 < wrong || d > wrong*3 {
			t.Errorf("%s took %v, wrong password %v: not comparable", what, d, wrong)
		}
	}
}

// TestAccountsSessions: /settings/sessions lists each session (created,
// last seen, IP, user agent) and revokes one, closing its live socket with
// 4001 within 1 s (I5); cross-site or tokenless revokes and another user's
// revoke change nothing (C5).
func TestAccountsSessions(t *testing.T) {
	ts, _ := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	a, b := ts.newBrowser(), ts.newBrowser()
	a.client.Transport = uaTransport{a.client.Transport, "Browser-A/1.0"}
	b.client.Transport = uaTransport{b.client.Transport, "Browser-B/2.0"}
	aTok, bTok := a.login("alice", pw), b.login("alice", pw)
	aCookie := cookieValue(a.cookieHeader())
	sa, sb := a.connect(aTok), b.connect(bTok)

	resp, page := b.get("/settings/sessions")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sessions page: %d", resp.StatusCode)
	}
	for _, want := range []string{"Browser-A/1.0", "Browser-B/2.0", "127.0.0.1", `data-current="true"`, "Started", "Last seen"} {
		if !strings.Contains(page, want) {
			t.Fatalf("sessions page lacks %q", want)
		}
	}
	if n := strings.Count(page, `data-current="true"`); n != 1 {
		t.Fatalf("%d rows marked current", n)
	}
	ids := sessionRE.FindAllStringSubmatch(page, -1)
	if len(ids) != 2 {
		t.Fatalf("%d session rows, want 2", len(ids))
	}
	if strings.Contains(page, aCookie) || strings.Contains(page, cookieValue(b.cookieHeader())) {
		t.Fatal("the sessions page shows a cookie value")
	}
	// A's public id: the row that is not B's current one.
	current := regexp.MustCompile(`(?s)data-current="true">.*?name="session" value="([^"]+)"`).FindStringSubmatch(page)[1]
	aID := ids[0][1]
	if aID == current {
		aID = ids[1][1]
	}
	form := url.Values{"session": {aID}, "csrf_token": {formTokenRE.FindStringSubmatch(page)[1]}}

	// C5: cross-site, then without a token: 403, A untouched.
	if r, _ := b.postWithOrigin("/settings/sessions/revoke", form, "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site revoke: %d", r.StatusCode)
	}
	if r, _ := b.post("/settings/sessions/revoke", url.Values{"session": {aID}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("revoke without token: %d", r.StatusCode)
	}
	wantAudit(t, ts, "form.refused", "", 2, func(l auditLine) bool { return l.Fields["path"] == "/settings/sessions/revoke" })
	// Bob, signed in with his own valid token, cannot end alice's session.
	bob := ts.newBrowser()
	bob.login("bob", pw)
	bob.post("/settings/sessions/revoke", url.Values{"session": {aID}, "csrf_token": {bob.formToken("/settings/sessions")}})
	expectAlive(t, sa, 1, "after refused revokes")
	if r, _ := a.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("a refused revoke ended the session: %d", r.StatusCode)
	}

	// B revokes A: A's socket closes with 4001 within 1 s, its cookie is dead.
	if r, _ := b.post("/settings/sessions/revoke", form); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/settings/sessions" {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	expectClose4001(t, sa, "revoked session")
	cookieRefused(t, ts, aCookie, aTok, "revoked session")
	expectAlive(t, sb, 2, "the revoking session")
	wantAudit(t, ts, "session.revoked", "alice", 1, func(l auditLine) bool { return l.Fields["session"] == aID })
	if _, page := b.get("/settings/sessions"); strings.Contains(page, aID) {
		t.Fatal("revoked session still listed")
	}

	// Revoking the current session signs this browser out.
	r, _ := b.post("/settings/sessions/revoke", url.Values{"session": {current}, "csrf_token": {bTok}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("revoke current: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	expectClose4001(t, sb, "own session revoked")
}

type uaTransport struct {
	rt http.RoundTripper
	ua string
}

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.rt.RoundTrip(r)
}

// TestAccountsPasswordChange: /settings/password asks for the current
// password, throttles wrong ones (I1), refuses cross-site or tokenless posts
// (C5), and on success ends every other session and its sockets (I5) and
// rotates this one: new cookie, new CSRF token, the old ones refused.
func TestAccountsPasswordChange(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	a, b := ts.newBrowser(), ts.newBrowser()
	aTok, bTok := a.login("alice", pw), b.login("alice", pw)
	bCookie := cookieValue(b.cookieHeader())
	sa, sb := a.connect(aTok), b.connect(bTok)
	const newPw = "a brand new long password"
	tok := a.formToken("/settings/password")

	good := url.Values{"current_password": {pw}, "new_password": {newPw}, "csrf_token": {tok}}
	if r, _ := a.postWithOrigin("/settings/password", good, "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site password change: %d", r.StatusCode)
	}
	if r, _ := a.post("/settings/password", url.Values{"current_password": {pw}, "new_password": {newPw}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("tokenless password change: %d", r.StatusCode)
	}
	if r, _ := a.post("/settings/password", url.Values{"current_password": {pw}, "new_password": {"short"}, "csrf_token": {tok}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("short new password: %d", r.StatusCode)
	}
	// Wrong current password: 401, then throttled like a login (same account key).
	for i := 0; i < 5; i++ {
		if r, _ := a.post("/settings/password", url.Values{"current_password": {"not my password!"}, "new_password": {newPw}, "csrf_token": {tok}}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong current password %d: %d", i, r.StatusCode)
		}
	}
	r, _ := a.post("/settings/password", good)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("6th attempt: %d, want 429 with Retry-After", r.StatusCode)
	}
	if auditCount(t, ts, "password.changed", "alice", nil) != 0 {
		t.Fatal("password changed by a refused form")
	}
	expectAlive(t, sb, 1, "after refused changes")
	wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	clk.Advance(time.Duration(wait) * time.Second)

	aCookie := cookieValue(a.cookieHeader())
	r, body := a.post("/settings/password", good)
	if r.StatusCode != http.StatusOK || !strings.Contains(body, "Password changed") {
		t.Fatalf("password change: %d", r.StatusCode)
	}
	// The other browser: its socket closes with 4001, its cookie is dead.
	expectClose4001(t, sb, "other session after password change")
	cookieRefused(t, ts, bCookie, bTok, "other session after password change")
	// This browser's session was rotated: the response set a new cookie and
	// shows a new CSRF token; the old id's socket closed, the old cookie
	// and the old token open nothing.
	newCookie := ""
	for _, c := range r.Cookies() {
		if c.Name == session.CookieName {
			newCookie = c.Value
		}
	}
	if newCookie == "" || newCookie == aCookie || cookieValue(a.cookieHeader()) != newCookie {
		t.Fatalf("password change did not set a new session cookie (old %q, set %q)", aCookie, newCookie)
	}
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil || m[1] == tok || m[1] == aTok {
		t.Fatalf("password change page kept the old CSRF token")
	}
	expectClose4001(t, sa, "the old id's socket after rotation")
	cookieRefused(t, ts, aCookie, aTok, "the changing browser's old cookie")
	if r, _ := a.post("/logout", url.Values{"csrf_token": {aTok}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("old CSRF token with the new cookie: %d, want 403", r.StatusCode)
	}
	// The user is still signed in with the new cookie: pages and a socket.
	newTok := a.chatToken()
	if newTok != m[1] {
		t.Fatal("the chat page's token differs from the one the password page showed")
	}
	expectAlive(t, a.connect(newTok), 2, "the rotated session")
	if n := strings.Count(func() string { _, p := a.get("/settings/sessions"); return p }(), `name="session" value=`); n != 1 {
		t.Fatalf("%d sessions listed after the password change, want 1", n)
	}
	wantAudit(t, ts, "password.changed", "alice", 1, nil)
	wantAudit(t, ts, "session.revoked", "alice", 1, func(l auditLine) bool { return l.Reason == "password changed" })
	if r := ts.newBrowser().password("alice", pw, "10.3.0.1"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old password after change: %d", r.StatusCode)
	}
	ts.newBrowser().login("alice", newPw)
}

// TestAccountsLiveRevocation covers I5 for logout and the CLI's actions
// (user disable, user reset-2fa, session revoke): the old cookie is refused
// and every live socket closes with 4001 within 1 s.
func TestAccountsLiveRevocation(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ctx := context.Background()
	st, al := ts.srv.Store(), ts.srv.audit

	t.Run("logout", func(t *testing.T) {
		ts.addUser("lou", pw, false)
		b := ts.newBrowser()
		tok := b.login("lou", pw)
		cookie := cookieValue(b.cookieHeader())
		ws := b.connect(tok)
		b.post("/logout", url.Values{"csrf_token": {tok}})
		expectClose4001(t, ws, "logout")
		cookieRefused(t, ts, cookie, tok, "logout")
		wantAudit(t, ts, "session.revoked", "lou", 1, func(l auditLine) bool { return l.Reason == "logout" })
	})
	cases := []struct {
		name, user, event string
		act               func() error
	}{
		{"user disable", "dana", "user.disabled", func() error { return SetUserDisabled(ctx, st, al, "dana", true) }},
		{"reset-2fa", "tess", "2fa.reset", func() error { return ResetTwoFactor(ctx, st, al, "tess") }},
		{"session revoke", "sam", "session.revoked", func() error { _, err := RevokeUserSessions(ctx, st, al, "sam"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts.addUser(tc.user, pw, false)
			b1, b2 := ts.newBrowser(), ts.newBrowser()
			b1.login(tc.user, pw)
			secret, _ := b1.enrol(clk)
			tok1 := b1.chatToken()
			clk.Advance(30 * time.Second)
			b2.password(tc.user, pw, "")
			if r := b2.secondFactor(codeAt(t, secret, clk.Now())); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("second browser sign-in: %d", r.StatusCode)
			}
			tok2 := b2.chatToken()
			c1 := cookieValue(b1.cookieHeader())
			ws1, ws2 := b1.connect(tok1), b2.connect(tok2)
			if err := tc.act(); err != nil {
				t.Fatal(err)
			}
			expectClose4001(t, ws1, tc.name)
			expectClose4001(t, ws2, tc.name)
			cookieRefused(t, ts, c1, tok1, tc.name)
			wantAudit(t, ts, tc.event, tc.user, 1, nil)
			if tc.event == "2fa.reset" {
				u, _ := st.UserByName(ctx, tc.user)
				if u.TOTPSecret != "" {
					t.Fatal("secret survived reset-2fa")
				}
				// The next sign-in needs no code: it goes to enrolment (require_2fa: admins, not an admin).
				if r := ts.newBrowser().password(tc.user, pw, ""); r.Header.Get("Location") != "/" {
					t.Fatalf("sign-in after reset: %s", r.Header.Get("Location"))
				}
			}
			if tc.event == "user.disabled" {
				if r := ts.newBrowser().password(tc.user, pw, ""); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("disabled user signs in: %d", r.StatusCode)
				}
			}
		})
	}
}

// TestAccountsLifetimes covers I6 on the settable clock: the documented
// defaults, the idle lifetime (socket requests and page views count as use,
// an open socket alone does not), the absolute session lifetime and the
// connection lifetime, live sockets included (4001 within 1 s, audited).
func TestAccountsLifetimes(t *testing.T) {
	def, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Identity.SessionIdle.D() != 30*time.Minute || def.Identity.SessionAbsolute.D() != 12*time.Hour || def.Limits.ConnLifetime.D() != 24*time.Hour {
		t.Fatalf("defaults changed: idle %v absolute %v conn %v (update docs/CONFIG.md)", def.Identity.SessionIdle, def.Identity.SessionAbsolute, def.Limits.ConnLifetime)
	}

	t.Run("idle", func(t *testing.T) {
		ts, clk := startAccounts(t, nil)
		ts.addUser("alice", pw, false)
		b := ts.newBrowser()
		tok := b.login("alice", pw)
		cookie := cookieValue(b.cookieHeader())
		ws := b.connect(tok)
		clk.Advance(29 * time.Minute)
		expectAlive(t, ws, 1, "29 min idle") // the ping is a request: use
		clk.Advance(29 * time.Minute)
		expectAlive(t, ws, 2, "58 min, used at 29")
		clk.Advance(29 * time.Minute)
		if r, _ := b.get("/"); r.StatusCode != http.StatusOK { // a page view at 87: use
			t.Fatalf("page at 87 min: %d", r.StatusCode)
		}
		clk.Advance(2 * time.Minute) // 31 min since the socket's last use, 2 since the page
		time.Sleep(2 * revocationPoll)
		if _, err := ts.srv.Store().SessionByHash(context.Background(), session.HashID(cookie)); err != nil {
			t.Fatalf("session ended though a page used it 2 min ago: %v", err)
		}
		expectAlive(t, ws, 3, "89 min, page at 87") // use at 89
		clk.Advance(29 * time.Minute)
		expectAlive(t, ws, 4, "29 min after the last use")
		clk.Advance(30 * time.Minute) // an open socket alone is not use
		expectClose4001(t, ws, "idle session")
		cookieRefused(t, ts, cookie, tok, "idle session")
		wantAudit(t, ts, "session.expired", "alice", 1, func(l auditLine) bool { return l.Reason == "idle" })
	})

	t.Run("absolute", func(t *testing.T) {
		ts, clk := startAccounts(t, nil)
		ts.addUser("alice", pw, false)
		b := ts.newBrowser()
		tok := b.login("alice", pw)
		cookie := cookieValue(b.cookieHeader())
		ws := b.connect(tok)
		for i := 0; i < 35; i++ { // busy for 11 h 40 min: never idle
			clk.Advance(20 * time.Minute)
			f, _ := call(t, ws, map[string]any{"id": i + 1, "op": "ping"})
			if !f.OK {
				t.Fatalf("ping at step %d", i)
			}
		}
		clk.Advance(19 * time.Minute)
		expectAlive(t, ws, 1000, "11 h 59 min")
		clk.Advance(time.Minute)
		expectClose4001(t, ws, "absolute session lifetime")
		cookieRefused(t, ts, cookie, tok, "absolute session lifetime")
		wantAudit(t, ts, "session.expired", "alice", 1, func(l auditLine) bool { return l.Reason == "absolute" })
	})

	t.Run("connection", func(t *testing.T) {
		ts, clk := startAccounts(t, func(c *config.Config) {
			c.Limits.ConnLifetime = config.Duration(10 * time.Minute)
		})
		ts.addUser("alice", pw, false)
		b := ts.newBrowser()
		tok := b.login("alice", pw)
		ws := b.connect(tok)
		clk.Advance(9 * time.Minute)
		expectAlive(t, ws, 1, "9 min")
		clk.Advance(time.Minute)
		expectClose4001(t, ws, "connection lifetime")
		// The session itself lives on: a new socket is fine.
		b.connect(tok)
	})
}

// TestAccountsRequire2FA: identity.require_2fa decides who cannot use the
// server before enrolling (default admins); a pending session reaches no
// page, socket or settings form except enrolment.
func TestAccountsRequire2FA(t *testing.T) {
	for _, tc := range []struct {
		mode        string
		admin, user bool // must enrol first
	}{
		{"", true, false}, // the default: admins
		{"all", true, true},
		{"none", false, false},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			ts, clk := startAccounts(t, func(c *config.Config) {
				if tc.mode != "" {
					c.Identity.Require2FA = tc.mode
				}
			})
			ts.addUser("root", pw, true)
			ts.addUser("ann", pw, false)
			for name, must := range map[string]bool{"root": tc.admin, "ann": tc.user} {
				b := ts.newBrowser()
				r := b.password(name, pw, "")
				if !must {
					if r.Header.Get("Location") != "/" {
						t.Fatalf("%s: %s, want /", name, r.Header.Get("Location"))
					}
					continue
				}
				if r.Header.Get("Location") != "/settings/2fa" {
					t.Fatalf("%s: %s, want /settings/2fa", name, r.Header.Get("Location"))
				}
				for _, p := range []string{"/", "/settings/sessions", "/settings/password"} {
					if r, _ := b.get(p); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/settings/2fa" {
						t.Fatalf("%s before enrolling: GET %s %d %s", name, p, r.StatusCode, r.Header.Get("Location"))
					}
				}
				if _, resp, err := b.dial(ts.url, "wsguard.v1"); err == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s opened a socket before enrolling", name)
				}
				b.enrol(clk)
				if r, _ := b.get("/"); r.StatusCode != http.StatusOK {
					t.Fatalf("%s after enrolling: %d", name, r.StatusCode)
				}
				b.connect(b.chatToken())
			}
		})
	}
}

// TestAccountsFormsCSRF covers C5 for /settings/2fa and /login/2fa:
// cross-site or tokenless posts answer 403 and change nothing.
func TestAccountsFormsCSRF(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	_, body := b.get("/settings/2fa")
	secret := secretRE.FindStringSubmatch(body)[1]
	tok := formTokenRE.FindStringSubmatch(body)[1]
	form := url.Values{"secret": {secret}, "code": {codeAt(t, secret, clk.Now())}, "csrf_token": {tok}}
	if r, _ := b.postWithOrigin("/settings/2fa", form, "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site enrolment: %d", r.StatusCode)
	}
	form.Del("csrf_token")
	if r, _ := b.post("/settings/2fa", form); r.StatusCode != http.StatusForbidden {
		t.Fatalf("tokenless enrolment: %d", r.StatusCode)
	}
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != "" {
		t.Fatal("a refused form enrolled a secret (an attacker's secret would lock the owner out)")
	}
	secret, _ = b.enrol(clk)

	c := ts.newBrowser()
	c.password("alice", pw, "")
	clk.Advance(30 * time.Second)
	code := codeAt(t, secret, clk.Now())
	ptok := c.formToken("/login/2fa")
	if r, _ := c.postWithOrigin("/login/2fa", url.Values{"code": {code}, "csrf_token": {ptok}}, "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site /login/2fa: %d", r.StatusCode)
	}
	if r, _ := c.post("/login/2fa", url.Values{"code": {code}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("tokenless /login/2fa: %d", r.StatusCode)
	}
	if r, _ := c.get("/"); r.Header.Get("Location") != "/login/2fa" {
		t.Fatal("a refused /login/2fa completed the sign-in")
	}
	// The code was not spent by the refused forms.
	if r := c.secondFactor(code); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("code after refused forms: %d, want 303", r.StatusCode)
	}
	wantAudit(t, ts, "form.refused", "", 4, nil)
}

// TestAccountsLoginRate covers limits.logins_per_minute: every attempt from
// one IP counts, right or wrong, so one IP cannot make the server hash
// without bound; other IPs are unaffected and the window refills.
func TestAccountsLoginRate(t *testing.T) {
	ts, clk := startAccounts(t, func(c *config.Config) { c.Limits.LoginsPerMinute = 3 })
	ts.addUser("alice", pw, false)
	for i := 0; i < 3; i++ {
		if r := ts.newBrowser().password("alice", pw, "10.4.0.1"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %d: %d", i, r.StatusCode)
		}
	}
	r := ts.newBrowser().password("alice", pw, "10.4.0.1")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th login in a minute: %d, want 429 with Retry-After", r.StatusCode)
	}
	wantAudit(t, ts, "login.throttled", "alice", 1, func(l auditLine) bool { return l.Reason == "login_rate" })
	if r := ts.newBrowser().password("alice", pw, "10.4.0.2"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("another IP: %d", r.StatusCode)
	}
	clk.Advance(time.Minute)
	if r := ts.newBrowser().password("alice", pw, "10.4.0.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d", r.StatusCode)
	}
}

// TestAccountsExpiredSessions: a session past its idle lifetime is deleted
// from the store by the server's sweep although nothing reads it, and
// /settings/sessions never lists it (nor its IP); its cookie opens nothing.
// The live session is untouched.
func TestAccountsExpiredSessions(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	old, cur := ts.newBrowser(), ts.newBrowser()
	if r := old.password("alice", pw, "10.9.9.9"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in from 10.9.9.9: %d", r.StatusCode)
	}
	oldCookie, oldTok := cookieValue(old.cookieHeader()), old.chatToken()
	clk.Advance(20 * time.Minute)
	cur.login("alice", pw)
	clk.Advance(15 * time.Minute) // old: 35 min unused; cur: 15 min

	// The sweep deletes it within a few polls, without anyone asking for it.
	st := ts.srv.Store()
	for i := 0; ; i++ {
		_, err := st.SessionByHash(context.Background(), session.HashID(oldCookie))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if i == 40 {
			t.Fatalf("expired session still stored after %d polls: %v", i, err)
		}
		time.Sleep(revocationPoll / 2)
	}
	wantAudit(t, ts, "session.expired", "alice", 1, func(l auditLine) bool { return l.Reason == "idle" })

	resp, page := cur.get("/settings/sessions")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sessions page: %d", resp.StatusCode)
	}
	if strings.Contains(page, "10.9.9.9") {
		t.Fatal("the sessions page shows an expired session's IP")
	}
	if n := len(sessionRE.FindAllStringSubmatch(page, -1)); n != 1 {
		t.Fatalf("%d sessions listed, want 1 (the live one)", n)
	}
	cookieRefused(t, ts, oldCookie, oldTok, "expired session")
	if r, _ := cur.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("the live session: %d", r.StatusCode)
	}
}
