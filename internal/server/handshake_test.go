package server

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

const pw = "correct horse battery staple"

// TestHandshakeGuard covers SECURITY.md C2, C3, C4 and the 401 path from the
// attacker's side, and the accepted handshake from the user's side.
func TestHandshakeGuard(t *testing.T) {
	ts := startServer(t, nil)
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	alice := ts.newBrowser()
	tok := alice.login("alice", pw)
	bob := ts.newBrowser()
	bobTok := bob.login("bob", pw)
	anon := ts.newBrowser()
	own := ts.url
	port := strings.TrimPrefix(ts.host, "localhost:")

	tests := []struct {
		name      string
		b         *browser
		origin    string
		protocols []string
		header    map[string]string
		want      int
	}{
		{"allowed", alice, own, []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 101},
		{"origin missing", alice, "", []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"origin null", alice, "null", []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"foreign origin", alice, "https://evil.example", []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"other scheme", alice, "http://localhost:" + port, []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"other port", alice, "https://localhost:1", []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"suffix look-alike", alice, "https://localhost:" + port + ".evil.example", []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"prefix look-alike", alice, "https://evillocalhost:" + port, []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"127.0.0.1 is another origin", alice, "https://127.0.0.1:" + port, []string{"wsguard.v1", "wsguard.csrf." + tok}, nil, 403},
		{"sec-fetch-site cross-site", alice, own, []string{"wsguard.v1", "wsguard.csrf." + tok}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"no csrf token", alice, own, []string{"wsguard.v1"}, nil, 403},
		{"wrong csrf token", alice, own, []string{"wsguard.v1", "wsguard.csrf.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, nil, 403},
		{"another session's csrf token", alice, own, []string{"wsguard.v1", "wsguard.csrf." + bobTok}, nil, 403},
		{"no credential", anon, own, []string{"wsguard.v1"}, nil, 401},
		{"no subprotocol", alice, own, []string{"wsguard.csrf." + tok}, nil, 400},
		{"garbage cookie", anon, own, []string{"wsguard.v1", "wsguard.csrf." + tok}, map[string]string{"Cookie": "__Host-wsguard=" + strings.Repeat("A", 43)}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if c := tc.b.cookieHeader(); c != "" {
				h.Set("Cookie", c)
			}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			ws, resp, err := ts.dial(h, tc.origin, tc.protocols...)
			if tc.want == 101 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer ws.Close()
				if ws.Subprotocol() != "wsguard.v1" {
					t.Fatalf("subprotocol %q, want wsguard.v1 (never the credential)", ws.Subprotocol())
				}
				if got := resp.Header.Get("Sec-Websocket-Protocol"); got != "wsguard.v1" {
					t.Fatalf("server echoed %q", got)
				}
				f, _ := call(t, ws, map[string]any{"id": 1, "op": "ping"})
				if !f.OK {
					t.Fatalf("ping failed: %+v", f)
				}
				return
			}
			if err == nil {
				ws.Close()
				t.Fatalf("accepted, want %d", tc.want)
			}
			if resp == nil || resp.StatusCode != tc.want {
				got := 0
				if resp != nil {
					got = resp.StatusCode
				}
				t.Fatalf("status %d, want %d (%v)", got, tc.want, err)
			}
		})
	}

	// Every refusal is one audit event with its reason, and no secret in it.
	logBytes, err := os.ReadFile(ts.cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	log := string(logBytes)
	for _, reason := range []string{"origin_missing", "origin_null", "origin_not_allowed", "cross_site_fetch", "csrf_invalid", "session_missing", "subprotocol_missing"} {
		if !strings.Contains(log, `"reason":"`+reason+`"`) {
			t.Errorf("no audit event with reason %s", reason)
		}
	}
	if strings.Contains(log, tok) || strings.Contains(log, bobTok) {
		t.Error("a CSRF token leaked into the audit log")
	}
}

// TestTransport covers T1, T3, T4 and C7.
func TestTransport(t *testing.T) {
	ts := startServer(t, nil)

	// T1: plain HTTP to the TLS port gets no upgrade.
	c, err := net.Dial("tcp", strings.Replace(ts.host, "localhost", "127.0.0.1", 1))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET /ws HTTP/1.1\r\nHost: " + ts.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if strings.Contains(line, "101") || !strings.Contains(line, "400") {
		t.Fatalf("plain HTTP answered %q, want 400", line)
	}

	// T2 (smoke; tlsconf tests cover every suite): TLS 1.1 refused.
	_, err = tls.Dial("tcp", ts.host, &tls.Config{RootCAs: ts.roots, MaxVersion: tls.VersionTLS11, ServerName: "localhost"})
	if err == nil {
		t.Fatal("TLS 1.1 accepted")
	}

	// T3, C7: headers on every response, 404 and /healthz included.
	b := ts.newBrowser()
	for _, path := range []string{"/healthz", "/nope", "/login", "/static/app.js"} {
		resp, _ := b.get(path)
		if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=63072000") {
			t.Errorf("%s: HSTS %q", path, hsts)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: nosniff/referrer-policy missing", path)
		}
	}

	// T4: cookie attributes.
	ts.addUser("carol", pw, false)
	tok := b.formToken("/login")
	req, _ := http.NewRequest("POST", ts.url+"/login", strings.NewReader("username=carol&password="+strings.ReplaceAll(pw, " ", "+")+"&csrf_token="+tok))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.url)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(sc, "__Host-wsguard=") {
			continue
		}
		found = true
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(sc, attr) {
				t.Errorf("session cookie lacks %s: %s", attr, sc)
			}
		}
		if strings.Contains(strings.ToLower(sc), "domain=") {
			t.Errorf("session cookie has a Domain: %s", sc)
		}
	}
	if !found {
		t.Fatalf("no session cookie set (status %d)", resp.StatusCode)
	}
}
