package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// AuditHead returns the signed head kept for an audit chain; (0, "") when
// none is kept yet.
func (s *SQLite) AuditHead(ctx context.Context, chain string) (seq uint64, sig string, err error) {
	var n int64
	err = s.db.QueryRowContext(ctx, `SELECT seq, sig FROM audit_heads WHERE chain = ?`, chain).Scan(&n, &sig)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", dbErr("audit head", err)
	}
	if n < 0 {
		return 0, "", fmt.Errorf("store: audit head: negative seq %d", n)
	}
	return uint64(n), sig, nil
}

// SetAuditHead replaces the signed head of an audit chain.
func (s *SQLite) SetAuditHead(ctx context.Context, chain string, seq uint64, sig string) error {
	if seq > math.MaxInt64 {
		return fmt.Errorf("store: set audit head: seq %d out of range", seq)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_heads (chain, seq, sig, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, sig = excluded.sig, updated_at = excluded.updated_at`,
		chain, int64(seq), sig, fmtTime(s.clk.Now()))
	if err != nil {
		return dbErr("set audit head", err)
	}
	return nil
}
