package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
)

// Presence pushes are gathered, not sent one per join: when a crowd joins
// a channel, a push per join to every subscriber would cost the node
// subscribers × joins pushes (10,000 users joining one room: 50 million).
// Instead each channel's joins and leaves wait up to PresenceInterval and go
// out as one push, encoded once and given to every holder of the presence
// right, so each subscriber gets at most one presence push per channel per
// interval however many join. A join and a leave of the same user within
// one interval cancel out. Nothing runs while nothing is pending: one timer
// for the hub is armed by the first change and ends with its flush.
//
// In a cluster each node publishes its own changes (names, not a push) to
// the others at its flush, and merges the changes other nodes told it
// into its own next push: a subscriber gets one push per interval however
// many nodes there are, not one per node. A change on another node so
// reaches a subscriber up to about two intervals later. Changes heard from
// other nodes are never published again.

const (
	defaultPresenceInterval = 200 * time.Millisecond
	defaultPresenceNames    = 100
)

// nameChange is who joined and who left.
type nameChange struct {
	join, leave map[string]struct{}
}

func newNameChange() nameChange {
	return nameChange{join: map[string]struct{}{}, leave: map[string]struct{}{}}
}

// note records a join (or leave) of user; a leave after a join of the same
// user (or the reverse) cancels both.
func (c nameChange) note(user string, joined bool) {
	add, undo := c.join, c.leave
	if !joined {
		add, undo = c.leave, c.join
	}
	if _, ok := undo[user]; ok {
		delete(undo, user) // left and came back (or came and left): no change to tell
	} else {
		add[user] = struct{}{}
	}
}

func (c nameChange) empty() bool { return len(c.join) == 0 && len(c.leave) == 0 }

// presenceChange is what a channel's next presence push will say.
type presenceChange struct {
	// local is this node's own changes, published to the other nodes.
	local nameChange
	// all is local merged with the changes other nodes told: the push
	// delivered to this node's subscribers.
	all nameChange
	// more is whether another node cut its lists: the push says more.
	more bool
}

// pendingChange returns channel's pending change, made if none. The caller
// holds sh.mu.
func (sh *shard) pendingChange(channel string) *presenceChange {
	pc := sh.pending[channel]
	if pc == nil {
		pc = &presenceChange{local: newNameChange(), all: newNameChange()}
		sh.pending[channel] = pc
	}
	return pc
}

// notePresence records that user joined (or left) channel on this node.
// The caller holds sh.mu.
func (h *Hub) notePresence(sh *shard, channel, user string, joined bool) {
	if h.PresencePushes != nil && !h.PresencePushes(channel) {
		return
	}
	pc := sh.pendingChange(channel)
	pc.local.note(user, joined)
	pc.all.note(user, joined)
	h.armPresence()
}

// noteRemotePresence records the changes another node published, for this
// node's next push; they are not published again.
func (h *Hub) noteRemotePresence(e broker.Event) {
	if h.PresencePushes != nil && !h.PresencePushes(e.Channel) {
		return
	}
	if len(e.Join) == 0 && len(e.Leave) == 0 && !e.More {
		return
	}
	sh := h.shard(e.Channel)
	sh.mu.Lock()
	pc := sh.pendingChange(e.Channel)
	for _, u := range e.Join {
		pc.all.note(u, true)
	}
	for _, u := range e.Leave {
		pc.all.note(u, false)
	}
	pc.more = pc.more || e.More
	h.armPresence()
	sh.mu.Unlock()
}

// armPresence starts the flush timer unless one is due.
func (h *Hub) armPresence() {
	if h.presenceArmed.CompareAndSwap(false, true) {
		interval := h.PresenceInterval
		if interval <= 0 {
			interval = defaultPresenceInterval
		}
		time.AfterFunc(interval, h.flushPresence)
	}
}

// flushPresence, per channel with pending changes, publishes this node's
// own changes to the other nodes and delivers one push, its own and the
// other nodes' changes merged, to the local subscribers.
func (h *Hub) flushPresence() {
	// Disarm first: a change noted while this flush runs arms the next one
	// (or is taken by this one, leaving the next with nothing to do).
	h.presenceArmed.Store(false)
	select {
	case <-h.stopped:
		return
	default:
	}
	limit := h.PresenceNames
	if limit <= 0 {
		limit = defaultPresenceNames
	}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		if len(sh.pending) == 0 {
			sh.mu.Unlock()
			continue
		}
		taken := sh.pending
		sh.pending = map[string]*presenceChange{}
		sh.mu.Unlock()
		for channel, pc := range taken {
			if !pc.local.empty() {
				join, leave, more := capNames(names(pc.local.join), names(pc.local.leave), limit)
				e := broker.Event{Kind: broker.KindPresence, Channel: channel, Join: join, Leave: leave, More: more, Origin: h.origin,
					Frame: encodePresence(channel, join, leave, more)}
				if err := h.broker.Publish(context.Background(), e); err != nil && !errors.Is(err, broker.ErrLinkDown) {
					// Presence requests still answer; the next change pushes
					// again. A link known to be down was logged once by the broker.
					slog.Warn("broker publish failed", "channel", channel, "push", "presence", "err", err)
				}
			}
			if pc.all.empty() && !pc.more {
				continue
			}
			join, leave, more := capNames(names(pc.all.join), names(pc.all.leave), limit)
			frame := encodePresence(channel, join, leave, more || pc.more)
			h.deliver(channel, []*Frame{{Channel: channel, Data: frame, Sent: time.Now()}}, true)
			if h.presenceDelivered != nil {
				h.presenceDelivered(channel)
			}
		}
	}
}

func names(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// EncodePresence encodes the presence push for channel: who joined and who
// left. Each list holds at most limit names (the first in sort order); when
// either was cut the push carries "more": true, telling clients that the
// lists are partial and to ask presence for the whole member list.
func EncodePresence(channel string, join, leave []string, limit int) []byte {
	join, leave, more := capNames(join, leave, limit)
	return encodePresence(channel, join, leave, more)
}

// capNames cuts join and leave to limit names each and reports whether it
// cut either.
func capNames(join, leave []string, limit int) (j, l []string, more bool) {
	if len(join) > limit {
		join, more = join[:limit], true
	}
	if len(leave) > limit {
		leave, more = leave[:limit], true
	}
	return join, leave, more
}

func encodePresence(channel string, join, leave []string, more bool) []byte {
	if join == nil {
		join = []string{}
	}
	if leave == nil {
		leave = []string{}
	}
	b, err := json.Marshal(struct {
		Push    string   `json:"push"`
		Channel string   `json:"channel"`
		Join    []string `json:"join"`
		Leave   []string `json:"leave"`
		More    bool     `json:"more,omitempty"`
	}{"presence", channel, join, leave, more})
	if err != nil {
		panic("encode presence: " + err.Error()) // strings always encode
	}
	return b
}
