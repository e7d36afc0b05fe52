// Package brokertest is the conformance suite every broker.Broker passes
// (the in-process Memory and the Redis broker alike), and the helpers that
// give tests a Redis: a shared one with a private prefix, or a private
// redis-server process a test may stop and start again.
package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
)

// Factory makes the brokers under test.
type Factory struct {
	// New returns a node of a fresh cluster; the caller closes it.
	New func(t *testing.T) broker.Broker
	// Peer returns another node of b's cluster; the caller closes it
	// unless it is b itself (an in-process broker is its own cluster).
	Peer func(t *testing.T, b broker.Broker) broker.Broker
}

// Run runs the conformance suite.
func Run(t *testing.T, f Factory) {
	node := func(t *testing.T) broker.Broker {
		b := f.New(t)
		t.Cleanup(func() { _ = b.Close() })
		waitReady(t, b)
		return b
	}
	peer := func(t *testing.T, b broker.Broker) broker.Broker {
		p := f.Peer(t, b)
		if p != b {
			t.Cleanup(func() { _ = p.Close() })
		}
		waitReady(t, p)
		return p
	}
	t.Run("Ordering", func(t *testing.T) {
		a := node(t)
		b := peer(t, a)
		rec := record(a)
		listen(t, a, "room:order")
		const n = 200
		for i := uint64(1); i <= n; i++ {
			publish(t, b, message("room:order", i))
		}
		got := rec.waitN(t, n)
		want := uint64(1)
		for _, e := range got {
			if e.Kind != broker.KindMessage || e.Batch[0].Offset != want {
				t.Fatalf("got %s offset %d, want message offset %d (publish order)", e.Kind, e.Batch[0].Offset, want)
			}
			want++
		}
	})
	t.Run("FanOut", func(t *testing.T) {
		a := node(t)
		b := peer(t, a)
		r1, r2, r3 := record(a), record(a), record(b)
		listen(t, a, "room:fan")
		listen(t, b, "room:fan")
		publish(t, a, message("room:fan", 1))
		publish(t, b, message("room:fan", 2))
		for _, r := range []*recorder{r1, r2, r3} {
			got := r.waitN(t, 2)
			offs := map[uint64]bool{}
			for _, e := range got {
				offs[e.Batch[0].Offset] = true
			}
			if !offs[1] || !offs[2] {
				t.Fatalf("a subscriber got %v, want offsets 1 and 2", offs)
			}
		}
	})
	t.Run("OnlyListenedChannels", func(t *testing.T) {
		a := node(t)
		b := peer(t, a)
		rec := record(a)
		listen(t, a, "room:x")
		publish(t, b, message("room:y", 1))
		publish(t, b, broker.Event{Kind: broker.KindPresence, Channel: "room:y", Frame: []byte(`{}`)})
		publish(t, b, message("room:x", 1)) // from one publisher: arrives after the two above
		got := rec.waitN(t, 1)
		if got[0].Channel != "room:x" {
			t.Fatalf("got an event of %q, a channel this node does not listen to", got[0].Channel)
		}
		a.Unlisten("room:x")
		publish(t, b, message("room:x", 2))
		publish(t, b, broker.Event{Kind: broker.KindKick, User: "barrier"})
		got = rec.waitN(t, 2)
		if got[1].Kind != broker.KindKick {
			t.Fatalf("after Unlisten got %s of %q, want only the kick", got[1].Kind, got[1].Channel)
		}
	})
	t.Run("RevokeAndKickReachEveryNode", func(t *testing.T) {
		a := node(t)
		b := peer(t, a)
		ra, rb := record(a), record(b)
		publish(t, b, broker.Event{Kind: broker.KindRevoke, SessionID: "s1", User: "alice", Reason: "logout"})
		publish(t, a, broker.Event{Kind: broker.KindKick, User: "bob", Reason: "kicked"})
		for _, r := range []*recorder{ra, rb} {
			got := r.waitN(t, 2)
			var rev, kick bool
			for _, e := range got {
				rev = rev || (e.Kind == broker.KindRevoke && e.SessionID == "s1" && e.User == "alice" && e.Reason == "logout")
				kick = kick || (e.Kind == broker.KindKick && e.User == "bob" && e.Reason == "kicked")
			}
			if !rev || !kick {
				t.Fatalf("got %+v, want the revoke and the kick with their fields", got)
			}
		}
	})
	t.Run("Presence", func(t *testing.T) {
		a := node(t)
		b := peer(t, a)
		rec := record(a)
		listen(t, a, "room:p")
		frame := []byte(`{"push":"presence","channel":"room:p","join":["alice"],"leave":[]}`)
		publish(t, b, broker.Event{Kind: broker.KindPresence, Channel: "room:p", Frame: frame})
		got := rec.waitN(t, 1)
		if got[0].Kind != broker.KindPresence || got[0].Channel != "room:p" || !bytes.Equal(got[0].Frame, frame) {
			t.Fatalf("got %+v, want the presence frame byte for byte", got[0])
		}
	})
	t.Run("UnsubscribeAndClose", func(t *testing.T) {
		a := f.New(t)
		waitReady(t, a)
		rec := &recorder{}
		cancel := a.Subscribe(rec.handle)
		cancel()
		publish(t, a, broker.Event{Kind: broker.KindKick, User: "x"})
		time.Sleep(100 * time.Millisecond) // nothing must arrive; no event to wait for
		if n := rec.count(); n != 0 {
			t.Fatalf("a cancelled handler got %d events", n)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

func waitReady(t *testing.T, b broker.Broker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not ready after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listen(t *testing.T, b broker.Broker, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Listen(ctx, channel); err != nil {
		t.Fatalf("Listen %s: %v", channel, err)
	}
}

func publish(t *testing.T, b broker.Broker, e broker.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func message(channel string, offset uint64) broker.Event {
	return broker.Event{Kind: broker.KindMessage, Channel: channel,
		Batch: []broker.Encoded{{Offset: offset, Frame: fmt.Appendf(nil, `{"push":"message","offset":%d}`, offset)}}}
}

type recorder struct {
	mu     sync.Mutex
	events []broker.Event
}

func record(b broker.Broker) *recorder {
	r := &recorder{}
	b.Subscribe(r.handle)
	return r
}

func (r *recorder) handle(e broker.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// waitN waits up to 10 s for n events and returns the first n; more than
// n arriving fails the test.
func (r *recorder) waitN(t *testing.T, n int) []broker.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d events in 10 s, want %d", r.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let a stray extra event show
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) > n {
		t.Fatalf("got %d events, want %d: %+v", len(r.events), n, r.events[n:])
	}
	return append([]broker.Event(nil), r.events...)
}
