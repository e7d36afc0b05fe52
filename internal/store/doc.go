// SQLite implementation notes (the package overview is in store.go).
//
// # SQLite
//
// OpenSQLite opens the embedded store: modernc.org/sqlite (pure Go), WAL
// journal, synchronous=FULL, foreign keys on, writers taking the lock up
// front (BEGIN IMMEDIATE) and waiting BusyTimeout for it. Schema changes are
// the numbered files in migrations/, embedded in the binary and applied at
// open; schema_version records the last one applied.
//
// # Threat model
//
//   - A false acknowledgement (SECURITY.md F1, F6): Publish answers only after
//     COMMIT returned with synchronous=FULL, so an acknowledged message
//     survives kill -9 and power loss. Any failure (disk full, lock held past
//     BusyTimeout, I/O error) rolls the whole batch back and answers every
//     caller in it with an error wrapping ErrUnavailable.
//   - Duplicates on retry (F3): a (From, CID) pair is remembered for
//     DedupeWindow, across batches and within one; a repeat answers the
//     first offset and stores nothing. The window bounds the table a flood
//     of unique cids could grow.
//   - Races on one-time credentials (K4, I4): TakeTicket is one DELETE ...
//     RETURNING, UseRecoveryCode one DELETE, AcceptTOTPStep one compare-and-
//     set UPDATE; two concurrent uses cannot both succeed.
//   - Lost updates (I8): there is no whole-row user or session update.
//     SetPassword, SetDisabled, SetRoles and SetTOTP each write their own
//     columns in one statement, and TouchSession only moves last_seen
//     forward, so an action that read a row earlier (a password change
//     waiting on argon2) cannot write back fields another action changed.
//   - Ended sessions kept: DeleteExpiredSessions removes every session past
//     a lifetime in one statement, so the server's sweep keeps no ended
//     session's IP or user agent.
//   - Unbounded reads: Since and History clamp limit to MaxLimit (1000).
//   - A disk filled through one channel: with Retention set, each channel
//     keeps at most its Size messages for its TTL. Size is enforced at
//     commit, age by a sweep every PruneInterval; each deletes at most
//     prunePerChannel messages of a channel (a sweep pass pruneBudget in
//     all, over at most sweepChannels channels), so pruning never holds the
//     write lock for long. Only the oldest messages go and offsets are never
//     reused: what is kept stays gap-free, and Since reports a reader that
//     asks from before it.
//   - Secrets: only hashes computed by callers are stored, except TOTP
//     secrets, which the server needs back: with SQLiteOptions.Sealer they
//     are sealed on the way in and opened on the way out (sqlite_secrets.go),
//     so a copy of the database file alone does not give them away.
//     Nothing here logs.
//   - Other local users (I9): the database file is created 0600
//     before SQLite opens it, so its -wal and -shm files (which SQLite
//     creates with the database's mode) are 0600 too, whatever the umask.
//
// # Concurrency
//
// Every method is safe for concurrent use. Publishes are queued to one
// committer goroutine that owns a dedicated connection: it takes every
// queued publish (up to MaxBatch), assigns gap-free per-channel offsets
// from the channels table, commits once, calls OnCommit with the stored
// messages in offset order, then answers the callers. The retention sweep
// runs on the same goroutine between commits, so nothing else ever writes
// messages or channel offsets. Other writes run on
// the pooled connections and serialise in SQLite. Close stops taking
// publishes, commits (or fails with ErrUnavailable) everything queued,
// and only then closes the database.
//
// # PostgreSQL
//
// OpenPostgres opens the store several nodes share, through a pgx pool.
// Migrations (pgmigrations/) run at open under pg_advisory_lock, so nodes
// starting together migrate once. Times are BIGINT Unix nanoseconds, so
// both stores keep them to the nanosecond.
//
// Each node group-commits its own publishes as SQLite does (one committer
// goroutine, one transaction per batch), and the database keeps offsets
// gap-free between nodes: a batch claims its (From, CID) pairs with INSERT
// ... ON CONFLICT (waiting on another node's open claim, taking over one
// past the window), then reserves each channel's offsets with one UPDATE
// ... RETURNING that locks the channel's row to the end of the
// transaction. Pairs, then channels, are locked in sorted order, so two
// nodes' batches never deadlock. A failure rolls the whole batch back and
// answers ErrUnavailable: no offset is consumed. The retention sweep locks
// channel rows with SKIP LOCKED, passing over a channel another node is
// committing to. One-time credentials are single statements (DELETE ...
// RETURNING, compare-and-set UPDATE), and AddRevocation locks its table so
// ids become visible in order to pollers on every node. OnCommit reports
// only this node's commits; the broker carries them to other nodes.
//
// (This comment is detached on purpose: the package doc is in store.go.)

package store
