package server

// One home for credential checks: with the store down, every credential
// kind that needs the store answers 503 `unavailable` and never counts
// toward an IP ban, on /ws, on the service API and on the pages; bad
// credentials still answer 401 and still count; good ones still open the
// socket.

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/token"
)

// lockedBuffer is a log destination the server's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// credKind is one way of presenting a credential at the handshake, from a
// source address of its own so that bans stay apart.
type credKind struct {
	name string
	ip   string
	dial func(ip string) (int, http.Header, string) // status, headers, body
}

// dialResult dials and returns the status, headers and body of the answer
// (101 and nothing else when the socket opened; it is closed at once).
func dialResult(t *testing.T, ts *testServer, ip string, h http.Header, origin string, protocols ...string) (int, http.Header, string) {
	t.Helper()
	ws, resp, err := ts.dialFrom(ip, h, origin, false, protocols...)
	if err == nil {
		ws.Close()
		return 101, nil, ""
	}
	if resp == nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestCredentialsStoreDown(t *testing.T) {
	const banAfter = 5
	logs := &lockedBuffer{}
	keys := newTestKeys(t)
	ts := startServerWith(t, func(c *config.Config) {
		keys.configure(c)
		c.JWT.Leeway = 0
		tokenNamespaces(c)
		c.Limits.BanAfterFailures = banAfter
		c.Limits.BanDuration = config.Duration(time.Minute)
	}, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	alice := ts.signIn("alice")
	goodJWT := keys.rs(t, claims("bob", time.Hour))
	badJWT := sign(t, jwt.SigningMethodRS256, keys.other, "rsa", claims("bob", time.Hour))
	goodKey := ts.apiKey(t, "feed", "publish:news:*")
	badKey := token.APIKeyPrefix + strings.Repeat("A", 43)
	forgedCookie := http.Header{"Cookie": {"__Host-wsguard=" + strings.Repeat("A", 43)}}
	unknownTicket := strings.Repeat("A", 43)
	mint := func() string {
		t.Helper()
		h := http.Header{"Cookie": {alice.b.cookieHeader()}, "X-Csrf-Token": {alice.token}, "Origin": {ts.url}}
		st, m := ts.api(t, "/api/v1/tickets", h, "")
		if st != 200 {
			t.Fatalf("mint a ticket: %d %v", st, m)
		}
		return m["ticket"].(string)
	}
	session := func(ip string, h http.Header) (int, http.Header, string) {
		return dialResult(t, ts, ip, h, ts.url, "wsguard.v1", "wsguard.csrf."+alice.token)
	}
	ticket := func(ip, tk string) (int, http.Header, string) {
		return dialResult(t, ts, ip, nil, ts.url, "wsguard.v1", "wsguard.ticket."+tk)
	}
	bearer := func(ip, raw string) (int, http.Header, string) {
		return dialResult(t, ts, ip, bearerHeader(raw), "", "wsguard.v1")
	}
	sessionHeader := func() http.Header { return http.Header{"Cookie": {alice.b.cookieHeader()}} }

	// The user's side, store up: every good credential opens a socket.
	good := []credKind{
		{"session", "127.0.0.120", func(ip string) (int, http.Header, string) { return session(ip, sessionHeader()) }},
		{"ticket", "127.0.0.121", func(ip string) (int, http.Header, string) { return ticket(ip, mint()) }},
		{"jwt", "127.0.0.122", func(ip string) (int, http.Header, string) { return bearer(ip, goodJWT) }},
		{"apikey", "127.0.0.123", func(ip string) (int, http.Header, string) { return bearer(ip, goodKey) }},
	}
	for _, k := range good {
		if st, _, body := k.dial(k.ip); st != 101 {
			t.Fatalf("good %s with the store up: %d %q, want 101", k.name, st, body)
		}
	}

	// The attacker's side, store up: a bad credential of each kind is 401
	// and counts; after banAfter of them the IP is banned (429), even for
	// a good credential.
	bad := []credKind{
		{"session", "127.0.0.130", func(ip string) (int, http.Header, string) { return session(ip, forgedCookie.Clone()) }},
		{"ticket", "127.0.0.131", func(ip string) (int, http.Header, string) { return ticket(ip, unknownTicket) }},
		{"jwt", "127.0.0.132", func(ip string) (int, http.Header, string) { return bearer(ip, badJWT) }},
		{"apikey", "127.0.0.133", func(ip string) (int, http.Header, string) { return bearer(ip, badKey) }},
	}
	for _, k := range bad {
		for i := range banAfter {
			if st, _, body := k.dial(k.ip); st != http.StatusUnauthorized {
				t.Fatalf("bad %s attempt %d: %d %q, want 401", k.name, i, st, body)
			}
		}
		ws, resp, err := alice.dialFrom(k.ip, nil)
		wantTooMany(t, "good session after "+strconv.Itoa(banAfter)+" bad "+k.name+" credentials", ws, resp, err)
	}
	bansBefore := counterValue(ts.srv.Metrics().Bans)
	if bansBefore != float64(len(bad)) {
		t.Fatalf("bans_total %v after the bad credentials, want %d", bansBefore, len(bad))
	}

	// The fault: the store is gone. A ticket minted before it went.
	tk := mint()
	if err := ts.srv.Store().Close(); err != nil {
		t.Fatal(err)
	}

	// Every kind that needs the store answers 503 with Retry-After, the
	// store's error stays out of the answer, and many attempts do not ban.
	down := []credKind{
		{"session", "127.0.0.140", func(ip string) (int, http.Header, string) { return session(ip, sessionHeader()) }},
		{"forged session", "127.0.0.141", func(ip string) (int, http.Header, string) { return session(ip, forgedCookie.Clone()) }},
		{"ticket", "127.0.0.142", func(ip string) (int, http.Header, string) { return ticket(ip, tk) }},
		{"unknown ticket", "127.0.0.143", func(ip string) (int, http.Header, string) { return ticket(ip, unknownTicket) }},
		{"apikey", "127.0.0.144", func(ip string) (int, http.Header, string) { return bearer(ip, goodKey) }},
		{"unknown apikey", "127.0.0.145", func(ip string) (int, http.Header, string) { return bearer(ip, badKey) }},
	}
	for _, k := range down {
		for i := range 4 * banAfter {
			st, h, body := k.dial(k.ip)
			if st != http.StatusServiceUnavailable {
				t.Fatalf("%s with the store down, attempt %d: %d %q, want 503 (429 would mean the outage banned the IP)", k.name, i, st, body)
			}
			if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 {
				t.Fatalf("%s with the store down: Retry-After %q, want seconds", k.name, h.Get("Retry-After"))
			}
			if strings.Contains(body, "sql") || strings.Contains(body, "closed") {
				t.Fatalf("%s with the store down: the store's error reached the client: %q", k.name, body)
			}
		}
	}

	// The service API agrees: an API key and a session cookie asking for
	// a ticket get 503 `unavailable`, however often.
	for i := range 4 * banAfter {
		st, m := ts.api(t, "/api/v1/publish", bearerHeader(goodKey), `{"channel":"news:x","data":{"n":1}}`)
		if st != http.StatusServiceUnavailable || errCode(m) != "unavailable" {
			t.Fatalf("api publish with the store down, attempt %d: %d %v, want 503 unavailable", i, st, m)
		}
		h := http.Header{"Cookie": {alice.b.cookieHeader()}, "X-Csrf-Token": {alice.token}, "Origin": {ts.url}}
		st, m = ts.api(t, "/api/v1/tickets", h, "")
		if st != http.StatusServiceUnavailable || errCode(m) != "unavailable" {
			t.Fatalf("api ticket by session with the store down, attempt %d: %d %v, want 503 unavailable", i, st, m)
		}
	}
	// A signed-in page is not sent to /login by an outage either.
	if resp, body := alice.b.get("/"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Try again") {
		t.Fatalf("chat page with the store down: %d %s, want 503", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st, _, body := session("127.0.0.1", sessionHeader()); st != http.StatusServiceUnavailable {
		t.Fatalf("the API's client IP after the outage: %d %q, want 503 (not banned)", st, body)
	}

	// A JWT needs no store: it still opens a socket, and a forged one is
	// still a verdict on the client: 401, counted, banned.
	if st, _, body := bearer("127.0.0.150", goodJWT); st != 101 {
		t.Fatalf("good JWT with the store down: %d %q, want 101", st, body)
	}
	for i := range banAfter {
		if st, _, body := bearer("127.0.0.151", badJWT); st != http.StatusUnauthorized {
			t.Fatalf("bad JWT with the store down, attempt %d: %d %q, want 401", i, st, body)
		}
	}
	if st, _, _ := bearer("127.0.0.151", goodJWT); st != http.StatusTooManyRequests {
		t.Fatalf("after %d bad JWTs: %d, want 429 (banned)", banAfter, st)
	}
	if n := counterValue(ts.srv.Metrics().Bans); n != bansBefore+1 {
		t.Errorf("bans_total %v, want %v: only the forged JWTs may ban during the outage", n, bansBefore+1)
	}

	// The operator's side: the audit log names the reason, the server's
	// log keeps the store's error.
	if !strings.Contains(auditLog(t, ts), `"reason":"store_unavailable"`) {
		t.Error("no audit event with reason store_unavailable")
	}
	out := logs.String()
	if !strings.Contains(out, "reason=store_unavailable") || !strings.Contains(out, "store unavailable") {
		t.Errorf("the server's log lacks the store's error behind store_unavailable:\n%.2000s", out)
	}
	for _, secret := range []string{goodKey, goodJWT, tk, alice.token} {
		if strings.Contains(out, secret) {
			t.Error("a credential reached the server's log")
		}
	}
}
