package store

import (
	"context"
	"fmt"
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

// UpdateSession rewrites the mutable fields (CSRFSecret, TwoFADone,
// LastSeen, IP, UserAgent) of the session with ss.IDHash.
func (s *SQLite) UpdateSession(ctx context.Context, ss Session) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE sessions SET csrf_secret = ?, twofa_done = ?, last_seen = ?, ip = ?, user_agent = ? WHERE id_hash = ?`,
		ss.CSRFSecret, boolInt(ss.TwoFADone), fmtTime(ss.LastSeen), ss.IP, ss.UserAgent, ss.IDHash)
	if err != nil {
		return dbErr("update session", err)
	}
	return affectedOne(res, "update session")
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
