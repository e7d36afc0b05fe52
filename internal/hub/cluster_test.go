package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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

// presenceNode starts a hub on its own Redis broker at u, pushing presence
// every interval, and counts the pushes its flushes deliver to channel.
func presenceNode(t *testing.T, u, channel string, interval time.Duration) (*Hub, *atomic.Int64) {
	t.Helper()
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
	h := New(nil, br)
	h.PresenceInterval = interval
	var flushed atomic.Int64
	h.presenceDelivered = func(c string) {
		if c == channel {
			flushed.Add(1)
		}
	}
	stop := h.Start()
	t.Cleanup(func() { stop(); _ = br.Close() })
	return h, &flushed
}

// joinAcross seats perNode distinct users on each hub, in rounds spread
// over a few intervals so that several nodes' flushes fall in one
// interval, and returns every user seated (name → node index).
func joinAcross(channel string, nodes []*Hub, perNode int, interval time.Duration) map[string]int {
	users := map[string]int{}
	const rounds = 4
	for r := range rounds {
		for i, h := range nodes {
			for k := r; k < perNode; k += rounds {
				u := fmt.Sprintf("n%d-u%02d", i, k)
				users[u] = i
				h.Subscribe(channel, &counter{}, u, false)
			}
		}
		time.Sleep(interval / 2)
	}
	return users
}

// waitTold waits until w has been told of every user in want (10 s at most).
func waitTold(t *testing.T, name string, w *watcher, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, joined, _ := w.seen()
		missing := 0
		for u := range want {
			if !joined[u] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d joins never pushed", name, missing, len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// samePushes fails unless every presence push w got was delivered by its
// own node's flush (counted in flushed). A flush counts its push just after
// delivering it, so the two may differ for a moment: it waits up to 5 s for
// them to agree.
func samePushes(t *testing.T, name string, w *watcher, flushed *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _, _ := w.seen()
		flushes := flushed.Load()
		if int64(got) == flushes {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber on %s got %d presence pushes, its node's flushes delivered %d: pushes of other nodes reached it", name, got, flushes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterPresenceOnePushPerInterval: users join one channel on three
// nodes at once. A presence-seeing subscriber on node A is told of all of
// them, each once, and every push it gets is one of node A's own flushes
// (node A merges what B and C tell it): before, it got B's and C's pushes
// as well, up to three per interval.
func TestClusterPresenceOnePushPerInterval(t *testing.T) {
	u := brokertest.RedisURL(t)
	const channel, interval = "room:crowd", 150 * time.Millisecond
	a, flushedA := presenceNode(t, u, channel, interval)
	b, _ := presenceNode(t, u, channel, interval)
	c, _ := presenceNode(t, u, channel, interval)
	wa := &watcher{}
	a.Subscribe(channel, wa, "watcher", true)
	users := joinAcross(channel, []*Hub{a, b, c}, 20, interval)
	waitTold(t, "node A", wa, users)
	time.Sleep(2 * interval) // any push still due lands

	samePushes(t, "node A", wa, flushedA)
	wa.mu.Lock()
	defer wa.mu.Unlock()
	told := map[string]int{}
	for _, p := range wa.pushes {
		if len(p.Leave) != 0 || p.More {
			t.Fatalf("unexpected push %+v", p)
		}
		for _, name := range p.Join {
			told[name]++
		}
	}
	for name, n := range told {
		if n != 1 {
			t.Fatalf("%s told %d times, want once", name, n)
		}
	}
	t.Logf("%d joins over 3 nodes told in %d pushes", len(users), len(wa.pushes))
}

// TestClusterPresenceNotRepublished: each node publishes only its own
// joins, each once: what it heard from the other nodes it merges into its
// own subscribers' push but never publishes again (no echo, no loop).
// A subscriber on node C is told of every join exactly once.
func TestClusterPresenceNotRepublished(t *testing.T) {
	u := brokertest.RedisURL(t)
	const channel, interval = "room:echo", 100 * time.Millisecond
	a, _ := presenceNode(t, u, channel, interval)
	b, _ := presenceNode(t, u, channel, interval)
	c, flushedC := presenceNode(t, u, channel, interval)
	nodes := []*Hub{a, b, c}

	// A spy on the broker sees every node's presence events.
	spy, err := broker.NewRedis(u, broker.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	var mu sync.Mutex
	var events []broker.Event
	defer spy.Subscribe(func(e broker.Event) {
		if e.Kind == broker.KindPresence {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}
	})()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := spy.Listen(ctx, channel); err != nil {
		t.Fatal(err)
	}

	wc := &watcher{}
	c.Subscribe(channel, wc, "watcher", true)
	users := joinAcross(channel, nodes, 20, interval)
	waitTold(t, "node C", wc, users)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		seen := map[string]bool{}
		for _, e := range events {
			for _, name := range e.Join {
				seen[name] = true
			}
		}
		mu.Unlock()
		if len(seen) >= len(users) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spy saw %d of %d joins published", len(seen), len(users))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * interval) // an echo, if any, would be out by now

	origin := map[string]int{}
	for i, h := range nodes {
		origin[h.origin] = i
	}
	mu.Lock()
	defer mu.Unlock()
	published := map[string]int{}
	for _, e := range events {
		from, ok := origin[e.Origin]
		if !ok {
			t.Fatalf("presence event without a known origin: %+v", e)
		}
		if len(e.Frame) == 0 {
			t.Fatalf("presence event without a frame for older nodes: %+v", e)
		}
		for _, name := range e.Join {
			published[name]++
			if want, ok := users[name]; ok && want != from {
				t.Fatalf("%s joined on node %d was published by node %d", name, want, from)
			}
		}
	}
	for name := range users {
		if published[name] != 1 {
			t.Fatalf("%s published %d times, want once", name, published[name])
		}
	}
	samePushes(t, "node C", wc, flushedC)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	told := map[string]int{}
	for _, p := range wc.pushes {
		for _, name := range p.Join {
			told[name]++
		}
	}
	for name := range users {
		if told[name] != 1 {
			t.Fatalf("node C's subscriber told of %s %d times, want once", name, told[name])
		}
	}
}
