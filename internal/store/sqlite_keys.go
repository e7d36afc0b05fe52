package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const apiKeyColumns = `id, name, hash, scopes, created_at, revoked` // #nosec G101 -- column names, not a credential

func scanAPIKey(r rowScanner) (APIKey, error) {
	var k APIKey
	var scopes, created string
	var revoked int
	if err := r.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &created, &revoked); err != nil {
		return APIKey{}, err
	}
	k.Scopes = decodeList(scopes)
	k.CreatedAt = parseTime(created)
	k.Revoked = revoked != 0
	return k, nil
}

// CreateAPIKey stores k with a new ID. A taken name (or hash) answers ErrExists.
func (s *SQLite) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if k.Name == "" || k.Hash == "" {
		return APIKey{}, errors.New("store: create api key: empty name or hash")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.clk.Now()
	}
	k.CreatedAt = k.CreatedAt.UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (name, hash, scopes, created_at, revoked) VALUES (?, ?, ?, ?, ?)`,
		k.Name, k.Hash, encodeList(k.Scopes), fmtTime(k.CreatedAt), boolInt(k.Revoked))
	if err != nil {
		return APIKey{}, dbErr(fmt.Sprintf("create api key %q", k.Name), err)
	}
	if k.ID, err = res.LastInsertId(); err != nil {
		return APIKey{}, dbErr("create api key", err)
	}
	return k, nil
}

// APIKeyByHash returns the key with this hash, revoked or not: the caller
// must refuse a key with Revoked set. Unknown hashes answer ErrNotFound.
func (s *SQLite) APIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return APIKey{}, dbErr("api key", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *SQLite) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, dbErr("list api keys", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, dbErr("list api keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list api keys", err)
	}
	return out, nil
}

// RevokeAPIKey marks the named key revoked; ErrNotFound for an unknown name.
// The row stays so the name cannot be silently reused for another key.
func (s *SQLite) RevokeAPIKey(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked = 1 WHERE name = ?`, name)
	if err != nil {
		return dbErr(fmt.Sprintf("revoke api key %q", name), err)
	}
	return affectedOne(res, fmt.Sprintf("revoke api key %q", name))
}

// CreateTicket stores t and purges expired tickets, so unredeemed tickets
// cannot pile up. A reused hash answers ErrExists.
func (s *SQLite) CreateTicket(ctx context.Context, t Ticket) error {
	if t.Hash == "" || t.ExpiresAt.IsZero() {
		return errors.New("store: create ticket: empty hash or expiry")
	}
	now := unixNanos(s.clk.Now())
	if _, err := s.db.ExecContext(ctx, `DELETE FROM tickets WHERE expires_ns <= ?`, now); err != nil {
		return dbErr("create ticket", err)
	}
	var channels any // NULL: unrestricted
	if t.Channels != nil {
		channels = encodeList(t.Channels)
	}
	var credExp int64
	if !t.CredExpires.IsZero() {
		credExp = unixNanos(t.CredExpires)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tickets (hash, subject, roles, origin, expires_ns, kind, session_hash, credential_expires_ns, channels)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.Subject, encodeList(t.Roles), t.Origin, unixNanos(t.ExpiresAt), t.Kind, t.SessionHash, credExp, channels)
	if err != nil {
		return dbErr("create ticket", err)
	}
	return nil
}

// TakeTicket deletes and returns the ticket in one statement, so two
// handshakes racing with the same ticket cannot both get it. A second call,
// or an expired ticket (deleted all the same), answers ErrNotFound.
func (s *SQLite) TakeTicket(ctx context.Context, hash string) (Ticket, error) {
	var t Ticket
	var roles string
	var exp, credExp int64
	var channels sql.NullString
	err := s.db.QueryRowContext(ctx, `DELETE FROM tickets WHERE hash = ?
		RETURNING hash, subject, roles, origin, expires_ns, kind, session_hash, credential_expires_ns, channels`, hash).
		Scan(&t.Hash, &t.Subject, &roles, &t.Origin, &exp, &t.Kind, &t.SessionHash, &credExp, &channels)
	if err != nil {
		return Ticket{}, dbErr("take ticket", err)
	}
	t.Roles = decodeList(roles)
	t.ExpiresAt = timeFromNanos(exp)
	if credExp != 0 {
		t.CredExpires = timeFromNanos(credExp)
	}
	if channels.Valid {
		t.Channels = decodeList(channels.String)
		if t.Channels == nil {
			t.Channels = []string{}
		}
	}
	if !s.clk.Now().Before(t.ExpiresAt) {
		return Ticket{}, fmt.Errorf("store: take ticket: expired: %w", ErrNotFound)
	}
	return t, nil
}

// AddRevocation records r with a new ID; CreatedAt defaults to the clock.
func (s *SQLite) AddRevocation(ctx context.Context, r Revocation) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.clk.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO revocations (session_id, username, reason, created_at) VALUES (?, ?, ?, ?)`,
		r.SessionID, r.User, r.Reason, fmtTime(r.CreatedAt))
	if err != nil {
		return dbErr("add revocation", err)
	}
	return nil
}

// RevocationsAfter returns revocations with ID > after, oldest first (at
// most MaxLimit per call; poll again for more).
func (s *SQLite) RevocationsAfter(ctx context.Context, after int64) ([]Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, session_id, username, reason, created_at FROM revocations WHERE id > ? ORDER BY id LIMIT ?`, after, MaxLimit)
	if err != nil {
		return nil, dbErr("revocations", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var created string
		if err := rows.Scan(&r.ID, &r.SessionID, &r.User, &r.Reason, &created); err != nil {
			return nil, dbErr("revocations", err)
		}
		r.CreatedAt = parseTime(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("revocations", err)
	}
	return out, nil
}

// LastRevocationID is where a starting server begins polling (0: none yet).
func (s *SQLite) LastRevocationID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM revocations`).Scan(&id); err != nil {
		return 0, dbErr("last revocation id", err)
	}
	return id, nil
}
