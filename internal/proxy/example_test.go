package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsguard/wsguard/internal/proxy"
)

// A Go backend behind `wsguard proxy` verifies the identity headers on the
// handshake request before upgrading it.
func ExampleVerify() {
	secret := []byte("0123456789abcdef0123456789abcdef") // the proxy.identity_secret_file bytes
	backend := func(w http.ResponseWriter, r *http.Request) {
		id, err := proxy.Verify(secret, r.Header, time.Now(), 30*time.Second)
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Println("verified:", id.User, id.Roles, id.Credential)
		// ... upgrade the request with any WebSocket library.
	}

	// What wsguard sends, and a forgery.
	signed, _ := proxy.Sign(secret, proxy.Identity{User: "alice", Roles: []string{"ops"}, Credential: "session"}, time.Now())
	for _, h := range []http.Header{signed, {"X-Wsguard-User": {"mallory"}}} {
		r := httptest.NewRequest("GET", "/socket", nil)
		r.Header = h
		w := httptest.NewRecorder()
		backend(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// verified: alice [ops] session
	// 200
	// 403
}
