package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/ratelimit"
	"github.com/wsguard/wsguard/internal/realip"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/web"
)

// ui is the browser pages: sign-in, two-factor, settings and first-admin
// setup (login.go, settings.go, setup.go). It holds what they use, the
// same in serve and proxy mode, and nothing of the WebSocket endpoints:
// no guard, hub, upgrader or upstream. Its handlers are promoted onto
// Server, which embeds it.
type ui struct {
	cfg      config.Config
	log      *slog.Logger
	clock    clock.Clock
	store    store.Store
	sessions *session.Manager
	hasher   *identity.Hasher
	pages    *web.Pages
	audit    *audit.Log
	metrics  *metrics.Metrics
	creds    *guard.Credentials
	proxies  *realip.Resolver
	// hub ends the live sockets of a session or user on every node
	// (logout, revoke, password change).
	hub revoker

	loginRate ratelimit.Limiter // every login attempt per IP (limits.logins_per_minute)
	loginIP   ratelimit.Throttler
	loginUser ratelimit.Throttler
	totpUser  ratelimit.Throttler

	setupMu    sync.Mutex
	setupToken string // the one-time first-admin setup token; "" once used
}

// revoker closes live sockets by session (public id) or user; the hub
// implements it.
type revoker interface {
	Revoke(ctx context.Context, sessionID, user, reason string) error
}

// newUI gives the pages their parts from the node, with the login
// throttles wireLimits chose (in process, or the cluster's in Redis).
func (s *Server) newUI() *ui {
	return &ui{
		cfg: s.cfg, log: s.log, clock: s.clock, store: s.store, sessions: s.sessions, hasher: s.hasher,
		pages: s.pages, audit: s.audit, metrics: s.metrics, creds: s.creds, proxies: s.proxies, hub: s.hub,
		loginRate: s.loginRate, loginIP: s.loginIP, loginUser: s.loginUser, totpUser: s.totpUser,
	}
}
