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
)

// Encoded is one committed message, encoded once: every subscriber
// receives Frame byte for byte.
type Encoded struct {
	Offset uint64 `json:"offset"`
	Frame  []byte `json:"frame"`
}

// Event is one broker event. For KindMessage, Batch holds the messages of
// Channel that one group commit stored, in offset order: a subscriber gets
// them in one wake-up and, usually, one write. For KindPresence, Frame is
// the encoded push.
type Event struct {
	Kind    Kind      `json:"kind"`
	Channel string    `json:"channel,omitempty"`
	Batch   []Encoded `json:"batch,omitempty"`
	Frame   []byte    `json:"frame,omitempty"`
	// Revocation targets: a session (by public id), or every session of a user.
	SessionID string `json:"session,omitempty"`
	User      string `json:"user,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Handler receives events. It must not block.
type Handler func(Event)

// Broker publishes events to every node, this one included.
type Broker interface {
	Publish(ctx context.Context, e Event) error
	// Subscribe registers h for every event; the returned func unregisters it.
	Subscribe(h Handler) (cancel func())
	// Ping reports whether the broker can carry events (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Memory is the in-process broker: Publish calls every handler in order,
// on the caller's goroutine. Events published by one goroutine are delivered
// in publish order.
type Memory struct {
	mu       sync.RWMutex
	next     int
	handlers map[int]Handler
}

// NewMemory returns an empty in-process broker.
func NewMemory() *Memory { return &Memory{handlers: map[int]Handler{}} }

// Publish delivers e to every handler.
func (m *Memory) Publish(_ context.Context, e Event) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, h := range m.handlers {
		h(e)
	}
	return nil
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
