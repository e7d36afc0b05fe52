// Package hub keeps the live state of one node: which connection is
// subscribed to which channel, who is present, and which connections belong
// to which user and session so that a revocation can close them.
//
// Data path: a publish is handed to the store, which commits it (group
// commit) and calls Committed in offset order; Committed encodes the push
// once and hands the bytes to the broker; the broker delivers them to every
// node's hub (this one included), which gives the same bytes to every local
// subscriber. Subscribers must not block in Deliver: each connection has a
// bounded queue and is cut when it fills.
//
// Concurrency: all methods are safe for concurrent use. Channel subscriber
// sets are sharded by channel name to keep lock contention low.
//
// The hub never imports net/http: transports live in package conn.
package hub
