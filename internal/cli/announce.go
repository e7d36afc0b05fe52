package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/store"
)

// announcer is the store of an admin command when the cluster has a Redis
// broker: a revocation is recorded in the store as always (every running
// server polls for it) and also published on Redis, so that every node
// closes the affected sockets at once instead of at its next poll.
type announcer struct {
	store.Store
	b broker.Broker
}

// announceWait bounds how long a command waits for Redis before leaving
// the revocation to the servers' polling.
const announceWait = 2 * time.Second

// withAnnouncer wraps st when cfg names a Redis broker; the returned func
// closes the broker.
func withAnnouncer(cfg config.Config, st store.Store) (store.Store, func() error) {
	if cfg.Broker == "" || cfg.Broker == "memory" {
		return st, func() error { return nil }
	}
	b, err := broker.NewRedis(cfg.Broker, broker.RedisOptions{})
	if err != nil {
		slog.Warn("broker: revocations will reach running servers by polling the store", "err", err)
		return st, func() error { return nil }
	}
	return announcer{Store: st, b: b}, b.Close
}

// AddRevocation records r, then publishes it to every node.
func (a announcer) AddRevocation(ctx context.Context, r store.Revocation) error {
	if err := a.Store.AddRevocation(ctx, r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, announceWait)
	defer cancel()
	for a.b.Ping(ctx) != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	e := broker.Event{Kind: broker.KindRevoke, SessionID: r.SessionID, User: r.User, Reason: r.Reason}
	if err := a.b.Publish(ctx, e); err != nil {
		// Stored all the same: servers apply it at their next poll.
		slog.Warn("broker: could not publish the revocation; running servers apply it from the store within a second", "err", err)
	}
	return nil
}
