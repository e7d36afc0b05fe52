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

const (
	defaultPresenceInterval = 200 * time.Millisecond
	defaultPresenceNames    = 100
)

// presenceChange is what a channel's presence push will say: users newly
// present and users gone since the last push.
type presenceChange struct {
	join, leave map[string]struct{}
}

// notePresence records that user joined (or left) channel on this node.
// The caller holds sh.mu.
func (h *Hub) notePresence(sh *shard, channel, user string, joined bool) {
	if h.PresencePushes != nil && !h.PresencePushes(channel) {
		return
	}
	pc := sh.pending[channel]
	if pc == nil {
		pc = &presenceChange{join: map[string]struct{}{}, leave: map[string]struct{}{}}
		sh.pending[channel] = pc
	}
	add, undo := pc.join, pc.leave
	if !joined {
		add, undo = pc.leave, pc.join
	}
	if _, ok := undo[user]; ok {
		delete(undo, user) // left and came back (or came and left): no change to tell
	} else {
		add[user] = struct{}{}
	}
	if h.presenceArmed.CompareAndSwap(false, true) {
		interval := h.PresenceInterval
		if interval <= 0 {
			interval = defaultPresenceInterval
		}
		time.AfterFunc(interval, h.flushPresence)
	}
}

// flushPresence publishes one push per channel with pending changes.
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
			if len(pc.join) == 0 && len(pc.leave) == 0 {
				continue
			}
			frame := EncodePresence(channel, names(pc.join), names(pc.leave), limit)
			if err := h.broker.Publish(context.Background(), broker.Event{Kind: broker.KindPresence, Channel: channel, Frame: frame}); err != nil && !errors.Is(err, broker.ErrLinkDown) {
				// Presence requests still answer; the next change pushes
				// again. A link known to be down was logged once by the broker.
				slog.Warn("broker publish failed", "channel", channel, "push", "presence", "err", err)
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
	more := false
	if len(join) > limit {
		join, more = join[:limit], true
	}
	if len(leave) > limit {
		leave, more = leave[:limit], true
	}
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
