// Package guard decides, before any upgrade, whether a WebSocket handshake
// may proceed, and is the one home of every credential check wsguard makes:
// session cookies, one-time tickets, JWTs and API keys, for the handshake
// and the service API alike.
//
// Check is the whole handshake pipeline, top to bottom, in a fixed order:
// upgrade well-formed, TLS, ban, Origin, credential, CSRF, limits. The first
// failure answers; every refusal carries the HTTP status, a short public
// message, an audit reason and, for the server's log only, the error that
// caused it.
//
// Credentials.Check is the credential step on its own: one function per
// kind, each with the same shape (what the request presented in, the
// identity or a refusal out). A verdict on the credential (unknown, expired,
// revoked, forged) is 401 or 403 and counts toward the IP's ban; a store
// that cannot answer is 503 "store_unavailable" and never counts, whatever
// the kind: an outage must not look like an attack, nor ban honest users
// who keep reconnecting through it.
//
// Threat model: Cross-Site WebSocket Hijacking (a foreign page opening a
// socket with the victim's cookies), stolen or forged credentials, and
// handshake floods. A cookie-authenticated handshake needs an allowed Origin
// AND the session's CSRF token in the subprotocol list, so it survives an
// allowlist configured too wide. Chromium sends no Sec-Fetch-Site on
// WebSocket handshakes, so that header is a bonus signal, never the defence.
//
// Concurrency: a Guard and a Credentials are safe for concurrent use once
// built; they hold no state of their own beyond what their fields hold.
package guard
