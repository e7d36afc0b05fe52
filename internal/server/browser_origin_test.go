package server

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/wsguard/internal/browsertest"
	"github.com/wsguard/wsguard/internal/config"
)

// A server whose allowed_origins names another port refuses every
// handshake from its own chat page. The page says so, naming the setting,
// instead of sitting on "reconnecting" forever.
func TestBrowserSaysOriginRefused(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://localhost:1"} })
	ts.addUser("alice", pw, false)
	ctx := newChromium(t, ts)
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-input`)),
	)
	if err != nil {
		t.Fatalf("login in chromium: %v", err)
	}
	browsertest.WaitJS(t, ctx, `document.getElementById('status').textContent === 'refused'`)
	msg := browsertest.Eval[string](t, ctx, `document.getElementById('error').textContent`)
	for _, want := range []string{"refuses this page's origin", ts.url, "allowed_origins", "public_url", "origin_not_allowed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error shown %q lacks %q", msg, want)
		}
	}
}
