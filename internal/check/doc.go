// Package check is the scanner behind `wsguard check`: it probes one
// WebSocket endpoint, wsguard's or anyone's, for the weaknesses that let a
// foreign page ride a user's socket (Origin not checked), let a network
// attacker read or alter it (plain ws://, old TLS, a bad certificate, no
// HSTS), leak a credential (a token echoed in Sec-WebSocket-Protocol, a loose
// cookie), or let one client exhaust the server (no size, inflate, rate or
// idle limit). Each finding has a stable id (WS-ORIGIN-FOREIGN, ...), a
// severity, the evidence (the request made and the answer, in short) and a
// fix naming what to change.
//
// # Gentle and bounded
//
// A scan is a fixed list of checks run one after another, never in
// parallel, against the one host and port of the target URL (the plain
// ws:// twin of a wss:// URL on port 443 is tried on port 80 of the same
// host). Redirects are never followed and no link is crawled. Every step has
// a timeout (Options.StepTimeout), and the traffic the scanner sends is held
// to Budget: at most DefaultBudget connections, frames and bytes per run. A
// send that would cross it is not made and the check says so. A check that
// could not be made is reported as skipped with the reason, never as passed.
//
// # What it cannot tell
//
// The scanner sees only answers on the wire. "Accepted" means the server
// answered or kept the connection open after the message; a server that
// silently drops oversized or excess messages without closing looks like
// one that accepts them, which the evidence says. The scanner carries only
// the credential it is given and never signs in.
//
// # Concurrency
//
// Run is safe to call from several goroutines; each call has its own state.
package check
