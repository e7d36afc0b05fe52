package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
)

// liveConn is what the server remembers about one open WebSocket so that
// lifetimes are enforced on the server's clock (I6): the connection's own
// timers run on the wall clock, which a test cannot move.
type liveConn struct {
	c       liveSocket
	started time.Time

	mu   sync.Mutex
	sess *store.Session // the session's last known state; nil for token clients
}

// liveSocket is what the server's lifetime and revocation checks need of
// an open socket, whether a chat connection (conn.Conn) or a proxied pair
// (proxy.Conn): a way to close it with a code and reason.
type liveSocket interface {
	Close(code int, reason string)
}

// liveSet holds the server's open WebSockets.
type liveSet struct {
	mu sync.Mutex
	m  map[*liveConn]struct{}
}

func (l *liveSet) add(lc *liveConn) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[*liveConn]struct{}{}
	}
	l.m[lc] = struct{}{}
	l.mu.Unlock()
}

func (l *liveSet) remove(lc *liveConn) {
	l.mu.Lock()
	delete(l.m, lc)
	l.mu.Unlock()
}

func (l *liveSet) list() []*liveConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*liveConn, 0, len(l.m))
	for lc := range l.m {
		out = append(out, lc)
	}
	return out
}

// sessionActivity records a request sent over the socket as use of its
// session, so a person chatting is not signed out for being idle. The
// socket merely being open (pings, pongs) is not activity: an unattended tab
// ends at the idle lifetime. At most one store access a minute.
func (s *Server) sessionActivity(lc *liveConn) {
	lc.mu.Lock()
	sess := lc.sess
	lc.mu.Unlock()
	if sess == nil || s.clock.Now().Sub(sess.LastSeen) <= time.Minute {
		return
	}
	cur, err := s.sessions.ByHash(context.Background(), sess.IDHash)
	if session.Ended(err) {
		// Gone or past a lifetime: close now rather than trust that a
		// revocation reached this socket (it may have raced the handshake).
		lc.c.Close(conn.CloseSessionEnded, "session ended")
		return
	}
	if err != nil {
		return // store unavailable: try again on the next message
	}
	lc.mu.Lock()
	lc.sess = &cur
	lc.mu.Unlock()
}

// recheckSession runs once a session socket is in the hub (conn's
// Registered hook). The guard checked the session before the upgrade; a
// logout, revocation or user disable between that check and the hub
// registration closed no socket, because there was none to match. Reading
// the store again now closes that gap: a revocation either finds the socket
// in the hub or has already deleted the session, which this read sees.
func (s *Server) recheckSession(lc *liveConn) {
	lc.mu.Lock()
	sess := lc.sess
	lc.mu.Unlock()
	if sess == nil {
		return // token clients: their credential is not revocable by session
	}
	ctx := context.Background()
	cur, err := s.store.SessionByHash(ctx, sess.IDHash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		lc.c.Close(conn.CloseSessionEnded, "session ended")
		return
	case err != nil:
		return // store unavailable: the guard read it a moment ago
	case s.sessions.Expired(cur, s.clock.Now()) != nil:
		lc.c.Close(conn.CloseSessionEnded, "session ended")
		return
	}
	u, err := s.store.UserByID(ctx, cur.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		lc.c.Close(conn.CloseSessionEnded, "user disabled")
	}
}

// sweepLive closes sockets past the connection lifetime and ends sessions
// past their idle or absolute lifetime, closing their sockets (4001) through
// the broker. It reads the store only for sessions that look expired.
func (s *Server) sweepLive(ctx context.Context) {
	now := s.clock.Now()
	lifetime := s.cfg.Limits.ConnLifetime.D()
	for _, lc := range s.sock.live.list() {
		if lifetime > 0 && !now.Before(lc.started.Add(lifetime)) {
			lc.c.Close(conn.CloseSessionEnded, "connection lifetime reached")
			continue
		}
		lc.mu.Lock()
		sess := lc.sess
		lc.mu.Unlock()
		if sess == nil || s.sessions.Expired(*sess, now) == nil {
			continue
		}
		// Another request may have used the session since: ask the store.
		cur, err := s.store.SessionByHash(ctx, sess.IDHash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			lc.c.Close(conn.CloseSessionEnded, "session ended")
		case err != nil:
		case s.sessions.Expired(cur, now) != nil:
			s.sessions.Expire(ctx, cur, s.sessions.Expired(cur, now))
		default:
			lc.mu.Lock()
			lc.sess = &cur
			lc.mu.Unlock()
		}
	}
}

// sessionExpired is the session manager's OnExpire: one audit event, and
// the session's live sockets closed on every node.
func (s *Server) sessionExpired(sess store.Session, reason error) {
	r := "absolute"
	if errors.Is(reason, session.ErrIdle) {
		r = "idle"
	}
	s.audit.Record(audit.Event{Type: "session.expired", Reason: r, User: sess.Username, Fields: map[string]string{"session": sess.PublicID}})
	_ = s.hub.Revoke(context.Background(), sess.PublicID, "", "session expired")
}
