package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const userColumns = `id, name, password_hash, admin, disabled, roles, totp_secret, totp_last_step, created_at`

type rowScanner interface{ Scan(dest ...any) error }

func (s *SQLite) scanUser(r rowScanner) (User, error) {
	var u User
	var admin, disabled int
	var roles, created string
	if err := r.Scan(&u.ID, &u.Name, &u.PasswordHash, &admin, &disabled, &roles, &u.TOTPSecret, &u.TOTPLastStep, &created); err != nil {
		return User{}, err
	}
	u.Admin, u.Disabled = admin != 0, disabled != 0
	u.Roles = decodeList(roles)
	u.CreatedAt = parseTime(created)
	u.TOTPSecret = s.openSecret(u.TOTPSecret)
	return u, nil
}

// CreateUser stores u with a new ID; CreatedAt is set from the clock when
// zero. A taken name answers ErrExists.
func (s *SQLite) CreateUser(ctx context.Context, u User) (User, error) {
	if u.Name == "" {
		return User{}, errors.New("store: create user: empty name")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.clk.Now()
	}
	u.CreatedAt = u.CreatedAt.UTC()
	totp, err := s.sealSecret(u.TOTPSecret)
	if err != nil {
		return User{}, err
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, admin, disabled, roles, totp_secret, totp_last_step, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.PasswordHash, boolInt(u.Admin), boolInt(u.Disabled), encodeList(u.Roles), totp, u.TOTPLastStep, fmtTime(u.CreatedAt))
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("create user %q", u.Name), err)
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return User{}, dbErr("create user", err)
	}
	return u, nil
}

// UserByName answers ErrNotFound for an unknown name.
func (s *SQLite) UserByName(ctx context.Context, name string) (User, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("user %q", name), err)
	}
	return u, nil
}

// UserByID answers ErrNotFound for an unknown id.
func (s *SQLite) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("user %d", id), err)
	}
	return u, nil
}

// ListUsers returns every user, oldest first.
func (s *SQLite) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, dbErr("list users", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, dbErr("list users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list users", err)
	}
	return out, nil
}

// SetPassword writes the password hash and nothing else (see Store: a
// column-only write cannot undo a concurrent disable or role change).
func (s *SQLite) SetPassword(ctx context.Context, userID int64, hash string) error {
	return s.setUser(ctx, userID, "set password", `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
}

// SetDisabled writes the disabled flag and nothing else.
func (s *SQLite) SetDisabled(ctx context.Context, userID int64, disabled bool) error {
	return s.setUser(ctx, userID, "set disabled", `UPDATE users SET disabled = ? WHERE id = ?`, boolInt(disabled), userID)
}

// SetRoles writes the roles and nothing else.
func (s *SQLite) SetRoles(ctx context.Context, userID int64, roles []string) error {
	return s.setUser(ctx, userID, "set roles", `UPDATE users SET roles = ? WHERE id = ?`, encodeList(roles), userID)
}

// SetTOTP writes the TOTP secret and its last accepted step. When the
// secret is the one already stored the step never moves backwards, so a
// repeated write cannot reopen a replay window AcceptTOTPStep closed; a new
// secret starts from lastStep.
func (s *SQLite) SetTOTP(ctx context.Context, userID int64, secret string, lastStep int64) error {
	sealed, err := s.sealSecret(secret)
	if err != nil {
		return err
	}
	return s.setUser(ctx, userID, "set totp",
		`UPDATE users SET
		   totp_last_step = CASE WHEN totp_secret = ? THEN MAX(totp_last_step, ?) ELSE ? END,
		   totp_secret = ?
		 WHERE id = ?`,
		sealed, lastStep, lastStep, sealed, userID)
}

// setUser runs one single-row UPDATE of users; no row means ErrNotFound.
func (s *SQLite) setUser(ctx context.Context, userID int64, op, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return dbErr(fmt.Sprintf("%s: user %d", op, userID), err)
	}
	return affectedOne(res, fmt.Sprintf("%s: user %d", op, userID))
}

// AcceptTOTPStep records step as used when it is newer than the last one,
// in one compare-and-set statement, so two concurrent logins with the same
// code cannot both pass. false means replay.
func (s *SQLite) AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, userID, step)
	if err != nil {
		return false, dbErr("accept totp step", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbErr("accept totp step", err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := s.UserByID(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

// AnyAdmin reports whether an admin account exists (disabled or not), so
// first-run setup is offered only on an empty install.
func (s *SQLite) AnyAdmin(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE admin = 1`).Scan(&n); err != nil {
		return false, dbErr("any admin", err)
	}
	return n > 0, nil
}

// SetRecoveryCodes replaces the user's recovery code hashes in one transaction.
func (s *SQLite) SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("set recovery codes", err)
	}
	defer tx.Rollback()
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one); err != nil {
		return dbErr(fmt.Sprintf("set recovery codes: user %d", userID), err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return dbErr("set recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h); err != nil {
			return dbErr("set recovery codes", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return dbErr("set recovery codes", err)
	}
	return nil
}

// UseRecoveryCode deletes the code with this hash; false when none matched.
// The delete is the check, so a code cannot be spent twice concurrently.
func (s *SQLite) UseRecoveryCode(ctx context.Context, userID int64, hash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ? AND hash = ?`, userID, hash)
	if err != nil {
		return false, dbErr("use recovery code", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbErr("use recovery code", err)
	}
	return n == 1, nil
}

// affectedOne turns "no row changed" into ErrNotFound.
func affectedOne(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr(op, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return nil
}
