package hub

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
)

// watcher is a subscriber that keeps what presence pushes told it.
type watcher struct {
	mu     sync.Mutex
	pushes []presencePush
}

type presencePush struct {
	Push    string   `json:"push"`
	Channel string   `json:"channel"`
	Join    []string `json:"join"`
	Leave   []string `json:"leave"`
	More    bool     `json:"more"`
}

func (w *watcher) Deliver(_ string, fs []*Frame) {
	for _, f := range fs {
		if f.Offset != 0 {
			continue
		}
		var p presencePush
		if err := json.Unmarshal(f.Data, &p); err != nil || p.Push != "presence" {
			panic("not a presence push: " + string(f.Data))
		}
		w.mu.Lock()
		w.pushes = append(w.pushes, p)
		w.mu.Unlock()
	}
}

func (w *watcher) seen() (pushes int, joined map[string]bool, more bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	joined = map[string]bool{}
	for _, p := range w.pushes {
		for _, u := range p.Join {
			joined[u] = true
		}
		more = more || p.More
	}
	return len(w.pushes), joined, more
}

// seat subscribes n distinct users, one connection each, to one channel as
// fast as the hub takes them (a crowd arriving), waits until the first
// has been told of everyone, and returns how many presence pushes all of
// them received.
func seat(t *testing.T, n int) int {
	t.Helper()
	h := New(nil, broker.NewMemory())
	h.PresenceInterval = 250 * time.Millisecond
	stop := h.Start()
	defer stop()
	ws := make([]*watcher, n)
	for i := range ws {
		ws[i] = &watcher{}
		h.Subscribe("room:a", ws[i], "user"+strconv.Itoa(i), true)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, joined, more := ws[0].seen()
		if more || len(joined) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n=%d: the first user was told of %d joins, want %d or a push saying more", n, len(joined), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * h.PresenceInterval) // let any push in flight land
	if got := len(h.Members("room:a")); got != n {
		t.Fatalf("n=%d: presence answers %d users", n, got)
	}
	total := 0
	for i, w := range ws {
		c, _, _ := w.seen()
		if c == 0 {
			t.Fatalf("n=%d: user%d received no presence push", n, i)
		}
		total += c
	}
	return total
}

// TestPresencePushesGrowLinearly (issue 15, finding 1): distinct users
// joining one channel must not cost a push to every subscriber per join,
// which grows with the square of the crowd (100 users: 5,050 pushes; 300
// users: 45,150, nine times as many). Three times the users may cost about
// three times the pushes, no more.
func TestPresencePushesGrowLinearly(t *testing.T) {
	small, large := seat(t, 100), seat(t, 300)
	t.Logf("presence pushes: 100 users %d, 300 users %d", small, large)
	if large > 4*small {
		t.Fatalf("presence pushes grow faster than the crowd: 100 users cost %d, 300 users %d (%.1f×, want ≤ 4×)", small, large, float64(large)/float64(small))
	}
}

// TestPresencePushCoalesced: joins and leaves within one interval arrive as
// one push in the documented shape; a join undone within the interval is
// not told at all.
func TestPresencePushCoalesced(t *testing.T) {
	h := New(nil, broker.NewMemory())
	h.PresenceInterval = 50 * time.Millisecond
	stop := h.Start()
	defer stop()
	w := &watcher{}
	h.Subscribe("room:a", w, "alice", true)
	waitPushes(t, w, 1)

	bob, carol, dave := &watcher{}, &watcher{}, &watcher{}
	h.Subscribe("room:a", bob, "bob", false)
	h.Subscribe("room:a", carol, "carol", false)
	h.Subscribe("room:a", dave, "dave", false)
	h.Unsubscribe("room:a", dave, "dave") // came and went: nothing to tell
	waitPushes(t, w, 2)
	h.Unsubscribe("room:a", bob, "bob")
	h.Subscribe("room:a", bob, "bob", false) // went and came back: nothing to tell
	h.Unsubscribe("room:a", carol, "carol")
	waitPushes(t, w, 3)
	time.Sleep(3 * h.PresenceInterval)

	w.mu.Lock()
	defer w.mu.Unlock()
	want := []presencePush{
		{Push: "presence", Channel: "room:a", Join: []string{"alice"}, Leave: []string{}},
		{Push: "presence", Channel: "room:a", Join: []string{"bob", "carol"}, Leave: []string{}},
		{Push: "presence", Channel: "room:a", Join: []string{}, Leave: []string{"carol"}},
	}
	if len(w.pushes) != len(want) {
		t.Fatalf("got %d pushes %+v, want %+v", len(w.pushes), w.pushes, want)
	}
	for i := range want {
		g, e := w.pushes[i], want[i]
		if g.Channel != e.Channel || g.More || join(g.Join) != join(e.Join) || join(g.Leave) != join(e.Leave) {
			t.Fatalf("push %d = %+v, want %+v", i, g, e)
		}
	}
}

func join(s []string) string {
	out := ""
	for _, x := range s {
		out += x + ","
	}
	return out
}

func waitPushes(t *testing.T, w *watcher, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _, _ := w.seen(); c >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for presence push %d in vain", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPresencePushCapped: a crowd larger than PresenceNames is told in a
// bounded push saying more, and the presence request has everyone.
func TestPresencePushCapped(t *testing.T) {
	h := New(nil, broker.NewMemory())
	h.PresenceInterval = 50 * time.Millisecond
	h.PresenceNames = 10
	stop := h.Start()
	defer stop()
	w := &watcher{}
	h.Subscribe("room:a", w, "user00", true)
	for i := 1; i < 25; i++ {
		h.Subscribe("room:a", &watcher{}, "user"+strconv.Itoa(i+100), false)
	}
	waitPushes(t, w, 1)
	w.mu.Lock()
	p := w.pushes[0]
	w.mu.Unlock()
	if !p.More || len(p.Join) != 10 {
		t.Fatalf("push = %+v, want 10 names and more", p)
	}
	if got := len(h.Members("room:a")); got != 25 {
		t.Fatalf("presence answers %d users, want 25", got)
	}
}

// TestPresencePushesOff: with pushes switched off for a channel (a
// namespace's presence_pushes: false), joins are not pushed but presence
// still answers.
func TestPresencePushesOff(t *testing.T) {
	h := New(nil, broker.NewMemory())
	h.PresenceInterval = 20 * time.Millisecond
	h.PresencePushes = func(channel string) bool { return channel != "lobby:big" }
	stop := h.Start()
	defer stop()
	quiet, told := &watcher{}, &watcher{}
	h.Subscribe("lobby:big", quiet, "alice", true)
	h.Subscribe("lobby:big", &watcher{}, "bob", true)
	h.Subscribe("room:a", told, "alice", true)
	waitPushes(t, told, 1)
	time.Sleep(5 * h.PresenceInterval)
	if c, _, _ := quiet.seen(); c != 0 {
		t.Fatalf("%d presence pushes in a channel with pushes off", c)
	}
	if got := h.Members("lobby:big"); len(got) != 2 {
		t.Fatalf("presence answers %v, want alice and bob", got)
	}
}
