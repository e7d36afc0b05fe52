package ratelimit

import "sync"

// Counter caps concurrent holders per key: live connections per user, per
// IP and in total. A shared Redis implements the same interface to cap
// across nodes.
type Counter interface {
	// Acquire takes one slot of key if fewer than max are held. A max of
	// zero or less refuses: a cap that is not configured denies.
	Acquire(key string, max int) bool
	// Release returns one slot of key. It must follow a successful Acquire;
	// a Release with nothing held is ignored, so counts never go negative.
	Release(key string)
}

// LocalCounter is the in-process Counter. It holds an entry only for keys
// with a slot taken, so its memory is bounded by the live connections,
// which the global cap bounds.
type LocalCounter struct {
	mu sync.Mutex
	m  map[string]int
}

var _ Counter = (*LocalCounter)(nil)

// NewLocalCounter returns an empty LocalCounter.
func NewLocalCounter() *LocalCounter { return &LocalCounter{m: make(map[string]int)} }

// Acquire takes a slot of key; see Counter.
func (c *LocalCounter) Acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max <= 0 || c.m[key] >= max {
		return false
	}
	c.m[key]++
	return true
}

// Release returns a slot of key; see Counter.
func (c *LocalCounter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[key]; n > 1 {
		c.m[key] = n - 1
	} else {
		delete(c.m, key)
	}
}

// Count reports the slots of key held now.
func (c *LocalCounter) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// Len reports how many keys hold a slot.
func (c *LocalCounter) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
