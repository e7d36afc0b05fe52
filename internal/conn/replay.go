package conn

import "sync"

// ReplayGate caps the replays (subscribe with since) and history answers
// one user has in progress at once, across all of that user's sockets.
// Each is paced to the socket's queue, so the cap bounds what a user can
// make the server read from the store and hold at the same time: without
// it, many sockets that never read could each pin a page of large
// messages (M12).
type ReplayGate struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewReplayGate allows max replays in progress per user; max <= 0 means 4.
func NewReplayGate(max int) *ReplayGate {
	if max <= 0 {
		max = 4
	}
	return &ReplayGate{max: max, n: map[string]int{}}
}

// Max is the cap per user.
func (g *ReplayGate) Max() int { return g.max }

// acquire takes a slot for user; false when the user already has max.
func (g *ReplayGate) acquire(user string) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[user] >= g.max {
		return false
	}
	g.n[user]++
	return true
}

func (g *ReplayGate) release(user string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[user] <= 1 {
		delete(g.n, user)
		return
	}
	g.n[user]--
}
