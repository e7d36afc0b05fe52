package server

import (
	"context"
	"time"
)

// revocationPoll is how often the server reads revocations written by other
// processes (the CLI). Live sockets close within this plus the broker hop:
// well under the 1 s the contract promises.
const revocationPoll = 250 * time.Millisecond

// pollRevocations also sweeps live sockets for lifetimes (sweepLive).
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweepLive(ctx)
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
