package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

const (
	testAudience = "wsguard-test"
	testIssuer   = "https://issuer.example"
)

// testKeys are real signing keys generated per test; the server trusts
// their public halves (and the HMAC secret) through jwt.keys files.
type testKeys struct {
	rsa       *rsa.PrivateKey
	rsaPubPEM []byte
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	hmac      []byte
	dir       string
	other     *rsa.PrivateKey // trusted by nobody
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	k := &testKeys{dir: t.TempDir()}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	k.hmac = make([]byte, 32)
	_, _ = rand.Read(k.hmac)
	k.hmac[len(k.hmac)-1] |= 0x80 // never '\n': secret_file drops one trailing newline
	k.rsaPubPEM = pubPEM(t, &k.rsa.PublicKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(k.dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rsa.pem", k.rsaPubPEM)
	write("ec.pem", pubPEM(t, &k.ec.PublicKey))
	write("ed.pem", pubPEM(t, k.ed.Public()))
	write("hmac.secret", append(append([]byte{}, k.hmac...), '\n'))
	return k
}

func pubPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func (k *testKeys) configure(c *config.Config) {
	c.JWT = config.JWT{
		Audience: testAudience,
		Issuer:   testIssuer,
		Keys: []config.JWTKey{
			{KID: "rsa", Alg: "RS256", PublicKeyFile: filepath.Join(k.dir, "rsa.pem")},
			{KID: "ec", Alg: "ES256", PublicKeyFile: filepath.Join(k.dir, "ec.pem")},
			{KID: "ed", Alg: "EdDSA", PublicKeyFile: filepath.Join(k.dir, "ed.pem")},
			{KID: "hs", Alg: "HS256", SecretFile: filepath.Join(k.dir, "hmac.secret")},
		},
	}
}

// claims returns valid claims for sub, expiring in d.
func claims(sub string, d time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "aud": testAudience, "iss": testIssuer, "iat": now.Unix(), "exp": now.Add(d).Unix()}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (k *testKeys) rs(t *testing.T, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodRS256, k.rsa, "rsa", c)
}

// unsigned builds "header.payload." with a chosen header, as an attacker would.
func unsigned(t *testing.T, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// tokenNamespaces adds the namespaces the token tests use: news (subscribe
// for users and scoped keys, publish by scope only), feed (subscribe-only
// for users) and ops (role ops only).
func tokenNamespaces(c *config.Config) {
	c.Namespaces["news"] = config.Namespace{Subscribe: []string{"users", "scope"}, Publish: []string{"scope"}, History: []string{"users", "scope"}}
	c.Namespaces["feed"] = config.Namespace{Subscribe: []string{"users"}, Publish: []string{"role:editor"}, History: []string{"role:editor"}, Presence: []string{"role:editor"}}
	c.Namespaces["ops"] = config.Namespace{Subscribe: []string{"role:ops"}, Publish: []string{"role:ops"}, History: []string{"role:ops"}, Presence: []string{"role:ops"}}
}

func startTokenServer(t *testing.T, mutate func(*config.Config)) (*testServer, *testKeys) {
	t.Helper()
	keys := newTestKeys(t)
	ts := startServer(t, func(c *config.Config) {
		keys.configure(c)
		c.JWT.Leeway = 0
		tokenNamespaces(c)
		if mutate != nil {
			mutate(c)
		}
	})
	return ts, keys
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// dialStatus dials /ws and returns the HTTP status (101 on success).
func (ts *testServer) dialStatus(t *testing.T, h http.Header, origin string, protocols ...string) (*websocket.Conn, int) {
	t.Helper()
	ws, resp, err := ts.dial(h, origin, protocols...)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return ws, 101
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return nil, resp.StatusCode
}

// api posts a JSON body to an /api/v1 path and decodes the JSON answer.
func (ts *testServer) api(t *testing.T, path string, h http.Header, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.url+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.httpClient(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkAgainstSpec(t, req, resp, b) // every API answer of every test, against docs/openapi.yaml
	var m map[string]any
	if len(b) > 0 && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (ts *testServer) auditLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ts.cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (ts *testServer) apiKey(t *testing.T, name string, scopes ...string) string {
	t.Helper()
	raw, err := CreateAPIKey(context.Background(), ts.srv.Store(), name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestTokensForgedJWT covers K1, K2 and K6 at the handshake and on
// /api/v1/publish, and the four accepted algorithms.
func TestTokensForgedJWT(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	hour := time.Hour
	expired := claims("alice", -hour)
	future := claims("alice", hour)
	future["nbf"] = time.Now().Add(hour).Unix()
	wrongAud := claims("alice", hour)
	wrongAud["aud"] = "another-service"
	wrongIss := claims("alice", hour)
	wrongIss["iss"] = "https://evil.example"
	noExp := claims("alice", hour)
	delete(noExp, "exp")
	noAud := claims("alice", hour)
	delete(noAud, "aud")
	noIss := claims("alice", hour)
	delete(noIss, "iss")
	reserved := claims("api:feed", hour)
	good := claims("alice", hour)

	refused := []struct{ name, tok string }{
		{"alg none", unsigned(t, map[string]any{"alg": "none", "kid": "rsa"}, good)},
		{"alg none without kid", unsigned(t, map[string]any{"alg": "none"}, good)},
		{"HS256 signed with the RSA public key", sign(t, jwt.SigningMethodHS256, k.rsaPubPEM, "rsa", good)},
		{"HS256 with the RSA kid and the real HMAC secret", sign(t, jwt.SigningMethodHS256, k.hmac, "rsa", good)},
		{"RS256 for the HS256 kid", sign(t, jwt.SigningMethodRS256, k.rsa, "hs", good)},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, "nope", good)},
		{"path kid", sign(t, jwt.SigningMethodHS256, []byte("x"), "../../../../dev/null", good)},
		{"kid naming the key file", sign(t, jwt.SigningMethodHS256, k.rsaPubPEM, filepath.Join(k.dir, "rsa.pem"), good)},
		{"no kid with several keys", sign(t, jwt.SigningMethodRS256, k.rsa, "", good)},
		{"signed by an untrusted key", sign(t, jwt.SigningMethodRS256, k.other, "rsa", good)},
		{"expired", k.rs(t, expired)},
		{"not yet valid", k.rs(t, future)},
		{"wrong aud", k.rs(t, wrongAud)},
		{"wrong iss", k.rs(t, wrongIss)},
		{"missing exp", k.rs(t, noExp)},
		{"missing aud", k.rs(t, noAud)},
		{"missing iss", k.rs(t, noIss)},
		{"reserved api: subject", k.rs(t, reserved)},
		{"tampered payload", func() string {
			p := strings.Split(k.rs(t, good), ".")
			c := claims("admin", hour)
			b, _ := json.Marshal(c)
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + p[2]
		}()},
		{"8 KiB of dots", strings.Repeat(".", 8<<10)},
		{"not a token", "hello"},
		{"API-key lookalike", token.APIKeyPrefix + strings.Repeat("A", 43)},
	}
	for _, tc := range refused {
		t.Run("handshake/"+tc.name, func(t *testing.T) {
			if _, st := ts.dialStatus(t, bearerHeader(tc.tok), "", "wsguard.v1"); st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", st)
			}
		})
		t.Run("api/"+tc.name, func(t *testing.T) {
			st, m := ts.api(t, "/api/v1/publish", bearerHeader(tc.tok), `{"channel":"room:lobby","data":{"text":"x"}}`)
			if st != http.StatusUnauthorized || errCode(m) != "unauthorized" {
				t.Fatalf("status %d %v, want 401 unauthorized", st, m)
			}
		})
	}

	// K6: a megabyte of dots is cut by the header cap before anything parses it.
	// The server may answer 431 and close while the client is still
	// writing, so a reset connection counts as refused too; what matters is
	// that it is refused at once and the server keeps serving.
	t.Run("a megabyte of dots", func(t *testing.T) {
		dots := strings.Repeat(".", 1<<20)
		start := time.Now()
		ws, resp, err := ts.dial(bearerHeader(dots), "", "wsguard.v1")
		if err == nil {
			ws.Close()
			t.Fatal("handshake accepted")
		}
		if resp != nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("handshake status %d, want 431", resp.StatusCode)
		}
		req, _ := http.NewRequest("POST", ts.url+"/api/v1/publish", strings.NewReader(`{}`))
		req.Header = bearerHeader(dots)
		if resp, err := ts.httpClient(nil).Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("api status %d, want 431", resp.StatusCode)
			}
		}
		cookie := http.Header{"Cookie": {"__Host-wsguard=" + strings.Repeat("A", 1<<20)}}
		if ws, resp, err := ts.dial(cookie, ts.url, "wsguard.v1"); err == nil {
			ws.Close()
			t.Fatal("1 MB cookie accepted")
		} else if resp != nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("1 MB cookie: %d, want 431", resp.StatusCode)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("refusing took %s", d)
		}
		if st, _ := ts.api(t, "/api/v1/publish", bearerHeader("x"), `{}`); st != 401 {
			t.Fatalf("server not serving after the megabyte: %d", st)
		}
	})

	accepted := []struct{ name, tok string }{
		{"RS256", k.rs(t, good)},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "ec", good)},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", good)},
		{"HS256", sign(t, jwt.SigningMethodHS256, k.hmac, "hs", good)},
	}
	for _, tc := range accepted {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			ws, st := ts.dialStatus(t, bearerHeader(tc.tok), "", "wsguard.v1")
			if st != 101 {
				t.Fatalf("status %d, want 101", st)
			}
			f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "user:alice"})
			if f.Error != nil {
				t.Fatalf("owner subscribe refused: %+v", f.Error)
			}
			// A bearer handshake from a browser still needs an allowed Origin.
			if _, st := ts.dialStatus(t, bearerHeader(tc.tok), "https://evil.example", "wsguard.v1"); st != http.StatusForbidden {
				t.Fatalf("foreign origin with bearer: %d, want 403", st)
			}
		})
	}

	log := ts.auditLog(t)
	for _, reason := range []string{"jwt_malformed", "jwt_unknown_key", "jwt_bad_signature", "jwt_expired", "jwt_not_yet_valid", "jwt_invalid_claims", "jwt_subject_reserved", "apikey_unknown"} {
		if !strings.Contains(log, `"reason":"`+reason+`"`) {
			t.Errorf("no audit event with reason %s", reason)
		}
	}
	for _, tc := range accepted {
		if strings.Contains(log, tc.tok) || strings.Contains(log, strings.Split(tc.tok, ".")[2]) {
			t.Errorf("%s token leaked into the audit log", tc.name)
		}
	}
}

// TestTokensTickets covers K4 and the ticket paths of docs/PROTOCOL.md.
func TestTokensTickets(t *testing.T) {
	var other string
	ts, k := startTokenServer(t, func(c *config.Config) {
		other = "https://app.localhost:1"
		c.AllowedOrigins = append(c.AllowedOrigins, other)
	})
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	csrfTok := b.login("alice", pw)
	own := ts.url

	cookie := func(csrfHeader, origin string) http.Header {
		h := http.Header{"Cookie": {b.cookieHeader()}}
		if csrfHeader != "" {
			h.Set("X-CSRF-Token", csrfHeader)
		}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	mint := func(t *testing.T, h http.Header) string {
		t.Helper()
		st, m := ts.api(t, "/api/v1/tickets", h, "")
		if st != 200 {
			t.Fatalf("mint: %d %v", st, m)
		}
		if m["expires_in"] != float64(30) {
			t.Fatalf("expires_in %v", m["expires_in"])
		}
		tk, _ := m["ticket"].(string)
		if !token.TicketWellFormed(tk) {
			t.Fatalf("ticket %q", tk)
		}
		return tk
	}

	t.Run("minting refusals", func(t *testing.T) {
		rows := []struct {
			name string
			h    http.Header
			body string
			want int
		}{
			{"no origin", cookie(csrfTok, ""), "", 403},
			{"foreign origin", cookie(csrfTok, "https://evil.example"), "", 403},
			{"null origin", cookie(csrfTok, "null"), "", 403},
			{"no csrf header", cookie("", own), "", 403},
			{"wrong csrf header", cookie(strings.Repeat("A", 43), own), "", 403},
			{"no session", http.Header{"Origin": {own}, "X-CSRF-Token": {csrfTok}}, "", 401},
			{"cross-site fetch", func() http.Header { h := cookie(csrfTok, own); h.Set("Sec-Fetch-Site", "cross-site"); return h }(), "", 403},
			{"unknown body field", cookie(csrfTok, own), `{"subject":"admin"}`, 400},
			{"api key", bearerHeader(ts.apiKey(t, "minter", "publish:news:*")), "", 403},
			{"bad bearer", bearerHeader("nope"), "", 401},
		}
		for _, tc := range rows {
			st, m := ts.api(t, "/api/v1/tickets", tc.h, tc.body)
			if st != tc.want {
				t.Errorf("%s: %d %v, want %d", tc.name, st, m, tc.want)
			}
		}
	})

	t.Run("session ticket once, from its origin", func(t *testing.T) {
		tk := mint(t, cookie(csrfTok, own))
		if strings.Contains(ts.auditLog(t), tk) {
			t.Fatal("ticket in the audit log")
		}
		ws, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+tk)
		if st != 101 {
			t.Fatalf("first use: %d", st)
		}
		f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "user:alice"})
		if f.Error != nil {
			t.Fatalf("subscribe: %+v", f.Error)
		}
		if _, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+tk); st != 401 {
			t.Fatalf("replay: %d, want 401", st)
		}
	})
	t.Run("ticket from another allowed origin", func(t *testing.T) {
		tk := mint(t, cookie(csrfTok, own))
		if _, st := ts.dialStatus(t, nil, other, "wsguard.v1", "wsguard.ticket."+tk); st != 403 {
			t.Fatalf("other origin: %d, want 403", st)
		}
		// The failed attempt used it up.
		if _, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+tk); st != 401 {
			t.Fatalf("after misuse: %d, want 401", st)
		}
	})
	t.Run("ticket from a foreign or no origin", func(t *testing.T) {
		tk := mint(t, cookie(csrfTok, own))
		if _, st := ts.dialStatus(t, nil, "https://evil.example", "wsguard.v1", "wsguard.ticket."+tk); st != 403 {
			t.Fatalf("foreign origin: %d, want 403", st)
		}
		tk = mint(t, cookie(csrfTok, own))
		if _, st := ts.dialStatus(t, nil, "", "wsguard.v1", "wsguard.ticket."+tk); st != 403 {
			t.Fatalf("no origin: %d, want 403", st)
		}
	})
	t.Run("expired ticket", func(t *testing.T) {
		// A ticket as Credentials.MintTicket stores it, but with a one-second life.
		raw, hash, _ := token.NewTicket()
		sess := sessionHashOf(t, b)
		err := ts.srv.Store().CreateTicket(context.Background(), store.Ticket{Hash: hash, Subject: "alice",
			Origin: own, ExpiresAt: time.Now().Add(time.Second), Kind: "session", SessionHash: sess})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if _, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+raw); st != 401 {
			t.Fatalf("expired: %d, want 401", st)
		}
	})
	t.Run("garbage tickets", func(t *testing.T) {
		for _, g := range []string{"x", strings.Repeat("A", 43), strings.Repeat("%", 43)} {
			if _, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+g); st != 401 {
				t.Errorf("ticket %q: %d, want 401", g, st)
			}
		}
	})
	t.Run("logout closes a ticket socket", func(t *testing.T) {
		b2 := ts.newBrowser()
		tok2 := b2.login("alice", pw)
		h := http.Header{"Cookie": {b2.cookieHeader()}, "X-CSRF-Token": {tok2}, "Origin": {own}}
		tk := mint(t, h)
		ws, st := ts.dialStatus(t, nil, own, "wsguard.v1", "wsguard.ticket."+tk)
		if st != 101 {
			t.Fatalf("dial: %d", st)
		}
		resp, _ := b2.post("/logout", map[string][]string{"csrf_token": {tok2}})
		if resp.StatusCode >= 400 {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if code := closeCode(t, ws); code != 4001 {
			t.Fatalf("close %d, want 4001", code)
		}
	})
	t.Run("bearer ticket keeps the token's limits", func(t *testing.T) {
		c := claims("carol", time.Hour)
		c["channels"] = []string{"room:a"}
		tk := mint(t, bearerHeader(k.rs(t, c)))
		ws, st := ts.dialStatus(t, nil, "", "wsguard.v1", "wsguard.ticket."+tk)
		if st != 101 {
			t.Fatalf("dial: %d", st)
		}
		if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:a"}); f.Error != nil {
			t.Fatalf("room:a: %+v", f.Error)
		}
		if f, _ := call(t, ws, map[string]any{"id": 2, "op": "subscribe", "channel": "room:b"}); f.Error == nil || f.Error.Code != "forbidden" {
			t.Fatalf("room:b outside the channels claim: %+v", f)
		}
	})

	log := ts.auditLog(t)
	for _, reason := range []string{"ticket_unknown", "ticket_origin", "ticket_malformed", "csrf_invalid", "session_missing", "apikey_ticket", "origin_missing"} {
		if !strings.Contains(log, `"reason":"`+reason+`"`) {
			t.Errorf("no audit event with reason %s", reason)
		}
	}
	if strings.Contains(log, csrfTok) {
		t.Error("CSRF token in the audit log")
	}
}

// sessionHashOf returns the id hash of the browser's session cookie.
func sessionHashOf(t *testing.T, b *browser) string {
	t.Helper()
	for _, part := range strings.Split(b.cookieHeader(), "; ") {
		if v, ok := strings.CutPrefix(part, "__Host-wsguard="); ok {
			return session.HashID(v)
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestAPIPublish covers K5 and the allowed service-API paths.
func TestAPIPublish(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	key := ts.apiKey(t, "feed", "publish:news:*", "subscribe:news:*")
	ts.addUser("alice", pw, false)
	b := ts.newBrowser()
	alice := b.connect(b.login("alice", pw))
	if f, _ := call(t, alice, map[string]any{"id": 1, "op": "subscribe", "channel": "news:eu"}); f.Error != nil {
		t.Fatal(f.Error)
	}
	msg := `{"channel":"news:eu","data":{"headline":"hi"}}`

	st, m := ts.api(t, "/api/v1/publish", bearerHeader(key), msg)
	if st != 200 || m["offset"] != float64(1) {
		t.Fatalf("publish: %d %v", st, m)
	}
	got := nextMessage(t, alice)
	if got.From != "api:feed" || got.Offset != 1 || got.Channel != "news:eu" {
		t.Fatalf("delivered %+v", got)
	}
	// A JWT may publish where its sub may (room: is open to signed-in users).
	if st, m := ts.api(t, "/api/v1/publish", bearerHeader(k.rs(t, claims("svc", time.Hour))), `{"channel":"room:lobby","data":1}`); st != 200 {
		t.Fatalf("jwt publish: %d %v", st, m)
	}

	rows := []struct {
		name string
		h    http.Header
		body string
		want int
		code string
	}{
		{"scope for news:* publishing to room:x", bearerHeader(key), `{"channel":"room:x","data":1}`, 403, "forbidden"},
		{"scope for news:* publishing to ops:x", bearerHeader(key), `{"channel":"ops:x","data":1}`, 403, "forbidden"},
		{"unknown namespace", bearerHeader(key), `{"channel":"secret:x","data":1}`, 403, "forbidden"},
		{"no credential", nil, msg, 401, "unauthorized"},
		{"basic auth", http.Header{"Authorization": {"Basic YTpi"}}, msg, 401, "unauthorized"},
		{"foreign origin", http.Header{"Authorization": {"Bearer " + key}, "Origin": {"https://evil.example"}}, msg, 403, "forbidden"},
		{"not JSON", bearerHeader(key), `channel=news:eu`, 400, "bad_request"},
		{"unknown field", bearerHeader(key), `{"channel":"news:eu","data":1,"from":"admin"}`, 400, "bad_request"},
		{"trailing data", bearerHeader(key), msg + `{}`, 400, "bad_request"},
		{"no data", bearerHeader(key), `{"channel":"news:eu"}`, 400, "bad_request"},
		{"traversal channel", bearerHeader(key), `{"channel":"news:../x","data":1}`, 400, "bad_request"},
		{"control characters", bearerHeader(key), `{"channel":"news:eu","data":"a\u0000b"}`, 400, "bad_request"},
		{"deep nesting", bearerHeader(key), `{"channel":"news:eu","data":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 400, "bad_request"},
		{"too large", bearerHeader(key), `{"channel":"news:eu","data":"` + strings.Repeat("a", 80<<10) + `"}`, 413, "too_large"},
	}
	for _, tc := range rows {
		st, m := ts.api(t, "/api/v1/publish", tc.h, tc.body)
		if st != tc.want || errCode(m) != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, m, tc.want, tc.code)
		}
	}
	if st, m := ts.api(t, "/api/v1/nothing", bearerHeader(key), `{}`); st != 404 || errCode(m) != "not_found" {
		t.Errorf("unknown endpoint: %d %v", st, m)
	}

	// Nothing refused was stored: the latest offset is still 1.
	if n, _ := ts.srv.Store().Latest(context.Background(), "room:x"); n != 0 {
		t.Fatalf("room:x has %d messages", n)
	}
	if n, _ := ts.srv.Store().Latest(context.Background(), "news:eu"); n != 1 {
		t.Fatalf("news:eu latest %d, want 1", n)
	}

	// A key dialed as a socket, then revoked: closed 4001, then 401.
	ws, st := ts.dialStatus(t, bearerHeader(key), "", "wsguard.v1")
	if st != 101 {
		t.Fatalf("key dial: %d", st)
	}
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "news:eu"}); f.Error != nil {
		t.Fatal(f.Error)
	}
	if f, _ := call(t, ws, map[string]any{"id": 2, "op": "subscribe", "channel": "user:feed"}); f.Error == nil {
		t.Fatal("an API key owns no user: channel")
	}
	if err := RevokeAPIKey(context.Background(), ts.srv.Store(), "feed"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code := closeCode(t, ws); code != 4001 {
		t.Fatalf("revoked key socket closed %d, want 4001", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("revoked key socket closed after %s, want within 1 s", d)
	}
	if st, m := ts.api(t, "/api/v1/publish", bearerHeader(key), msg); st != 401 {
		t.Fatalf("revoked key: %d %v, want 401", st, m)
	}
	if _, st := ts.dialStatus(t, bearerHeader(key), "", "wsguard.v1"); st != 401 {
		t.Fatalf("revoked key dial: %d, want 401", st)
	}
	log := ts.auditLog(t)
	if !strings.Contains(log, `"reason":"apikey_revoked"`) || strings.Contains(log, key) {
		t.Error("revoked key refusal not audited, or the key leaked into the log")
	}
}

// TestAPIDisconnect: a key with a disconnect scope closes a user's sockets
// with 4001; one without is refused 403.
func TestAPIDisconnect(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	ops := ts.apiKey(t, "ops", "disconnect:user:*")
	pub := ts.apiKey(t, "pub", "publish:news:*")
	ws, st := ts.dialStatus(t, bearerHeader(k.rs(t, claims("dave", time.Hour))), "", "wsguard.v1")
	if st != 101 {
		t.Fatal(st)
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		want int
	}{
		{"key without the scope", bearerHeader(pub), `{"user":"dave"}`, 403},
		{"jwt", bearerHeader(k.rs(t, claims("eve", time.Hour))), `{"user":"dave"}`, 403},
		{"empty user", bearerHeader(ops), `{"user":""}`, 400},
		{"control character", bearerHeader(ops), `{"user":"a\nb"}`, 400},
		{"no credential", nil, `{"user":"dave"}`, 401},
	} {
		if got, m := ts.api(t, "/api/v1/disconnect", tc.h, tc.body); got != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, got, m, tc.want)
		}
	}
	if f, _ := call(t, ws, map[string]any{"id": 1, "op": "ping"}); !f.OK {
		t.Fatal("refused disconnects closed the socket")
	}
	if got, m := ts.api(t, "/api/v1/disconnect", bearerHeader(ops), `{"user":"dave"}`); got != 200 || m["ok"] != true {
		t.Fatalf("disconnect: %d %v", got, m)
	}
	if code := closeCode(t, ws); code != 4001 {
		t.Fatalf("close %d, want 4001", code)
	}
}

// TestTokensExpiry covers K3: an expiring push, then 4001 at exp; a refresh
// with a new token for the same subject keeps the socket.
func TestTokensExpiry(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	readPush := func(t *testing.T, ws *websocket.Conn) frame {
		t.Helper()
		f := readFrame(t, ws)
		if f.Push != "expiring" {
			t.Fatalf("got %+v, want an expiring push", f)
		}
		return f
	}

	t.Run("expires", func(t *testing.T) {
		ws, st := ts.dialStatus(t, bearerHeader(k.rs(t, claims("alice", 2*time.Second))), "", "wsguard.v1")
		if st != 101 {
			t.Fatal(st)
		}
		readPush(t, ws)
		start := time.Now()
		if code := closeCode(t, ws); code != 4001 {
			t.Fatalf("close %d, want 4001", code)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("closed after %s", d)
		}
	})
	t.Run("refreshed", func(t *testing.T) {
		c := claims("alice", 2*time.Second)
		c["roles"] = []string{"ops"}
		ws, st := ts.dialStatus(t, bearerHeader(k.rs(t, c)), "", "wsguard.v1")
		if st != 101 {
			t.Fatal(st)
		}
		readPush(t, ws)
		other := claims("mallory", time.Hour)
		other["roles"] = []string{"ops"}
		wider := claims("alice", time.Hour)
		wider["roles"] = []string{"ops", "admin"}
		for i, bad := range []string{k.rs(t, other), k.rs(t, wider), k.rs(t, claims("alice", -time.Hour)), unsigned(t, map[string]any{"alg": "none"}, c)} {
			f, _ := call(t, ws, map[string]any{"id": 10 + i, "op": "refresh", "token": bad})
			if f.Error == nil || f.Error.Code != "forbidden" {
				t.Fatalf("bad refresh %d accepted: %+v", i, f)
			}
		}
		n := claims("alice", time.Hour)
		n["roles"] = []string{"ops"}
		if f, _ := call(t, ws, map[string]any{"id": 2, "op": "refresh", "token": k.rs(t, n)}); !f.OK {
			t.Fatalf("refresh: %+v", f)
		}
		time.Sleep(3 * time.Second)
		if f, _ := call(t, ws, map[string]any{"id": 3, "op": "ping"}); !f.OK {
			t.Fatalf("after the first exp: %+v", f)
		}
	})
}

// TestTokensChannelRules covers A1 to A4 with session users, JWTs and keys.
func TestTokensChannelRules(t *testing.T) {
	ts, k := startTokenServer(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("oscar", pw, false)
	if err := SetUserRoles(context.Background(), ts.srv.Store(), "oscar", []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	ab := ts.newBrowser()
	alice := ab.connect(ab.login("alice", pw))
	bob, st := ts.dialStatus(t, bearerHeader(k.rs(t, claims("bob", time.Hour))), "", "wsguard.v1")
	if st != 101 {
		t.Fatal(st)
	}
	editorClaims := claims("ed", time.Hour)
	editorClaims["roles"] = []string{"editor"}
	editor, st := ts.dialStatus(t, bearerHeader(k.rs(t, editorClaims)), "", "wsguard.v1")
	if st != 101 {
		t.Fatal(st)
	}
	id := 0
	do := func(ws *websocket.Conn, op, ch string) frame {
		id++
		req := map[string]any{"id": id, "op": op, "channel": ch}
		if op == "publish" {
			req["data"] = map[string]any{"text": "x"}
		}
		f, _ := call(t, ws, req)
		return f
	}
	expect := func(name string, f frame, code string) {
		t.Helper()
		switch {
		case code == "" && f.Error != nil:
			t.Errorf("%s: refused %s %s", name, f.Error.Code, f.Error.Message)
		case code != "" && (f.Error == nil || f.Error.Code != code):
			t.Errorf("%s: %+v, want %s", name, f, code)
		}
	}

	// A1: another user's private channel, for every op; the owner may.
	for _, op := range []string{"subscribe", "publish", "history", "presence"} {
		expect("A1 bob "+op+" user:alice", do(bob, op, "user:alice"), "forbidden")
	}
	expect("A1 alice subscribe user:alice", do(alice, "subscribe", "user:alice"), "")
	expect("A1 bob subscribe user:bob (JWT sub owns it)", do(bob, "subscribe", "user:bob"), "")
	expect("A1 alice publish user:alice", do(alice, "publish", "user:alice"), "")
	_ = bob.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, b, err := bob.ReadMessage(); err == nil && bytes.Contains(b, []byte("user:alice")) {
		t.Errorf("A1: bob received %s", b)
	}
	_ = bob.SetReadDeadline(time.Time{})
	bob, _ = ts.dialStatus(t, bearerHeader(k.rs(t, claims("bob", time.Hour))), "", "wsguard.v1") // reset after the deadline

	// A2: subscribe-only namespace; history and presence need their right.
	expect("A2 subscribe feed", do(alice, "subscribe", "feed:prices"), "")
	expect("A2 publish feed", do(alice, "publish", "feed:prices"), "forbidden")
	expect("A2 history feed", do(alice, "history", "feed:prices"), "forbidden")
	expect("A2 presence feed", do(alice, "presence", "feed:prices"), "forbidden")
	expect("A2 editor publish feed", do(editor, "publish", "feed:prices"), "")
	expect("A2 editor history feed", do(editor, "history", "feed:prices"), "")
	expect("A2 unknown namespace", do(alice, "subscribe", "secret:x"), "forbidden")
	expect("A2 ops without role", do(bob, "subscribe", "ops:alerts"), "forbidden")

	// A4: channel grammar.
	for _, ch := range []string{"room:../etc", "room:a..b", "room:*", "room:a*", "room", ":x", "Room:x", "room:a b", "room:a\x00", "room:a\nb", "room:" + strings.Repeat("a", 10<<10), "../room:x", "room:a/b"} {
		expect("A4 "+ch[:min(len(ch), 20)], do(alice, "subscribe", ch), "bad_request")
	}

	// Presence: join and leave pushes, and the presence op.
	expect("presence subscribe alice", do(alice, "subscribe", "room:p"), "")
	expect("presence subscribe bob", do(bob, "subscribe", "room:p"), "")
	f := do(alice, "presence", "room:p")
	var pres struct{ Users []string }
	resultField(t, f, &pres)
	if len(pres.Users) != 2 {
		t.Errorf("presence %v, want alice and bob", pres.Users)
	}

	// A3: role removed while subscribed: the subscription ends, and the
	// old grant is gone on reconnect.
	ob := ts.newBrowser()
	oscar := ob.connect(ob.login("oscar", pw))
	expect("A3 oscar subscribe ops", do(oscar, "subscribe", "ops:alerts"), "")
	if err := SetUserRoles(context.Background(), ts.srv.Store(), "oscar", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code := closeCode(t, oscar); code != 4001 {
		t.Fatalf("A3: close %d, want 4001", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("A3: closed after %s, want within 1 s", d)
	}
	oscar = ob.connect(ob.chatToken())
	expect("A3 oscar resubscribe ops", do(oscar, "subscribe", "ops:alerts"), "forbidden")

	// A key's scopes grant nothing where the namespace has no scope rule.
	key := ts.apiKey(t, "watch", "subscribe:room:*", "subscribe:news:*")
	kws, st := ts.dialStatus(t, bearerHeader(key), "", "wsguard.v1")
	if st != 101 {
		t.Fatal(st)
	}
	expect("key subscribe news", do(kws, "subscribe", "news:eu"), "")
	expect("key subscribe room (no scope rule)", do(kws, "subscribe", "room:p"), "forbidden")
	expect("key publish news (no publish scope)", do(kws, "publish", "news:eu"), "forbidden")
}
