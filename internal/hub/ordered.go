package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
)

// Across nodes, a channel's messages come from whichever node committed
// them, so they may arrive out of offset order (node A commits 5, node B
// commits 6, B's event reaches Redis first), and an event published while a
// node's broker link was down never arrives. The store holds every
// committed message, so the hub restores the order itself: per channel with
// local subscribers it remembers the last offset delivered, drops what is
// at or below it, and when an event jumps ahead reads the missing range
// from the store before delivering. After the broker reports a resync, it
// reads from the store whatever followed the last offset of each channel.
//
// With the in-process broker none of this runs: one fan-out goroutine
// delivers in commit order.

// chanState is one channel's listen state and, with a distributed broker,
// its delivery order. mu serialises, per channel, the broker's Listen and
// Unlisten and every ordered delivery.
type chanState struct {
	mu    sync.Mutex
	last  uint64 // highest offset delivered
	known bool   // last is set: the store said where the channel stood
	gone  bool   // the last local subscriber left
}

// Bounds on filling from the store.
const (
	fillPage = 500
	// maxFill bounds one gap read from the store; past it the hub skips
	// ahead and each subscriber's connection, seeing the jump in offsets,
	// reads the rest from the store itself (conn's per-subscriber fill, the
	// safety net behind this ordering).
	maxFill  = 10_000
	storeOps = 5 * time.Second
)

// listen asks the broker for channel's events and, when ordering, reads
// where the channel stands. st is locked by Subscribe; listen unlocks it.
func (h *Hub) listen(channel string, st *chanState) {
	defer st.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeOps)
	defer cancel()
	if err := h.broker.Listen(ctx, channel); err != nil {
		// The broker catches up with a resync once it can.
		slog.Warn("broker listen failed", "channel", channel, "err", err)
	}
	if !h.ordered || h.store == nil {
		return
	}
	// Read after Listen: whatever is committed from here on arrives as an
	// event or shows as a gap behind one. Subscribers replay up to their own
	// read of the latest offset, made after this.
	last, err := h.store.Latest(ctx, channel)
	if err != nil {
		slog.Warn("store latest failed; ordering starts at the first event", "channel", channel, "err", err)
		return
	}
	st.last, st.known = last, true
}

// unlisten undoes listen once the channel's last local subscriber left.
func (h *Hub) unlisten(channel string, st *chanState) {
	st.mu.Lock()
	st.gone = true
	st.mu.Unlock()
	h.broker.Unlisten(channel)
}

func (h *Hub) stateOf(channel string) *chanState {
	sh := h.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.state[channel]
}

// Latest returns the last offset the hub delivered on channel, when it
// orders the channel's events and knows where the channel stands: a
// subscribe on a node of a cluster then answers without asking the shared
// store. Read under the channel's delivery lock, after the caller has
// joined the channel, it is exact for that subscriber: every delivery done
// before it is at or below it, and every delivery after it reaches the
// subscriber. Committed messages still on their way from other nodes
// arrive later as live frames above it. ok is false when the caller must
// ask the store.
func (h *Hub) Latest(channel string) (offset uint64, ok bool) {
	if !h.ordered {
		return 0, false
	}
	st := h.stateOf(channel)
	if st == nil {
		return 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone || !st.known {
		return 0, false
	}
	return st.last, true
}

// deliverOrdered delivers a batch of channel in offset order, dropping
// what was delivered already and filling gaps from the store.
func (h *Hub) deliverOrdered(channel string, batch []broker.Encoded) {
	st := h.stateOf(channel)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone {
		return
	}
	now := time.Now()
	fs := make([]*Frame, 0, len(batch))
	last, known := st.last, st.known
	for _, m := range batch {
		if known && m.Offset <= last {
			continue
		}
		if known && m.Offset > last+1 {
			fs = append(fs, h.fill(channel, last, m.Offset-1, now)...)
		}
		fs = append(fs, &Frame{Channel: channel, Offset: m.Offset, Data: m.Frame, Sent: now})
		last, known = m.Offset, true
	}
	st.last, st.known = last, known
	h.deliver(channel, fs, false)
}

// fill reads channel's messages with offsets in (after, upto] from the store.
func (h *Hub) fill(channel string, after, upto uint64, now time.Time) []*Frame {
	if h.store == nil {
		return nil
	}
	if upto-after > maxFill {
		slog.Warn("gap too large to fill; subscribers resume with since", "channel", channel, "after", after, "upto", upto)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOps)
	defer cancel()
	var fs []*Frame
	for after < upto {
		page, _, err := h.store.Since(ctx, channel, after, int(min(upto-after, fillPage))) // #nosec G115 -- at most fillPage
		if err != nil {
			slog.Warn("filling a gap from the store failed", "channel", channel, "after", after, "err", err)
			return fs
		}
		if len(page) == 0 {
			return fs
		}
		for _, m := range page {
			if m.Offset <= after || m.Offset > upto {
				continue
			}
			fs = append(fs, &Frame{Channel: channel, Offset: m.Offset, Data: EncodePush(m), Sent: now})
			after = m.Offset
		}
	}
	return fs
}

// resync delivers, for every channel with local subscribers, what the
// store holds past the last offset delivered: the broker lost events.
func (h *Hub) resync() {
	type item struct {
		channel string
		st      *chanState
	}
	var all []item
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for ch, st := range sh.state {
			all = append(all, item{ch, st})
		}
		sh.mu.RUnlock()
	}
	for _, it := range all {
		h.catchUp(it.channel, it.st)
	}
}

func (h *Hub) catchUp(channel string, st *chanState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gone || h.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOps)
	defer cancel()
	latest, err := h.store.Latest(ctx, channel)
	if err != nil {
		slog.Warn("resync: store latest failed", "channel", channel, "err", err)
		return
	}
	if !st.known {
		st.last, st.known = latest, true
		return
	}
	if latest <= st.last {
		return
	}
	if latest-st.last > maxFill {
		slog.Warn("resync: too much missed to replay; subscribers resume with since", "channel", channel, "after", st.last, "latest", latest)
		st.last = latest
		return
	}
	fs := h.fill(channel, st.last, latest, time.Now())
	if len(fs) > 0 {
		st.last = fs[len(fs)-1].Offset
		h.deliver(channel, fs, false)
	}
}
