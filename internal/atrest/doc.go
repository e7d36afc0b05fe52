// Package atrest guards what wsguard keeps on disk: the data directory
// owner-only (0700), every file wsguard writes owner-only (0600) whatever
// the umask, and the key that seals secrets before they reach the
// database.
//
// # Threat model
//
// Another local user reading the data directory, and anyone holding a
// copy of the database file alone (a backup, a support bundle, a stolen
// disk image of the database volume). Modes are set explicitly rather
// than left to the umask, and an existing directory or file that is
// looser is tightened and reported, so the operator learns that it was
// readable. The sealing key lives in its own file (secrets.key) beside
// the database, never in it: a copy of the database without the key does
// not reveal sealed secrets. A copy of the whole data directory does; so
// does root on the host. Sealing is deterministic (the same secret seals
// to the same text), which lets the store compare sealed values in SQL;
// it reveals only that two sealed values are equal.
//
// # Concurrency
//
// A Sealer is read-only once loaded and safe for concurrent use. The file
// functions are meant for start-up, before anything else opens the files.
package atrest
