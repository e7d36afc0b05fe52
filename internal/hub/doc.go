// Package hub keeps the live state of one node: which connection is
// subscribed to which channel, who is present, and which connections belong
// to which user and session so that a revocation can close them.
//
// Data path: a publish is handed to the store, which commits it (group
// commit) and calls Committed in offset order; Committed passes the commit
// to the fan-out goroutine (a bounded backlog, so the committer never waits
// for a fan-out and memory never grows with one). Fan-out takes every commit
// waiting, encodes each push once, and hands the broker one batch per
// channel; the broker delivers it to every node's hub (this one included),
// which gives the same bytes to every local subscriber in one call, so a
// burst costs a subscriber one wake-up and usually one write. Subscribers
// must not block in Deliver: each connection has a bounded queue and is
// cut when it fills.
//
// Presence pushes (joins and leaves) reveal who is in a channel, as the
// presence request does, so they go only to subscribers registered as
// holding the presence right there (Subscribe's seesPresence); messages go
// to every subscriber. They are gathered per channel for PresenceInterval
// and sent as one push, so a crowd joining costs each subscriber one push,
// not one per arrival (presence.go).
//
// Concurrency: all methods are safe for concurrent use. Channel subscriber
// sets are sharded by channel name to keep lock contention low.
//
// The hub never imports net/http: transports live in package conn.
package hub
