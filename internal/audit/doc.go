// Package audit writes security events as MAC-chained JSON lines and
// verifies such a log.
//
// # Format
//
// Each event is one line, a JSON object with the keys seq, ts, type,
// reason, ip, user, fields and mac. seq counts from 1 without gaps; ts is
// RFC 3339 with nanoseconds, UTC; mac is the hex HMAC-SHA256, under the
// chain's key, of the previous line's mac (64 zeros before the first line),
// a newline, and the line's record without its mac. Every line is the
// canonical encoding of its record (encoding/json, map keys sorted), so
// Verify can re-encode a line and notice any edit that keeps it parseable,
// whitespace included.
//
// The key (32 random bytes, hex, in its own file, mode 0600, made on first
// use) never appears in the log. After each line is fsynced, a signed head
// (its seq, and an HMAC over that seq and the line's mac) is saved in the
// store (Heads), apart from the log.
//
// # Threat model
//
// Attackers control much of what is logged: user names, Origin headers,
// channel names. Every string is JSON-encoded (newlines, quotes and control
// characters escaped; invalid UTF-8 replaced), so no input can end a line
// or forge a record. Values that are or look like secrets (field names
// such as password, token, cookie, ticket, csrf, code, key, data, body;
// bearer credentials; JWTs) are replaced by "[redacted]", and long values
// are truncated, so the log neither leaks credentials nor grows by
// megabytes per event.
//
// Against someone who can write the log but not read the key, Verify names
// the first bad line of: an edited line (the last one included), a removed
// or duplicated line, a reordered pair, and a chain rewritten without the
// key. With the head it also names lines cut off the end (a truncated
// tail) and a log replaced by another chain written with the key.
//
// What it does not stop: whoever can read the key can write a chain that
// verifies, and whoever can also write the store can move the head to
// match (so keep the key where those who may edit the log cannot read it).
// Whoever can write the store can roll the head back to a value it held
// before (a restored backup does that), which hides lines cut after it.
// Nothing in the log stops it being deleted; that, at least, shows.
//
// # Breaks
//
// Open and every Record check the end of the log against the key and the
// head before continuing the chain: the line the head names must be there,
// be that line, and every line after it must verify. A log that does not
// match is never continued over: it is moved aside unchanged to
// FILE.broken-TIME, and a new chain starts whose first line is an
// "audit.chain_broken" event saying what was found, the break is logged at
// error level and reported to Options.OnBreak. Only the end of the log is
// checked there; the whole of it is Verify's job.
//
// # Failures
//
// Record never returns an error and never panics: a security event must not
// turn into a denial of service. A failed write, or a failed save of the
// head, is counted (Errors), logged through slog and reported to
// Options.OnError. Each record is fsynced before its head is saved, and
// before Record returns. A head that could not be saved lags behind the
// log; lines after it still verify under the key, and the next save
// catches it up.
//
// # Concurrency
//
// A *Log is safe for concurrent use; records are written in the order
// their callers obtain the log's lock. Several processes (a server and the
// CLI) may write one log: each append takes an exclusive flock on
// FILE.lock, picks up the chain and the head where the other left them,
// and follows the file to a new segment another process started.
package audit
