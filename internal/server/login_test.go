package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoginUniformFailure covers I2: an unknown user and a wrong password
// get the same status and the same message.
func TestLoginUniformFailure(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	var bodies []string
	for _, name := range []string{"alice", "nobody"} {
		tok := b.formToken("/login")
		resp, body := b.post("/login", url.Values{"username": {name}, "password": {"wrong password here"}, "csrf_token": {tok}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", name, resp.StatusCode)
		}
		if !strings.Contains(body, loginFailed) {
			t.Fatalf("%s: generic message missing", name)
		}
		// Both pages put back what was typed, the same way: only that differs.
		typed := `name="username" value="` + name + `"`
		if !strings.Contains(body, typed) {
			t.Fatalf("%s: the username typed is not kept", name)
		}
		body = strings.ReplaceAll(body, typed, `name="username" value=""`)
		bodies = append(bodies, strings.ReplaceAll(body, tok, ""))
	}
	if stripTokens(bodies[0]) != stripTokens(bodies[1]) {
		t.Error("failed-login pages differ between unknown user and wrong password")
	}
	// The owner still gets in.
	b.login("alice", pw)
}

func stripTokens(s string) string { return formTokenRE.ReplaceAllString(s, "") }

// TestCrossSiteForms covers C5: cross-site POSTs and POSTs without the
// token are refused with 403 and change nothing.
func TestCrossSiteForms(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	chatTok := b.login("alice", pw)

	// Cross-site logout: refused, the session still works.
	resp, _ := b.postWithOrigin("/logout", url.Values{"csrf_token": {chatTok}}, "https://evil.example")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}
	// Same-origin logout without the token: refused.
	resp, _ = b.post("/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without token: %d", resp.StatusCode)
	}
	if r, _ := b.get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("session ended by a refused logout: %d", r.StatusCode)
	}
	// Cross-site login (login CSRF): refused, no session set.
	evil := ts.newBrowser()
	tok := evil.formToken("/login")
	resp, _ = evil.postWithOrigin("/login", url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {tok}}, "https://evil.example")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
	// Login with no pre-session token: refused.
	fresh := ts.newBrowser()
	resp, _ = fresh.post("/login", url.Values{"username": {"alice"}, "password": {pw}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without token: %d", resp.StatusCode)
	}
	if r, _ := fresh.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Fatal("a refused login created a session")
	}
	// Password change without token: refused, old password still works.
	resp, _ = b.post("/settings/password", url.Values{"current_password": {pw}, "new_password": {"another long password"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("password change without token: %d", resp.StatusCode)
	}
	ts.newBrowser().login("alice", pw)
	// The real logout works and ends the session.
	resp, _ = b.post("/logout", url.Values{"csrf_token": {chatTok}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if r, _ := b.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Fatal("session survived logout")
	}
}

// TestSessionFixation covers I3: a cookie planted before login is not the
// one that works after it.
func TestSessionFixation(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	planted := "fixedbyattackerAAAAAAAAAAAAAAAAAAAAAAAAAAAA"[:43]

	victim := ts.newBrowser()
	u, _ := url.Parse(ts.url)
	victim.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-wsguard", Value: planted, Path: "/", Secure: true}})
	victim.login("alice", pw)
	got := cookieValue(victim.cookieHeader())
	if got == planted || got == "" {
		t.Fatalf("session id not issued fresh at login: %q", got)
	}
	// The planted value opens nothing.
	attacker := ts.newBrowser()
	attacker.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-wsguard", Value: planted, Path: "/", Secure: true}})
	if r, _ := attacker.get("/"); r.StatusCode != http.StatusSeeOther {
		t.Fatal("the planted cookie works after the victim's login")
	}
}

func cookieValue(header string) string {
	for _, p := range strings.Split(header, "; ") {
		if v, ok := strings.CutPrefix(p, "__Host-wsguard="); ok {
			return v
		}
	}
	return ""
}

// TestBodyCap covers I7's first half: a huge form is refused before hashing.
func TestBodyCap(t *testing.T) {
	ts := startServer(t, nil)
	b := ts.newBrowser()
	tok := b.formToken("/login")
	resp, _ := b.post("/login", url.Values{"username": {"x"}, "password": {strings.Repeat("p", 1<<20)}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("1 MB password: %d, want 413", resp.StatusCode)
	}
}
