package tlsconf

import "net/http"

// Header values set on every response.
const (
	HSTS = "max-age=63072000; includeSubDomains"
	// CSP allows only the site's own scripts, styles and connections: user
	// text can never run as script (SECURITY.md C6) and no page can frame ours
	// (C7). connect-src 'self' covers wss:// to the same host in CSP Level 3.
	CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// Headers sets the security headers on every response next writes, errors
// and 404s included, before next runs, so no handler can forget them. With
// hstsPreload the HSTS header also asks for the browsers' preload list (a
// commitment that is slow to undo, hence opt-in).
func Headers(next http.Handler, hstsPreload bool) http.Handler {
	hsts := HSTS
	if hstsPreload {
		hsts += "; preload"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", hsts)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
