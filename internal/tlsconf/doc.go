// Package tlsconf sets up wsguard's transport security: the TLS profiles,
// certificates from files (hot-reloaded), from ACME or from a local
// development CA, the security headers on every response, the plain-HTTP
// redirect listener and the http.Server timeouts.
//
// Threat model: eavesdropping, tampering and downgrade (SECURITY.md T1–T3, M7,
// F7). Only TLS 1.2 with ECDHE and AEAD suites, or TLS 1.3, is offered
// (profile "intermediate"; "modern" is TLS 1.3 only), so a client limited
// to TLS 1.0/1.1, RC4, 3DES or CBC suites cannot complete a handshake.
// ALPN offers http/1.1 only: WebSockets here run over HTTP/1.1. HSTS with a
// two-year max-age rides on every response, 404s included, so a browser
// that has seen the site once never speaks plain HTTP to it again; the
// optional plain-HTTP listener only redirects, to the configured public
// URL, never to the request's Host header (that would be an open
// redirect). A certificate replacement is picked up by new handshakes
// while live connections keep theirs; a broken replacement is refused and
// the old pair kept, so a bad deploy cannot take the listener down.
//
// The development CA is name-constrained to localhost, 127.0.0.0/8 and
// ::1: a user who trusts ca.pem trusts it for nothing else, even if its
// key (stored 0600 in <data_dir>/tls) leaks.
//
// Known gaps: the CSP's connect-src 'self' covers wss:// to the same host
// under CSP Level 3 (Chromium, Firefox, current Safari); WebKit releases
// before 2022 treated 'self' as http(s) only and block the socket.
//
// Concurrency: a Reloader is safe for concurrent use; GetCertificate is a
// lock-free atomic load on the handshake path and Reload/Watch serialise
// on a mutex. EnsureDevCA is not safe against two processes sharing one
// data dir at the same moment (files are replaced atomically, so the
// worst case is one extra re-issue).
package tlsconf
