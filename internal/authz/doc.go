// Package authz decides who may subscribe, publish, read history and see
// presence in which channel. It is pure: no I/O, no HTTP, no clock. The
// connection layer calls ParseChannel on every channel name a client sends
// and Rules.Allow on every operation, not only at subscribe time, so a rule
// or role change takes effect on the next check.
//
// # Threat model
//
//   - Reading or writing another user's private channel (SECURITY.md A1):
//     user:<name> belongs to the principal called name ("owner"), and a
//     configuration that opens the user namespace to every user is refused by
//     New.
//   - Acting beyond a grant (A2, K5): each action is checked separately;
//     nothing is allowed unless a rule for that action in that namespace
//     names the principal; unknown namespaces are closed (deny by default).
//     An API key scope names one action, one namespace and an exact name or
//     a trailing-* prefix; publish:news:* never reaches room:x.
//   - A scope that grants nothing: CheckScope tells the command creating an
//     API key that no rule honours a scope, and names the config key that
//     would, instead of leaving a key that is refused on every use.
//   - Reaching data by a side door (A5): callers check every right an
//     operation exercises (subscribe with since also needs History;
//     presence pushes need Presence), not only the operation's own.
//   - Hostile names (A4): the channel grammar is a short allowlist of bytes
//     checked by hand, bounded in length, with no "..", so names are safe in
//     logs, keys and paths elsewhere.
//
// # Concurrency
//
// Rules is immutable after New and safe for concurrent use. ParseChannel,
// MatchScope and Channel's methods are pure.
package authz
