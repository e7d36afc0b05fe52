package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// The account side of the PostgreSQL store: the same statements as
// SQLite's, each a single statement (or one transaction) so that the rules
// of the threat model hold between nodes: a ticket is taken by one DELETE
// ... RETURNING, a TOTP step by one compare-and-set UPDATE, a recovery code
// by one DELETE, whichever node asks.

const pgUserColumns = `id, name, password_hash, admin, disabled, roles, totp_secret, totp_last_step, created_ns`

func (s *Postgres) scanUser(r pgx.Row) (User, error) {
	var u User
	var roles string
	var created int64
	if err := r.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &u.Disabled, &roles, &u.TOTPSecret, &u.TOTPLastStep, &created); err != nil {
		return User{}, err
	}
	u.Roles = decodeList(roles)
	u.CreatedAt = timeFromNanos(created)
	u.TOTPSecret = openWith(s.opts.Sealer, u.TOTPSecret)
	return u, nil
}

// CreateUser stores u with a new ID; a taken name answers ErrExists.
func (s *Postgres) CreateUser(ctx context.Context, u User) (User, error) {
	if u.Name == "" {
		return User{}, errors.New("store: create user: empty name")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.clk.Now()
	}
	u.CreatedAt = u.CreatedAt.UTC()
	totp, err := sealWith(s.opts.Sealer, u.TOTPSecret)
	if err != nil {
		return User{}, err
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO users (name, password_hash, admin, disabled, roles, totp_secret, totp_last_step, created_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		u.Name, u.PasswordHash, u.Admin, u.Disabled, encodeList(u.Roles), totp, u.TOTPLastStep, unixNanos(u.CreatedAt)).Scan(&u.ID)
	if err != nil {
		return User{}, pgErr(fmt.Sprintf("create user %q", u.Name), err)
	}
	return u, nil
}

// UserByName answers ErrNotFound for an unknown name.
func (s *Postgres) UserByName(ctx context.Context, name string) (User, error) {
	u, err := s.scanUser(s.pool.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM users WHERE name = $1`, name))
	if err != nil {
		return User{}, pgErr(fmt.Sprintf("user %q", name), err)
	}
	return u, nil
}

// UserByID answers ErrNotFound for an unknown id.
func (s *Postgres) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := s.scanUser(s.pool.QueryRow(ctx, `SELECT `+pgUserColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, pgErr(fmt.Sprintf("user %d", id), err)
	}
	return u, nil
}

// ListUsers returns every user, oldest first.
func (s *Postgres) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgUserColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, pgErr("list users", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, pgErr("list users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("list users", err)
	}
	return out, nil
}

// SetPassword writes the password hash and nothing else.
func (s *Postgres) SetPassword(ctx context.Context, userID int64, hash string) error {
	return s.setUser(ctx, userID, "set password", `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
}

// SetDisabled writes the disabled flag and nothing else.
func (s *Postgres) SetDisabled(ctx context.Context, userID int64, disabled bool) error {
	return s.setUser(ctx, userID, "set disabled", `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, userID)
}

// SetRoles writes the roles and nothing else.
func (s *Postgres) SetRoles(ctx context.Context, userID int64, roles []string) error {
	return s.setUser(ctx, userID, "set roles", `UPDATE users SET roles = $1 WHERE id = $2`, encodeList(roles), userID)
}

// SetTOTP writes the TOTP secret and its last accepted step; for the
// secret already stored the step never moves backwards (see SQLite).
func (s *Postgres) SetTOTP(ctx context.Context, userID int64, secret string, lastStep int64) error {
	sealed, err := sealWith(s.opts.Sealer, secret)
	if err != nil {
		return err
	}
	return s.setUser(ctx, userID, "set totp",
		`UPDATE users SET
		   totp_last_step = CASE WHEN totp_secret = $1 THEN GREATEST(totp_last_step, $2) ELSE $2 END,
		   totp_secret = $1
		 WHERE id = $3`, sealed, lastStep, userID)
}

func (s *Postgres) setUser(ctx context.Context, userID int64, op, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return pgErr(fmt.Sprintf("%s: user %d", op, userID), err)
	}
	return pgAffectedOne(tag, fmt.Sprintf("%s: user %d", op, userID))
}

// AcceptTOTPStep records step as used when it is newer than the last one,
// in one compare-and-set UPDATE: the row lock makes two nodes checking the
// same code at once take turns, and the second finds the step used.
func (s *Postgres) AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1`, step, userID)
	if err != nil {
		return false, pgErr("accept totp step", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if _, err := s.UserByID(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

// AnyAdmin reports whether an admin account exists.
func (s *Postgres) AnyAdmin(ctx context.Context) (bool, error) {
	var any bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE admin)`).Scan(&any); err != nil {
		return false, pgErr("any admin", err)
	}
	return any, nil
}

// SetRecoveryCodes replaces the user's recovery code hashes in one transaction.
func (s *Postgres) SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return pgErr("set recovery codes", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&one); err != nil {
		return pgErr(fmt.Sprintf("set recovery codes: user %d", userID), err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return pgErr("set recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, h); err != nil {
			return pgErr("set recovery codes", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return pgErr("set recovery codes", err)
	}
	return nil
}

// UseRecoveryCode deletes the code with this hash; false when none matched.
func (s *Postgres) UseRecoveryCode(ctx context.Context, userID int64, hash string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1 AND hash = $2`, userID, hash)
	if err != nil {
		return false, pgErr("use recovery code", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PendingTOTP returns the unconfirmed enrolment secret, storing fresh when
// none is kept or the kept one expired; one statement decides.
func (s *Postgres) PendingTOTP(ctx context.Context, userID int64, fresh string, now, expires time.Time) (string, error) {
	sealed, err := sealWith(s.opts.Sealer, fresh)
	if err != nil {
		return "", err
	}
	var stored string
	err = s.pool.QueryRow(ctx, `INSERT INTO totp_pending (user_id, secret, expires_ns) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, expires_ns = excluded.expires_ns
		  WHERE totp_pending.expires_ns <= $4
		RETURNING secret`, userID, sealed, unixNanos(expires), unixNanos(now)).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, `SELECT secret FROM totp_pending WHERE user_id = $1`, userID).Scan(&stored)
	}
	if err != nil {
		return "", pgErr("pending totp", err)
	}
	return openWith(s.opts.Sealer, stored), nil
}

// PendingTOTPSecret returns the unconfirmed secret still valid at now.
func (s *Postgres) PendingTOTPSecret(ctx context.Context, userID int64, now time.Time) (string, error) {
	var stored string
	err := s.pool.QueryRow(ctx, `SELECT secret FROM totp_pending WHERE user_id = $1 AND expires_ns > $2`, userID, unixNanos(now)).Scan(&stored)
	if err != nil {
		return "", pgErr("pending totp", err)
	}
	return openWith(s.opts.Sealer, stored), nil
}

// ClearPendingTOTP forgets the unconfirmed enrolment secret.
func (s *Postgres) ClearPendingTOTP(ctx context.Context, userID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM totp_pending WHERE user_id = $1`, userID); err != nil {
		return pgErr("clear pending totp", err)
	}
	return nil
}

// SealSecrets seals TOTP secrets stored in clear and reports those that do
// not open with this key (see SQLite.SealSecrets).
func (s *Postgres) SealSecrets(ctx context.Context) (sealed int, unopened []string, err error) {
	if s.opts.Sealer == nil {
		return 0, nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name, totp_secret FROM users WHERE totp_secret <> ''`)
	if err != nil {
		return 0, nil, pgErr("seal totp secrets", err)
	}
	type row struct {
		id           int64
		name, stored string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.name, &r.stored); err != nil {
			rows.Close()
			return 0, nil, pgErr("seal totp secrets", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, nil, pgErr("seal totp secrets", err)
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
		tag, err := s.pool.Exec(ctx, `UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3`, v, r.id, r.stored)
		if err != nil {
			return sealed, unopened, pgErr("seal totp secrets", err)
		}
		if tag.RowsAffected() == 1 {
			sealed++
		}
	}
	return sealed, unopened, nil
}

const pgSessionColumns = `id_hash, public_id, user_id, username, csrf_secret, twofa_done, created_ns, last_seen_ns, ip, user_agent`

func pgScanSession(r pgx.Row) (Session, error) {
	var ss Session
	var created, seen int64
	if err := r.Scan(&ss.IDHash, &ss.PublicID, &ss.UserID, &ss.Username, &ss.CSRFSecret, &ss.TwoFADone, &created, &seen, &ss.IP, &ss.UserAgent); err != nil {
		return Session{}, err
	}
	ss.CreatedAt, ss.LastSeen = timeFromNanos(created), timeFromNanos(seen)
	return ss, nil
}

// CreateSession stores ss (see SQLite.CreateSession).
func (s *Postgres) CreateSession(ctx context.Context, ss Session) error {
	if ss.IDHash == "" {
		return errors.New("store: create session: empty id hash")
	}
	now := s.clk.Now()
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = now
	}
	if ss.LastSeen.IsZero() {
		ss.LastSeen = ss.CreatedAt
	}
	if ss.PublicID == "" {
		ss.PublicID = ss.IDHash
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+pgSessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		ss.IDHash, ss.PublicID, ss.UserID, ss.Username, ss.CSRFSecret, ss.TwoFADone,
		unixNanos(ss.CreatedAt), unixNanos(ss.LastSeen), ss.IP, ss.UserAgent)
	if err != nil {
		return pgErr("create session", err)
	}
	return nil
}

// SessionByHash answers ErrNotFound for an unknown hash.
func (s *Postgres) SessionByHash(ctx context.Context, idHash string) (Session, error) {
	ss, err := pgScanSession(s.pool.QueryRow(ctx, `SELECT `+pgSessionColumns+` FROM sessions WHERE id_hash = $1`, idHash))
	if err != nil {
		return Session{}, pgErr("session", err)
	}
	return ss, nil
}

// TouchSession moves last_seen forward to seen and writes nothing else.
func (s *Postgres) TouchSession(ctx context.Context, idHash string, seen time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_ns = GREATEST(last_seen_ns, $1) WHERE id_hash = $2`, unixNanos(seen), idHash)
	if err != nil {
		return pgErr("touch session", err)
	}
	return pgAffectedOne(tag, "touch session")
}

// DeleteSession answers ErrNotFound when no session had this hash.
func (s *Postgres) DeleteSession(ctx context.Context, idHash string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	if err != nil {
		return pgErr("delete session", err)
	}
	return pgAffectedOne(tag, "delete session")
}

// ListSessions returns the user's sessions, oldest first.
func (s *Postgres) ListSessions(ctx context.Context, userID int64) ([]Session, error) {
	return s.sessions(ctx, "list sessions", `SELECT `+pgSessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_ns, id_hash`, userID)
}

// DeleteUserSessions deletes every session of the user except keepHash and
// returns the deleted ones.
func (s *Postgres) DeleteUserSessions(ctx context.Context, userID int64, keepHash string) ([]Session, error) {
	return s.sessions(ctx, "delete user sessions", `DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2 RETURNING `+pgSessionColumns, userID, keepHash)
}

// DeleteExpiredSessions deletes every session past a lifetime and returns them.
func (s *Postgres) DeleteExpiredSessions(ctx context.Context, createdBy, seenBy time.Time) ([]Session, error) {
	return s.sessions(ctx, "delete expired sessions", `DELETE FROM sessions WHERE created_ns <= $1 OR last_seen_ns <= $2 RETURNING `+pgSessionColumns,
		unixNanos(createdBy), unixNanos(seenBy))
}

func (s *Postgres) sessions(ctx context.Context, op, query string, args ...any) ([]Session, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, pgErr(op, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		ss, err := pgScanSession(rows)
		if err != nil {
			return nil, pgErr(op, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr(op, err)
	}
	return out, nil
}

const pgAPIKeyColumns = `id, name, hash, scopes, created_ns, revoked` // #nosec G101 -- column names, not a credential

func pgScanAPIKey(r pgx.Row) (APIKey, error) {
	var k APIKey
	var scopes string
	var created int64
	if err := r.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &created, &k.Revoked); err != nil {
		return APIKey{}, err
	}
	k.Scopes, k.CreatedAt = decodeList(scopes), timeFromNanos(created)
	return k, nil
}

// CreateAPIKey stores k with a new ID; a taken name or hash answers ErrExists.
func (s *Postgres) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if k.Name == "" || k.Hash == "" {
		return APIKey{}, errors.New("store: create api key: empty name or hash")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.clk.Now()
	}
	k.CreatedAt = k.CreatedAt.UTC()
	err := s.pool.QueryRow(ctx, `INSERT INTO api_keys (name, hash, scopes, created_ns, revoked) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		k.Name, k.Hash, encodeList(k.Scopes), unixNanos(k.CreatedAt), k.Revoked).Scan(&k.ID)
	if err != nil {
		return APIKey{}, pgErr(fmt.Sprintf("create api key %q", k.Name), err)
	}
	return k, nil
}

// APIKeyByHash returns the key with this hash, revoked or not.
func (s *Postgres) APIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	k, err := pgScanAPIKey(s.pool.QueryRow(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return APIKey{}, pgErr("api key", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *Postgres) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, pgErr("list api keys", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := pgScanAPIKey(rows)
		if err != nil {
			return nil, pgErr("list api keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("list api keys", err)
	}
	return out, nil
}

// RevokeAPIKey marks the named key revoked; ErrNotFound for an unknown name.
func (s *Postgres) RevokeAPIKey(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked = true WHERE name = $1`, name)
	if err != nil {
		return pgErr(fmt.Sprintf("revoke api key %q", name), err)
	}
	return pgAffectedOne(tag, fmt.Sprintf("revoke api key %q", name))
}

// CreateTicket stores t and purges expired tickets.
func (s *Postgres) CreateTicket(ctx context.Context, t Ticket) error {
	if t.Hash == "" || t.ExpiresAt.IsZero() {
		return errors.New("store: create ticket: empty hash or expiry")
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM tickets WHERE expires_ns <= $1`, unixNanos(s.clk.Now())); err != nil {
		return pgErr("create ticket", err)
	}
	var channels *string // NULL: unrestricted
	if t.Channels != nil {
		v := encodeList(t.Channels)
		channels = &v
	}
	var credExp int64
	if !t.CredExpires.IsZero() {
		credExp = unixNanos(t.CredExpires)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO tickets (hash, subject, roles, origin, expires_ns, kind, session_hash, credential_expires_ns, channels)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.Hash, t.Subject, encodeList(t.Roles), t.Origin, unixNanos(t.ExpiresAt), t.Kind, t.SessionHash, credExp, channels)
	if err != nil {
		return pgErr("create ticket", err)
	}
	return nil
}

// TakeTicket deletes and returns the ticket in one statement: of two
// handshakes on two nodes racing with one ticket, one gets it.
func (s *Postgres) TakeTicket(ctx context.Context, hash string) (Ticket, error) {
	var t Ticket
	var roles string
	var exp, credExp int64
	var channels *string
	err := s.pool.QueryRow(ctx, `DELETE FROM tickets WHERE hash = $1
		RETURNING hash, subject, roles, origin, expires_ns, kind, session_hash, credential_expires_ns, channels`, hash).
		Scan(&t.Hash, &t.Subject, &roles, &t.Origin, &exp, &t.Kind, &t.SessionHash, &credExp, &channels)
	if err != nil {
		return Ticket{}, pgErr("take ticket", err)
	}
	t.Roles = decodeList(roles)
	t.ExpiresAt = timeFromNanos(exp)
	if credExp != 0 {
		t.CredExpires = timeFromNanos(credExp)
	}
	if channels != nil {
		t.Channels = decodeList(*channels)
		if t.Channels == nil {
			t.Channels = []string{}
		}
	}
	if !s.clk.Now().Before(t.ExpiresAt) {
		return Ticket{}, fmt.Errorf("store: take ticket: expired: %w", ErrNotFound)
	}
	return t, nil
}

// AddRevocation records r with a new ID. The table is locked for the
// insert so ids become visible in order: a node polling RevocationsAfter
// never skips one committed late with a lower id.
func (s *Postgres) AddRevocation(ctx context.Context, r Revocation) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.clk.Now()
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return pgErr("add revocation", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE revocations IN EXCLUSIVE MODE`); err != nil {
		return pgErr("add revocation", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO revocations (session_id, username, reason, created_ns) VALUES ($1, $2, $3, $4)`,
		r.SessionID, r.User, r.Reason, unixNanos(r.CreatedAt)); err != nil {
		return pgErr("add revocation", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return pgErr("add revocation", err)
	}
	return nil
}

// RevocationsAfter returns revocations with ID > after, oldest first (at
// most MaxLimit per call).
func (s *Postgres) RevocationsAfter(ctx context.Context, after int64) ([]Revocation, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, session_id, username, reason, created_ns FROM revocations WHERE id > $1 ORDER BY id LIMIT $2`, after, MaxLimit)
	if err != nil {
		return nil, pgErr("revocations", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var created int64
		if err := rows.Scan(&r.ID, &r.SessionID, &r.User, &r.Reason, &created); err != nil {
			return nil, pgErr("revocations", err)
		}
		r.CreatedAt = timeFromNanos(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("revocations", err)
	}
	return out, nil
}

// LastRevocationID is where a starting server begins polling (0: none yet).
func (s *Postgres) LastRevocationID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM revocations`).Scan(&id); err != nil {
		return 0, pgErr("last revocation id", err)
	}
	return id, nil
}

// AuditHead returns the signed head kept for an audit chain; (0, "") when
// none is kept yet. Each node's chain is named by its own key.
func (s *Postgres) AuditHead(ctx context.Context, chain string) (seq uint64, sig string, err error) {
	var n int64
	err = s.pool.QueryRow(ctx, `SELECT seq, sig FROM audit_heads WHERE chain = $1`, chain).Scan(&n, &sig)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", pgErr("audit head", err)
	}
	if n < 0 {
		return 0, "", fmt.Errorf("store: audit head: negative seq %d", n)
	}
	return uint64(n), sig, nil
}

// SetAuditHead replaces the signed head of an audit chain.
func (s *Postgres) SetAuditHead(ctx context.Context, chain string, seq uint64, sig string) error {
	if seq > math.MaxInt64 {
		return fmt.Errorf("store: set audit head: seq %d out of range", seq)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_heads (chain, seq, sig, updated_ns) VALUES ($1, $2, $3, $4)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, sig = excluded.sig, updated_ns = excluded.updated_ns`,
		chain, int64(seq), sig, unixNanos(s.clk.Now()))
	if err != nil {
		return pgErr("set audit head", err)
	}
	return nil
}

// Rooms returns the chat rooms the user saved; saved is false when none.
func (s *Postgres) Rooms(ctx context.Context, userID int64) (rooms []string, saved bool, err error) {
	var v string
	err = s.pool.QueryRow(ctx, `SELECT rooms FROM user_rooms WHERE user_id = $1`, userID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, pgErr("rooms", err)
	}
	rooms = decodeList(v)
	if rooms == nil {
		rooms = []string{}
	}
	return rooms, true, nil
}

// SetRooms replaces the user's saved rooms.
func (s *Postgres) SetRooms(ctx context.Context, userID int64, rooms []string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO user_rooms (user_id, rooms, updated_ns) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET rooms = excluded.rooms, updated_ns = excluded.updated_ns`,
		userID, encodeList(rooms), unixNanos(s.clk.Now()))
	if err != nil {
		return pgErr("set rooms", err)
	}
	return nil
}
