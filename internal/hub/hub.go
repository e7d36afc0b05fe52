package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"hash/maphash"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/store"
)

// Frame is an encoded server-to-client message shared, read-only, by every
// subscriber it is delivered to. Offset is 0 for frames outside the log
// (presence).
type Frame struct {
	Channel string
	Offset  uint64
	Data    []byte
	Sent    time.Time // when the message was committed, for delivery latency
}

// Subscriber is a local connection. Deliver receives frames of one
// channel in offset order; it must not block.
type Subscriber interface {
	Deliver(channel string, fs []*Frame)
}

// Member is a registered connection that a revocation can close.
type Member interface {
	Subscriber
	User() string
	SessionID() string // public session id, "" for token clients
	// Revoke closes the connection with the given close code and reason; it must not block.
	Revoke(code int, reason string)
}

// CloseSessionEnded is the close code for revoked or expired credentials.
const CloseSessionEnded = 4001

const shardCount = 64

type shard struct {
	mu sync.RWMutex
	// subs maps a channel to its local subscribers; the value says whether
	// that subscriber holds the presence right there (sees presence pushes).
	subs map[string]map[Subscriber]bool
	// presence counts connections per user per channel.
	presence map[string]map[string]int
	// pending holds the joins and leaves of this shard's channels not yet
	// pushed; flushPresence takes it whole.
	pending map[string]*presenceChange
	// lists holds each channel's subscribers as a slice for fan-out, made
	// from subs at the first delivery after a change and never modified
	// after: a fan-out walks it without the lock, and a crowd joining costs
	// no copy per join (a join only forgets the list).
	lists map[string][]member
	// state holds, per channel with local subscribers, what orders its
	// broker events (ordered.go).
	state map[string]*chanState
}

// member is one entry of a channel's fan-out list.
type member struct {
	s            Subscriber
	seesPresence bool
}

// Hub is the node's live state.
type Hub struct {
	store  store.Log
	broker broker.Broker
	// ordered is whether events must be ordered and gaps filled here
	// (a broker between nodes; see ordered.go).
	ordered bool
	seed    maphash.Seed
	shards  [shardCount]shard

	mu      sync.Mutex
	members map[Member]struct{}

	// OnDeliver, when set, is told of every frame delivered to a local subscriber.
	OnDeliver func(f *Frame, n int)

	// PresenceInterval is how long joins and leaves are gathered before
	// one push per channel tells them: n users joining a busy channel at
	// once cost each subscriber one push, not n. Zero means 200 ms.
	PresenceInterval time.Duration
	// PresenceNames caps the names of each list (join, leave) of one
	// presence push; past it the push says "more" and subscribers ask
	// presence for the whole list. It bounds the size of a push when a
	// crowd arrives. Zero means 100.
	PresenceNames int
	// PresencePushes, when set, says whether a channel's joins and leaves
	// are pushed at all (presence requests still answer). Nil means all are.
	PresencePushes func(channel string) bool
	// OnPresence, when set, is told when a user becomes present in a
	// channel on this node (first subscription) or stops being (last one
	// gone). It runs under a shard lock, so it must only queue, never block
	// (internal/hooks queues a webhook).
	OnPresence func(channel, user string, joined bool)
	// Roster, when set, keeps presence for the whole cluster: Members
	// asks it, and the hub tells it each user's first arrival in and last
	// departure from a channel on this node. Its Join and Leave must not
	// block. Nil means presence is this node's alone.
	Roster Roster
	// presenceArmed is whether a flushPresence is due; the timer exists
	// only while something is pending.
	presenceArmed atomic.Bool
	// origin names this hub in the presence changes it publishes, so that
	// it ignores its own when the broker hands them back.
	origin string
	// presenceDelivered, when set (tests), is told of each presence push
	// a flush delivers to the local subscribers.
	presenceDelivered func(channel string)

	// committed carries group commits from the store's committer to the
	// fan-out goroutine, so that the next commit does not wait for this
	// one's fan-out. Its capacity bounds the backlog: when fan-out falls
	// behind, Committed blocks and publishers wait, memory does not grow.
	committed chan []store.Message
	stopped   chan struct{}
}

// fanoutBacklog is how many group commits may wait for fan-out.
const fanoutBacklog = 64

// New returns a hub publishing through st and fanning out through b. It
// subscribes to b at once; Close unsubscribes.
func New(st store.Log, b broker.Broker) *Hub {
	h := &Hub{store: st, broker: b, ordered: broker.Distributed(b), seed: maphash.MakeSeed(), members: map[Member]struct{}{}, origin: rand.Text(),
		committed: make(chan []store.Message, fanoutBacklog), stopped: make(chan struct{})}
	for i := range h.shards {
		h.shards[i].state = map[string]*chanState{}
		h.shards[i].subs = map[string]map[Subscriber]bool{}
		h.shards[i].presence = map[string]map[string]int{}
		h.shards[i].pending = map[string]*presenceChange{}
		h.shards[i].lists = map[string][]member{}
	}
	return h
}

// Start subscribes the hub to its broker and starts fan-out; the returned
// func stops both.
func (h *Hub) Start() (stop func()) {
	cancel := h.broker.Subscribe(h.onEvent)
	done := make(chan struct{})
	go func() { defer close(done); h.fanout() }()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(h.stopped)
			<-done
			cancel()
		})
	}
}

func (h *Hub) shard(channel string) *shard {
	return &h.shards[maphash.String(h.seed, channel)%shardCount]
}

// Register makes m reachable by revocations.
func (h *Hub) Register(m Member) {
	h.mu.Lock()
	h.members[m] = struct{}{}
	h.mu.Unlock()
}

// Unregister forgets m.
func (h *Hub) Unregister(m Member) {
	h.mu.Lock()
	delete(h.members, m)
	h.mu.Unlock()
}

// Count returns the number of registered connections.
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members)
}

// Subscribe adds s to channel. seesPresence is whether s holds the presence
// right on channel: presence pushes (who joins and leaves) go only to
// subscribers that do, since they reveal the same as a presence request.
// When user is newly present there (its first connection on this node), a
// presence join is published.
func (h *Hub) Subscribe(channel string, s Subscriber, user string, seesPresence bool) {
	sh := h.shard(channel)
	sh.mu.Lock()
	set := sh.subs[channel]
	var fresh *chanState
	if set == nil {
		set = map[Subscriber]bool{}
		sh.subs[channel] = set
		// Locked before anyone else can see it: events and a later
		// Unsubscribe wait until the broker listens.
		fresh = &chanState{}
		fresh.mu.Lock()
		sh.state[channel] = fresh
	}
	set[s] = seesPresence
	delete(sh.lists, channel)
	users := sh.presence[channel]
	if users == nil {
		users = map[string]int{}
		sh.presence[channel] = users
	}
	users[user]++
	if users[user] == 1 {
		if h.Roster != nil {
			h.Roster.Join(channel, user)
		}
		// Noted under the shard lock, so a leave and a join of one user
		// are gathered in the order they happened.
		h.notePresence(sh, channel, user, true)
		if h.OnPresence != nil {
			h.OnPresence(channel, user, true)
		}
	}
	sh.mu.Unlock()
	if fresh != nil {
		h.listen(channel, fresh)
	}
}

// Unsubscribe removes s from channel.
func (h *Hub) Unsubscribe(channel string, s Subscriber, user string) {
	sh := h.shard(channel)
	sh.mu.Lock()
	set := sh.subs[channel]
	if _, ok := set[s]; !ok {
		sh.mu.Unlock()
		return
	}
	delete(set, s)
	delete(sh.lists, channel)
	var gone *chanState
	if len(set) == 0 {
		delete(sh.subs, channel)
		gone = sh.state[channel]
		delete(sh.state, channel)
	}
	if users := sh.presence[channel]; users != nil {
		users[user]--
		if users[user] <= 0 {
			delete(users, user)
			if h.Roster != nil {
				h.Roster.Leave(channel, user)
			}
			h.notePresence(sh, channel, user, false)
			if h.OnPresence != nil {
				h.OnPresence(channel, user, false)
			}
		}
		if len(users) == 0 {
			delete(sh.presence, channel)
		}
	}
	sh.mu.Unlock()
	if gone != nil {
		h.unlisten(channel, gone)
	}
}

// Roster is cluster-wide presence (see Hub.Roster).
type Roster interface {
	Join(channel, user string)
	Leave(channel, user string)
	// Members lists the users present in channel on the other nodes.
	Members(ctx context.Context, channel string) ([]string, error)
}

// Members lists the users present in channel, sorted: on every node when
// the hub has a Roster (this node's alone if the roster cannot answer).
func (h *Hub) Members(channel string) []string {
	var others []string
	if h.Roster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var err error
		others, err = h.Roster.Members(ctx, channel)
		cancel()
		if err != nil {
			slog.Warn("cluster presence unavailable; answering with this node's members", "channel", channel, "err", err)
		}
	}
	// This node's own members come from its own state, always current
	// (the roster learns of joins and leaves a moment later).
	sh := h.shard(channel)
	sh.mu.RLock()
	out := make([]string, 0, len(sh.presence[channel])+len(others))
	for u := range sh.presence[channel] {
		out = append(out, u)
	}
	sh.mu.RUnlock()
	out = append(out, others...)
	sort.Strings(out)
	return slices.Compact(out)
}

// Publish stores a message and returns once it is durable; delivery follows
// through Committed and the broker.
func (h *Hub) Publish(ctx context.Context, from, channel, cid string, data json.RawMessage) (store.PublishResult, error) {
	return h.store.Publish(ctx, store.Message{Channel: channel, From: from, CID: cid, Data: data})
}

// Committed is the store's OnCommit hook: it hands a group commit to the
// fan-out goroutine, in commit order. It blocks only while fanoutBacklog
// commits are already waiting; after Stop it drops the batch (the messages
// are durable: subscribers recover them with since).
func (h *Hub) Committed(msgs []store.Message) {
	select {
	case h.committed <- msgs:
	case <-h.stopped:
	}
}

// fanout takes every commit waiting, so that messages committed while the
// previous fan-out ran go out together, encodes each message once, and
// hands the broker one event per channel, in offset order: a subscriber
// gets a burst in one wake-up and, usually, one write.
func (h *Hub) fanout() {
	for {
		var msgs []store.Message
		select {
		case msgs = <-h.committed:
		case <-h.stopped:
			return
		}
	more:
		for len(msgs) < 4096 {
			select {
			case next := <-h.committed:
				msgs = append(msgs, next...)
			default:
				break more
			}
		}
		h.publishCommitted(msgs)
	}
}

func (h *Hub) publishCommitted(msgs []store.Message) {
	var events []broker.Event
	index := map[string]int{}
	for _, m := range msgs {
		i, ok := index[m.Channel]
		if !ok {
			i = len(events)
			index[m.Channel] = i
			events = append(events, broker.Event{Kind: broker.KindMessage, Channel: m.Channel})
		}
		events[i].Batch = append(events[i].Batch, broker.Encoded{Offset: m.Offset, Frame: EncodePush(m)})
	}
	for _, e := range events {
		if err := h.broker.Publish(context.Background(), e); err != nil && !errors.Is(err, broker.ErrLinkDown) {
			// The messages are durable: subscribers recover them with
			// since. A link known to be down was logged once by the broker.
			slog.Warn("broker publish failed", "channel", e.Channel, "offset", e.Batch[0].Offset, "err", err)
		}
	}
}

// Revoke asks every node to close the connections of a session (public id)
// or, when sessionID is empty, of a user.
func (h *Hub) Revoke(ctx context.Context, sessionID, user, reason string) error {
	return h.broker.Publish(ctx, broker.Event{Kind: broker.KindRevoke, SessionID: sessionID, User: user, Reason: reason})
}

func (h *Hub) onEvent(e broker.Event) {
	switch e.Kind {
	case broker.KindMessage:
		if h.ordered {
			h.deliverOrdered(e.Channel, e.Batch)
			return
		}
		now := time.Now()
		fs := make([]*Frame, len(e.Batch))
		for i, m := range e.Batch {
			fs[i] = &Frame{Channel: e.Channel, Offset: m.Offset, Data: m.Frame, Sent: now}
		}
		h.deliver(e.Channel, fs, false)
	case broker.KindPresence:
		switch e.Origin {
		case "":
			// From a node that predates merged pushes: its push as it is.
			h.deliver(e.Channel, []*Frame{{Channel: e.Channel, Data: e.Frame, Sent: time.Now()}}, true)
		case h.origin:
			// Our own, handed back: delivered by the flush that published it.
		default:
			h.noteRemotePresence(e)
		}
	case broker.KindRevoke, broker.KindKick:
		h.closeMatching(e.SessionID, e.User, e.Reason)
	case broker.KindResync:
		if h.ordered {
			go h.resync()
		}
	}
}

// deliver hands fs to the channel's local subscribers; presence frames only
// to those holding the presence right. A channel of many subscribers is
// split over every core (fanoutChunk each at least), so that the first and
// the last subscriber wait less for their turn. Deliver never blocks (the
// connection's queue is bounded and a full one cuts it), so no subscriber
// holds up the others. deliver returns once every subscriber has the
// frames: the next batch of the channel must not overtake them.
func (h *Hub) deliver(channel string, fs []*Frame, presence bool) {
	if len(fs) == 0 {
		return
	}
	list := h.shard(channel).list(channel)
	parts := min(runtime.GOMAXPROCS(0), len(list)/fanoutChunk)
	var n int
	if parts <= 1 {
		n = deliverTo(list, channel, fs, presence)
	} else {
		n = deliverSplit(list, parts, channel, fs, presence)
	}
	if h.OnDeliver != nil && n > 0 {
		for _, f := range fs {
			h.OnDeliver(f, n)
		}
	}
}

// deliverSplit delivers to parts slices of list at once, the first on
// the caller's goroutine, and returns once all are done.
func deliverSplit(list []member, parts int, channel string, fs []*Frame, presence bool) int {
	var wg sync.WaitGroup
	var n atomic.Int64
	size := (len(list) + parts - 1) / parts
	for lo := size; lo < len(list); lo += size {
		part := list[lo:min(lo+size, len(list))]
		wg.Go(func() { n.Add(int64(deliverTo(part, channel, fs, presence))) })
	}
	first := deliverTo(list[:size], channel, fs, presence)
	wg.Wait()
	return first + int(n.Load())
}

// fanoutChunk is the fewest subscribers a fan-out goroutine is started
// for: below it, starting one costs more than it saves.
const fanoutChunk = 512

func deliverTo(list []member, channel string, fs []*Frame, presence bool) int {
	n := 0
	for _, m := range list {
		if presence && !m.seesPresence {
			continue
		}
		m.s.Deliver(channel, fs)
		n++
	}
	return n
}

// list returns channel's fan-out list, making it when a change forgot it.
func (sh *shard) list(channel string) []member {
	sh.mu.RLock()
	l, ok := sh.lists[channel]
	sh.mu.RUnlock()
	if ok {
		return l
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l, ok := sh.lists[channel]; ok {
		return l
	}
	set := sh.subs[channel]
	if len(set) == 0 {
		return nil // not kept: a channel without subscribers holds nothing
	}
	l = make([]member, 0, len(set))
	for s, sees := range set {
		l = append(l, member{s: s, seesPresence: sees})
	}
	sh.lists[channel] = l
	return l
}

func (h *Hub) closeMatching(sessionID, user, reason string) {
	if reason == "" {
		reason = "session ended"
	}
	h.mu.Lock()
	var hit []Member
	for m := range h.members {
		if (sessionID != "" && m.SessionID() == sessionID) || (sessionID == "" && user != "" && m.User() == user) {
			hit = append(hit, m)
		}
	}
	h.mu.Unlock()
	for _, m := range hit {
		m.Revoke(CloseSessionEnded, reason)
	}
}

// ForEach calls fn for every registered member (used by sweeps).
func (h *Hub) ForEach(fn func(Member)) {
	h.mu.Lock()
	ms := make([]Member, 0, len(h.members))
	for m := range h.members {
		ms = append(ms, m)
	}
	h.mu.Unlock()
	for _, m := range ms {
		fn(m)
	}
}
