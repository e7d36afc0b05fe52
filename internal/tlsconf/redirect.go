package tlsconf

import (
	"net/http"
	"net/url"
	"strings"
)

// RedirectHandler answers every request on the optional plain-HTTP
// listener with 308 to the same path and query on publicURL's host over
// https. The target host comes from the configuration only, never from the
// request's Host header, which an attacker controls (an open redirect). If
// publicURL has no host the handler answers 500 to every request.
func RedirectHandler(publicURL string) http.Handler {
	base, err := url.Parse(publicURL)
	if err != nil || base.Host == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "redirect listener misconfigured", http.StatusInternalServerError)
		})
	}
	origin := "https://" + base.Host
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", redirectTarget(origin, r.URL))
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

// redirectTarget joins origin with u's escaped path and query. The path
// always starts with "/", so the result always begins with origin + "/".
func redirectTarget(origin string, u *url.URL) string {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	t := origin + p
	// A request target never carries a fragment, but a raw request line
	// may hold a '#', which the parser leaves in the query: drop it and
	// what follows rather than send a Location a client reads differently.
	q, _, _ := strings.Cut(u.RawQuery, "#")
	if q != "" {
		t += "?" + q
	}
	return t
}
