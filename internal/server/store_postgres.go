package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/store"
)

// openPostgres opens the store every node shares. A node that cannot reach
// it at start does not start (it could serve nobody); once running, an
// outage makes /readyz answer 503 and store operations answer unavailable
// until the database is back.
func openPostgres(cfg config.Config, c clock.Clock, onCommit func([]store.Message), m *metrics.Metrics, sealer store.Sealer, log *slog.Logger) (store.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return store.OpenPostgres(ctx, cfg.Store, store.PostgresOptions{
		Clock: c, OnCommit: onCommit, Sealer: sealer, Retention: retention(cfg.Namespaces),
		OnMigrate: func(from, to int, name string) {
			log.Info("migrating the shared database schema", "from", from, "to", to, "migration", name)
		},
		OnCommitDuration: func(d time.Duration) { m.StoreCommit.Observe(d.Seconds()) },
	})
}
