package tlsconf

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHeadersOnEveryResponse(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) })
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	for _, preload := range []bool{false, true} {
		h := Headers(mux, preload)
		for _, path := range []string{"/ok", "/fail", "/no-such-page"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "https://localhost"+path, nil))
			hsts := HSTS
			if preload {
				hsts += "; preload"
			}
			want := map[string]string{
				"Strict-Transport-Security":  hsts,
				"Content-Security-Policy":    CSP,
				"X-Content-Type-Options":     "nosniff",
				"Referrer-Policy":            "no-referrer",
				"X-Frame-Options":            "DENY",
				"Cross-Origin-Opener-Policy": "same-origin",
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s (status %d): %s = %q, want %q", path, rec.Code, k, got, v)
				}
			}
		}
	}
}
