package client_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/wsguard/wsguard/clients/go"
)

// TestDialCredentials dials with each credential type.
func TestDialCredentials(t *testing.T) {
	e := start(t)
	ctx := context.Background()

	t.Run("jwt", func(t *testing.T) {
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(e.jwt("alice", time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "user:alice")
	})
	t.Run("api key", func(t *testing.T) {
		key := e.apiKey("feed", "subscribe:news:*")
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe(ctx, "news:eu"); err != nil {
			t.Fatal(err)
		}
		pub := e.apiKey("pub", "publish:news:*")
		off := e.publish(pub, "news:eu", "flash")
		if m := next(t, c); m.Offset != off || m.From != "api:pub" {
			t.Fatalf("got %+v", m)
		}
		var fe *client.Error
		if _, err := c.Publish(ctx, "news:eu", 1, ""); !errors.As(err, &fe) || fe.Code != "forbidden" {
			t.Fatalf("publish without scope: %v", err)
		}
	})
	t.Run("session ticket", func(t *testing.T) {
		hc, csrf := e.login("bob", "correct horse battery staple")
		h := http.Header{"X-Csrf-Token": {csrf}, "Origin": {e.base}}
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Origin: e.base,
			Ticket: client.TicketFetcher(hc, e.base+"/api/v1/tickets", h)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "user:bob")
	})
	t.Run("jwt ticket", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + e.jwt("carol", time.Hour)}}
		c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots,
			Ticket: client.TicketFetcher(e.http(nil), e.base+"/api/v1/tickets", h)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "room:lobby")
	})
	t.Run("refused credential", func(t *testing.T) {
		_, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: static(e.jwt("x", -time.Hour))})
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.Status != 401 {
			t.Fatalf("expired token: %v, want 401", err)
		}
	})
	t.Run("plain ws refused", func(t *testing.T) {
		if _, err := client.Dial(ctx, client.Config{URL: strings.Replace(e.wsURL, "wss:", "ws:", 1), Token: static("x")}); err == nil {
			t.Fatal("ws:// accepted")
		}
	})
}

// TestCertificateChecks covers T5: a certificate the client does not trust
// is refused, and so is a trusted one whose key is not pinned.
func TestCertificateChecks(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	tok := static(e.jwt("alice", time.Hour))
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, Token: tok}); err == nil {
		t.Fatal("dev CA certificate accepted with the system roots")
	}
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: x509.NewCertPool(), Token: tok}); err == nil {
		t.Fatal("accepted with an empty root pool")
	}
	wrong := sha256.Sum256([]byte("another key"))
	_, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{base64.StdEncoding.EncodeToString(wrong[:])}})
	if err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("SPKI pin mismatch: %v", err)
	}
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{e.leafPin()}})
	if err != nil {
		t.Fatalf("matching pin: %v", err)
	}
	c.Close()
	if _, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: tok, PinSPKI: []string{"not base64!"}}); err == nil {
		t.Fatal("malformed pin accepted")
	}
}

// TestReconnectResume covers F2 through the client: the socket is cut, the
// client reconnects with a fresh token and resumes with since; every
// message arrives exactly once, in order.
func TestReconnectResume(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	pub := e.apiKey("pub", "publish:news:*")
	ops := e.apiKey("ops", "disconnect:user:*")
	var dials atomic.Int32
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 600 * time.Millisecond,
		Token: func(context.Context) (string, error) { dials.Add(1); return e.jwt("dana", time.Hour), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "news:eu"); err != nil {
		t.Fatal(err)
	}
	e.publish(pub, "news:eu", 1)
	if m := next(t, c); m.Offset != 1 {
		t.Fatalf("first %+v", m)
	}
	e.disconnect(ops, "dana")
	for i := 2; i <= 4; i++ { // published while the client is away
		e.publish(pub, "news:eu", i)
	}
	for want := uint64(2); want <= 5; want++ {
		if want == 5 {
			e.publish(pub, "news:eu", 5) // and one live after the resume
		}
		m := next(t, c)
		if m.Offset != want || m.Gap {
			t.Fatalf("got %+v, want offset %d", m, want)
		}
	}
	if n := c.Connects(); n != 2 {
		t.Fatalf("%d connects, want 2", n)
	}
	if dials.Load() < 2 {
		t.Fatal("reconnect did not ask for a fresh token")
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("extra message %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestReconnectWithoutHistoryRight: a credential that may subscribe but not
// read history cannot resume with since (the server answers forbidden). The
// client still resumes the subscription live, marks the gap, and delivers
// what follows.
func TestReconnectWithoutHistoryRight(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	pub := e.apiKey("pub", "publish:news:*")
	ops := e.apiKey("ops", "disconnect:api:watch")
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 600 * time.Millisecond,
		Token: static(e.apiKey("watch", "subscribe:news:*"))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "news:eu"); err != nil {
		t.Fatal(err)
	}
	e.publish(pub, "news:eu", 1)
	if m := next(t, c); m.Offset != 1 {
		t.Fatalf("first %+v", m)
	}
	e.disconnect(ops, "api:watch")
	e.publish(pub, "news:eu", 2) // missed while away
	if m := next(t, c); !m.Gap || m.Channel != "news:eu" {
		t.Fatalf("got %+v, want a gap marker for news:eu", m)
	}
	off := e.publish(pub, "news:eu", 3)
	if m := next(t, c); m.Offset != off || m.Gap {
		t.Fatalf("got %+v, want the live message %d", m, off)
	}
}

// TestTokenRefresh covers K3 through the client: on the expiring push it
// refreshes with a new token and keeps the same connection past exp.
func TestTokenRefresh(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	var calls atomic.Int32
	c, err := client.Dial(ctx, client.Config{URL: e.wsURL, RootCAs: e.roots, Token: func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return e.jwt("erin", 2*time.Second), nil // the dial's token is short-lived
		}
		return e.jwt("erin", time.Hour), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(3 * time.Second)
	if _, err := c.Presence(ctx, "user:erin"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || c.Connects() != 1 {
		t.Fatalf("token calls %d, connects %d; want a refresh on one connection", calls.Load(), c.Connects())
	}
}

// TestPermanentRefusal: a client whose credential is refused on reconnect
// stops and reports why.
func TestPermanentRefusal(t *testing.T) {
	e := start(t)
	key := e.apiKey("gone", "subscribe:news:*")
	c, err := client.Dial(context.Background(), client.Config{URL: e.wsURL, RootCAs: e.roots, MinBackoff: 50 * time.Millisecond, Token: static(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.wsguard("", "apikey", "revoke", "gone")
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client still running with a revoked key")
	}
	var he *client.HandshakeError
	if !errors.As(c.Err(), &he) || he.Status != 401 {
		t.Fatalf("Err %v, want a 401 handshake error", c.Err())
	}
}
