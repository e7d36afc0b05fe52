package web

import (
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
)

const xss = `<img src=x onerror=alert(1)>`

// tinyPNG is a 1x1 PNG as a data URL, the shape the server builds for the QR.
const tinyPNG = template.URL("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")

func newPages(t testing.TB) *Pages {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func render(t testing.TB, p *Pages, status int, name string, data PageData) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Render(rec, status, name, data)
	return rec
}

var samples = []struct {
	page string
	data PageData
	want []string // substrings the page must contain
}{
	{"login", PageData{Title: "Sign in", CSRFToken: "tok-123", Error: "Wrong username or password."}, []string{
		`action="/login"`, `method="post"`, `name="username"`, `name="password"`, `name="csrf_token" value="tok-123"`, `Wrong username or password.`,
	}},
	{"login_2fa", PageData{Title: "Two-factor code", CSRFToken: "tok-123"}, []string{
		`action="/login/2fa"`, `name="code"`, `name="csrf_token" value="tok-123"`,
	}},
	{"setup", PageData{Title: "Create the first admin", CSRFToken: "tok-123", SetupToken: "setup-abc"}, []string{
		`action="/setup"`, `name="token" value="setup-abc"`, `name="username"`, `name="password"`, `name="csrf_token" value="tok-123"`,
	}},
	{"chat", PageData{Title: "Chat", CSRFToken: "tok-123", User: "alice", Rooms: []string{"room:lobby", "room:random"}}, []string{
		`<meta name="csrf-token" content="tok-123">`, `<script type="module" src="/static/app.js"></script>`,
		`id="rooms" data-rooms="room:lobby room:random"`, `id="status"`, `id="join-form"`, `id="join-input"`,
		`id="send-form"`, `id="send-input"`, `id="messages"`, `id="error"`,
		`href="/settings/2fa"`, `href="/settings/sessions"`, `href="/settings/password"`, `action="/logout"`, `alice`,
	}},
	{"settings_2fa", PageData{Title: "Two-factor", CSRFToken: "tok-123", User: "alice", TOTPSecret: "JBSWY3DPEHPK3PXP", TOTPQR: tinyPNG}, []string{
		`<img class="qr" src="` + string(tinyPNG) + `"`, `id="totp-secret" class="secret">JBSWY3DPEHPK3PXP<`,
		`action="/settings/2fa"`, `name="code"`, `name="csrf_token" value="tok-123"`,
	}},
	{"settings_2fa", PageData{Title: "Two-factor", CSRFToken: "tok-123", User: "alice", Enrolled: true, RecoveryCodes: []string{"aaaa-bbbb", "cccc-dddd"}}, []string{
		`id="recovery-codes"`, `<code>aaaa-bbbb</code>`, `<code>cccc-dddd</code>`,
	}},
	// After the codes: a way on, and a copy to keep.
	{"settings_2fa", PageData{Title: "Two-factor", CSRFToken: "tok-123", User: "alice", Enrolled: true, RecoveryCodes: []string{"aaaa-bbbb"}, RecoveryFile: "data:text/plain;charset=utf-8;base64,YWFhYS1iYmJi"}, []string{
		`id="recovery-continue" class="button" href="/"`,
		`id="recovery-download" class="button secondary" href="data:text/plain;charset=utf-8;base64,YWFhYS1iYmJi" download="wsguard-recovery-codes.txt"`,
	}},
	// A failed sign-in keeps the username and puts the cursor on the password.
	{"login", PageData{Title: "Sign in", CSRFToken: "tok-123", Username: "alice", Error: "Too many attempts. Try again in 42 seconds."}, []string{
		`name="username" value="alice"`, `autocomplete="current-password" required autofocus`, `Try again in 42 seconds.`,
	}},
	{"setup", PageData{Title: "Create the first admin", CSRFToken: "tok-123", SetupToken: "setup-abc", Username: "root"}, []string{
		`name="username" value="root"`,
	}},
	// An error page for a signed-in user keeps the navigation and the user.
	{"error", PageData{Title: "Not found", Error: "There is nothing at this address.", User: "alice", CSRFToken: "tok-123"}, []string{
		`href="/settings/sessions"`, `action="/logout"`, `>alice</span>`, `name="csrf_token" value="tok-123"`,
	}},
	{"settings_sessions", PageData{Title: "Sessions", CSRFToken: "tok-123", User: "alice", Sessions: []SessionRow{
		{PublicID: "pub-1", Created: "2026-01-01T00:00:00Z", LastSeen: "2026-01-02T00:00:00Z", IP: "192.0.2.1", UserAgent: "Firefox", Current: true},
		{PublicID: "pub-2", Created: "2026-01-03T00:00:00Z", LastSeen: "2026-01-04T00:00:00Z", LastSeenAgo: "5 minutes ago", IP: "192.0.2.2", Browser: "Chrome on Linux", UserAgent: "Mozilla/5.0 Chrome/1"},
	}}, []string{
		`action="/settings/sessions/revoke"`, `name="session" value="pub-1"`, `name="session" value="pub-2"`,
		`data-current="true"`, `192.0.2.1`, `title="Mozilla/5.0 Chrome/1">Chrome on Linux<`,
		`<time class="local" datetime="2026-01-04T00:00:00Z" title="2026-01-04T00:00:00Z">5 minutes ago</time>`,
		`<script src="/static/times.js" defer></script>`,
	}},
	{"settings_password", PageData{Title: "Password", CSRFToken: "tok-123", User: "alice", Notice: "Password changed."}, []string{
		`action="/settings/password"`, `name="current_password"`, `name="new_password"`, `name="csrf_token" value="tok-123"`, `Password changed.`,
	}},
	{"error", PageData{Title: "Not found", Error: "There is nothing at this address."}, []string{
		`Not found`, `There is nothing at this address.`,
	}},
}

func TestNewParsesEveryPage(t *testing.T) {
	p := newPages(t)
	names := p.Names()
	for _, want := range []string{"login", "login_2fa", "setup", "chat", "settings_2fa", "settings_sessions", "settings_password", "error"} {
		if !slices.Contains(names, want) {
			t.Errorf("page %q missing; have %v", want, names)
		}
	}
}

func TestRenderPages(t *testing.T) {
	p := newPages(t)
	for _, tc := range samples {
		t.Run(tc.page, func(t *testing.T) {
			rec := render(t, p, http.StatusTeapot, tc.page, tc.data)
			if rec.Code != http.StatusTeapot {
				t.Fatalf("status %d, want %d", rec.Code, http.StatusTeapot)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			body := rec.Body.String()
			if !strings.HasPrefix(body, "<!doctype html>") || !strings.Contains(body, "</html>") {
				t.Errorf("not a whole page:\n%s", body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

// The sessions page marks exactly the current session, and the 2FA page
// shows no enrolment form once enrolled.
func TestRenderDetails(t *testing.T) {
	p := newPages(t)
	for _, tc := range samples {
		body := render(t, p, 200, tc.page, tc.data).Body.String()
		switch {
		case tc.page == "settings_sessions":
			if n := strings.Count(body, `data-current="true"`); n != 1 {
				t.Errorf("%d rows marked current, want 1", n)
			}
			if n := strings.Count(body, `name="csrf_token"`); n != 3 { // two rows + logout
				t.Errorf("%d csrf fields, want 3", n)
			}
		case tc.page == "settings_2fa" && tc.data.Enrolled:
			if strings.Contains(body, `id="totp-secret"`) || strings.Contains(body, `action="/settings/2fa"`) {
				t.Errorf("enrolled page still offers enrolment:\n%s", body)
			}
		case (tc.page == "login" || tc.page == "error") && tc.data.User == "":
			if strings.Contains(body, `action="/logout"`) {
				t.Errorf("%s page shows signed-in navigation without a user", tc.page)
			}
		}
	}
}

var (
	anyTag      = regexp.MustCompile(`<[A-Za-z][^>]*>`)
	quotedValue = regexp.MustCompile(`"[^"]*"`)
	scriptTag   = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	handlerAttr = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleAttr   = regexp.MustCompile(`(?i)\sstyle\s*=`)
	styleTag    = regexp.MustCompile(`(?i)<style\b`)
)

// cspProblems lists what in html would need 'unsafe-inline' or would run
// attacker-chosen script: inline script, handler attributes, style
// attributes or tags, javascript: URLs, external resources.
func cspProblems(html string) []string {
	var out []string
	for _, tag := range scriptTag.FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/static/`) {
			out = append(out, "inline or foreign script "+tag)
		}
	}
	// Attributes are looked for inside tags only: escaped text such as
	// "&lt;img onerror=x&gt;" is harmless and must not count.
	for _, tag := range anyTag.FindAllString(html, -1) {
		tag = quotedValue.ReplaceAllString(tag, `""`) // values are escaped text, not attributes
		for _, re := range []*regexp.Regexp{handlerAttr, styleAttr, styleTag} {
			if m := re.FindString(tag); m != "" {
				out = append(out, "CSP violation "+m+" in "+tag)
			}
		}
	}
	if strings.Contains(strings.ToLower(html), "javascript:") {
		out = append(out, "javascript: URL")
	}
	for _, ext := range []string{"http://", "https://", "//fonts.", "cdn."} {
		if strings.Contains(html, ext) {
			out = append(out, "external resource "+ext)
		}
	}
	return out
}

func checkCSPClean(t *testing.T, html string) {
	t.Helper()
	if p := cspProblems(html); len(p) > 0 {
		t.Errorf("%v in:\n%s", p, html)
	}
}

func TestPagesAreCSPClean(t *testing.T) {
	p := newPages(t)
	for _, tc := range samples {
		checkCSPClean(t, render(t, p, 200, tc.page, tc.data).Body.String())
	}
}

// The checker must itself catch what it looks for.
func TestCSPCheckerCatches(t *testing.T) {
	for _, bad := range []string{
		`<script>alert(1)</script>`, `<a href="javascript:alert(1)">`, `<p onclick="x()">`, `<p style="color:red">`,
		`<style>p{}</style>`, `<img src=x onerror=alert(1)>`, `<p title="a" onclick="b">`, `<script src="https://cdn.example/x.js"></script>`, `<SCRIPT SRC=/x.js>`,
	} {
		if len(cspProblems(bad)) == 0 {
			t.Errorf("checker missed %q", bad)
		}
	}
}

// TestUntrustedIsEscaped is the attacker's side of C6 for server-rendered
// pages: markup in any field comes out as text.
func TestUntrustedIsEscaped(t *testing.T) {
	p := newPages(t)
	for _, tc := range samples {
		d := tc.data
		d.Title, d.User, d.Error, d.Notice = xss, xss, xss, xss
		d.Rooms = []string{xss}
		d.SetupToken, d.Next = `"><script>alert(1)</script>`, `"><script>alert(1)</script>`
		d.RecoveryCodes = []string{xss}
		d.Sessions = []SessionRow{{PublicID: `"><b>`, Created: xss, LastSeen: xss, IP: xss, UserAgent: xss, Current: true}}
		if d.TOTPSecret != "" {
			d.TOTPSecret = xss
		}
		body := render(t, p, 200, tc.page, d).Body.String()
		for _, raw := range []string{xss, "<script>alert", "<b>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s: unescaped %q in:\n%s", tc.page, raw, body)
			}
		}
		checkCSPClean(t, body)
	}
	// The user's side: the text is still there, as text.
	body := render(t, p, 401, "login", PageData{Error: xss}).Body.String()
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("escaped error text missing:\n%s", body)
	}
}

func TestRenderFailureIsClean500(t *testing.T) {
	p := newPages(t)
	rec := render(t, p, 200, "no-such-page", PageData{User: "alice"})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "<") || strings.Contains(rec.Body.String(), "no-such-page") {
		t.Fatalf("500 leaks markup or detail: %q", rec.Body.String())
	}
}

func TestStatic(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/static/", Static()))
	defer srv.Close()
	get := func(method, path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	cases := []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/static/app.js", 200, "text/javascript; charset=utf-8"},
		{"HEAD", "/static/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/static/favicon.svg", 200, "image/svg+xml"},
		{"GET", "/static/submitted?x=1", 204, ""},
		{"GET", "/static/", 404, ""},              // no listing
		{"GET", "/static/static/app.js", 404, ""}, // no nesting tricks
		{"GET", "/static/../web.go", 404, ""},     // cleaned away
		{"GET", "/static/%2e%2e/web.go", 404, ""}, // encoded traversal
		{"GET", "/static/app.js/", 404, ""},       // not a directory
		{"POST", "/static/app.js", 405, ""},       // read only
		{"GET", "/static/nope.js", 404, ""},       // unknown
		{"GET", "/static/web_test.go", 404, ""},   // source is not embedded
		{"GET", "/static/APP.JS", 404, ""},        // exact names only
		{"GET", "/static/app.js%00.css", 404, ""}, // NUL tricks
		{"GET", "/static/./style.css", 404, ""},   // exact names only (the mux cleans real paths first)
	}
	for _, c := range cases {
		res := get(c.method, c.path, nil)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
		if c.ctype != "" && res.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, res.Header.Get("Content-Type"), c.ctype)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff", c.method, c.path)
		}
	}
	res := get("GET", "/static/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q, Cache-Control %q", etag, res.Header.Get("Cache-Control"))
	}
	if res := get("GET", "/static/app.js", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", res.StatusCode)
	}
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScriptsHaveNoHTMLSinks keeps the chat client from ever parsing text as
// markup or code.
func TestScriptsHaveNoHTMLSinks(t *testing.T) {
	sinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|DOMParser|document\.write|\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*['"]|setInterval\s*\(\s*['"]|javascript:|\.srcdoc\b`)
	for name := range assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		src := readStatic(t, name)
		if m := sinks.FindString(src); m != "" {
			t.Errorf("%s uses %q", name, m)
		}
		if !strings.Contains(src, "'use strict'") {
			t.Errorf("%s is not strict", name)
		}
	}
	if sinks.FindString("el.innerHTML = x") == "" || sinks.FindString("eval (x)") == "" {
		t.Fatal("sink pattern does not match what it should")
	}
}

// TestAppJSFollowsProtocol checks the chat is built on the browser client
// (clients/js), and that the client speaks the contract: the
// subprotocols, since on resume, the cid, and the reconnect rules.
func TestAppJSFollowsProtocol(t *testing.T) {
	src := readStatic(t, "app.js")
	for _, want := range []string{
		`import { Client } from '/client/wsguard.js';`, `credential: 'session'`, `csrfToken: csrfToken`,
		`limit: HISTORY_LIMIT`, `'session_ended'`, `'handshake_failed'`,
		`'session ended'`, `'connected'`, `'reconnecting'`, `'disconnected'`, `textContent`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("app.js lacks %q", want)
		}
	}
	if served := string(assets["app.js"].body); !strings.Contains(served, `from '`+wsguardjs.VersionedPath()+`'`) {
		t.Errorf("served app.js does not import %s", wsguardjs.VersionedPath())
	}
	client := string(wsguardjs.Source())
	for _, want := range []string{
		`'wsguard.v1'`, `'wsguard.csrf.' + csrf`, `'wsguard.ticket.'`, `crypto.getRandomValues`, `fields.since = since`,
		`backoffMin: 500`, `backoffMax: 30000`, `code === 4003`, `code === 1001`, `code === 4001 && this._cred === 'session'`,
	} {
		if !strings.Contains(client, want) {
			t.Errorf("clients/js/wsguard.js lacks %q", want)
		}
	}
	sinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|DOMParser|document\.write|\beval\s*\(|new\s+Function\s*\(`)
	if m := sinks.FindString(client); m != "" {
		t.Errorf("clients/js/wsguard.js uses %q", m)
	}
}

func TestAppJSSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	for name := range assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		if out, err := exec.Command(node, "--check", "static/"+name).CombinedOutput(); err != nil {
			t.Errorf("node --check %s: %v\n%s", name, err, out)
		}
	}
}

// FuzzRender: whatever a user controls, a page gains no markup from it. The
// number of '<' and '"' in the page must not depend on the input.
func FuzzRender(f *testing.F) {
	for _, s := range []string{xss, `"><script>alert(1)</script>`, "javascript:alert(1)", "a\x00b", "</textarea>", "' onmouseover='x", "\u2028"} {
		f.Add(s)
	}
	p := newPages(f)
	data := func(s string) PageData {
		return PageData{Title: s, CSRFToken: s, User: s, Error: s, Notice: s, Rooms: []string{s}, TOTPSecret: s,
			RecoveryCodes: []string{s}, SetupToken: s, Next: s,
			Sessions: []SessionRow{{PublicID: s, Created: s, LastSeen: s, IP: s, UserAgent: s, Current: true}}}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return // an empty field hides its element: the markup differs by design
		}
		for _, page := range p.Names() {
			got := render(t, p, 200, page, data(s)).Body.String()
			base := render(t, p, 200, page, data("x")).Body.String()
			for _, c := range []string{"<", `"`} {
				if strings.Count(got, c) != strings.Count(base, c) {
					t.Fatalf("%s: input %q changed the markup:\n%s", page, s, got)
				}
			}
		}
	})
}
