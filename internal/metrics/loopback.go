package metrics

import (
	"net"
	"net/http"
	"net/netip"
)

// LoopbackOnly serves next only to peers on a loopback address and answers
// 403 to everyone else, so that metrics and admin pages stay private even
// when the admin listener is bound wider than intended. It looks at the
// socket peer (r.RemoteAddr) only; forwarding headers are ignored.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopback(r.RemoteAddr) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopback reports whether remoteAddr ("host:port", or a bare address)
// is a loopback address: 127.0.0.0/8, ::1, or either mapped into IPv6.
// Names, zones and anything unparsable are not.
func IsLoopback(remoteAddr string) bool {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.Unmap().IsLoopback()
}
