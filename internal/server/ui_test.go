package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// sessionSetCookie returns the session cookie a response set.
func sessionSetCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-wsguard" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie set: %q", resp.Header.Values("Set-Cookie"))
	return nil
}

// TestUISessionCookiePersists: closing the last tab must not mean password
// and 2FA again. The cookie carries Max-Age and Expires up to the session's
// absolute lifetime, and keeps every protection of a session cookie.
func TestUISessionCookiePersists(t *testing.T) {
	ts, _ := startAccounts(t, func(c *config.Config) {
		c.Identity.SessionAbsolute = config.Duration(8 * time.Hour)
	})
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	tok := b.formToken("/login")
	resp, _ := b.post("/login", url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {tok}})
	c := sessionSetCookie(t, resp)
	want := int((8 * time.Hour).Seconds())
	if c.MaxAge < want-5 || c.MaxAge > want {
		t.Errorf("Max-Age %d, want the absolute lifetime %d", c.MaxAge, want)
	}
	if c.RawExpires == "" {
		t.Errorf("no Expires (older browsers ignore Max-Age): %q", c.Raw)
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie lost a protection: %q", c.Raw)
	}
	// A browser restarted with only what it stored: still signed in.
	again := ts.newBrowser()
	u, _ := url.Parse(ts.url)
	again.jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/", Secure: true}})
	if r, _ := again.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("stored cookie does not open the chat: %d", r.StatusCode)
	}
	// Sign-out still removes it.
	chatTok := b.chatToken()
	resp, _ = b.post("/logout", url.Values{"csrf_token": {chatTok}})
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-wsguard" && c.MaxAge >= 0 {
			t.Errorf("logout cookie %q, want Max-Age<0", c.Raw)
		}
	}
}

// apiRooms sends a rooms request as the chat page does.
func (b *browser) apiRooms(method, token, origin, body string) (*http.Response, string) {
	b.ts.t.Helper()
	req, _ := http.NewRequest(method, b.ts.url+"/api/v1/rooms", strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-CSRF-Token", token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.ts.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(out)
}

var roomsAttrRE = regexp.MustCompile(`data-rooms="([^"]*)"`)

func pageRooms(t *testing.T, b *browser) string {
	t.Helper()
	_, body := b.get("/")
	m := roomsAttrRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no data-rooms on /: %.300s", body)
	}
	return m[1]
}

// TestUIRoomsRemembered: the rooms a user joined come back on a reload and
// on another device; only the signed-in user, from this site, with the
// page's token, can change them, and only to valid channel names.
func TestUIRoomsRemembered(t *testing.T) {
	ts, _ := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	b := ts.newBrowser()
	tok := b.login("alice", pw)
	if got := pageRooms(t, b); got != "room:lobby room:random" {
		t.Fatalf("first visit rooms %q, want the defaults", got)
	}
	resp, body := b.apiRooms("PUT", tok, ts.url, `{"rooms":["room:lobby","team:ops","room:lobby"]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"rooms":["room:lobby","team:ops"]`) {
		t.Fatalf("save rooms: %d %s", resp.StatusCode, body)
	}
	if got := pageRooms(t, b); got != "room:lobby team:ops" {
		t.Fatalf("after a reload rooms %q", got)
	}
	other := ts.newBrowser() // another device
	otherTok := other.login("alice", pw)
	if got := pageRooms(t, other); got != "room:lobby team:ops" {
		t.Fatalf("on another device rooms %q", got)
	}
	resp, body = other.apiRooms("GET", otherTok, "", "")
	var got struct {
		Rooms []string `json:"rooms"`
		Saved bool     `json:"saved"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || !got.Saved || strings.Join(got.Rooms, " ") != "room:lobby team:ops" {
		t.Fatalf("GET rooms: %d %s", resp.StatusCode, body)
	}
	// Leaving every room is remembered as such.
	if resp, body := b.apiRooms("PUT", tok, ts.url, `{"rooms":[]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("save no rooms: %d %s", resp.StatusCode, body)
	}
	if got := pageRooms(t, b); got != "" {
		t.Fatalf("after leaving all, rooms %q", got)
	}

	// The attacker's side: every refusal changes nothing.
	bobB := ts.newBrowser()
	bobTok := bobB.login("bob", pw)
	anon := ts.newBrowser()
	tooMany := `{"rooms":["room:a0"` + strings.Repeat(`,"room:a0"`, maxSavedRooms) + `]}`
	for _, c := range []struct {
		name         string
		b            *browser
		token        string
		origin, body string
		status       int
		msg          string
	}{
		{"no cookie", anon, tok, ts.url, `{"rooms":["room:evil"]}`, http.StatusUnauthorized, "sign in"},
		{"no csrf token", b, "", ts.url, `{"rooms":["room:evil"]}`, http.StatusForbidden, "X-CSRF-Token"},
		{"another user's token", b, bobTok, ts.url, `{"rooms":["room:evil"]}`, http.StatusForbidden, "X-CSRF-Token"},
		{"foreign origin", b, tok, "https://evil.example", `{"rooms":["room:evil"]}`, http.StatusForbidden, "origin"},
		{"no origin", b, tok, "", `{"rooms":["room:evil"]}`, http.StatusForbidden, "origin"},
		{"bad channel", b, tok, ts.url, `{"rooms":["room:ok","Room:../x"]}`, http.StatusBadRequest, "rooms[1]"},
		{"too many", b, tok, ts.url, tooMany, http.StatusBadRequest, "at most 50 rooms"},
		{"unknown field", b, tok, ts.url, `{"rooms":[],"user":"bob"}`, http.StatusBadRequest, "known fields"},
	} {
		resp, body := c.b.apiRooms("PUT", c.token, c.origin, c.body)
		if resp.StatusCode != c.status || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, resp.StatusCode, body, c.status, c.msg)
		}
	}
	if got := pageRooms(t, b); got != "" {
		t.Fatalf("a refused request changed alice's rooms to %q", got)
	}
	if got := pageRooms(t, bobB); got != "room:lobby room:random" {
		t.Fatalf("bob's rooms %q, want his defaults", got)
	}
}

// TestUIEnrolmentSecretStable: an app that scanned the QR code on the first
// visit holds the secret that gets confirmed, however often the page is
// opened, until the pending secret expires. The form's secret is not
// trusted: only the one the server kept is enrolled.
func TestUIEnrolmentSecretStable(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	_, first := b.get("/settings/2fa")
	_, second := b.get("/settings/2fa")
	s1, s2 := secretRE.FindStringSubmatch(first)[1], secretRE.FindStringSubmatch(second)[1]
	if s1 != s2 || qrRE.FindStringSubmatch(first)[1] != qrRE.FindStringSubmatch(second)[1] {
		t.Fatalf("the secret changed between two visits: %s then %s", s1, s2)
	}
	// A secret of the attacker's choosing, with a valid code for it, is refused.
	chosen := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tok := formTokenRE.FindStringSubmatch(second)[1]
	resp, body := b.post("/settings/2fa", url.Values{"secret": {chosen}, "code": {codeAt(t, chosen, clk.Now())}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusBadRequest || secretRE.FindStringSubmatch(body)[1] != s1 {
		t.Fatalf("posted secret enrolled or page changed secret: %d", resp.StatusCode)
	}
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != "" {
		t.Fatal("a secret from the form was enrolled")
	}
	// Past its lifetime the pending secret is replaced.
	clk.Advance(enrolmentTTL + time.Second)
	_, third := b.get("/settings/2fa")
	s3 := secretRE.FindStringSubmatch(third)[1]
	if s3 == s1 {
		t.Fatal("an expired enrolment secret is still shown")
	}
	secret, _ := b.enrol(clk)
	if secret != s3 {
		t.Fatalf("enrolled %s, want the page's %s", secret, s3)
	}
	if u, _ := ts.srv.Store().UserByName(context.Background(), "alice"); u.TOTPSecret != s3 {
		t.Fatal("the confirmed secret is not the user's")
	}
}

var downloadRE = regexp.MustCompile(`id="recovery-download" class="button secondary" href="data:text/plain;charset=utf-8;base64,([^"]+)" download="wsguard-recovery-codes.txt"`)

// TestUIRecoveryCodesContinueAndDownload: after the codes the page offers
// a way on and a file with the same codes.
func TestUIRecoveryCodesContinueAndDownload(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	_, body := b.get("/settings/2fa")
	secret := secretRE.FindStringSubmatch(body)[1]
	tok := formTokenRE.FindStringSubmatch(body)[1]
	_, body = b.post("/settings/2fa", url.Values{"code": {codeAt(t, secret, clk.Now())}, "csrf_token": {tok}})
	if !strings.Contains(body, `id="recovery-continue" class="button" href="/"`) {
		t.Fatalf("no Continue after the recovery codes: %.600s", body)
	}
	m := downloadRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no download of the recovery codes: %.600s", body)
	}
	file, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	codes := recoveryRE.FindAllStringSubmatch(body, -1)
	if len(codes) != 10 {
		t.Fatalf("%d codes shown", len(codes))
	}
	for _, c := range codes {
		if !strings.Contains(string(file), c[1]+"\n") {
			t.Errorf("download lacks code %s:\n%s", c[1], file)
		}
	}
}

// TestUIFormsKeepUsernameAndSayHowLong: a wrong password or a throttled
// sign-in keeps the username typed, and the throttled page says how long
// to wait (and so does Retry-After).
func TestUIFormsKeepUsernameAndSayHowLong(t *testing.T) {
	ts, _ := startAccounts(t, func(c *config.Config) { c.Limits.LoginsPerMinute = 2 })
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	var resp *http.Response
	var body string
	for i := 0; i < 5; i++ {
		tok := b.formToken("/login")
		resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"wrong password here"}, "csrf_token": {tok}})
		if !strings.Contains(body, `name="username" value="alice"`) {
			t.Fatalf("attempt %d (%d): username not kept: %.400s", i, resp.StatusCode, body)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("never throttled: %d", resp.StatusCode)
	}
	ra := resp.Header.Get("Retry-After")
	if ra == "" || !regexp.MustCompile(`Try again in (\d+ seconds|a second|\d+ minutes)\.`).MatchString(body) {
		t.Fatalf("throttled page does not say how long (Retry-After %q): %.600s", ra, body)
	}
	if !strings.Contains(body, "Try again in "+ra+" seconds.") && ra != "1" {
		t.Errorf("page and Retry-After disagree (Retry-After %s): %.600s", ra, body)
	}
}

// TestUIErrorPageKeepsNavigation: a wrong link or a refused form, signed
// in, still shows the navigation and who is signed in; signed out, none.
func TestUIErrorPageKeepsNavigation(t *testing.T) {
	ts, _ := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	resp, body := b.get("/no/such/page")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `href="/settings/sessions"`) || !strings.Contains(body, `>alice</span>`) || !strings.Contains(body, `action="/logout"`) {
		t.Fatalf("404 signed in: %d %.800s", resp.StatusCode, body)
	}
	resp, body = b.post("/settings/password", url.Values{"csrf_token": {"stale"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `>alice</span>`) {
		t.Fatalf("refused form signed in: %d %.800s", resp.StatusCode, body)
	}
	resp, body = ts.newBrowser().get("/no/such/page")
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, `action="/logout"`) {
		t.Fatalf("404 signed out: %d %.800s", resp.StatusCode, body)
	}
}

// TestUISessionsPageReadable: the sessions page names the browser and says
// how long ago, with the exact time for the page's script to localise.
func TestUISessionsPageReadable(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	b.login("alice", pw)
	clk.Advance(5 * time.Minute)
	_, body := b.get("/settings/sessions")
	for _, want := range []string{
		`>Go HTTP client<`, `title="Go-http-client/`, `>5 minutes ago</time>`, `<time class="local" datetime="`,
		`<script src="/static/times.js" defer></script>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("sessions page lacks %q: %.1500s", want, body)
		}
	}
}
