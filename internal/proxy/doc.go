// Package proxy is wsguard's gateway mode: it relays an existing WebSocket
// backend (the upstream) behind the same handshake guard, sign-in and
// limits as wsguard's own socket.
//
// What it does, in order: the caller (the server) runs the handshake guard;
// Dial then opens the upstream with the verified identity in signed
// headers (identity.go) and the client's own subprotocols minus wsguard's
// credentials; the server upgrades the client with the upstream's choice;
// Conn relays messages both ways (relay.go) until either side ends.
//
// Threat model. The upstream trusts the X-Wsguard-* headers only because
// they carry an HMAC keyed with a secret the client never sees, and a
// timestamp; every X-Wsguard-* header a client sent is dropped, never
// forwarded. Frames from both sides are checked (size before buffering,
// UTF-8 in text frames, with JSONOnly one JSON value per text frame); the
// client's message rate is limited per connection, user and IP; each
// direction has a bounded queue, and a side that does not drain its queue
// within the write timeout is cut (4008), so neither a slow browser nor a
// stalled backend can make the proxy buffer without bound. Messages are
// relayed whole (a fragmented message arrives as one frame); contents are
// never logged, only counted.
//
// Concurrency. Each Conn has a reader per side (one on Serve's goroutine,
// one of its own) and, per side, a flusher started only while something
// is queued for that socket: it is the only goroutine that writes there.
// Relayed messages, pongs, pings and the close frame all go through its
// queue (gorilla's own ping and close handlers, which write, are
// replaced). Close may be called from any goroutine, any number of times.
package proxy
