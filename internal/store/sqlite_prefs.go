package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Rooms returns the chat rooms the user saved; saved is false when the
// user never saved any (the UI then opens its defaults).
func (s *SQLite) Rooms(ctx context.Context, userID int64) (rooms []string, saved bool, err error) {
	var v string
	err = s.db.QueryRowContext(ctx, `SELECT rooms FROM user_rooms WHERE user_id = ?`, userID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, dbErr("rooms", err)
	}
	rooms = decodeList(v)
	if rooms == nil {
		rooms = []string{}
	}
	return rooms, true, nil
}

// SetRooms replaces the user's saved rooms. The caller validates them.
func (s *SQLite) SetRooms(ctx context.Context, userID int64, rooms []string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO user_rooms (user_id, rooms, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET rooms = excluded.rooms, updated_at = excluded.updated_at`,
		userID, encodeList(rooms), fmtTime(s.clk.Now()))
	if err != nil {
		return dbErr("set rooms", err)
	}
	return nil
}

// PendingTOTP returns the user's unconfirmed enrolment secret, storing
// fresh (until expires) when there is none or the one kept expired by now.
// One statement decides, so two tabs opening the enrolment page at once
// both get the same secret.
func (s *SQLite) PendingTOTP(ctx context.Context, userID int64, fresh string, now, expires time.Time) (string, error) {
	sealed, err := s.sealSecret(fresh)
	if err != nil {
		return "", err
	}
	var stored string
	err = s.db.QueryRowContext(ctx, `INSERT INTO totp_pending (user_id, secret, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at
		  WHERE totp_pending.expires_at <= ?
		RETURNING secret`,
		userID, sealed, fmtTime(expires), fmtTime(now)).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		// The kept secret is still valid: the upsert changed nothing.
		err = s.db.QueryRowContext(ctx, `SELECT secret FROM totp_pending WHERE user_id = ?`, userID).Scan(&stored)
	}
	if err != nil {
		return "", dbErr("pending totp", err)
	}
	return s.openSecret(stored), nil
}

// PendingTOTPSecret returns the unconfirmed enrolment secret still valid
// at now, ErrNotFound when there is none.
func (s *SQLite) PendingTOTPSecret(ctx context.Context, userID int64, now time.Time) (string, error) {
	var stored string
	err := s.db.QueryRowContext(ctx, `SELECT secret FROM totp_pending WHERE user_id = ? AND expires_at > ?`,
		userID, fmtTime(now)).Scan(&stored)
	if err != nil {
		return "", dbErr("pending totp", err)
	}
	return s.openSecret(stored), nil
}

// ClearPendingTOTP forgets the unconfirmed enrolment secret (confirmed,
// or two-factor reset); none kept is not an error.
func (s *SQLite) ClearPendingTOTP(ctx context.Context, userID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM totp_pending WHERE user_id = ?`, userID); err != nil {
		return dbErr("clear pending totp", err)
	}
	return nil
}
