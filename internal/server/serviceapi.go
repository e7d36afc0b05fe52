package server

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/metrics"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/ratelimit"
	"github.com/wsguard/wsguard/internal/store"
)

// serviceAPI is serve mode's service API, /api/v1/* (api.go, api_more.go,
// rooms.go): bearer or session + X-CSRF-Token requests. It holds what the
// API handlers use and nothing of the pages or the WebSocket endpoint's
// upgrade: no sessions manager, hasher, templates or upgrader.
type serviceAPI struct {
	cfg     config.Config
	log     *slog.Logger
	clock   clock.Clock
	store   apiStore
	hub     *hub.Hub
	rules   *authz.Rules
	origins *origin.Allowlist
	creds   *guard.Credentials // bearer (API key, JWT) and session checks, ticket minting
	audit   *audit.Log
	metrics *metrics.Metrics

	clientCAs *x509.CertPool // mutual TLS for bearer endpoints; nil without tls.client_ca_file

	clientIP   func(*http.Request) string
	logRefusal func(*http.Request, *guard.Refusal) // the error behind a refusal, to the log (credentials.go)

	bans       ratelimit.BanList
	handshakes guard.Limiter // the handshake budget per IP, shared by tickets; nil when off
	userMsgs   ratelimit.Limiter

	sock    *sockets  // whether the node is draining, for info
	started time.Time // for info
}

// apiStore is what the service API reads and writes in the store: history
// and the chat's saved rooms.
type apiStore interface {
	History(ctx context.Context, channel string, before uint64, limit int) ([]store.Message, error)
	Rooms(ctx context.Context, userID int64) (rooms []string, saved bool, err error)
	SetRooms(ctx context.Context, userID int64, rooms []string) error
}

// newServiceAPI builds the service API from the node, once New has wired
// the store, hub, credentials and limits.
func (s *Server) newServiceAPI() *serviceAPI {
	return &serviceAPI{
		cfg: s.cfg, log: s.log, clock: s.clock, store: s.store, hub: s.hub, rules: s.rules, origins: s.origins,
		creds: s.creds, audit: s.audit, metrics: s.metrics, clientCAs: s.clientCAs,
		clientIP: s.clientIP, logRefusal: s.logRefusal,
		bans: s.bans, handshakes: s.guard.Handshakes, userMsgs: s.userMsgs,
		sock: s.sock, started: s.started,
	}
}
