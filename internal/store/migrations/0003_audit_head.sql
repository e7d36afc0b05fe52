-- The audit log's signed head: the last sequence number written and a MAC
-- over it, kept apart from the log so that cutting lines off the end of the
-- log, or replacing it, shows. One row per chain (named by its key).
CREATE TABLE audit_heads (
	chain      TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL,
	sig        TEXT    NOT NULL,
	updated_at TEXT    NOT NULL
) WITHOUT ROWID;
