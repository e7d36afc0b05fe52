package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hooks"
	"github.com/wsguard/wsguard/internal/metrics"
)

// The application's backend in the loop (hooks.*): asked at the connect,
// subscribe and publish points, told of joins, leaves and connection ends.
// The questions come after every check of wsguard's own, so a backend can
// only narrow what the rules allow (and add roles a connection's rules
// then honour), never open what they refuse.

// newHooks builds the hooks from the config; nil when none is set.
func newHooks(cfg config.Config, m *metrics.Metrics, log *slog.Logger) (*hooks.Hooks, error) {
	c := cfg.Hooks
	if !c.Enabled() {
		return nil, nil
	}
	secret, err := readHookSecret(c.SecretFile)
	if err != nil {
		return nil, err
	}
	h, err := hooks.New(hooks.Options{
		Connect: c.Connect, Subscribe: c.Subscribe, Publish: c.Publish, Events: c.Events,
		Secret: secret, Timeout: c.Timeout.D(), QueueSize: c.EventsQueue, Attempts: c.EventsAttempts,
		MaxData: int(cfg.Limits.MaxMessageBytes), Registerer: m.Registry(), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("hooks.secret_file: %w", err)
	}
	return h, nil
}

// startHooks starts webhook delivery and wires joins and leaves to it.
func (s *Server) startHooks() {
	if s.hooks == nil {
		return
	}
	s.stopHooks = s.hooks.Start()
	if s.hooks.Enabled("events") {
		s.hub.OnPresence = func(channel, user string, joined bool) {
			ev := "leave"
			if joined {
				ev = "join"
			}
			s.hooks.Emit(hooks.Event{Event: ev, User: user, Channel: channel})
		}
	}
}

// connBackend is what a connection asks; nil without subscribe and
// publish hooks, so a connection then asks no one.
func (s *Server) connBackend() conn.Backend {
	if s.hooks.Enabled("subscribe") || s.hooks.Enabled("publish") {
		return s.hooks
	}
	return nil
}

// hookConnect asks the connect hook, after the guard accepted the
// handshake and before the upgrade. A no is 403, no clear answer 503
// (fail closed, the client may retry); a yes may add roles to this
// connection. It answers the request itself when it returns false.
func (s *Server) hookConnect(w http.ResponseWriter, r *http.Request, id *guard.Identity, ip string) bool {
	if !s.hooks.Enabled("connect") {
		return true
	}
	roles, err := s.hooks.Connect(r.Context(), hooks.ConnectRequest{
		User: id.Principal.Name, Kind: string(id.Kind), Roles: id.Principal.Roles, IP: ip, Origin: r.Header.Get("Origin"),
	})
	if err != nil {
		status, reason, msg := http.StatusServiceUnavailable, "hook_unavailable", "the application's backend did not answer, retry later"
		if errors.Is(err, authz.ErrForbidden) {
			status, reason, msg = http.StatusForbidden, "hook_denied", "connection refused by the application"
		}
		s.audit.Record(audit.Event{Type: "handshake.refused", Reason: reason, IP: ip, User: id.Principal.Name,
			Fields: map[string]string{"origin": r.Header.Get("Origin")}})
		s.metrics.Handshakes.WithLabelValues("refused").Inc()
		s.metrics.Refusals.WithLabelValues(reason).Inc()
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, msg, status)
		return false
	}
	if len(roles) > 0 {
		// A copy: the identity's roles may be shared with its credential.
		all := slices.Clone(id.Principal.Roles)
		for _, r := range roles {
			if !slices.Contains(all, r) {
				all = append(all, r)
			}
		}
		id.Principal.Roles = all
	}
	return true
}

// hookClosed tells the events hook that a connection ended.
func (s *Server) hookClosed(user string, code int, reason string) {
	s.hooks.Emit(hooks.Event{Event: "disconnect", User: user, Code: code, Reason: reason})
}

// readHookSecret reads hooks.secret_file: at least 32 bytes, one trailing
// newline ignored.
func readHookSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's hooks.secret_file setting
	if err != nil {
		return nil, fmt.Errorf("hooks.secret_file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < hooks.MinSecret {
		return nil, fmt.Errorf("hooks.secret_file: %q holds %d bytes, fewer than %d (allowed: random bytes, e.g. openssl rand -hex 32)", path, len(b), hooks.MinSecret)
	}
	return b, nil
}
