package store

import (
	"strconv"
	"testing"
)

// The cache never lowers an offset, drops a value read before a reset
// (an offset committed meanwhile may have been forgotten with it), and
// stays within latestCacheMax.
func TestLatestCache(t *testing.T) {
	var c latestCache
	_, ok, _ := c.get("room:a")
	if ok {
		t.Fatal("empty cache answered")
	}
	// A commit lands between the miss and the fill: the older read loses.
	c.committed(map[string]*chanState{"room:a": {last: 7, touched: true}, "room:b": {last: 3}})
	_, _, gen := c.get("room:a") // the first commit reset the nil map
	c.fill("room:a", 5, gen)
	if last, ok, _ := c.get("room:a"); !ok || last != 7 {
		t.Fatalf("room:a = %d, %v; want 7 (a stale read must not lower it)", last, ok)
	}
	if _, ok, _ := c.get("room:b"); ok {
		t.Fatal("an untouched channel of the batch was cached")
	}
	// A fill from before a reset is dropped.
	_, _, old := c.get("room:c")
	for i := 0; len(c.m) < latestCacheMax; i++ {
		c.m["room:x"+strconv.Itoa(i)] = 1
	}
	_, _, gen = c.get("room:d")
	c.fill("room:d", 1, gen) // full: resets instead of growing
	if len(c.m) != 0 {
		t.Fatalf("cache holds %d past its cap", len(c.m))
	}
	c.fill("room:c", 9, old)
	if _, ok, _ := c.get("room:c"); ok {
		t.Fatal("a value read before a reset was kept")
	}
	_, _, gen = c.get("room:c")
	c.fill("room:c", 9, gen)
	if last, ok, _ := c.get("room:c"); !ok || last != 9 {
		t.Fatalf("room:c = %d, %v; want 9", last, ok)
	}
}
