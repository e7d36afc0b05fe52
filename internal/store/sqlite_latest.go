package store

import "sync"

// latestCacheMax bounds the channels whose last offset is kept in memory:
// subscribes to many channels nobody publishes to (one per user, or made
// up by a client) must not grow it without bound. Past it the cache starts
// afresh; a miss costs one query, as before there was a cache.
const latestCacheMax = 1 << 16

// latestCache keeps each channel's last offset, so that a subscribe, which
// answers with it, does not query the database. It is exact because the
// committer is the only writer of offsets in this process: it records
// every committed offset here after COMMIT and before OnCommit, so a
// subscriber registered with the hub before reading Latest either sees the
// new offset or receives the message through fan-out, as with the query.
// (Another process writing to the same file would not be fanned out here
// either: one server owns its SQLite database.)
type latestCache struct {
	mu sync.Mutex
	m  map[string]uint64
	// gen counts resets: a value read from the database before a reset
	// may be older than an offset committed (and then forgotten) since,
	// so it is kept only when no reset came in between.
	gen uint64
}

// get returns the cached offset and whether there was one, and the
// generation to pass to fill after a miss.
func (c *latestCache) get(channel string) (last uint64, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok = c.m[channel]
	return last, ok, c.gen
}

// fill records an offset read from the database. Offsets only grow, so a
// value the committer recorded meanwhile is never lowered.
func (c *latestCache) fill(channel string, last, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= latestCacheMax {
		c.resetLocked()
		return
	}
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[channel] = max(c.m[channel], last)
}

// committed records offsets just committed; the committer calls it.
func (c *latestCache) committed(chans map[string]*chanState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(chans) > latestCacheMax {
		c.resetLocked()
	}
	for name, cs := range chans {
		if cs.touched {
			c.m[name] = max(c.m[name], cs.last)
		}
	}
}

func (c *latestCache) resetLocked() {
	c.m = map[string]uint64{}
	c.gen++
}
