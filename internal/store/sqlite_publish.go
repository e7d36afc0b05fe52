package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"
)

// pubReq is one Publish waiting for the committer.
type pubReq struct {
	ctx  context.Context
	msg  Message
	done chan pubAnswer // buffered 1: the committer never blocks on a gone caller
}

type pubAnswer struct {
	res PublishResult
	err error
}

// Publish appends m to its channel and returns once the transaction holding
// it is committed with synchronous=FULL. A caller whose ctx ends while
// waiting gets ctx's error; its message may still be committed (a retry with
// the same CID then answers the same offset), but it is never stored twice
// by the store itself nor lost after an acknowledgement.
func (s *SQLite) Publish(ctx context.Context, m Message) (PublishResult, error) {
	if m.Channel == "" {
		return PublishResult{}, errors.New("store: publish: empty channel")
	}
	if len(m.Data) == 0 {
		m.Data = []byte("null")
	}
	r := &pubReq{ctx: ctx, msg: m, done: make(chan pubAnswer, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return PublishResult{}, fmt.Errorf("store: publish: %w: closed", ErrUnavailable)
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return PublishResult{}, fmt.Errorf("store: publish: %w", ctx.Err())
	}
	s.mu.RUnlock()
	select {
	case a := <-r.done:
		return a.res, a.err
	case <-ctx.Done():
		return PublishResult{}, fmt.Errorf("store: publish: %w", ctx.Err())
	}
}

// committer is the only goroutine that writes messages. It takes every
// queued publish (up to MaxBatch) and commits them in one transaction, so
// fsync cost is shared and offsets are assigned in one place. It exits once
// Close has closed reqs and every queued publish is answered.
func (s *SQLite) committer() {
	defer close(s.done)
	defer func() {
		if s.wconn != nil {
			_ = s.wconn.Close() // shutting down: nothing left to report to
		}
	}()
	// The retention sweep runs here, between commits, so only this
	// goroutine ever writes messages and channel offsets.
	var sweep <-chan time.Time
	if s.opts.Retention != nil {
		t := time.NewTicker(s.opts.PruneInterval)
		defer t.Stop()
		sweep = t.C
	}
	groupCommit(s.reqs, s.opts.MaxBatch, sweep, s.sweep, func(batch []*pubReq) {
		commitBatch(batch, s.writeBatch, &s.onCommit, s.opts.OnCommitDuration)
	})
}

type dedupeKey struct{ from, cid string }

// sqlOffset converts an offset to SQLite's signed INTEGER. Stored offsets
// count up from 1 and never come near 2^63; a larger value (a client's
// "before" or "since") clamps to the largest, which matches the same rows.
func sqlOffset(o uint64) int64 {
	if o > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(o)
}

// fromSQLOffset is sqlOffset's inverse; the column never holds a negative.
func fromSQLOffset(o int64) uint64 {
	if o < 0 {
		return 0
	}
	return uint64(o)
}

type chanState struct {
	last, oldest uint64
	touched      bool
}

// writeBatch runs the batch's transaction on the committer's own connection.
func (s *SQLite) writeBatch(batch []*pubReq) (results []PublishResult, stored []Message, err error) {
	ctx := context.Background()
	conn, err := s.writeConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		s.connFailed(err)
		return nil, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			// A failed COMMIT can leave the transaction open; end it so the
			// next batch starts clean. "no transaction is active" is fine.
			_, _ = conn.ExecContext(ctx, "ROLLBACK")
		}
	}()

	now := s.clk.Now().UTC()
	ts := fmtTime(now)
	results = make([]PublishResult, len(batch))
	seen := make(map[dedupeKey]PublishResult)
	chans := make(map[string]*chanState)
	var order []string
	for i, r := range batch {
		m := r.msg
		key := dedupeKey{m.From, m.CID}
		if m.CID != "" {
			if first, ok := seen[key]; ok {
				first.Duplicate = true
				results[i] = first
				continue
			}
			first, ok, err := s.lookupDedupe(ctx, conn, key)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				results[i] = first
				seen[key] = first
				continue
			}
		}
		cs, ok := chans[m.Channel]
		if !ok {
			cs = &chanState{oldest: 1}
			err := conn.QueryRowContext(ctx, `SELECT last_offset, oldest FROM channels WHERE name = ?`, m.Channel).Scan(&cs.last, &cs.oldest)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, nil, err
			}
			chans[m.Channel] = cs
			order = append(order, m.Channel)
		}
		cs.last++
		cs.touched = true
		m.Offset = cs.last
		m.TS = now
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO messages (channel, off, sender, ts, data, cid) VALUES (?, ?, ?, ?, ?, ?)`,
			m.Channel, sqlOffset(m.Offset), m.From, ts, []byte(m.Data), m.CID); err != nil {
			return nil, nil, err
		}
		if m.CID != "" {
			if _, err := conn.ExecContext(ctx,
				`INSERT INTO dedupe (sender, cid, channel, off, ts, created_ns) VALUES (?, ?, ?, ?, ?, ?)`,
				m.From, m.CID, m.Channel, sqlOffset(m.Offset), ts, unixNanos(now)); err != nil {
				return nil, nil, err
			}
		}
		results[i] = PublishResult{Offset: m.Offset, Message: m}
		if m.CID != "" {
			seen[key] = results[i]
		}
		stored = append(stored, m)
	}
	for _, name := range order {
		cs := chans[name]
		if !cs.touched {
			continue
		}
		// Size retention at commit: the channel's row is at hand and no
		// query is needed unless something is due. Age waits for the sweep.
		if cs.oldest, err = s.pruneChannel(ctx, conn, name, cs.last, cs.oldest, now, false, prunePerChannel); err != nil {
			return nil, nil, err
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO channels (name, last_offset, oldest) VALUES (?, ?, ?)
			 ON CONFLICT (name) DO UPDATE SET last_offset = excluded.last_offset, oldest = excluded.oldest`,
			name, sqlOffset(cs.last), sqlOffset(cs.oldest)); err != nil {
			return nil, nil, err
		}
	}
	if err := s.pruneDedupe(ctx, conn, now); err != nil {
		return nil, nil, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		s.connFailed(err)
		return nil, nil, err
	}
	committed = true
	// Before OnCommit: see latestCache.
	s.latest.committed(chans)
	return results, stored, nil
}

// lookupDedupe finds the first result of an earlier publish with the same
// (From, CID). The message body may have been removed by retention; the
// answer then carries what the dedupe row remembers.
func (s *SQLite) lookupDedupe(ctx context.Context, conn *sql.Conn, key dedupeKey) (PublishResult, bool, error) {
	var channel, ts string
	var off int64
	err := conn.QueryRowContext(ctx, `SELECT channel, off, ts FROM dedupe WHERE sender = ? AND cid = ?`, key.from, key.cid).Scan(&channel, &off, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return PublishResult{}, false, nil
	}
	if err != nil {
		return PublishResult{}, false, err
	}
	m := Message{Channel: channel, Offset: fromSQLOffset(off), From: key.from, TS: parseTime(ts), CID: key.cid}
	var data []byte
	err = conn.QueryRowContext(ctx, `SELECT data FROM messages WHERE channel = ? AND off = ?`, channel, off).Scan(&data)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return PublishResult{}, false, err
	}
	m.Data = data
	return PublishResult{Offset: m.Offset, Duplicate: true, Message: m}, true, nil
}

// pruneDedupe forgets (From, CID) pairs older than the window, at most
// once per minute (or per window, when shorter), inside the batch's transaction.
func (s *SQLite) pruneDedupe(ctx context.Context, conn *sql.Conn, now time.Time) error {
	every := min(time.Minute, s.opts.DedupeWindow)
	if !s.lastPrune.IsZero() && now.Sub(s.lastPrune) < every && now.After(s.lastPrune) {
		return nil
	}
	cutoff := unixNanos(now.Add(-s.opts.DedupeWindow))
	if _, err := conn.ExecContext(ctx, `DELETE FROM dedupe WHERE created_ns < ?`, cutoff); err != nil {
		return err
	}
	s.lastPrune = now
	return nil
}

// writeConn returns the committer's dedicated connection, opening it again
// after it broke, so the store recovers when the cause goes away.
func (s *SQLite) writeConn(ctx context.Context) (*sql.Conn, error) {
	if s.wconn != nil {
		return s.wconn, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	s.wconn = c
	return c, nil
}

func (s *SQLite) connFailed(err error) {
	if s.wconn != nil && (errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)) {
		_ = s.wconn.Close() // already broken; err is the one that counts
		s.wconn = nil
	}
}

// Since returns messages of channel with offset > after, oldest first, at
// most limit (clamped to MaxLimit; zero or less means MaxLimit). complete is
// false when retention already deleted messages right after after.
func (s *SQLite) Since(ctx context.Context, channel string, after uint64, limit int) ([]Message, bool, error) {
	limit = clampLimit(limit)
	rows, err := s.db.QueryContext(ctx,
		`SELECT channel, off, sender, ts, data, cid FROM messages WHERE channel = ? AND off > ? ORDER BY off LIMIT ?`,
		channel, sqlOffset(after), limit)
	if err != nil {
		return nil, false, dbErr("since", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, false, dbErr("since", err)
	}
	// oldest is read after the messages and only ever grows, so when it
	// says nothing after "after" was deleted, that held for the messages
	// read too: a concurrent retention delete cannot hide a gap.
	var oldest uint64
	err = s.db.QueryRowContext(ctx, `SELECT oldest FROM channels WHERE name = ?`, channel).Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return msgs, true, nil
	}
	if err != nil {
		return nil, false, dbErr("since", err)
	}
	return msgs, after >= oldest-1, nil
}

// History returns up to limit messages with offset < before (0: the
// latest), oldest first. limit is clamped to MaxLimit; zero or less means MaxLimit.
func (s *SQLite) History(ctx context.Context, channel string, before uint64, limit int) ([]Message, error) {
	limit = clampLimit(limit)
	if before == 0 || before > 1<<63-1 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT channel, off, sender, ts, data, cid FROM messages WHERE channel = ? AND off < ? ORDER BY off DESC LIMIT ?`,
		channel, sqlOffset(before), limit)
	if err != nil {
		return nil, dbErr("history", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, dbErr("history", err)
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, nil
}

// Latest returns the channel's last offset (0 when empty). Every subscribe
// asks for it, so it is answered from memory once known (latestCache).
func (s *SQLite) Latest(ctx context.Context, channel string) (uint64, error) {
	last, ok, gen := s.latest.get(channel)
	if ok && !s.opts.OtherWriters {
		return last, nil
	}
	err := s.db.QueryRowContext(ctx, `SELECT last_offset FROM channels WHERE name = ?`, channel).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		last, err = 0, nil
	}
	if err != nil {
		return 0, dbErr("latest", err)
	}
	s.latest.fill(channel, last, gen)
	return last, nil
}

func scanMessages(rows *sql.Rows) ([]Message, error) {
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		var off int64
		var ts string
		var data []byte
		if err := rows.Scan(&m.Channel, &off, &m.From, &ts, &data, &m.CID); err != nil {
			return nil, err
		}
		m.Offset = fromSQLOffset(off)
		m.TS = parseTime(ts)
		m.Data = data
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}
