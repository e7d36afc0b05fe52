package server

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/store"
)

// Tests for lost updates (SECURITY.md I8): a user's own action that read the
// account earlier (a password change waiting on argon2, a 2FA enrolment)
// races the operator's `user disable` and `user roles`. Each iteration
// starts both at once; the operator's command is held back a little longer
// each time, so that over the iterations it lands before, inside and after
// the user's request. Whatever the order, the disable and the role removal
// stand.

const raceRounds = 8

// submit posts a same-origin form without the test helpers' t.Fatal, so it
// can run on its own goroutine.
func (b *browser) submit(path string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequest("POST", b.ts.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// race runs the user's request and, round×6 ms later, the operator's
// commands, and waits for all of them (each bounded by the client timeout).
func race(t *testing.T, round int, user func() error, operator ...func() error) {
	t.Helper()
	raceStep(t, round, 6*time.Millisecond, user, operator...)
}

// raceStep is race with the delay per round given.
func raceStep(t *testing.T, round int, step time.Duration, user func() error, operator ...func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 1+len(operator))
	wg.Go(func() { errs <- user() })
	time.Sleep(time.Duration(round) * step) // spreads where the command lands; nothing is timed
	for _, op := range operator {
		wg.Go(func() { errs <- op() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// currentPassword says which of candidates is the user's password now.
func currentPassword(t *testing.T, ts *testServer, name string, candidates ...string) string {
	t.Helper()
	u, err := ts.srv.Store().UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range candidates {
		if ok, err := ts.srv.hasher.Verify(context.Background(), u.PasswordHash, c); err == nil && ok {
			return c
		}
	}
	t.Fatalf("%s's password is none of the candidates", name)
	return ""
}

func TestAccountsLostUpdates(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ctx := context.Background()
	st, al := ts.srv.Store(), ts.srv.audit
	const pw2 = "another quite long password"
	other := map[string]string{pw: pw2, pw2: pw}

	// changePassword is the user's side: the settings form, from current to
	// the other password.
	changePassword := func(b *browser, current string) func() error {
		tok := b.formToken("/settings/password")
		return func() error {
			_, _, err := b.submit("/settings/password", url.Values{"current_password": {current}, "new_password": {other[current]}, "csrf_token": {tok}})
			return err
		}
	}

	t.Run("password change vs role removal", func(t *testing.T) {
		ts.addUser("rita", pw, false)
		b := ts.newBrowser()
		b.login("rita", pw)
		current := pw
		for i := range raceRounds {
			if err := SetUserRoles(ctx, st, "rita", []string{"ops", "dev"}); err != nil {
				t.Fatal(err)
			}
			race(t, i, changePassword(b, current), func() error { return SetUserRoles(ctx, st, "rita", []string{"dev"}) })
			u, _ := st.UserByName(ctx, "rita")
			if !slices.Equal(u.Roles, []string{"dev"}) {
				t.Fatalf("round %d: roles %v after a racing password change, want [dev]: the role removal was undone", i, u.Roles)
			}
			// The user's side: the change went through and the browser is
			// still signed in (with its rotated cookie).
			if now := currentPassword(t, ts, "rita", pw, pw2); now == current {
				t.Fatalf("round %d: the password change was lost", i)
			}
			current = other[current]
			if r, _ := b.get("/"); r.StatusCode != http.StatusOK {
				t.Fatalf("round %d: signed out after own password change: %d", i, r.StatusCode)
			}
		}
	})

	t.Run("password change vs disable", func(t *testing.T) {
		ts.addUser("dora", pw, false)
		current := pw
		for i := range raceRounds {
			if err := SetUserDisabled(ctx, st, al, "dora", false); err != nil {
				t.Fatal(err)
			}
			b := ts.newBrowser() // disabling ended the last one's session
			b.login("dora", current)
			race(t, i, changePassword(b, current), func() error { return SetUserDisabled(ctx, st, al, "dora", true) })
			if u, _ := st.UserByName(ctx, "dora"); !u.Disabled {
				t.Fatalf("round %d: dora enabled again by a racing password change", i)
			}
			if r, _ := b.get("/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
				t.Fatalf("round %d: a disabled user's browser still opens /: %d", i, r.StatusCode)
			}
			current = currentPassword(t, ts, "dora", pw, pw2)
			if list, _ := st.ListSessions(ctx, mustUser(t, ts, "dora").ID); len(list) != 0 {
				t.Fatalf("round %d: %d sessions of a disabled user", i, len(list))
			}
		}
		if r := ts.newBrowser().password("dora", currentPassword(t, ts, "dora", pw, pw2), ""); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled user signs in: %d", r.StatusCode)
		}
	})

	// The attacker's side: someone who knows the old password signs in
	// while the owner changes it. The sign-in verifies the old hash while
	// the change runs; wherever it lands, no session opened with the old
	// password survives the change.
	t.Run("old-password sign-in vs password change", func(t *testing.T) {
		ts.addUser("owen", pw, false)
		owner := ts.newBrowser()
		owner.login("owen", pw)
		current := pw
		for i := range raceRounds {
			thief := ts.newBrowser()
			tok := thief.formToken("/login")
			signIn := func() error {
				_, _, err := thief.submit("/login", url.Values{"username": {"owen"}, "password": {current}, "csrf_token": {tok}})
				return err
			}
			raceStep(t, i, 12*time.Millisecond, changePassword(owner, current), signIn)
			if now := currentPassword(t, ts, "owen", pw, pw2); now == current {
				t.Fatalf("round %d: the password change was lost", i)
			}
			current = other[current]
			list, _ := st.ListSessions(ctx, mustUser(t, ts, "owen").ID)
			if len(list) != 1 {
				t.Fatalf("round %d: %d sessions after the change, want 1 (the owner's): a sign-in with the old password survived", i, len(list))
			}
			if r, _ := thief.get("/"); r.StatusCode == http.StatusOK {
				t.Fatalf("round %d: the old password's session opens /", i)
			}
			if r, _ := owner.get("/"); r.StatusCode != http.StatusOK {
				t.Fatalf("round %d: the owner was signed out: %d", i, r.StatusCode)
			}
		}
	})

	t.Run("enrolment vs disable and role removal", func(t *testing.T) {
		ts.addUser("erin", pw, false)
		for i := range raceRounds {
			if err := SetUserDisabled(ctx, st, al, "erin", false); err != nil {
				t.Fatal(err)
			}
			if err := ResetTwoFactor(ctx, st, al, "erin"); err != nil {
				t.Fatal(err)
			}
			if err := SetUserRoles(ctx, st, "erin", []string{"ops", "dev"}); err != nil {
				t.Fatal(err)
			}
			b := ts.newBrowser()
			b.login("erin", pw)
			_, page := b.get("/settings/2fa")
			secret := secretRE.FindStringSubmatch(page)[1]
			form := url.Values{"secret": {secret}, "code": {codeAt(t, secret, clk.Now())}, "csrf_token": {formTokenRE.FindStringSubmatch(page)[1]}}
			race(t, i, func() error { _, _, err := b.submit("/settings/2fa", form); return err },
				func() error { return SetUserRoles(ctx, st, "erin", []string{"dev"}) },
				func() error { return SetUserDisabled(ctx, st, al, "erin", true) })
			u, _ := st.UserByName(ctx, "erin")
			if !u.Disabled || !slices.Equal(u.Roles, []string{"dev"}) {
				t.Fatalf("round %d: disabled %v roles %v after a racing enrolment, want disabled and [dev]", i, u.Disabled, u.Roles)
			}
		}
	})
}

func mustUser(t *testing.T, ts *testServer, name string) store.User {
	t.Helper()
	u, err := ts.srv.Store().UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
