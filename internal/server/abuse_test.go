package server

// The attack suite, from the attacker's side and the honest user's side:
// floods (M4, M5), slowloris (M7), idle sockets (M8), framing violations
// (M10), forged forwarding headers (T6), compression bombs (M1) and a
// wrong certificate (T5). Distinct client IPs are real: the whole of
// 127.0.0.0/8 is loopback on Linux, so a dialer bound to 127.0.0.N is a
// different peer to the server.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// Source addresses of the simulated clients.
const (
	honestIP   = "127.0.0.2"
	honestIP2  = "127.0.0.3"
	attackerIP = "127.0.0.66"
)

// publicAddr is the server's listener as an IP:port (the harness listens on 127.0.0.1).
func (ts *testServer) publicAddr() string {
	return "127.0.0.1:" + strings.TrimPrefix(ts.host, "localhost:")
}

// dialFrom opens /ws from source address src with the given headers.
func (ts *testServer) dialFrom(src string, h http.Header, origin string, compress bool, protocols ...string) (*websocket.Conn, *http.Response, error) {
	if h == nil {
		h = http.Header{}
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	addr := ts.publicAddr()
	d := websocket.Dialer{
		TLSClientConfig:   ts.tlsConfig(),
		Subprotocols:      protocols,
		HandshakeTimeout:  10 * time.Second,
		EnableCompression: compress,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return nd.DialContext(ctx, "tcp", addr)
		},
	}
	return d.Dial("wss://"+ts.host+"/ws", h)
}

// user is a signed-in browser profile: its cookie and CSRF token.
type user struct {
	b     *browser
	name  string
	token string
}

func (ts *testServer) signIn(name string) *user {
	ts.t.Helper()
	ts.addUser(name, pw, false)
	b := ts.newBrowser()
	return &user{b: b, name: name, token: b.login(name, pw)}
}

// dialFrom opens a socket for u from src; extra headers may be nil.
func (u *user) dialFrom(src string, extra http.Header) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for k, v := range extra {
		h[k] = v
	}
	h.Set("Cookie", u.b.cookieHeader())
	return u.b.ts.dialFrom(src, h, u.b.ts.url, false, "wsguard.v1", "wsguard.csrf."+u.token)
}

// connectFrom is dialFrom that must succeed.
func (u *user) connectFrom(src string, extra http.Header) *websocket.Conn {
	u.b.ts.t.Helper()
	ws, resp, err := u.dialFrom(src, extra)
	if err != nil {
		u.b.ts.t.Fatalf("%s from %s: dial: %v (status %d)", u.name, src, err, status(resp))
	}
	u.b.ts.t.Cleanup(func() { ws.Close() })
	return ws
}

func status(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// floodResult is what an abusive connection saw.
type floodResult struct {
	ok, rateLimited int
	messages        []string // rate_limited messages
	code            int      // close code, -1 without a close frame
}

// flood writes up to n pings as fast as it can, while a reader collects the
// answers until the connection ends (bounded by 15 s).
func flood(ws *websocket.Conn, n int) floodResult {
	var res floodResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				res.code = -1
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					res.code = ce.Code
				}
				return
			}
			s := string(b)
			switch {
			case strings.Contains(s, `"ok":true`):
				res.ok++
			case strings.Contains(s, `"rate_limited"`):
				res.rateLimited++
				res.messages = append(res.messages, s)
			}
		}
	}()
	for i := 1; i <= n; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":`+strconv.Itoa(i)+`,"op":"ping"}`)); err != nil {
			break
		}
	}
	<-done
	return res
}

// chat has from publish k messages on channel while to, subscribed, must
// receive every one: the honest side of every flood test.
func chat(t *testing.T, from, to *websocket.Conn, channel string, k int) {
	t.Helper()
	for i := 1; i <= k; i++ {
		f, _ := call(t, from, map[string]any{"id": 1000 + i, "op": "publish", "channel": channel, "data": map[string]any{"text": fmt.Sprint("honest ", i)}})
		if f.Error != nil {
			t.Fatalf("honest publish %d on %s: %s %s", i, channel, f.Error.Code, f.Error.Message)
		}
		if m := nextMessage(t, to); m.Channel != channel {
			t.Fatalf("honest subscriber got %+v", m)
		}
	}
}

// honestPair signs in two users on other IPs, subscribed to channel.
func honestPair(t *testing.T, ts *testServer, channel string) (*websocket.Conn, *websocket.Conn) {
	t.Helper()
	a := ts.signIn("alice").connectFrom(honestIP, nil)
	b := ts.signIn("bob").connectFrom(honestIP2, nil)
	for _, ws := range []*websocket.Conn{a, b} {
		if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": channel}); f.Error != nil {
			t.Fatalf("subscribe: %+v", f.Error)
		}
	}
	return a, b
}

// floodWhileChatting runs the floods concurrently with an honest chat and
// returns each flood's result.
func floodWhileChatting(t *testing.T, honestA, honestB *websocket.Conn, floods []*websocket.Conn, n int) []floodResult {
	t.Helper()
	results := make([]floodResult, len(floods))
	var wg sync.WaitGroup
	for i, ws := range floods {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = flood(ws, n) }()
	}
	chat(t, honestA, honestB, "room:lobby", 5) // within every limit under test (bursts of 10)
	wg.Wait()
	chat(t, honestB, honestA, "room:lobby", 3)
	return results
}

func assertCut(t *testing.T, who string, r floodResult, limit string) {
	t.Helper()
	if r.rateLimited == 0 {
		t.Errorf("%s: no rate_limited error before the cut (%+v)", who, r)
	}
	if r.code != 4008 {
		t.Errorf("%s: closed with %d, want 4008", who, r.code)
	}
	for _, m := range r.messages {
		if !strings.Contains(m, "("+limit+" limit)") {
			t.Errorf("%s: rate_limited by another limit than %s: %s", who, limit, m)
			break
		}
		// The refusal names the request it refused, so a client knows
		// exactly which one to retry.
		var f struct{ ID int64 }
		if err := json.Unmarshal([]byte(m), &f); err != nil || f.ID <= 0 {
			t.Errorf("%s: rate_limited answered without the request's id: %s", who, m)
			break
		}
	}
}

// TestAbuseMessageFlood covers M4 from one connection, from many
// connections of one user and from many users on one IP.
func TestAbuseMessageFlood(t *testing.T) {
	t.Run("per connection", func(t *testing.T) {
		ts := startServer(t, func(c *config.Config) {
			c.Limits.MessagesPerSecond = 5
			c.Limits.MessageBurst = 10
		})
		a, b := honestPair(t, ts, "room:lobby")
		m := ts.signIn("mallory").connectFrom(attackerIP, nil)
		r := floodWhileChatting(t, a, b, []*websocket.Conn{m}, 200)
		assertCut(t, "flooding connection", r[0], "connection")
		if r[0].ok < 1 || r[0].ok > 20 {
			t.Errorf("flooding connection had %d pings answered, want the burst (10) and a few refills", r[0].ok)
		}
		if v := counterValue(ts.srv.Metrics().RateLimited.WithLabelValues("connection")); v == 0 {
			t.Error("rate_limited_total{limit=connection} did not move")
		}
	})
	t.Run("per user", func(t *testing.T) {
		ts := startServer(t, func(c *config.Config) {
			c.Limits.UserMessagesPerSecond = 5 // burst 10, shared by the user's connections
		})
		a, b := honestPair(t, ts, "room:lobby")
		m := ts.signIn("mallory")
		floods := []*websocket.Conn{m.connectFrom(attackerIP, nil), m.connectFrom("127.0.0.67", nil), m.connectFrom("127.0.0.68", nil)}
		r := floodWhileChatting(t, a, b, floods, 200)
		total := 0
		for i, x := range r {
			assertCut(t, fmt.Sprint("mallory's connection ", i), x, "user")
			total += x.ok
		}
		if total > 30 {
			t.Errorf("mallory's connections had %d pings answered together, want about the user burst of 10", total)
		}
		// Her next connection draws on the same bucket: 12 pings, more
		// than the user burst (10) but far under the connection's own (40),
		// meet a rate_limited however long the handshake took to refill it.
		ws := m.connectFrom(attackerIP, nil)
		limited := false
		for i := 1; i <= 12 && !limited; i++ {
			f := readReply(t, ws, map[string]any{"id": i, "op": "ping"})
			limited = f.Error != nil && f.Error.Code == "rate_limited"
		}
		if !limited {
			t.Error("a new connection of the flooding user was not held to the user's limit")
		}
	})
	t.Run("per IP behind a trusted proxy", func(t *testing.T) {
		// The load balancer is the loopback peer; clients are told apart
		// by X-Forwarded-For, which is believed from it (T6, user's side).
		ts := startServer(t, func(c *config.Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
			c.Limits.IPMessagesPerSecond = 5 // burst 10, shared by every user of one IP
		})
		xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
		alice := ts.signIn("alice").connectFrom(honestIP, xff("198.51.100.7"))
		bob := ts.signIn("bob").connectFrom(honestIP, xff("198.51.100.8"))
		for _, ws := range []*websocket.Conn{alice, bob} {
			call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"})
		}
		var floods []*websocket.Conn
		for _, n := range []string{"m1", "m2", "m3"} {
			floods = append(floods, ts.signIn(n).connectFrom(honestIP, xff("203.0.113.66")))
		}
		r := floodWhileChatting(t, alice, bob, floods, 200)
		for i, x := range r {
			assertCut(t, fmt.Sprint("user m", i+1), x, "ip")
		}
		if v := counterValue(ts.srv.Metrics().RateLimited.WithLabelValues("ip")); v == 0 {
			t.Error("rate_limited_total{limit=ip} did not move")
		}
	})
}

// readReply sends req and returns the first frame answering it (errors
// carry the request's id too).
func readReply(t *testing.T, ws *websocket.Conn, req map[string]any) frame {
	t.Helper()
	send(t, ws, req)
	for {
		f := readFrame(t, ws)
		if f.Push != "" {
			continue
		}
		if f.ID == int64(req["id"].(int)) {
			return f
		}
	}
}

func wantTooMany(t *testing.T, what string, ws *websocket.Conn, resp *http.Response, err error) {
	t.Helper()
	if err == nil {
		ws.Close()
		t.Fatalf("%s: accepted, want 429", what)
	}
	if status(resp) != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429 (%v)", what, status(resp), err)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 {
		t.Errorf("%s: Retry-After %q, want a positive number of seconds", what, resp.Header.Get("Retry-After"))
	}
}

func alive(t *testing.T, who string, ws *websocket.Conn) {
	t.Helper()
	if f, _ := call(t, ws, map[string]any{"id": 77, "op": "ping"}); !f.OK {
		t.Fatalf("%s: ping failed: %+v", who, f)
	}
}

// TestAbuseConnectionCaps covers M5's connection flood: caps per user,
// per IP and global answer 429 with Retry-After before the upgrade, and
// connections already open keep working.
func TestAbuseConnectionCaps(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.ConnsPerUser = 2
		c.Limits.ConnsPerIP = 3
		c.Limits.MaxConns = 6
	})
	m1, m2, m3 := ts.signIn("m1"), ts.signIn("m2"), ts.signIn("m3")
	held := []*websocket.Conn{m1.connectFrom(attackerIP, nil), m1.connectFrom(attackerIP, nil)}
	ws, resp, err := m1.dialFrom("127.0.0.67", nil)
	wantTooMany(t, "third connection of one user (other IP)", ws, resp, err)
	held = append(held, m2.connectFrom(attackerIP, nil))
	ws, resp, err = m3.dialFrom(attackerIP, nil)
	wantTooMany(t, "fourth connection from one IP", ws, resp, err)
	for i, ws := range held {
		alive(t, fmt.Sprint("held connection ", i), ws)
	}
	// Honest users on other IPs get in and chat, up to the global cap.
	a, b := honestPair(t, ts, "room:lobby")
	chat(t, a, b, "room:lobby", 3)
	carol := ts.signIn("carol").connectFrom("127.0.0.4", nil)
	alive(t, "carol", carol)
	ws, resp, err = ts.signIn("dave").dialFrom("127.0.0.5", nil)
	wantTooMany(t, "connection past the global cap", ws, resp, err)

	// A cap is not a ban: once a slot is free, the IP may connect again.
	held[2].Close()
	var again *websocket.Conn
	for i := 0; i < 100 && again == nil; i++ {
		if again, _, err = m3.dialFrom(attackerIP, nil); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if again == nil {
		t.Fatalf("slot never released: %v", err)
	}
	defer again.Close()
	alive(t, "connection after a slot freed", again)

	log := auditLog(t, ts)
	if !strings.Contains(log, `"reason":"connection_cap"`) {
		t.Error("no audit event for the connection cap")
	}
}

// TestAbuseHandshakeFloodAndBan covers M5's handshake flood and the
// temporary ban of an IP that keeps failing checks.
func TestAbuseHandshakeFloodAndBan(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.HandshakesPerSecond = 0.2
		c.Limits.HandshakeBurst = 5
		c.Limits.BanAfterFailures = 5
		c.Limits.BanDuration = config.Duration(time.Minute)
	})
	m := ts.signIn("mallory")
	a, b := honestPair(t, ts, "room:lobby")

	// Handshake flood: valid handshakes past the burst get 429 + Retry-After.
	refused := 0
	for i := 0; i < 20 && refused == 0; i++ {
		ws, resp, err := m.dialFrom(attackerIP, nil)
		if err == nil {
			ws.Close()
			continue
		}
		wantTooMany(t, "handshake flood", ws, resp, err)
		refused = i + 1
	}
	if refused == 0 || refused > 6 {
		t.Fatalf("handshake flood refused at attempt %d, want right after the burst of 5", refused)
	}
	chat(t, a, b, "room:lobby", 3)
	// An honest client on another IP still connects.
	ws := ts.signIn("carol").connectFrom("127.0.0.4", nil)
	alive(t, "carol", ws)

	// Ban: five failed handshakes (a forged session cookie from the allowed
	// Origin), then even a valid one is 429. A foreign Origin does not count:
	// any page can make its visitors' browsers send one (TestReviewForeignOriginNoBan).
	const scanner = "127.0.0.70"
	for i := 0; i < 5; i++ {
		h := http.Header{"Cookie": {"__Host-wsguard=" + strings.Repeat("A", 43)}}
		ws, resp, err := ts.dialFrom(scanner, h, ts.url, false, "wsguard.v1", "wsguard.csrf."+m.token)
		if err == nil {
			ws.Close()
			t.Fatal("forged cookie accepted")
		}
		if status(resp) != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i, status(resp))
		}
	}
	ws, resp, err := m.dialFrom(scanner, nil)
	wantTooMany(t, "banned IP with a valid credential", ws, resp, err)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 30 {
		t.Errorf("ban Retry-After %ds, want about the ban duration (60s)", ra)
	}
	if counterValue(ts.srv.Metrics().Bans) != 1 {
		t.Errorf("bans_total %v, want 1", counterValue(ts.srv.Metrics().Bans))
	}
	// Everyone else is unaffected.
	chat(t, a, b, "room:lobby", 3)
	ws = ts.signIn("dave").connectFrom("127.0.0.5", nil)
	alive(t, "dave", ws)
	log := auditLog(t, ts)
	for _, want := range []string{`"type":"ip.banned"`, `"reason":"ip_banned"`, `"reason":"handshake_rate"`, `"ip":"` + scanner + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func auditLog(t *testing.T, ts *testServer) string {
	t.Helper()
	b, err := os.ReadFile(ts.cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAbuseForgedForwardedFor covers T6: without trusted_proxies,
// X-Forwarded-For and X-Forwarded-Proto are ignored; the client is the
// socket peer, so rotating forged addresses does not escape a ban.
func TestAbuseForgedForwardedFor(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.BanAfterFailures = 3
	})
	m := ts.signIn("mallory")
	a, b := honestPair(t, ts, "room:lobby")
	for i := 0; i < 3; i++ {
		h := http.Header{"X-Forwarded-For": {fmt.Sprintf("192.0.2.%d", 10+i)}, "X-Forwarded-Proto": {"http"}}
		ws, resp, err := ts.dialFrom(attackerIP, h, ts.url, false, "wsguard.v1")
		if err == nil {
			ws.Close()
			t.Fatal("handshake without a credential accepted")
		}
		if status(resp) != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", status(resp))
		}
	}
	ws, resp, err := m.dialFrom(attackerIP, http.Header{"X-Forwarded-For": {"192.0.2.99"}})
	wantTooMany(t, "banned peer behind a forged X-Forwarded-For", ws, resp, err)
	log := auditLog(t, ts)
	if strings.Contains(log, "192.0.2.") {
		t.Error("a forged X-Forwarded-For address reached the audit log")
	}
	if !strings.Contains(log, `"ip":"`+attackerIP+`"`) {
		t.Error("audit events do not name the socket peer")
	}
	// A forged X-Forwarded-Proto: http changes nothing for an honest client.
	h := http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-For": {"192.0.2.1"}}
	ws = ts.signIn("carol").connectFrom("127.0.0.4", h)
	alive(t, "carol with forged forwarding headers", ws)
	chat(t, a, b, "room:lobby", 2)
}

// TestAbuseSlowloris covers M7: a ClientHello trickled byte by byte, request
// headers trickled after the TLS handshake, and a socket that sends nothing
// are all closed by the handshake/header timeout, while an honest client
// connects and chats meanwhile.
func TestAbuseSlowloris(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.HandshakeTimeout = config.Duration(500 * time.Millisecond)
	})
	a, b := honestPair(t, ts, "room:lobby")

	// Each attacker trickles one byte every 50 ms for at most 10 s, and
	// reports whether the server closed the socket before that.
	trickle := func(name string, c net.Conn, first, data []byte) error {
		defer c.Close()
		if _, err := c.Write(first); err != nil {
			return nil
		}
		closed := make(chan struct{})
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(12 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			close(closed)
		}()
		for i := 0; i < 200; i++ {
			select {
			case <-closed:
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte{data[i%len(data)]}); err != nil {
				return nil
			}
		}
		return fmt.Errorf("%s: still open after 10 s of trickling", name)
	}
	rawDial := func() net.Conn {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)}}
		c, err := nd.Dial("tcp", ts.publicAddr())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	errc := make(chan error, 3)
	go func() {
		// A TLS record header announcing a 512-byte ClientHello, then dribble.
		errc <- trickle("TLS slowloris", rawDial(), []byte{0x16, 0x03, 0x01, 0x02, 0x00}, []byte{0x01})
	}()
	go func() {
		tc := tls.Client(rawDial(), ts.tlsConfig())
		if err := tc.Handshake(); err != nil {
			errc <- fmt.Errorf("header slowloris: TLS handshake: %w", err)
			return
		}
		errc <- trickle("header slowloris", tc, []byte("GET /ws HTTP/1.1\r\nHost: "+ts.host+"\r\n"), []byte("X-Padding: aaaaaaaa\r\n"))
	}()
	go func() {
		c := rawDial()
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			errc <- errors.New("silent socket: still open after 10 s")
			return
		}
		errc <- nil
	}()
	// Meanwhile the honest side connects and chats.
	carol := ts.signIn("carol").connectFrom("127.0.0.4", nil)
	alive(t, "carol during slowloris", carol)
	chat(t, a, b, "room:lobby", 3)
	for i := 0; i < 3; i++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	chat(t, b, a, "room:lobby", 2)
}

// TestAbuseIdleNoPong covers M8: a client that never answers pings is
// closed after the idle timeout; one that answers them stays, idle,
// for several idle timeouts.
func TestAbuseIdleNoPong(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.IdleTimeout = config.Duration(600 * time.Millisecond)
		c.Limits.PingInterval = config.Duration(150 * time.Millisecond)
	})
	mute := ts.signIn("mallory").connectFrom(attackerIP, nil)
	var pings int
	var mu sync.Mutex
	mute.SetPingHandler(func(string) error { mu.Lock(); pings++; mu.Unlock(); return nil }) // never pongs
	muteEnd := make(chan error, 1)
	go func() {
		_ = mute.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := mute.ReadMessage(); err != nil {
				muteEnd <- err
				return
			}
		}
	}()

	honest := ts.signIn("alice").connectFrom(honestIP, nil)
	frames := make(chan frame, 16)
	honestErr := make(chan error, 1)
	go func() {
		for {
			_, b, err := honest.ReadMessage() // the default handler answers pings
			if err != nil {
				honestErr <- err
				return
			}
			var f frame
			_ = json.Unmarshal(b, &f)
			frames <- f
		}
	}()

	select {
	case err := <-muteEnd:
		var ce *websocket.CloseError
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a client that never pongs was not closed within 10 s")
		}
		_ = errors.As(err, &ce)
	case <-time.After(11 * time.Second):
		t.Fatal("mute client never ended")
	}
	mu.Lock()
	if pings == 0 {
		t.Error("the server never pinged")
	}
	mu.Unlock()
	// The honest client has now been idle for longer than the idle timeout
	// (the mute one took at least that long to be cut); wait three more.
	time.Sleep(3 * 600 * time.Millisecond)
	select {
	case err := <-honestErr:
		t.Fatalf("a client answering pings was cut: %v", err)
	default:
	}
	send(t, honest, map[string]any{"id": 9, "op": "ping"})
	select {
	case f := <-frames:
		if f.ID != 9 || !f.OK {
			t.Fatalf("honest ping answered %+v", f)
		}
	case err := <-honestErr:
		t.Fatalf("honest client ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("honest ping not answered")
	}
}

// rawSocket is a hand-driven WebSocket over TLS, for frames no library
// would send.
type rawSocket struct {
	c  *tls.Conn
	br *bufio.Reader
}

func (u *user) rawUpgrade(t *testing.T, src string) *rawSocket {
	t.Helper()
	ts := u.b.ts
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(nd, "tcp", ts.publicAddr(), ts.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + ts.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: wsguard.v1, wsguard.csrf." + u.token + "\r\n" +
		"Origin: " + ts.url + "\r\nCookie: " + u.b.cookieHeader() + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw upgrade: %d", resp.StatusCode)
	}
	return &rawSocket{c: c, br: br}
}

// frameBytes builds a client frame: b0 is FIN/RSV/opcode; length is the
// declared payload length (may exceed len(payload)).
func frameBytes(b0 byte, masked bool, length uint64, payload []byte) []byte {
	out := []byte{b0}
	var mb byte
	if masked {
		mb = 0x80
	}
	switch {
	case length < 126:
		out = append(out, mb|byte(length))
	case length <= 0xffff:
		out = append(out, mb|126, byte(length>>8), byte(length))
	default:
		out = append(out, mb|127)
		out = binary.BigEndian.AppendUint64(out, length)
	}
	if masked {
		key := []byte{0x12, 0x34, 0x56, 0x78}
		out = append(out, key...)
		for i, c := range payload {
			out = append(out, c^key[i%4])
		}
		return out
	}
	return append(out, payload...)
}

// closeCode reads server frames until a close frame and returns its code
// (-1 when the connection ends without one).
func (r *rawSocket) closeCode() int {
	for {
		var h [2]byte
		if _, err := io.ReadFull(r.br, h[:]); err != nil {
			return -1
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(r.br, e[:]); err != nil {
				return -1
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(r.br, e[:]); err != nil {
				return -1
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 1<<20 {
			return -1
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r.br, p); err != nil {
			return -1
		}
		if h[0]&0x0f == 8 {
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// TestAbuseFramingViolations covers M10: each violation closes the socket
// with 1002 (1009 for a declared length past the read limit), nothing is
// allocated for the declared length, and the server keeps serving.
func TestAbuseFramingViolations(t *testing.T) {
	ts := startServer(t, nil)
	m := ts.signIn("mallory")
	a, b := honestPair(t, ts, "room:lobby")
	ping := []byte(`{"id":1,"op":"ping"}`)
	tests := []struct {
		name  string
		frame []byte
		want  []int
	}{
		{"unmasked client frame", frameBytes(0x81, false, uint64(len(ping)), ping), []int{1002}},
		{"reserved bit RSV1 without compression", frameBytes(0x81|0x40, true, uint64(len(ping)), ping), []int{1002}},
		{"reserved bit RSV3", frameBytes(0x81|0x10, true, uint64(len(ping)), ping), []int{1002}},
		{"unknown opcode 3", frameBytes(0x83, true, uint64(len(ping)), ping), []int{1002}},
		{"unknown control opcode 0xB", frameBytes(0x8B, true, 0, nil), []int{1002}},
		{"200-byte ping", frameBytes(0x89, true, 200, make([]byte, 200)), []int{1002}},
		{"fragmented ping", frameBytes(0x09, true, 4, []byte("ping")), []int{1002}},
		{"continuation without a start", frameBytes(0x80, true, uint64(len(ping)), ping), []int{1002}},
		{"length 2^63", frameBytes(0x81, true, 1<<63, nil), []int{1002, 1009}},
		{"length 2^63-1", frameBytes(0x81, true, 1<<63-1, nil), []int{1009}},
		{"length 2^32, no data", frameBytes(0x82, true, 1<<32, nil), []int{1009}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := m.rawUpgrade(t, attackerIP)
			if _, err := r.c.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			got := r.closeCode()
			ok := false
			for _, w := range tc.want {
				ok = ok || got == w
			}
			if !ok {
				t.Fatalf("close %d, want one of %v", got, tc.want)
			}
			// The server closes the TCP connection too.
			_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, r.br); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("socket still open after the close frame")
				}
			}
		})
	}
	chat(t, a, b, "room:lobby", 3)
}

// TestAbuseCompressionBomb covers M1 with permessage-deflate on: a small
// compressed frame inflating past compression.max_decompressed (below the
// read limit here) or past the read limit is closed with 1009, and
// compressed chat below the cap works.
func TestAbuseCompressionBomb(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Compression.Enabled = true
		c.Compression.MaxDecompressed = 16 << 10
	})
	m := ts.signIn("mallory")
	dial := func(u *user, src string) *websocket.Conn {
		h := http.Header{"Cookie": {u.b.cookieHeader()}}
		ws, resp, err := ts.dialFrom(src, h, ts.url, true, "wsguard.v1", "wsguard.csrf."+u.token)
		if err != nil {
			t.Fatalf("dial: %v (%d)", err, status(resp))
		}
		if !strings.Contains(resp.Header.Get("Sec-Websocket-Extensions"), "permessage-deflate") {
			t.Fatalf("compression not negotiated: %q", resp.Header.Get("Sec-Websocket-Extensions"))
		}
		ws.EnableWriteCompression(true)
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	for _, size := range []int{1 << 20, 32 << 10} {
		ws := dial(m, attackerIP)
		bomb := `{"id":1,"op":"publish","channel":"room:lobby","data":{"text":"` + strings.Repeat("a", size) + `"}}`
		_ = ws.WriteMessage(websocket.TextMessage, []byte(bomb))
		if code := closeCode(t, ws); code != 1009 {
			t.Fatalf("%d bytes inflated: close %d, want 1009", size, code)
		}
	}
	if n, _ := ts.srv.Store().Latest(t.Context(), "room:lobby"); n != 0 {
		t.Fatalf("a bomb was stored (%d)", n)
	}
	alice, bob := ts.signIn("alice"), ts.signIn("bob")
	wa, wb := dial(alice, honestIP), dial(bob, honestIP2)
	call(t, wb, map[string]any{"id": 1, "op": "subscribe", "channel": "room:lobby"})
	f, _ := call(t, wa, map[string]any{"id": 2, "op": "publish", "channel": "room:lobby", "data": map[string]any{"text": strings.Repeat("b", 8<<10)}})
	if f.Error != nil {
		t.Fatalf("honest compressed publish: %+v", f.Error)
	}
	if msg := nextMessage(t, wb); msg.From != "alice" {
		t.Fatalf("got %+v", msg)
	}
}

// TestAbuseWrongCertificate covers T5 for a Go dialer: trusting the dev CA,
// it refuses an interceptor presenting a certificate from another CA, and a
// genuine certificate presented for another name; no request byte (cookie,
// token) reaches the interceptor.
func TestAbuseWrongCertificate(t *testing.T) {
	ts := startServer(t, nil)
	u := ts.signIn("alice")
	certFile, keyFile, err := tlsconf.EnsureDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- int(n)
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	d := websocket.Dialer{TLSClientConfig: ts.tlsConfig(), Subprotocols: []string{"wsguard.v1", "wsguard.csrf." + u.token}, HandshakeTimeout: 5 * time.Second}
	h := http.Header{"Cookie": {u.b.cookieHeader()}, "Origin": {ts.url}}
	_, _, err = d.Dial("wss://localhost:"+strconv.Itoa(port)+"/ws", h)
	var unknown x509.UnknownAuthorityError
	var verr *tls.CertificateVerificationError
	if err == nil || !(errors.As(err, &unknown) || errors.As(err, &verr)) {
		t.Fatalf("dial through the interceptor: %v, want a certificate verification error", err)
	}
	if n := <-got; n > 0 {
		t.Fatalf("the interceptor read %d application bytes", n)
	}
	// The genuine server's certificate for a name it is not.
	cfg := ts.tlsConfig()
	cfg.ServerName = "wsguard.example"
	d.TLSClientConfig = cfg
	d.NetDialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", ts.publicAddr())
	}
	if _, _, err = d.Dial("wss://wsguard.example/ws", h); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial with a wrong name: %v, want a certificate error", err)
	}
	// The user's side: the same dialer config with the right name connects.
	ws := u.connectFrom(honestIP, nil)
	alive(t, "alice", ws)
}

// newBrowserFrom is a browser whose connections come from source address src.
func (ts *testServer) newBrowserFrom(src string) *browser {
	b := ts.newBrowser()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	addr := ts.publicAddr()
	b.client.Transport = &http.Transport{
		TLSClientConfig: ts.tlsConfig(),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return nd.DialContext(ctx, "tcp", addr)
		},
	}
	return b
}

// TestAbuseLoginFlood covers the login token bucket (limits.logins_per_minute):
// past it, every attempt from the IP, even with the right password, is 429
// with Retry-After; a user on another IP signs in meanwhile.
func TestAbuseLoginFlood(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Limits.LoginsPerMinute = 3
	})
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	m := ts.newBrowserFrom(attackerIP)
	for i, guess := range []string{"guess number one", "guess number two", "guess number three"} {
		tok := m.formToken("/login")
		resp, _ := m.post("/login", url.Values{"username": {"alice"}, "password": {guess}, "csrf_token": {tok}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, resp.StatusCode)
		}
	}
	tok := m.formToken("/login")
	resp, _ := m.post("/login", url.Values{"username": {"bob"}, "password": {pw}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("attempt past logins_per_minute: %d, want 429", resp.StatusCode)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Alice, on her own IP, is not locked out by the sprayer's bucket.
	honest := ts.newBrowserFrom(honestIP)
	tok = honest.formToken("/login")
	resp, _ = honest.post("/login", url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {tok}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("honest login from another IP: %d, want 303", resp.StatusCode)
	}
	if v := counterValue(ts.srv.Metrics().RateLimited.WithLabelValues("login")); v != 1 {
		t.Errorf("rate_limited_total{limit=login} = %v, want 1", v)
	}
	if !strings.Contains(auditLog(t, ts), `"reason":"login_rate"`) {
		t.Error("no audit event for the login rate limit")
	}
}
