package store

import (
	"fmt"
	"sync/atomic"
	"time"
)

// groupCommit is the committer loop both stores share: it takes every
// queued publish (up to maxBatch) and hands them to commit as one batch,
// so many publishes share one transaction and its fsync; between batches
// it runs sweep when sweepC ticks (nil: never). It returns once reqs is
// closed and every queued publish has been handed on.
func groupCommit(reqs <-chan *pubReq, maxBatch int, sweepC <-chan time.Time, sweep func(), commit func([]*pubReq)) {
	batch := make([]*pubReq, 0, maxBatch)
	for {
		var r *pubReq
		var ok bool
		select {
		case r, ok = <-reqs:
		case <-sweepC:
			sweep()
			continue
		}
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		commit(batch)
		clear(batch)
	}
}

// batchWriter stores a batch in one transaction: a result per request and
// the newly stored (non-duplicate) messages in offset order.
type batchWriter func([]*pubReq) (results []PublishResult, stored []Message, err error)

// commitBatch commits batch through write and answers every request. On
// any failure nothing of the batch is stored and every caller gets an
// error wrapping ErrUnavailable: never a false acknowledgement. The commit
// callback sees the stored messages before any caller is answered, so live
// delivery follows the log's order.
func commitBatch(batch []*pubReq, write batchWriter, onCommit *atomic.Pointer[func([]Message)], took func(time.Duration)) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// Gone before its turn: not stored, and the caller already returned.
			r.done <- pubAnswer{err: fmt.Errorf("store: publish: %w", err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	results, stored, err := write(live)
	if took != nil {
		took(time.Since(start))
	}
	if err != nil {
		err = fmt.Errorf("store: publish: %w: %w", ErrUnavailable, err)
		for _, r := range live {
			r.done <- pubAnswer{err: err}
		}
		return
	}
	if fn := onCommit.Load(); fn != nil && len(stored) > 0 {
		(*fn)(stored)
	}
	for i, r := range live {
		r.done <- pubAnswer{res: results[i]}
	}
}
