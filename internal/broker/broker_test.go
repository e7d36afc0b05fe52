package broker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Factory{
		New:  func(*testing.T) broker.Broker { return broker.NewMemory() },
		Peer: func(_ *testing.T, b broker.Broker) broker.Broker { return b },
	})
}

func TestRedisConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Factory{
		New: func(t *testing.T) broker.Broker {
			b, err := broker.NewRedis(brokertest.RedisURL(t), broker.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Peer: func(t *testing.T, b broker.Broker) broker.Broker {
			r := b.(*broker.Redis)
			base, _, _ := strings.Cut(brokertest.RedisURL(t), "?")
			p, err := broker.NewRedis(base+"?prefix="+r.Prefix(), broker.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	})
}

// TestRedisOutageResync: with its Redis killed a node reports not ready,
// still delivers its own events locally and answers publishes at once with
// an error; when Redis is back on the same address, the node is ready
// again without a restart, hears the other nodes again, and tells its
// handlers to resync.
func TestRedisOutageResync(t *testing.T) {
	srv := brokertest.StartRedis(t)
	u := srv.URL()
	a, err := broker.NewRedis(u, broker.RedisOptions{PingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := broker.NewRedis(u, broker.RedisOptions{PingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var resyncs, msgs atomic.Int32
	a.Subscribe(func(e broker.Event) {
		switch e.Kind {
		case broker.KindResync:
			resyncs.Add(1)
		case broker.KindMessage:
			msgs.Add(1)
		}
	})
	eventually(t, "a ready", func() bool { return a.Ping(context.Background()) == nil })
	eventually(t, "b ready", func() bool { return b.Ping(context.Background()) == nil })
	ctx := context.Background()
	if err := a.Listen(ctx, "room:o"); err != nil {
		t.Fatal(err)
	}
	before := resyncs.Load()

	srv.Stop()
	eventually(t, "a not ready", func() bool { return a.Ping(ctx) != nil })
	ev := broker.Event{Kind: broker.KindMessage, Channel: "room:o", Batch: []broker.Encoded{{Offset: 1, Frame: []byte(`{}`)}}}
	if err := a.Publish(ctx, ev); !errors.Is(err, broker.ErrLinkDown) {
		t.Fatalf("publish with Redis down answered %v, want ErrLinkDown (logged once, not per publish)", err)
	}
	if msgs.Load() != 1 {
		t.Fatalf("own event delivered %d times locally with Redis down, want 1", msgs.Load())
	}

	srv.Start()
	eventually(t, "a ready again", func() bool { return a.Ping(ctx) == nil })
	eventually(t, "a resync", func() bool { return resyncs.Load() > before })
	eventually(t, "b ready again", func() bool { return b.Ping(ctx) == nil })
	ev.Batch[0].Offset = 2
	if err := b.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a hears b again", func() bool { return msgs.Load() == 2 })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
