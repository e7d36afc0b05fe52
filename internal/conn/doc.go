// Package conn runs one WebSocket connection after the handshake guard has
// accepted it: the read loop (limits, strict JSON, authorization on every
// operation, rate limits), the bounded writer, pings, and the deadlines that
// end a connection (idle, credential expiry, absolute lifetime).
//
// Threat model: the peer is untrusted. A message is refused before it is
// buffered past the read limit; text must be valid UTF-8 (1007); requests
// are decoded strictly (unknown fields, trailing data, deep nesting refused);
// every operation is checked against the channel rules, not only subscribe;
// a client that floods is answered rate_limited and then cut (4008); a
// client that does not read is cut when its bounded queue fills (4008), so
// the server's memory never grows with a slow reader.
//
// Concurrency: one goroutine reads and handles requests in order. Writes
// go through a bounded outbox drained by a flusher goroutine that exists
// only while there is something to write; pings and deadlines are timers.
// An idle connection therefore holds one goroutine. Deliver and Revoke may
// be called from any goroutine and never block.
//
// Order: a subscription sends a channel's messages in offset order, each
// once. Deliver drops a message at or below the last offset sent (a repeat,
// or one the subscribe answer or a replay covered). A message past the next
// offset (commits of several nodes reaching this one out of order) turns
// the subscription to catching up: what arrives is held, bounded like the
// outbox, while a goroutine reads the missing offsets from the store and
// sends them, then the held messages (goLive, the same path a subscribe
// with since takes).
package conn
