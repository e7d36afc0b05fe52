package tlsconf

import (
	"crypto/tls"
	"net/http"
	"time"
)

// MaxHeaderBytes caps request headers (a 1 MB cookie or token, SECURITY.md K6,
// is answered 431 without being buffered).
const MaxHeaderBytes = 16 << 10

// IdleTimeout closes keep-alive HTTP connections that sit between requests.
const IdleTimeout = 60 * time.Second

// ServerTimeouts hardens srv against slow clients (SECURITY.md M7). handshake
// bounds the TLS handshake plus the request headers and body; zero means
// 10 s. net/http applies the shortest of ReadHeaderTimeout and ReadTimeout
// to the TLS handshake too, so a ClientHello trickled byte by byte is cut.
//
// WriteTimeout stays 0 on purpose: it would be a deadline on the whole
// connection, and hijacked WebSockets live for hours. The WebSocket layer
// sets its own per-write deadline (limits.write_timeout) and its own read
// deadline (limits.idle_timeout); gorilla/websocket clears the deadlines
// net/http left on the connection when it hijacks it.
//
// HTTP/2 is switched off (empty TLSNextProto): WebSockets here use HTTP/1.1
// and the ALPN list offers nothing else.
func ServerTimeouts(srv *http.Server, handshake time.Duration) {
	if handshake <= 0 {
		handshake = 10 * time.Second
	}
	srv.ReadHeaderTimeout = handshake
	srv.ReadTimeout = handshake
	srv.WriteTimeout = 0
	srv.IdleTimeout = IdleTimeout
	srv.MaxHeaderBytes = MaxHeaderBytes
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
}
