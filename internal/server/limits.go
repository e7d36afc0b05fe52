package server

import (
	"errors"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/ratelimit"
)

// wireLimits sets the flood controls: in process, or, when the broker is
// Redis, kept in Redis for the whole cluster (so that three nodes never
// give three times the allowance, and throttles and bans outlive a
// restart). It returns the handshake limiter for the guard.
func (s *Server) wireLimits() ratelimit.Limiter {
	lim := s.cfg.Limits
	rb, ok := s.broker.(*broker.Redis)
	if !ok {
		s.loginRate = ratelimit.NewLocal(lim.LoginsPerMinute/60, max(1, int(lim.LoginsPerMinute)))
		s.loginIP = ratelimit.NewThrottle()
		s.loginUser = ratelimit.NewThrottle()
		s.totpUser = ratelimit.NewThrottle()
		s.bans = ratelimit.NewBans(lim.BanAfterFailures, time.Minute, lim.BanDuration.D())
		s.caps = ratelimit.NewLocalCounter()
		s.userMsgs = ratelimit.NewLocal(lim.UserMessagesPerSecond, int(lim.UserMessagesPerSecond*2))
		s.ipMsgs = ratelimit.NewLocal(lim.IPMessagesPerSecond, int(lim.IPMessagesPerSecond*2))
		return ratelimit.NewLocal(lim.HandshakesPerSecond, lim.HandshakeBurst)
	}
	c := ratelimit.NewCluster(rb.Client(), rb.Prefix()+"rl:", ratelimit.ClusterOptions{})
	s.limits = c
	s.loginRate = c.Limiter("logins", lim.LoginsPerMinute/60, max(1, int(lim.LoginsPerMinute)))
	s.loginIP = c.Throttle("login-ip")
	s.loginUser = c.Throttle("login-user")
	s.totpUser = c.Throttle("totp-user")
	s.bans = c.Bans(lim.BanAfterFailures, time.Minute, lim.BanDuration.D())
	s.caps = c.Counter()
	s.userMsgs = c.Limiter("user-msgs", lim.UserMessagesPerSecond, int(lim.UserMessagesPerSecond*2))
	s.ipMsgs = c.Limiter("ip-msgs", lim.IPMessagesPerSecond, int(lim.IPMessagesPerSecond*2))
	return c.Limiter("handshakes", lim.HandshakesPerSecond, lim.HandshakeBurst)
}

// clusterPresence is the hub's Roster: presence kept in Redis when the
// broker is Redis, so that a presence request lists every node's members.
func (s *Server) clusterPresence() hub.Roster {
	rb, ok := s.broker.(*broker.Redis)
	if !ok {
		return nil
	}
	s.presence = broker.NewRedisPresence(rb, broker.PresenceOptions{})
	return s.presence
}

// closeLimits stops the cluster limits' and presence's heartbeats, giving
// up this node's connection slots and members at once.
func (s *Server) closeLimits() error {
	var err error
	if s.limits != nil {
		err = s.limits.Close()
	}
	if s.presence != nil {
		err = errors.Join(err, s.presence.Close())
	}
	return err
}
