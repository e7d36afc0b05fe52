// Package client is the Go client for wsguard: it dials wss:// with a
// one-time ticket, a JWT or an API key, keeps the connection up with
// exponential backoff, resumes every subscription with `since` after a
// reconnect (no message lost or repeated while the server retains it; a
// credential without the history right, which since needs, resumes live
// after a Gap marker), and refreshes a JWT when the server announces its
// expiry.
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
