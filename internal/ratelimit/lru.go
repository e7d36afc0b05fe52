package ratelimit

import "container/list"

// lru is a map bounded by max entries that forgets the least recently used
// one when full. It is not safe for concurrent use; its owner locks.
type lru[V any] struct {
	max int
	m   map[string]*list.Element
	l   list.List // front: most recently used
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, m: make(map[string]*list.Element)}
}

// get returns the value for key, marking it used when touch is set.
func (c *lru[V]) get(key string, touch bool) (V, bool) {
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	if touch {
		c.l.MoveToFront(e)
	}
	return e.Value.(*lruEntry[V]).val, true
}

// put stores val under key (which must be absent) as the most recently
// used, forgetting the least recently used entry first when full.
func (c *lru[V]) put(key string, val V) {
	for len(c.m) >= c.max {
		c.removeOldest()
	}
	c.m[key] = c.l.PushFront(&lruEntry[V]{key: key, val: val})
}

func (c *lru[V]) touch(key string) {
	if e, ok := c.m[key]; ok {
		c.l.MoveToFront(e)
	}
}

func (c *lru[V]) remove(key string) {
	if e, ok := c.m[key]; ok {
		c.l.Remove(e)
		delete(c.m, key)
	}
}

func (c *lru[V]) removeOldest() {
	if e := c.l.Back(); e != nil {
		c.l.Remove(e)
		delete(c.m, e.Value.(*lruEntry[V]).key)
	}
}

// sweep forgets up to n of the least recently used entries for which dead
// returns true, stopping at the first live one. Called on every write, it
// keeps idle entries from piling up without a background goroutine.
func (c *lru[V]) sweep(n int, dead func(V) bool) {
	for ; n > 0; n-- {
		e := c.l.Back()
		if e == nil {
			return
		}
		ent := e.Value.(*lruEntry[V])
		if !dead(ent.val) {
			return
		}
		c.l.Remove(e)
		delete(c.m, ent.key)
	}
}

func (c *lru[V]) len() int { return len(c.m) }
