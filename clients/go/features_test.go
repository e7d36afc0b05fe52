package client_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/wsguard/wsguard/clients/go"
)

// TestSessionCredential: a signed-in browser session (cookie and the
// page's CSRF token) dials directly; without Origin the client refuses to
// try, and a wrong CSRF token is refused by the server.
func TestSessionCredential(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	hc, csrf := e.login("frank", "correct horse battery staple")
	session := func(context.Context) (string, string, error) { return e.cookie(hc), csrf, nil }
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Origin: e.base, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "user:frank")
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Session: session}); err == nil {
		t.Fatal("a session without Origin was dialed")
	}
	forged := func(context.Context) (string, string, error) { return e.cookie(hc), "not-the-token", nil }
	_, err = client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Origin: e.base, Session: forged})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("wrong CSRF token: %v, want a 403 handshake error", err)
	}
}

// TestStatesAndCloseCodes: a server-side disconnect (4001) reaches OnError
// as a *CloseError with its code, the state goes disconnected, connecting,
// connected, and the client carries on.
func TestStatesAndCloseCodes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ops := e.apiKey("ops", "disconnect:user:*")
	var mu sync.Mutex
	var states []client.State
	var errs []error
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 100 * time.Millisecond,
		Token:   func(context.Context) (string, error) { return e.jwt("gina", time.Hour), nil },
		OnState: func(s client.State) { mu.Lock(); states = append(states, s); mu.Unlock() },
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.disconnect(ops, "gina")
	for i := 0; c.Connects() < 2; i++ {
		if i > 500 {
			t.Fatal("no reconnect after the server's 4001")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var ce *client.CloseError
	if len(errs) == 0 || !errors.As(errs[0], &ce) || ce.Code != 4001 {
		t.Fatalf("OnError got %v, want a *CloseError with code 4001", errs)
	}
	got := make([]string, len(states))
	for i, s := range states {
		got[i] = string(s)
	}
	if want := "connecting,connected,disconnected,connecting,connected"; strings.Join(got, ",") != want {
		t.Fatalf("states %s, want %s", strings.Join(got, ","), want)
	}
}

// TestPublishExactlyOnceAcrossReconnect: a publish made as the socket is
// cut is stored once; a repeated cid is answered with the first offset;
// history and presence answer through the client.
func TestPublishExactlyOnceAcrossReconnect(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ops := e.apiKey("ops", "disconnect:user:*")
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 100 * time.Millisecond,
		Token: func(context.Context) (string, error) { return e.jwt("hank", time.Hour), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "user:hank"); err != nil {
		t.Fatal(err)
	}
	// Cut the socket and publish at once: the publish is either in flight
	// when the socket drops (and is sent again with its cid) or waits for
	// the reconnect. Either way it is stored once.
	e.disconnect(ops, "hank")
	off, err := c.Publish(ctx, "user:hank", map[string]string{"text": "once"}, "")
	if err != nil {
		t.Fatalf("publish across a reconnect: %v", err)
	}
	// The same cid again is answered with the first offset, not stored.
	off2, err := c.Publish(ctx, "user:hank", map[string]string{"text": "again"}, "fixed-cid")
	if err != nil {
		t.Fatal(err)
	}
	off3, err := c.Publish(ctx, "user:hank", map[string]string{"text": "again"}, "fixed-cid")
	if err != nil || off3 != off2 {
		t.Fatalf("repeat with the same cid: %d %v, want offset %d", off3, err, off2)
	}
	msgs, err := c.History(ctx, "user:hank", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Offset != off || msgs[1].Offset != off2 {
		t.Fatalf("history %+v, want exactly offsets %d and %d", msgs, off, off2)
	}
	users, err := c.Presence(ctx, "user:hank")
	if err != nil || len(users) != 1 || users[0] != "hank" {
		t.Fatalf("presence: %v %v", users, err)
	}
}

// TestRequestTimeoutAndErrorCodes: requests time out with the context's
// error, and server refusals carry their code.
func TestRequestTimeoutAndErrorCodes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(e.jwt("ivy", time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Presence(expired, "user:ivy"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	codes := map[string]func() error{
		"forbidden":   func() error { return c.Subscribe(ctx, "user:someone-else") },
		"bad_request": func() error { _, err := c.History(ctx, "no-namespace", 1, 0); return err },
		"not_found":   func() error { return c.Unsubscribe(ctx, "room:never") },
	}
	for want, f := range codes {
		var we *client.Error
		if err := f(); !errors.As(err, &we) || we.Code != want {
			t.Errorf("got %v, want code %s", err, want)
		}
	}
}

// TestModuleHasNoServerDependencies: the module requires gorilla/websocket
// and nothing else, so `go get` of it pulls none of the server's modules.
func TestModuleHasNoServerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	mods := strings.Fields(string(out))
	for _, m := range mods {
		for _, bad := range []string{"sqlite", "chromedp", "prometheus", "golang-jwt", "pquerna", "yaml"} {
			if strings.Contains(m, bad) {
				t.Errorf("module graph holds %s", m)
			}
		}
	}
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "require") != 1 || !strings.Contains(string(b), "github.com/gorilla/websocket") {
		t.Fatalf("go.mod requires more than gorilla/websocket:\n%s", b)
	}
}
