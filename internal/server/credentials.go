package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/token"
)

// This file wires the credential checks (internal/guard's Credentials) into
// the handshake guard and the service API. Every check itself — session
// cookies, tickets, JWTs, API keys — lives in the guard, so a store outage
// is answered the same way (503, never counted toward a ban) whatever the
// credential and whatever the route.

// apiPrincipalPrefix starts the principal name of every API key.
const apiPrincipalPrefix = guard.APIPrincipalPrefix

// wireCredentials builds the JWT verifier (when jwt.keys or jwt.jwks_url is
// configured) and the credential checks, and hands them to the guard.
func (s *Server) wireCredentials() error {
	creds := &guard.Credentials{Sessions: s.sessions, Store: s.store, Now: s.clock.Now}
	j := s.cfg.JWT
	if len(j.Keys) > 0 || j.JWKSURL != "" {
		v, err := token.NewVerifier(j, token.VerifierOptions{Clock: s.clock})
		if err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
		creds.JWT = v
	}
	if err := s.loadClientCAs(); err != nil {
		return err
	}
	if s.clientCAs != nil {
		// API keys are bound to mutual TLS everywhere, /ws included: a
		// leaked key alone must not upgrade and publish over a socket.
		s.guard.ClientCertKinds = []guard.Kind{guard.KindAPIKey}
	}
	s.creds = creds
	s.guard.Credentials = creds
	return nil
}

// verifyBearer authenticates an Authorization: Bearer credential (an API
// key or a JWT) for the service API.
func (s *serviceAPI) verifyBearer(ctx context.Context, raw string) (guard.Identity, *guard.Refusal) {
	return s.creds.Check(ctx, guard.Bearer(raw))
}

// logRefusal writes the error behind a refusal to the server's log, never
// to the client: a store failure at Warn (an operator must see an outage
// that clients only see as 503), a verdict's detail (why a JWT was refused,
// which lifetime a session passed) at Debug.
func (s *Server) logRefusal(r *http.Request, rf *guard.Refusal) {
	if rf.Err == nil {
		return
	}
	level := slog.LevelDebug
	if rf.Status >= http.StatusInternalServerError {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "request refused", "reason", rf.Reason, "path", r.URL.Path, "ip", s.clientIP(r), "err", rf.Err)
}
