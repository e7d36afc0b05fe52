// Package client is the Go client for wsguard, in a module of its own
// (github.com/wsguard/wsguard/clients/go) whose only dependency is
// gorilla/websocket. It dials wss:// with a one-time ticket, a JWT or an
// API key (Config.Token), or a signed-in session's cookie and CSRF token
// (Config.Session); keeps the connection up with exponential backoff and
// jitter; resumes every subscription with `since` after a reconnect (no
// message lost or repeated while the server retains it; past retention,
// or for a credential without the history right, which since needs, a Gap
// marker says to read History); refreshes a JWT when the server announces
// its expiry; sends every publish with a cid and sends it again after a
// reconnect, so it is stored exactly once; bounds every request by
// RequestTimeout; and reports errors typed: *Error (the server's code),
// *CloseError (the close code), *HandshakeError (the HTTP status).
//
// Threat model: the network between client and server is hostile. The
// client verifies the server certificate against Config.RootCAs (or the
// system roots) and, with Config.PinSPKI, additionally requires the leaf's
// public key to be one of the pinned ones, so a proxy presenting a
// certificate from another trusted CA is refused too (threat T5 in docs/SECURITY.md). Plain
// ws:// is refused unless InsecurePlaintext is set. Credentials are sent
// only in the handshake (Authorization or the ticket subprotocol) and in
// refresh requests; the client never logs them.
//
// Concurrency: every method of Client is safe for concurrent use. Messages
// are delivered in order, per connection, on the channel Messages returns;
// a program that stops reading it stalls the connection, and the server
// then cuts it as a slow consumer (4008) — after which the client
// reconnects and resumes.
package client
