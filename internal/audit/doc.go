// Package audit writes security events as hash-chained JSON lines and
// verifies such a log.
//
// # Format
//
// Each event is one line, a JSON object with the keys seq, ts, type,
// reason, ip, user, fields and prev. seq counts from 1 without gaps; ts is
// RFC 3339 with nanoseconds, UTC; prev is the hex SHA-256 of the previous
// line's bytes (without its newline), or 64 zeros on the first line. Every
// line is the canonical encoding of its record (encoding/json, map keys
// sorted), so Verify can re-encode a line and notice any edit that keeps it
// parseable, whitespace included.
//
// # Threat model
//
// Attackers control much of what is logged: user names, Origin headers,
// channel names (ATTACKS M11). Every string is JSON-encoded (newlines,
// quotes and control characters escaped; invalid UTF-8 replaced), so no
// input can end a line or forge a record. Values that are or look like
// secrets (field names such as password, token, cookie, ticket, csrf, code,
// key, data, body; bearer credentials; JWTs) are replaced by "[redacted]",
// and long values are truncated, so the log neither leaks credentials nor
// grows by megabytes per event.
//
// The chain shows edits, insertions, removals and reordering to anyone who
// runs Verify, but it is not a signature: someone who can write the file
// can rewrite it whole, and dropping lines from the end leaves a valid
// chain. Ship the log off the host (or keep its latest line elsewhere) when
// that matters.
//
// # Failures
//
// Record never returns an error and never panics: a security event must not
// turn into a denial of service. A failed write is counted (Errors), logged
// through slog and reported to Options.OnError; the chain continues from
// the last line that was written. Each record is fsynced before Record
// returns.
//
// # Concurrency
//
// A *Log is safe for concurrent use; records are written in the order
// their callers obtain the log's lock. One file must be written by one
// process at a time.
package audit
