package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
	"github.com/wsguard/wsguard/internal/config"
)

// TestRedisBrokerOutageAndRevocation: a node on a Redis broker chats as
// usual; with its Redis killed /readyz answers 503 while publishes are
// still stored, acknowledged and delivered to the node's own subscribers;
// when Redis returns on the same address the node is ready again without a
// restart. A revocation published on Redis by another process (another
// node, or the CLI) closes the user's socket here within 1 s, with no
// record in the store to poll: it came through Redis.
func TestRedisBrokerOutageAndRevocation(t *testing.T) {
	rs := brokertest.StartRedis(t)
	u := rs.URL()
	ts := startServer(t, func(c *config.Config) { c.Broker = u })
	c := ts.httpClient(nil)
	readyz := func() int {
		resp, err := c.Get(ts.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for readyz() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz did not answer %d within 15 s", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus(http.StatusOK)
	a, b := honestPair(t, ts, "room:lobby")
	chat(t, a, b, "room:lobby", 2)

	rs.Stop()
	waitStatus(http.StatusServiceUnavailable)
	chat(t, a, b, "room:lobby", 2) // stored, acknowledged, delivered on this node

	rs.Start()
	waitStatus(http.StatusOK)
	chat(t, b, a, "room:lobby", 2)

	other, err := broker.NewRedis(u, broker.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for other.Ping(ctx) != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := other.Publish(ctx, broker.Event{Kind: broker.KindRevoke, User: "bob", Reason: "user disabled"}); err != nil {
		t.Fatal(err)
	}
	expectClose4001(t, b, "bob's socket after a revocation published on Redis")
	alive(t, "alice, not revoked", a)
}
