package store

import (
	"context"
	"fmt"
	"time"
)

const sessionColumns = `id_hash, public_id, user_id, username, csrf_secret, twofa_done, created_at, last_seen, ip, user_agent`

func scanSession(r rowScanner) (Session, error) {
	var ss Session
	var done int
	var created, seen string
	if err := r.Scan(&ss.IDHash, &ss.PublicID, &ss.UserID, &ss.Username, &ss.CSRFSecret, &done, &created, &seen, &ss.IP, &ss.UserAgent); err != nil {
		return Session{}, err
	}
	ss.TwoFADone = done != 0
	ss.CreatedAt, ss.LastSeen = parseTime(created), parseTime(seen)
	return ss, nil
}

// CreateSession stores ss. CreatedAt and LastSeen default to the clock.
// A reused IDHash or PublicID answers ErrExists; an unknown user ErrNotFound.
func (s *SQLite) CreateSession(ctx context.Context, ss Session) error {
	if ss.IDHash == "" {
		return fmt.Errorf("store: create session: empty id hash")
	}
	now := s.clk.Now()
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = now
	}
	if ss.LastSeen.IsZero() {
		ss.LastSeen = ss.CreatedAt
	}
	if ss.PublicID == "" {
		ss.PublicID = ss.IDHash // still unique; callers should set an opaque one
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.IDHash, ss.PublicID, ss.UserID, ss.Username, ss.CSRFSecret, boolInt(ss.TwoFADone),
		fmtTime(ss.CreatedAt), fmtTime(ss.LastSeen), ss.IP, ss.UserAgent)
	if err != nil {
		return dbErr("create session", err)
	}
	return nil
}

// SessionByHash answers ErrNotFound for an unknown hash.
func (s *SQLite) SessionByHash(ctx context.Context, idHash string) (Session, error) {
	ss, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = ?`, idHash))
	if err != nil {
		return Session{}, dbErr("session", err)
	}
	return ss, nil
}

// TouchSession moves last_seen forward to seen and writes nothing else, so
// recording activity cannot undo a concurrent change to the session.
func (s *SQLite) TouchSession(ctx context.Context, idHash string, seen time.Time) error {
	at := fmtTime(seen)
	res, err := s.db.ExecContext(ctx,
		`UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?`, at, idHash)
	if err != nil {
		return dbErr("touch session", err)
	}
	return affectedOne(res, "touch session")
}

// DeleteSession answers ErrNotFound when no session had this hash.
func (s *SQLite) DeleteSession(ctx context.Context, idHash string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	if err != nil {
		return dbErr("delete session", err)
	}
	return affectedOne(res, "delete session")
}

// ListSessions returns the user's sessions, oldest first.
func (s *SQLite) ListSessions(ctx context.Context, userID int64) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at, id_hash`, userID)
	if err != nil {
		return nil, dbErr("list sessions", err)
	}
	return collectSessions(rows, "list sessions")
}

// DeleteUserSessions deletes every session of the user except keepHash (in
// one statement) and returns the deleted ones, so the caller can close
// their live sockets.
func (s *SQLite) DeleteUserSessions(ctx context.Context, userID int64, keepHash string) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id_hash <> ? RETURNING `+sessionColumns, userID, keepHash)
	if err != nil {
		return nil, dbErr("delete user sessions", err)
	}
	return collectSessions(rows, "delete user sessions")
}

// DeleteExpiredSessions deletes, in one statement, every session past its
// absolute (created at or before createdBy) or idle (last seen at or before
// seenBy) lifetime and returns them, so the caller can audit each and close
// its live sockets. Times are stored in a fixed-width layout, so comparing
// the text compares the instants.
func (s *SQLite) DeleteExpiredSessions(ctx context.Context, createdBy, seenBy time.Time) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM sessions WHERE created_at <= ? OR last_seen <= ? RETURNING `+sessionColumns,
		fmtTime(createdBy), fmtTime(seenBy))
	if err != nil {
		return nil, dbErr("delete expired sessions", err)
	}
	return collectSessions(rows, "delete expired sessions")
}

type sqlRows interface {
	rowScanner
	Next() bool
	Err() error
	Close() error
}

func collectSessions(rows sqlRows, op string) ([]Session, error) {
	defer rows.Close()
	var out []Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, dbErr(op, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(op, err)
	}
	return out, nil
}
