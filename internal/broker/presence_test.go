package broker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
)

// TestRedisPresenceClusterWideNoGhosts: members joined on three nodes
// are listed on the others; a leave is seen everywhere; the members of a node that
// dies (its heartbeat stops, nothing cleaned up) are gone once NodeTTL has
// passed; a node closing removes its members at once.
func TestRedisPresenceClusterWideNoGhosts(t *testing.T) {
	u := brokertest.RedisURL(t)
	opt := broker.PresenceOptions{Heartbeat: 50 * time.Millisecond, NodeTTL: 300 * time.Millisecond}
	var ps []*broker.RedisPresence
	for range 3 {
		r, err := broker.NewRedis(u, broker.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p := broker.NewRedisPresence(r, opt)
		ps = append(ps, p)
	}
	defer ps[1].Close()
	ctx := context.Background()
	members := func(p *broker.RedisPresence) string {
		m, err := p.Members(ctx, "room:a")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(m, ",")
	}
	waitMembers := func(p *broker.RedisPresence, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for got := members(p); got != want; got = members(p) {
			if time.Now().After(deadline) {
				t.Fatalf("members %q, want %q", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ps[0].Join("room:a", "alice")
	ps[1].Join("room:a", "bob")
	ps[2].Join("room:a", "carol")
	ps[1].Join("room:b", "bob")
	// Each node lists the others' members (its own it knows itself).
	waitMembers(ps[0], "bob,carol")
	waitMembers(ps[1], "alice,carol")
	waitMembers(ps[2], "alice,bob")
	ps[1].Leave("room:a", "bob")
	waitMembers(ps[0], "carol")
	if m, _ := ps[0].Members(ctx, "room:b"); !slices.Equal(m, []string{"bob"}) {
		t.Fatalf("room:b members %v, want [bob]", m)
	}

	// Node 0 dies: no heartbeat, no cleanup.
	ps[0].Die()
	start := time.Now()
	waitMembers(ps[1], "carol")
	if time.Since(start) > 5*time.Second {
		t.Fatal("ghost members outlived the node TTL by far")
	}
	// Node 2 closes: its members leave at once.
	if err := ps[2].Close(); err != nil {
		t.Fatal(err)
	}
	if got := members(ps[1]); got != "" {
		t.Fatalf("after close members %q, want none", got)
	}
}
