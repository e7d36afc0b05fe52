-- A ticket remembers the credential it was minted from, so that redeeming
-- it cannot launder a short-lived, channel-restricted JWT into a longer or
-- wider socket, and so that a session's ticket socket ends with the session.
ALTER TABLE tickets ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN session_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN credential_expires_ns INTEGER NOT NULL DEFAULT 0;
-- NULL: no channel restriction; a JSON list (possibly empty) otherwise.
ALTER TABLE tickets ADD COLUMN channels TEXT;
