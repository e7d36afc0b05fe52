package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Publish appends m to its channel and returns once the transaction holding
// it is committed. As with SQLite, a caller whose ctx ends while waiting
// gets ctx's error; its message may still be committed (a retry with the
// same CID, on any node, answers the same offset).
func (s *Postgres) Publish(ctx context.Context, m Message) (PublishResult, error) {
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

// committer is this node's only writer of messages: it takes every queued
// publish (up to MaxBatch) and commits them in one transaction, and runs
// the retention sweep between commits.
func (s *Postgres) committer() {
	defer close(s.done)
	// The sweep always runs: it also forgets (From, CID) pairs past the window.
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	groupCommit(s.reqs, s.opts.MaxBatch, t.C, func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
		defer cancel()
		if err := s.sweepPass(ctx); err != nil {
			slog.Warn("store: retention sweep", "err", err)
		}
	}, func(batch []*pubReq) {
		commitBatch(batch, s.writeBatch, &s.onCommit, s.opts.OnCommitDuration)
	})
}

// writeBatch stores the batch in one transaction. Its locks are taken in
// one order on every node, so two nodes' batches wait for each other and
// never deadlock: first the (From, CID) rows, sorted, then the channel
// rows, sorted.
//
//  1. Each (From, CID) is claimed with an INSERT ... ON CONFLICT: a pair
//     another node holds in an open transaction makes this one wait for
//     it, then see it as a duplicate; a pair older than the window is
//     taken over as new.
//  2. Each channel's row is bumped by the number of new messages in one
//     UPDATE ... RETURNING, which locks it to the end of the transaction:
//     another node's batch on the same channel waits, so the ranges never
//     overlap and, both committing, leave no gap.
//  3. The messages are inserted, the claims get their offsets, and size
//     retention trims the channel while its row is locked.
func (s *Postgres) writeBatch(batch []*pubReq) (results []PublishResult, stored []Message, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit

	now := s.clk.Now().UTC()
	nowNs := unixNanos(now)
	cutoff := unixNanos(now.Add(-s.opts.DedupeWindow))
	results = make([]PublishResult, len(batch))

	// 1. Claim every distinct (From, CID), in key order.
	first := map[dedupeKey]int{} // the batch index that stores the pair
	var keys []dedupeKey
	for i, r := range batch {
		if r.msg.CID == "" {
			continue
		}
		k := dedupeKey{r.msg.From, r.msg.CID}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b dedupeKey) int {
		if a.from != b.from {
			return compareStrings(a.from, b.from)
		}
		return compareStrings(a.cid, b.cid)
	})
	dup := map[dedupeKey]PublishResult{}
	for _, k := range keys {
		m := batch[first[k]].msg
		var claimed bool
		err := tx.QueryRow(ctx, `INSERT INTO dedupe (sender, cid, channel, off, ts_ns) VALUES ($1, $2, $3, 0, $4)
			ON CONFLICT (sender, cid) DO UPDATE SET channel = excluded.channel, off = 0, ts_ns = excluded.ts_ns
			  WHERE dedupe.ts_ns < $5
			RETURNING true`, k.from, k.cid, m.Channel, nowNs, cutoff).Scan(&claimed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			prev, err := s.lookupDedupe(ctx, tx, k)
			if err != nil {
				return nil, nil, err
			}
			dup[k] = prev
		case err != nil:
			return nil, nil, err
		}
	}

	// 2. Count the new messages per channel and reserve their offsets.
	count := map[string]uint64{}
	fresh := make([]bool, len(batch))
	for i, r := range batch {
		if r.msg.CID != "" {
			k := dedupeKey{r.msg.From, r.msg.CID}
			if _, isDup := dup[k]; isDup || first[k] != i {
				continue
			}
		}
		fresh[i] = true
		count[r.msg.Channel]++
	}
	chans := make([]string, 0, len(count))
	for ch := range count {
		chans = append(chans, ch)
	}
	slices.Sort(chans)
	next := map[string]uint64{}
	oldest := map[string]uint64{}
	last := map[string]uint64{}
	for _, ch := range chans {
		var l, o int64
		if err := tx.QueryRow(ctx, `INSERT INTO channels (name, last_offset, oldest) VALUES ($1, $2, 1)
			ON CONFLICT (name) DO UPDATE SET last_offset = channels.last_offset + excluded.last_offset
			RETURNING last_offset, oldest`, ch, sqlOffset(count[ch])).Scan(&l, &o); err != nil {
			return nil, nil, err
		}
		last[ch], oldest[ch] = fromSQLOffset(l), fromSQLOffset(o)
		next[ch] = last[ch] - count[ch] + 1
	}

	// 3. Store the messages in batch order, which is each channel's offset order.
	var b pgx.Batch
	for i, r := range batch {
		if !fresh[i] {
			continue
		}
		m := r.msg
		m.Offset, m.TS = next[m.Channel], now
		next[m.Channel]++
		b.Queue(`INSERT INTO messages (channel, off, sender, ts_ns, data, cid) VALUES ($1, $2, $3, $4, $5, $6)`,
			m.Channel, sqlOffset(m.Offset), m.From, nowNs, []byte(m.Data), m.CID)
		if m.CID != "" {
			b.Queue(`UPDATE dedupe SET off = $3 WHERE sender = $1 AND cid = $2`, m.From, m.CID, sqlOffset(m.Offset))
		}
		results[i] = PublishResult{Offset: m.Offset, Message: m}
		stored = append(stored, m)
	}
	for _, ch := range chans {
		if keep := s.keepFromSize(ch, last[ch], oldest[ch]); keep > oldest[ch] {
			b.Queue(`DELETE FROM messages WHERE channel = $1 AND off < $2`, ch, sqlOffset(keep))
			b.Queue(`UPDATE channels SET oldest = $2 WHERE name = $1`, ch, sqlOffset(keep))
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return nil, nil, err
		}
	}
	// Duplicates answer the first result; within the batch, the message
	// stored by the first of them.
	for i, r := range batch {
		if fresh[i] {
			continue
		}
		k := dedupeKey{r.msg.From, r.msg.CID}
		res, ok := dup[k]
		if !ok {
			res = results[first[k]]
			res.Duplicate = true
		}
		results[i] = res
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, err
	}
	return results, stored, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keepFromSize is the first offset size retention keeps of a channel
// (bounded to prunePerChannel deletions per commit, like SQLite).
func (s *Postgres) keepFromSize(ch string, last, oldest uint64) uint64 {
	if s.opts.Retention == nil || oldest > last {
		return oldest
	}
	pol := s.opts.Retention(ch)
	keep := oldest
	// #nosec G115 -- Size is checked positive first
	if pol.Size > 0 && last >= uint64(pol.Size) {
		keep = max(keep, last-uint64(pol.Size)+1) // #nosec G115 -- Size > 0 here
	}
	return min(keep, oldest+prunePerChannel)
}

// lookupDedupe reads the first result of an earlier publish with the same
// (From, CID), committed by any node.
func (s *Postgres) lookupDedupe(ctx context.Context, tx pgx.Tx, k dedupeKey) (PublishResult, error) {
	var channel string
	var off, ts int64
	if err := tx.QueryRow(ctx, `SELECT channel, off, ts_ns FROM dedupe WHERE sender = $1 AND cid = $2`, k.from, k.cid).Scan(&channel, &off, &ts); err != nil {
		return PublishResult{}, err
	}
	m := Message{Channel: channel, Offset: fromSQLOffset(off), From: k.from, TS: timeFromNanos(ts), CID: k.cid}
	var data []byte
	err := tx.QueryRow(ctx, `SELECT data FROM messages WHERE channel = $1 AND off = $2`, channel, off).Scan(&data)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return PublishResult{}, err
	}
	m.Data = data
	return PublishResult{Offset: m.Offset, Duplicate: true, Message: m}, nil
}

// sweepPass prunes by age and size across channels, a bounded amount per
// pass, and forgets (From, CID) pairs past the window. A channel another
// transaction holds (a node publishing to it) is skipped this pass: its
// commit trims size, and age waits for the next pass.
func (s *Postgres) sweepPass(ctx context.Context) error {
	now := s.clk.Now().UTC()
	if _, err := s.pool.Exec(ctx, `DELETE FROM dedupe WHERE ts_ns < $1`, unixNanos(now.Add(-s.opts.DedupeWindow))); err != nil {
		return err
	}
	if s.opts.Retention == nil {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT name, last_offset, oldest FROM channels WHERE name > $1 ORDER BY name LIMIT $2 FOR UPDATE SKIP LOCKED`,
		s.sweepAfter, sweepChannels)
	if err != nil {
		return err
	}
	var chans []chanRow
	for rows.Next() {
		var c chanRow
		var l, o int64
		if err := rows.Scan(&c.name, &l, &o); err != nil {
			rows.Close()
			return err
		}
		c.last, c.oldest = fromSQLOffset(l), fromSQLOffset(o)
		chans = append(chans, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	budget := pruneBudget
	nextAfter := ""
	for _, c := range chans {
		if budget <= 0 {
			break
		}
		limit := min(budget, prunePerChannel)
		keep := min(s.keepFromSize(c.name, c.last, c.oldest), c.oldest+uint64(limit)) // #nosec G115 -- limit > 0
		if pol := s.opts.Retention(c.name); pol.TTL > 0 && keep <= c.last {
			// Offsets follow commit order, so expired messages are a
			// prefix: the first young one among the next limit ends it.
			end := min(keep+uint64(limit), c.last+1) // #nosec G115 -- limit > 0
			var young int64
			err := tx.QueryRow(ctx, `SELECT off FROM messages WHERE channel = $1 AND off >= $2 AND off < $3 AND ts_ns >= $4 ORDER BY off LIMIT 1`,
				c.name, sqlOffset(keep), sqlOffset(end), unixNanos(now.Add(-pol.TTL))).Scan(&young)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				keep = end
			case err != nil:
				return err
			default:
				keep = fromSQLOffset(young)
			}
			keep = min(keep, c.oldest+uint64(limit)) // #nosec G115 -- limit > 0
		}
		if keep > c.oldest {
			if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE channel = $1 AND off < $2`, c.name, sqlOffset(keep)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE channels SET oldest = $2 WHERE name = $1`, c.name, sqlOffset(keep)); err != nil {
				return err
			}
			budget -= int(keep - c.oldest) // #nosec G115 -- at most prunePerChannel
		}
		nextAfter = c.name
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if len(chans) < sweepChannels && budget > 0 {
		nextAfter = ""
	}
	s.sweepAfter = nextAfter
	return nil
}

// Since returns messages of channel with offset > after, oldest first, at
// most limit; complete is false when retention already deleted messages
// right after after (oldest is read after the messages and only grows).
func (s *Postgres) Since(ctx context.Context, channel string, after uint64, limit int) ([]Message, bool, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT channel, off, sender, ts_ns, data, cid FROM messages WHERE channel = $1 AND off > $2 ORDER BY off LIMIT $3`,
		channel, sqlOffset(after), clampLimit(limit))
	if err != nil {
		return nil, false, pgErr("since", err)
	}
	msgs, err := pgScanMessages(rows)
	if err != nil {
		return nil, false, pgErr("since", err)
	}
	var oldest int64
	err = s.pool.QueryRow(ctx, `SELECT oldest FROM channels WHERE name = $1`, channel).Scan(&oldest)
	if errors.Is(err, pgx.ErrNoRows) {
		return msgs, true, nil
	}
	if err != nil {
		return nil, false, pgErr("since", err)
	}
	return msgs, after >= fromSQLOffset(oldest)-1, nil
}

// History returns up to limit messages with offset < before (0: the
// latest), oldest first.
func (s *Postgres) History(ctx context.Context, channel string, before uint64, limit int) ([]Message, error) {
	if before == 0 || before > 1<<63-1 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx,
		`SELECT channel, off, sender, ts_ns, data, cid FROM messages WHERE channel = $1 AND off < $2 ORDER BY off DESC LIMIT $3`,
		channel, sqlOffset(before), clampLimit(limit))
	if err != nil {
		return nil, pgErr("history", err)
	}
	msgs, err := pgScanMessages(rows)
	if err != nil {
		return nil, pgErr("history", err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// Latest returns the channel's last offset (0 when empty).
func (s *Postgres) Latest(ctx context.Context, channel string) (uint64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, `SELECT last_offset FROM channels WHERE name = $1`, channel).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, pgErr("latest", err)
	}
	return fromSQLOffset(last), nil
}

func pgScanMessages(rows pgx.Rows) ([]Message, error) {
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		var off, ts int64
		var data []byte
		if err := rows.Scan(&m.Channel, &off, &m.From, &ts, &data, &m.CID); err != nil {
			return nil, err
		}
		m.Offset, m.TS, m.Data = fromSQLOffset(off), timeFromNanos(ts), data
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}
