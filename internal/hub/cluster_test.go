package hub

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
	"github.com/wsguard/wsguard/internal/store"
)

// TestTwoNodesOverRedisCatchUpAfterOutage: two hubs on one store and one
// Redis, as two nodes. A subscriber on node B receives what node A
// publishes, in order; while Redis is down node A's publishes are stored
// and acknowledged, and once Redis is back (same address, no restart) the
// subscriber on node B receives them, in order, with no gap and no
// duplicate.
func TestTwoNodesOverRedisCatchUpAfterOutage(t *testing.T) {
	rs := brokertest.StartRedis(t)
	u := rs.URL()
	var a *Hub
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "s.db"), store.SQLiteOptions{
		OnCommit: func(msgs []store.Message) { a.Committed(msgs) }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newNode := func() (*Hub, *broker.Redis) {
		b, err := broker.NewRedis(u, broker.RedisOptions{PingInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h := New(st, b)
		h.PresencePushes = func(string) bool { return false }
		stop := h.Start()
		t.Cleanup(func() { stop(); _ = b.Close() })
		return h, b
	}
	a, ba := newNode()
	b, bb := newNode()
	ready := func(br *broker.Redis, want bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for (br.Ping(context.Background()) == nil) != want {
			if time.Now().After(deadline) {
				t.Fatalf("broker ready=%v not reached in 15 s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ready(ba, true)
	ready(bb, true)
	r := &recorder{got: make(chan struct{}, 1024)}
	b.Subscribe("room:a", r, "bob", false)

	ctx := context.Background()
	publish := func(n int) {
		for range n {
			if _, err := a.Publish(ctx, "alice", "room:a", "", json.RawMessage(`{}`)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	offsets := func() []uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		var all []uint64
		for _, c := range r.calls {
			all = append(all, c...)
		}
		return all
	}
	waitOffsets := func(n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for len(offsets()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("node B's subscriber got %d messages, want %d", len(offsets()), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		got := offsets()
		if len(got) != n {
			t.Fatalf("got %d messages, want %d: %v", len(got), n, got)
		}
		for i, o := range got {
			if o != uint64(i)+1 { // #nosec G115 -- a small test index
				t.Fatalf("offsets %v: position %d holds %d (want 1..%d in order, no gap, no duplicate)", got, i, o, n)
			}
		}
	}
	publish(20)
	waitOffsets(20)

	rs.Stop()
	ready(ba, false)
	ready(bb, false)
	publish(10) // stored and acknowledged with Redis down
	rs.Start()
	ready(ba, true)
	ready(bb, true)
	waitOffsets(30)
	publish(5)
	waitOffsets(35)
}

// TestThreeNodesConcurrentPublishersInOrder: nodes A and B publish to one
// channel at once (their events race through Redis); subscribers on nodes
// B and C receive every message exactly once, in offset order.
func TestThreeNodesConcurrentPublishersInOrder(t *testing.T) {
	u := brokertest.RedisURL(t)
	var a, b *Hub
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "s.db"), store.SQLiteOptions{
		OnCommit: func(msgs []store.Message) {
			// Each message fans out from the node its author published on.
			var fromA, fromB []store.Message
			for _, m := range msgs {
				if m.From == "alice" {
					fromA = append(fromA, m)
				} else {
					fromB = append(fromB, m)
				}
			}
			if len(fromA) > 0 {
				a.Committed(fromA)
			}
			if len(fromB) > 0 {
				b.Committed(fromB)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newNode := func() *Hub {
		br, err := broker.NewRedis(u, broker.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for br.Ping(context.Background()) != nil {
			if time.Now().After(deadline) {
				t.Fatal("broker not ready in 10 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		h := New(st, br)
		h.PresencePushes = func(string) bool { return false }
		stop := h.Start()
		t.Cleanup(func() { stop(); _ = br.Close() })
		return h
	}
	a, b = newNode(), newNode()
	c := newNode()
	rb := &recorder{got: make(chan struct{}, 4096)}
	rc := &recorder{got: make(chan struct{}, 4096)}
	b.Subscribe("room:a", rb, "bob", false)
	c.Subscribe("room:a", rc, "carol", false)

	const each = 200
	ctx := context.Background()
	done := make(chan error, 2)
	for _, p := range []struct {
		h    *Hub
		from string
	}{{a, "alice"}, {b, "bob"}} {
		go func() {
			for range each {
				if _, err := p.h.Publish(ctx, p.from, "room:a", "", json.RawMessage(`{}`)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]*recorder{"node B": rb, "node C": rc} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			r.mu.Lock()
			var got []uint64
			for _, call := range r.calls {
				got = append(got, call...)
			}
			r.mu.Unlock()
			if len(got) >= 2*each {
				for i, o := range got {
					if o != uint64(i)+1 { // #nosec G115 -- a small test index
						t.Fatalf("%s: position %d holds offset %d (want 1..%d in order, no gap, no duplicate)", name, i, o, 2*each)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s got %d messages, want %d", name, len(got), 2*each)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A node that delivers the channel answers a subscribe's "latest"
	// itself, with the last offset it delivered; one with no subscriber
	// of it does not know, and the store must say.
	for name, h := range map[string]*Hub{"node B": b, "node C": c} {
		if latest, ok := h.Latest("room:a"); !ok || latest != 2*each {
			t.Fatalf("%s: Latest = %d, %v; want %d, true", name, latest, ok, 2*each)
		}
	}
	if latest, ok := a.Latest("room:a"); ok {
		t.Fatalf("node A has no subscriber of room:a, yet Latest = %d, true", latest)
	}
}

// TestClusterPresence: with a Redis roster each node's presence request
// lists the members of every node; a node's own joins show at once, and
// a node that stops takes its members with it.
func TestClusterPresence(t *testing.T) {
	u := brokertest.RedisURL(t)
	node := func() (*Hub, *broker.RedisPresence) {
		br, err := broker.NewRedis(u, broker.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := New(nil, br)
		p := broker.NewRedisPresence(br, broker.PresenceOptions{Heartbeat: 50 * time.Millisecond, NodeTTL: 300 * time.Millisecond})
		h.Roster = p
		stop := h.Start()
		t.Cleanup(func() { stop(); _ = br.Close() })
		return h, p
	}
	a, pa := node()
	b, pb := node()
	defer pb.Close()
	ra := &recorder{got: make(chan struct{}, 64)}
	rb := &recorder{got: make(chan struct{}, 64)}
	a.Subscribe("room:a", ra, "alice", true)
	if got := a.Members("room:a"); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("own join not listed at once: %v", got)
	}
	b.Subscribe("room:a", rb, "bob", true)
	wait := func(h *Hub, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := h.Members("room:a")
			s := ""
			for i, m := range got {
				if i > 0 {
					s += ","
				}
				s += m
			}
			if s == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("members %q, want %q", s, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(a, "alice,bob")
	wait(b, "alice,bob")
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	wait(b, "bob")
}
