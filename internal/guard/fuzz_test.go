package guard

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandshakeHeaders feeds arbitrary Sec-WebSocket-Protocol,
// Authorization, Connection and Upgrade headers to the parsers the guard
// runs before any check: no panic, at most 8 subprotocols kept, none
// empty or padded, and a bearer token never carries surrounding space.
func FuzzHandshakeHeaders(f *testing.F) {
	f.Add("wsguard.v1, wsguard.csrf.abc", "Bearer x.y.z", "Upgrade", "websocket")
	f.Add(strings.Repeat("a,", 100), "bearer ", "keep-alive, Upgrade", "WebSocket")
	f.Add(" , ,wsguard.v1,, ", "Basic dXNlcjpwdw==", "", "")
	f.Add("wsguard.ticket.", "Bearer", "upgrade,", "websocket, h2c")
	f.Fuzz(func(t *testing.T, protocols, auth, connection, upgrade string) {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Header["Sec-Websocket-Protocol"] = []string{protocols}
		r.Header["Authorization"] = []string{auth}
		r.Header["Connection"] = []string{connection}
		r.Header["Upgrade"] = []string{upgrade}
		ps := offeredProtocols(r)
		if len(ps) > 8 {
			t.Fatalf("%d protocols kept", len(ps))
		}
		for _, p := range ps {
			if p == "" || p != strings.TrimSpace(p) || strings.Contains(p, ",") {
				t.Fatalf("protocol %q", p)
			}
		}
		tok, has := bearerToken(r)
		if has != (auth != "") {
			t.Fatalf("bearer presence %v for %q", has, auth)
		}
		if tok != strings.TrimSpace(tok) {
			t.Fatalf("bearer token %q not trimmed", tok)
		}
		_ = isUpgrade(r)
	})
}
