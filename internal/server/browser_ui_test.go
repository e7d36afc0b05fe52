package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/wsguard/wsguard/internal/browsertest"
)

// screenshot saves the page to $WSGUARD_SCREENSHOTS/name.png when that
// directory is set, for a person to look at; otherwise it does nothing.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WSGUARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o600); err != nil {
		t.Fatal(err)
	}
}

func roomsShown(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `Array.from(document.querySelectorAll('#rooms li')).map(li => li.dataset.channel).join(' ')`)
}

// waitSavedRooms waits (bounded) until the server holds want for user.
func waitSavedRooms(t *testing.T, ts *testServer, user, want string) {
	t.Helper()
	u, err := ts.srv.Store().UserByName(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 200; i++ {
		got, _, _ = ts.srv.Store().Rooms(context.Background(), u.ID)
		if strings.Join(got, " ") == want {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("saved rooms %q, want %q", got, want)
}

// TestBrowserRoomsRemembered: a room joined in the chat is there after a
// reload and in another browser of the same user; a room left is gone.
func TestBrowserRoomsRemembered(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	a := newChromium(t, ts)
	browserLogin(t, a, ts, "alice")
	if got := roomsShown(t, a); got != "room:lobby room:random" {
		t.Fatalf("first visit shows %q", got)
	}
	if err := chromedp.Do(a,
		chromedp.SendKeys(chromedp.CSS(`#join-input`), "ops"),
		chromedp.Submit(chromedp.CSS(`#join-input`)),
		chromedp.Click(chromedp.CSS(`#rooms li[data-channel="room:random"] button.leave`)),
	); err != nil {
		t.Fatal(err)
	}
	waitSavedRooms(t, ts, "alice", "room:lobby room:ops")
	if err := chromedp.Do(a, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#send-input`))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, a, `document.getElementById('status').textContent === 'connected'`)
	if got := roomsShown(t, a); got != "room:lobby room:ops" {
		t.Fatalf("after a reload the chat shows %q, want room:lobby room:ops", got)
	}
	other := newChromium(t, ts) // another device
	browserLogin(t, other, ts, "alice")
	if got := roomsShown(t, other); got != "room:lobby room:ops" {
		t.Fatalf("another browser shows %q", got)
	}
}

// TestBrowserNewSinceYouLeft: messages that arrived while the reader was
// away are preceded by a "New since you left" line; what was already read
// is above it, and a later visit with nothing new shows no line.
func TestBrowserNewSinceYouLeft(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	a := newChromium(t, ts)
	browserLogin(t, a, ts, "alice")
	bob := ts.newBrowser()
	ws := bob.connect(bob.login("bob", pw))
	publish := func(id int, text string) {
		f, _ := call(t, ws, map[string]any{"id": id, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": text}})
		if !f.OK {
			t.Fatalf("bob's publish %q: %+v", text, f)
		}
	}
	publish(1, "read before leaving")
	waitMessage(t, a, "read before leaving")
	if n := browsertest.Eval[int](t, a, `document.querySelectorAll('#messages .new-marker').length`); n != 0 {
		t.Fatalf("first visit shows %d new-since markers", n)
	}
	// Alice leaves; bob writes twice.
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/settings/sessions"), chromedp.WaitVisible(chromedp.CSS(`.sessions`))); err != nil {
		t.Fatal(err)
	}
	publish(2, "missed one")
	publish(3, "missed two")
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#send-input`))); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, a, "missed two")
	order := browsertest.Eval[string](t, a, `Array.from(document.querySelectorAll('#messages li')).filter(li => !li.hidden).map(li => li.classList.contains('new-marker') ? '|' + li.textContent + '|' : li.querySelector('.text').textContent).join(' / ')`)
	if !strings.Contains(order, "read before leaving / |New since you left| / missed one / missed two") {
		t.Fatalf("messages read %q, want the marker before the first missed one", order)
	}
	say(t, a, "back again")
	waitMessage(t, a, "back again")
	screenshot(t, a, "chat")
	// Everything was seen: the next visit has no marker.
	if err := chromedp.Do(a, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#send-input`))); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, a, "back again")
	if n := browsertest.Eval[int](t, a, `document.querySelectorAll('#messages .new-marker').length`); n != 0 {
		t.Fatalf("a visit with nothing new shows %d markers", n)
	}
	// The sessions page, for a person to look at: browser names, local times.
	if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/settings/sessions"), chromedp.WaitVisible(chromedp.CSS(`.sessions`))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, a, `document.querySelector('time.local').textContent.includes('·')`)
	if got := browsertest.Eval[string](t, a, `document.querySelector('li[data-current="true"] .browser').textContent`); got != "Headless Chrome on Linux" && got != "Chrome on Linux" {
		t.Errorf("this browser is named %q", got)
	}
	screenshot(t, a, "sessions")
}

// TestBrowserEnrolmentStableAndRecoveryDownload: the QR code and secret
// are the same on a second visit (an app that scanned the first one holds
// the right secret); after confirming, the recovery codes download as a
// file and Continue leads to the chat.
func TestBrowserEnrolmentStableAndRecoveryDownload(t *testing.T) {
	ts, clk := startAccounts(t, nil)
	ts.addUser("alice", pw, false)
	a := newChromium(t, ts)
	browserLogin(t, a, ts, "alice")
	visit := func() (string, string) {
		if err := chromedp.Do(a, chromedp.Navigate(ts.url+"/settings/2fa"), chromedp.WaitVisible(chromedp.CSS(`#totp-secret`))); err != nil {
			t.Fatal(err)
		}
		return browsertest.Eval[string](t, a, `document.getElementById('totp-secret').textContent`),
			browsertest.Eval[string](t, a, `document.querySelector('img.qr').src`)
	}
	s1, qr1 := visit()
	s2, qr2 := visit()
	if s1 != s2 || qr1 != qr2 {
		t.Fatalf("second visit shows another secret: %s then %s", s1, s2)
	}
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(a, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a,
		chromedp.SendKeys(chromedp.CSS(`#code`), codeAt(t, s1, clk.Now())),
		chromedp.Submit(chromedp.CSS(`#code`)),
		chromedp.WaitVisible(chromedp.CSS(`#recovery-codes`)),
		chromedp.Click(chromedp.CSS(`#recovery-download`)),
	); err != nil {
		t.Fatalf("confirm and download: %v", err)
	}
	screenshot(t, a, "recovery")
	codes := browsertest.Eval[[]string](t, a, `Array.from(document.querySelectorAll('#recovery-codes code')).map(c => c.textContent)`)
	var file []byte
	for i := 0; i < 200; i++ {
		file, _ = os.ReadFile(filepath.Join(dir, "wsguard-recovery-codes.txt"))
		if len(file) > 0 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(codes) != 10 || len(file) == 0 {
		t.Fatalf("%d codes shown, download %q", len(codes), file)
	}
	for _, c := range codes {
		if !strings.Contains(string(file), c+"\n") {
			t.Errorf("downloaded file lacks %s:\n%s", c, file)
		}
	}
	if err := chromedp.Do(a,
		chromedp.Click(chromedp.CSS(`#recovery-continue`)),
		chromedp.WaitVisible(chromedp.CSS(`#send-input`)),
	); err != nil {
		t.Fatalf("Continue: %v", err)
	}
	browsertest.WaitJS(t, a, fmt.Sprintf(`location.href === %q`, ts.url+"/"))
}
