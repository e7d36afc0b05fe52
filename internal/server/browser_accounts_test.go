package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/wsguard/wsguard/internal/browsertest"

	"github.com/wsguard/wsguard/internal/clock"
)

// recordCloses makes every page of ctx record the close codes of its
// WebSockets in window.__closes (injected through DevTools, so the CSP,
// which rightly forbids inline script, does not apply).
func recordCloses(t *testing.T, ctx context.Context) {
	t.Helper()
	const js = `(() => {
  const W = window.WebSocket;
  window.__closes = [];
  window.WebSocket = class extends W {
    constructor(...a) { super(...a); this.addEventListener('close', (e) => window.__closes.push(e.code)); }
  };
})();`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatal(err)
	}
}

// browserSignIn2FA signs in with password, then the TOTP code for the
// clock's next step (the previous one may have been used already).
func browserSignIn2FA(t *testing.T, ctx context.Context, ts *testServer, clk *clock.Fake, name, secret string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=code]`)),
	); err != nil {
		t.Fatalf("%s password step: %v", name, err)
	}
	clk.Advance(30 * time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=code]`), codeAt(t, secret, clk.Now())),
		chromedp.Submit(chromedp.CSS(`input[name=code]`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-input`)),
	); err != nil {
		t.Fatalf("%s code step: %v", name, err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'connected'`)
}

// TestBrowserAccounts is issue 3's browser flow in headless Chromium: enrol
// 2FA (the code computed from the secret shown on the page), log out, log in
// with password and code, see the session in the list, revoke it from a
// second browser and watch the first one's chat end (close 4001).
func TestBrowserAccounts(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	a := newChromium(t, ts)
	recordCloses(t, a)
	browserLogin(t, a, ts, "alice")

	// Enrol: QR code and secret on the page; the secret as text is enough.
	if err := chromedp.Do(a,
		chromedp.Navigate(ts.url+"/settings/2fa"),
		chromedp.WaitVisible(chromedp.CSS(`#totp-secret`)),
	); err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(`#totp-secret`)))
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	if !browsertest.Eval[bool](t, a, `(() => { const i = document.querySelector('img.qr'); return i.complete && i.naturalWidth >= 200 && i.src.startsWith('data:image/png'); })()`) {
		t.Fatal("the QR code did not render as an inline PNG")
	}
	if err := chromedp.Do(a,
		chromedp.SendKeys(chromedp.CSS(`#code`), codeAt(t, secret, clk.Now())),
		chromedp.Submit(chromedp.CSS(`#code`)),
		chromedp.WaitVisible(chromedp.CSS(`#recovery-codes`)),
	); err != nil {
		t.Fatalf("confirm enrolment: %v", err)
	}
	if n := browsertest.Eval[int](t, a, `document.querySelectorAll('#recovery-codes li').length`); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}

	// Log out, log in with password + code.
	if err := chromedp.Do(a,
		chromedp.Navigate(ts.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form.logout button`)),
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
	); err != nil {
		t.Fatalf("logout: %v", err)
	}
	browserSignIn2FA(t, a, ts, clk, "alice", secret)

	// The first browser sees its own session in the list, marked current.
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/settings/sessions"), chromedp.WaitVisible(chromedp.CSS(`li.session`))); err != nil {
		t.Fatal(err)
	}
	if n := browsertest.Eval[int](t, a, `document.querySelectorAll('li.session[data-current="true"]').length`); n != 1 {
		t.Fatalf("%d current sessions listed", n)
	}
	if !browsertest.Eval[bool](t, a, `document.querySelector('li.session[data-current="true"] .browser').textContent.includes('Chrome')`) {
		t.Fatal("the session row does not name the browser")
	}
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#send-input`))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, a, `document.getElementById('status').textContent === 'connected'`)

	// A second browser signs in and revokes the first one's session.
	b := newChromium(t, ts)
	browserSignIn2FA(t, b, ts, clk, "alice", secret)
	if err := chromedp.Do(b, chromedp.Navigate(ts.url+"/settings/sessions"), chromedp.WaitVisible(chromedp.CSS(`li.session`))); err != nil {
		t.Fatal(err)
	}
	if n := browsertest.Eval[int](t, b, `document.querySelectorAll('li.session').length`); n != 2 {
		t.Fatalf("second browser lists %d sessions, want 2", n)
	}
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`li.session:not([data-current]) button`))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, b, `document.querySelectorAll('li.session').length === 1 && document.querySelector('li.session[data-current="true"]') !== null`)

	// The server has acted: the first browser's chat ends within 1 s, on 4001.
	ctx, cancel := context.WithTimeout(a, time.Second)
	defer cancel()
	browsertest.WaitJS(t, ctx, `document.getElementById('status').dataset.state === 'ended'`)
	if codes := browsertest.Eval[[]int](t, a, `window.__closes`); !slices.Contains(codes, 4001) {
		t.Fatalf("close codes seen by the page: %v, want 4001", codes)
	}
	wantAudit(t, ts, "session.revoked", "alice", 1, func(l auditLine) bool { return l.Reason == "revoked by user" })
	// And it is signed out for good: the chat page sends it to /login.
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`))); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(a, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/login") {
		t.Fatalf("revoked browser landed on %s", loc)
	}
}
