package store

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"
)

// Retention says how much of one channel's log is kept. Pruning only ever
// removes the oldest messages and never reuses an offset: the channel's
// last offset is untouched, so what is kept stays gap-free and offsets stay
// strictly increasing; a reader asking from before what is kept learns that
// it missed messages (Since's complete is false).
type Retention struct {
	// Size is how many messages are kept per channel. Zero keeps all.
	Size int
	// TTL is how long a message is kept after its commit. Zero keeps it.
	TTL time.Duration
}

// Bounds of pruning work, so that no transaction holds the write lock
// for long however much is due (a lowered history_size, a long outage).
const (
	// prunePerChannel is the most messages of one channel deleted by one
	// commit or one sweep pass; what is left goes in the next ones.
	prunePerChannel = 1000
	// pruneBudget is the most messages one sweep pass deletes in all.
	pruneBudget = 10000
	// sweepChannels is the most channels one sweep pass looks at; the next
	// pass resumes after the last one, round the table.
	sweepChannels = 1000
	// defaultPruneInterval is how often the sweep runs.
	defaultPruneInterval = time.Minute
)

// pruneChannel deletes the oldest messages of channel name that retention
// no longer keeps, at most limit of them, and returns the new oldest offset.
// last and oldest are the channel's row. Age is checked only when withAge
// (the sweep): the commit path checks size, which needs no query.
func (s *SQLite) pruneChannel(ctx context.Context, conn *sql.Conn, name string, last, oldest uint64, now time.Time, withAge bool, limit int) (uint64, error) {
	if s.opts.Retention == nil || limit <= 0 || oldest > last {
		return oldest, nil
	}
	pol := s.opts.Retention(name)
	keepFrom := oldest
	// #nosec G115 -- Size is checked positive first
	if pol.Size > 0 && last >= uint64(pol.Size) {
		keepFrom = max(keepFrom, last-uint64(pol.Size)+1) // #nosec G115 -- Size > 0 here
	}
	if withAge && pol.TTL > 0 && keepFrom <= last {
		// Offsets follow commit order, so the expired messages are a
		// prefix of the log: the first message young enough to keep, looked
		// for among the next limit offsets, ends it. The scan stops there,
		// so a channel with nothing expired costs one row.
		cutoff := fmtTime(now.Add(-pol.TTL))
		end := min(keepFrom+uint64(limit), last+1) // #nosec G115 -- limit > 0 here
		var young int64
		err := conn.QueryRowContext(ctx,
			`SELECT off FROM messages WHERE channel = ? AND off >= ? AND off < ? AND ts >= ? ORDER BY off LIMIT 1`,
			name, sqlOffset(keepFrom), sqlOffset(end), cutoff).Scan(&young)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			keepFrom = end // all of them expired
		case err != nil:
			return oldest, err
		default:
			keepFrom = fromSQLOffset(young)
		}
	}
	keepFrom = min(keepFrom, oldest+uint64(limit)) // #nosec G115 -- limit > 0 here
	if keepFrom <= oldest {
		return oldest, nil
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM messages WHERE channel = ? AND off < ?`, name, sqlOffset(keepFrom)); err != nil {
		return oldest, err
	}
	return keepFrom, nil
}

// sweep prunes by size and age across channels, whether or not anything is
// published to them: at most sweepChannels channels and pruneBudget
// messages per pass, in one transaction on the committer's connection, so
// it never races a commit for a channel's offsets. Errors are logged and
// the pass is retried at the next tick: pruning late loses nothing.
func (s *SQLite) sweep() {
	ctx := context.Background()
	conn, err := s.writeConn(ctx)
	if err != nil {
		slog.Warn("store: retention sweep", "err", err)
		return
	}
	if err := s.sweepPass(ctx, conn); err != nil {
		s.connFailed(err)
		slog.Warn("store: retention sweep", "err", err)
	}
}

type chanRow struct {
	name         string
	last, oldest uint64
}

func (s *SQLite) sweepPass(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(ctx, "ROLLBACK") // nothing to keep from a failed pass
		}
	}()
	chans, err := channelsAfter(ctx, conn, s.sweepAfter, sweepChannels)
	if err != nil {
		return err
	}
	now := s.clk.Now().UTC()
	budget := pruneBudget
	next := ""
	for _, c := range chans {
		if budget <= 0 {
			break
		}
		oldest, err := s.pruneChannel(ctx, conn, c.name, c.last, c.oldest, now, true, min(budget, prunePerChannel))
		if err != nil {
			return err
		}
		if oldest != c.oldest {
			if _, err := conn.ExecContext(ctx, `UPDATE channels SET oldest = ? WHERE name = ?`, sqlOffset(oldest), c.name); err != nil {
				return err
			}
			budget -= int(oldest - c.oldest) // #nosec G115 -- at most prunePerChannel
		}
		next = c.name
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	if len(chans) < sweepChannels && budget > 0 {
		next = "" // the whole table was seen: start again from the top
	}
	s.sweepAfter = next
	return nil
}

// channelsAfter reads up to limit channel rows named after after, in name order.
func channelsAfter(ctx context.Context, conn *sql.Conn, after string, limit int) ([]chanRow, error) {
	rows, err := conn.QueryContext(ctx,
		`SELECT name, last_offset, oldest FROM channels WHERE name > ? ORDER BY name LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var chans []chanRow
	for rows.Next() {
		var c chanRow
		var last, oldest int64
		if err := rows.Scan(&c.name, &last, &oldest); err != nil {
			return nil, err
		}
		c.last, c.oldest = fromSQLOffset(last), fromSQLOffset(oldest)
		chans = append(chans, c)
	}
	return chans, rows.Err()
}
