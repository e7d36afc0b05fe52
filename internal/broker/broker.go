// Package broker carries live events between the nodes of a cluster:
// committed channel messages (already encoded once, ready to fan out) and
// control events such as revocations that must close sockets on every node.
//
// Memory is the in-process default; a Redis broker implements the same
// interface for scale-out. Handlers run on the broker's delivery goroutine and
// must not block.
package broker

import (
	"context"
	"sync"
)

// Kind tells what an Event carries.
type Kind string

// Event kinds.
const (
	KindMessage  Kind = "message"  // a committed channel message
	KindRevoke   Kind = "revoke"   // close live sockets of a session or user
	KindKick     Kind = "kick"     // close sockets of a user by admin or API (same effect, other reason)
	KindPresence Kind = "presence" // a join/leave push for a channel's subscribers
	// KindResync is never published: a broker delivers it to its own
	// handlers after its link to the other nodes was lost and is back, since
	// events published meanwhile are gone. Handlers catch up from the store.
	KindResync Kind = "resync"
)

// Encoded is one committed message, encoded once: every subscriber
// receives Frame byte for byte.
type Encoded struct {
	Offset uint64 `json:"offset"`
	Frame  []byte `json:"frame"`
}

// Event is one broker event. For KindMessage, Batch holds the messages of
// Channel that one group commit stored, in offset order: a subscriber gets
// them in one wake-up and, usually, one write. For KindPresence, Join and
// Leave are the publishing node's own changes since its last push (More
// when a list was cut) and Origin names that node: each receiver merges
// them with its own changes into one push per interval. Frame is the same
// changes encoded as a push, for nodes that predate Join and Leave and
// deliver it as it is.
type Event struct {
	Kind    Kind      `json:"kind"`
	Channel string    `json:"channel,omitempty"`
	Batch   []Encoded `json:"batch,omitempty"`
	Frame   []byte    `json:"frame,omitempty"`
	// Presence changes (KindPresence).
	Join   []string `json:"join,omitempty"`
	Leave  []string `json:"leave,omitempty"`
	More   bool     `json:"more,omitempty"`
	Origin string   `json:"origin,omitempty"`
	// Revocation targets: a session (by public id), or every session of a user.
	SessionID string `json:"session,omitempty"`
	User      string `json:"user,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Handler receives events. It must not block.
type Handler func(Event)

// Broker publishes events to every node, this one included.
//
// Message and presence events of a channel reach a node's handlers only
// while the node listens to that channel (Listen), so that a node carries
// only the channels its sockets subscribe to. Revocations and kicks reach
// every node.
type Broker interface {
	Publish(ctx context.Context, e Event) error
	// Subscribe registers h for every event; the returned func unregisters it.
	Subscribe(h Handler) (cancel func())
	// Listen starts delivering channel's message and presence events to
	// this node's handlers. Calls nest: each Listen needs one Unlisten.
	// When Listen returns nil, every event published afterwards on any
	// node is delivered; on error, the broker keeps trying and tells its
	// handlers KindResync once it has caught up.
	Listen(ctx context.Context, channel string) error
	// Unlisten undoes one Listen.
	Unlisten(channel string)
	// Ping reports whether the broker can carry events (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Distributed reports whether b carries events between nodes, where
// events of one channel published on two nodes may arrive out of offset
// order (a receiver then orders them and fills gaps from the store).
func Distributed(b Broker) bool {
	d, ok := b.(interface{ Distributed() bool })
	return ok && d.Distributed()
}

// ChannelEvent reports whether events of kind k belong to one channel
// (delivered only where that channel is listened to).
func ChannelEvent(k Kind) bool { return k == KindMessage || k == KindPresence }

// Memory is the in-process broker: Publish calls every handler in order,
// on the caller's goroutine. Events published by one goroutine are delivered
// in publish order.
type Memory struct {
	mu        sync.RWMutex
	next      int
	handlers  map[int]Handler
	listening map[string]int
}

// NewMemory returns an empty in-process broker.
func NewMemory() *Memory {
	return &Memory{handlers: map[int]Handler{}, listening: map[string]int{}}
}

// Publish delivers e to every handler; a channel's events only while the
// channel is listened to.
func (m *Memory) Publish(_ context.Context, e Event) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if ChannelEvent(e.Kind) && m.listening[e.Channel] == 0 {
		return nil
	}
	for _, h := range m.handlers {
		h(e)
	}
	return nil
}

// Listen counts one listener of channel.
func (m *Memory) Listen(_ context.Context, channel string) error {
	m.mu.Lock()
	m.listening[channel]++
	m.mu.Unlock()
	return nil
}

// Unlisten undoes one Listen.
func (m *Memory) Unlisten(channel string) {
	m.mu.Lock()
	if m.listening[channel] <= 1 {
		delete(m.listening, channel)
	} else {
		m.listening[channel]--
	}
	m.mu.Unlock()
}

// Subscribe registers h.
func (m *Memory) Subscribe(h Handler) func() {
	m.mu.Lock()
	id := m.next
	m.next++
	m.handlers[id] = h
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.handlers, id)
		m.mu.Unlock()
	}
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// Close does nothing.
func (m *Memory) Close() error { return nil }
