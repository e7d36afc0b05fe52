-- What the web UI keeps per user: the rooms joined in the chat (a JSON
-- list of channel names, so a reload or another device opens the same ones),
-- and a two-factor secret shown for enrolment but not yet confirmed (kept
-- so every visit to the enrolment page shows the same QR code until it is
-- confirmed or expires; sealed like users.totp_secret).
CREATE TABLE user_rooms (
	user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	rooms      TEXT    NOT NULL,
	updated_at TEXT    NOT NULL
);

CREATE TABLE totp_pending (
	user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	secret     TEXT    NOT NULL,
	expires_at TEXT    NOT NULL
);
