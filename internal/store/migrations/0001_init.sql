-- 0001: the first schema. Times are RFC 3339 text with nanoseconds in UTC,
-- except where the database itself compares them (INTEGER Unix nanoseconds).

CREATE TABLE channels (
	name        TEXT PRIMARY KEY,
	last_offset INTEGER NOT NULL,          -- last assigned offset; offsets are gap-free from 1
	oldest      INTEGER NOT NULL DEFAULT 1 -- oldest retained offset (retention moves it up)
) WITHOUT ROWID;

CREATE TABLE messages (
	channel TEXT    NOT NULL,
	off     INTEGER NOT NULL,
	sender  TEXT    NOT NULL,
	ts      TEXT    NOT NULL,
	data    BLOB    NOT NULL,
	cid     TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (channel, off)
) WITHOUT ROWID;

-- dedupe remembers (sender, cid) pairs so a retried publish answers the first result.
CREATE TABLE dedupe (
	sender     TEXT    NOT NULL,
	cid        TEXT    NOT NULL,
	channel    TEXT    NOT NULL,
	off        INTEGER NOT NULL,
	ts         TEXT    NOT NULL,
	created_ns INTEGER NOT NULL,
	PRIMARY KEY (sender, cid)
) WITHOUT ROWID;
CREATE INDEX dedupe_created ON dedupe (created_ns);

CREATE TABLE users (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	name           TEXT    NOT NULL UNIQUE,
	password_hash  TEXT    NOT NULL DEFAULT '',
	admin          INTEGER NOT NULL DEFAULT 0,
	disabled       INTEGER NOT NULL DEFAULT 0,
	roles          TEXT    NOT NULL DEFAULT '[]',
	totp_secret    TEXT    NOT NULL DEFAULT '',
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	created_at     TEXT    NOT NULL
);

CREATE TABLE recovery_codes (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    TEXT    NOT NULL,
	PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;

CREATE TABLE sessions (
	id_hash     TEXT    PRIMARY KEY,
	public_id   TEXT    NOT NULL UNIQUE,
	user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	username    TEXT    NOT NULL,
	csrf_secret TEXT    NOT NULL,
	twofa_done  INTEGER NOT NULL DEFAULT 0,
	created_at  TEXT    NOT NULL,
	last_seen   TEXT    NOT NULL,
	ip          TEXT    NOT NULL DEFAULT '',
	user_agent  TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL UNIQUE,
	hash       TEXT    NOT NULL UNIQUE,
	scopes     TEXT    NOT NULL DEFAULT '[]',
	created_at TEXT    NOT NULL,
	revoked    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tickets (
	hash       TEXT    PRIMARY KEY,
	subject    TEXT    NOT NULL,
	roles      TEXT    NOT NULL DEFAULT '[]',
	origin     TEXT    NOT NULL DEFAULT '',
	expires_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tickets_expires ON tickets (expires_ns);

CREATE TABLE revocations (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id TEXT    NOT NULL DEFAULT '',
	username   TEXT    NOT NULL DEFAULT '',
	reason     TEXT    NOT NULL DEFAULT '',
	created_at TEXT    NOT NULL
);
