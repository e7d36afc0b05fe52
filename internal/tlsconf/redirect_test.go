package tlsconf

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRedirect(t *testing.T) {
	for _, tc := range []struct{ public, host, target, want string }{
		{"https://chat.example.com", "chat.example.com", "/a/b?x=1&y=2", "https://chat.example.com/a/b?x=1&y=2"},
		{"https://chat.example.com", "evil.example", "/login", "https://chat.example.com/login"},
		{"https://chat.example.com:8443", "evil.example:80", "/", "https://chat.example.com:8443/"},
		{"https://chat.example.com", "chat.example.com", "//evil.example/x", "https://chat.example.com//evil.example/x"},
		{"https://chat.example.com", "chat.example.com", "http://evil.example/abs?q", "https://chat.example.com/abs?q"},
		{"http://localhost:8080", "x", "/p%20q", "https://localhost:8080/p%20q"},
	} {
		req := httptest.NewRequest("POST", tc.target, nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		RedirectHandler(tc.public).ServeHTTP(rec, req)
		if rec.Code != http.StatusPermanentRedirect {
			t.Errorf("%s: status %d", tc.target, rec.Code)
		}
		if got := rec.Header().Get("Location"); got != tc.want {
			t.Errorf("%s with Host %s: Location %q, want %q", tc.target, tc.host, got, tc.want)
		}
	}
	rec := httptest.NewRecorder()
	RedirectHandler("::bad").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 {
		t.Errorf("misconfigured redirect answered %d", rec.Code)
	}
}

// FuzzRedirectTarget: whatever the request path and query, the redirect
// stays on the configured host.
func FuzzRedirectTarget(f *testing.F) {
	for _, s := range []string{"/", "//evil.example", "/a?b=c", "/%2F%2Fevil", "/\\evil", "@evil.example", "/a#frag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		got := redirectTarget("https://chat.example.com", u)
		if !strings.HasPrefix(got, "https://chat.example.com/") {
			t.Fatalf("%q -> %q", raw, got)
		}
		p, err := url.Parse(got)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", raw, got, err)
		}
		if p.Host != "chat.example.com" || p.Scheme != "https" || p.Fragment != "" {
			t.Fatalf("%q -> %q parses to host %q, fragment %q", raw, got, p.Host, p.Fragment)
		}
	})
}
