package server

import (
	"context"
	"time"
)

// revocationPoll is how often the server reads revocations written by other
// processes (the CLI). Live sockets close within this plus the broker hop:
// well under the 1 s the contract promises.
const revocationPoll = 250 * time.Millisecond

// sessionSweep is how often, on the server's clock, sessions past a
// lifetime are deleted from the store whether or not anyone uses them, so
// no ended session (with its IP and user agent) stays stored for long.
const sessionSweep = time.Minute

// pollRevocations also sweeps live sockets for lifetimes (sweepLive) and,
// every sessionSweep, the store for expired sessions.
//
// pollRevocations turns revocations recorded in the store (by `wsguard user
// disable`, `user reset-2fa`, `session revoke`) into broker events, so a
// running server closes the affected sockets.
func (s *Server) pollRevocations(ctx context.Context) {
	last, err := s.store.LastRevocationID(ctx)
	if err != nil {
		s.log.Warn("revocations: cannot read the starting point", "err", err)
	}
	t := time.NewTicker(revocationPoll)
	defer t.Stop()
	lastSweep := time.Time{} // the first tick sweeps what a stopped server left
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweepLive(ctx)
		if now := s.clock.Now(); now.Sub(lastSweep) >= sessionSweep {
			lastSweep = now
			if _, err := s.sessions.Sweep(ctx); err != nil {
				s.log.Warn("sessions: cannot delete expired sessions", "err", err)
			}
		}
		list, err := s.store.RevocationsAfter(ctx, last)
		if err != nil {
			continue
		}
		for _, r := range list {
			last = r.ID
			_ = s.hub.Revoke(ctx, r.SessionID, r.User, r.Reason)
		}
	}
}
