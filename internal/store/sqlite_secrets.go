package store

import (
	"context"
	"fmt"
)

// Sealer encrypts the secrets the store keeps at rest (TOTP secrets), so a
// copy of the database alone does not give them away. Seal must be
// deterministic, the same plaintext giving the same sealed text, because
// the store compares sealed values in SQL; Seal("") must be "". Open
// returns a value Seal did not produce unchanged with sealed false.
type Sealer interface {
	Seal(plain string) (string, error)
	Open(stored string) (plain string, sealed bool, err error)
}

// sealSecret is the write side of the TOTP secret column.
func (s *SQLite) sealSecret(plain string) (string, error) { return sealWith(s.opts.Sealer, plain) }

// openSecret is the read side of the TOTP secret column (see openWith).
func (s *SQLite) openSecret(stored string) string { return openWith(s.opts.Sealer, stored) }

func sealWith(sl Sealer, plain string) (string, error) {
	if sl == nil {
		return plain, nil
	}
	sealed, err := sl.Seal(plain)
	if err != nil {
		return "", fmt.Errorf("store: seal totp secret: %w", err)
	}
	return sealed, nil
}

// openWith is the read side of the TOTP secret column. A sealed value
// that does not open (another key file) is returned as stored: it is not
// base32, so it matches no code and the user stays locked out of
// two-factor (never let through) until the right key file is restored or
// their two-factor is reset. Seal passes it back unchanged on a write.
func openWith(sl Sealer, stored string) string {
	if sl == nil {
		return stored
	}
	plain, _, err := sl.Open(stored)
	if err != nil {
		return stored
	}
	return plain
}

// SealSecrets seals every TOTP secret an earlier version stored in clear
// and checks that every sealed one opens. It returns how many it sealed
// and the users whose secrets do not open with this key, so the server
// can say so at start rather than at each failed login. A row changes only
// if its column still holds what was read (no lost update against an
// enrolment from another process).
func (s *SQLite) SealSecrets(ctx context.Context) (sealed int, unopened []string, err error) {
	if s.opts.Sealer == nil {
		return 0, nil, nil
	}
	type row struct {
		id           int64
		name, stored string
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, totp_secret FROM users WHERE totp_secret != ''`)
	if err != nil {
		return 0, nil, dbErr("seal totp secrets", err)
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.name, &r.stored); err != nil {
			_ = rows.Close()
			return 0, nil, dbErr("seal totp secrets", err)
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return 0, nil, dbErr("seal totp secrets", err)
	}
	for _, r := range all {
		plain, isSealed, err := s.opts.Sealer.Open(r.stored)
		switch {
		case err != nil:
			unopened = append(unopened, r.name)
			continue
		case isSealed:
			continue
		}
		v, err := s.opts.Sealer.Seal(plain)
		if err != nil {
			return sealed, unopened, fmt.Errorf("store: seal totp secret of user %q: %w", r.name, err)
		}
		res, err := s.db.ExecContext(ctx, `UPDATE users SET totp_secret = ? WHERE id = ? AND totp_secret = ?`, v, r.id, r.stored)
		if err != nil {
			return sealed, unopened, dbErr("seal totp secrets", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			sealed++
		}
	}
	return sealed, unopened, nil
}
