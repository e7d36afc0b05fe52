package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
)

// sockets is what every WebSocket endpoint of a node shares, whatever it
// serves (the chat in serve mode, the relay in proxy mode): the set of
// open sockets, for lifetimes and for the drain's report; the context
// whose end tells them to go (1001); and the count that a drain waits on.
type sockets struct {
	live   liveSet
	ctx    context.Context // ends when the node drains or closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per socket, from admission to its end
	mu     sync.Mutex     // orders wg.Add after the draining check against drain's Wait
	// draining refuses new sockets (503, Retry-After) and readiness.
	draining atomic.Bool
}

func newSockets() *sockets {
	s := &sockets{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// enter counts a socket in unless the node is draining, which it answers
// (503 with Retry-After); a socket counted in must call done.
func (s *sockets) enter(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server draining, reconnect elsewhere", http.StatusServiceUnavailable)
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *sockets) done() { s.wg.Done() }

// drain refuses new sockets, tells the open ones to go, and waits for them
// at most until ctx is done.
func (s *sockets) drain(ctx context.Context) {
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
	s.cancel()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
	}
}
