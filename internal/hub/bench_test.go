package hub

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/store"
)

// sink is a subscriber that counts what it is given and nothing else, so
// that benchmarks measure the hub's work, not the subscriber's.
type sink struct{ frames int }

func (s *sink) Deliver(_ string, fs []*Frame) { s.frames += len(fs) }

// BenchmarkPresenceJoin seats b.N distinct users, each on its own
// subscriber, in one channel: the cost of a first join, including the
// presence pushes it causes to the subscribers already there. The channel
// is emptied every 1000 joins so that the figure is per join in a room of
// up to 1000, comparable between runs of different b.N.
func BenchmarkPresenceJoin(b *testing.B) {
	h := New(nil, broker.NewMemory())
	stop := h.Start()
	defer stop()
	const room = 1000
	subs := make([]*sink, room)
	names := make([]string, room)
	for i := range subs {
		subs[i] = &sink{}
		names[i] = "user" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % room
		if k == 0 && i > 0 {
			for j := range subs {
				h.Unsubscribe("room:a", subs[j], names[j])
			}
		}
		h.Subscribe("room:a", subs[k], names[k], true)
	}
}

// BenchmarkEncodePush is the once-per-message encoding of a 100-byte message.
func BenchmarkEncodePush(b *testing.B) {
	m := store.Message{Channel: "room:lobby", Offset: 123456, From: "alice", TS: time.Unix(1700000000, 0),
		Data: []byte(`{"text":"` + string(make100()) + `"}`)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = EncodePush(m)
	}
}

func make100() []byte {
	p := make([]byte, 100)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

// BenchmarkFanout delivers one committed message to n local subscribers of
// one channel through the broker, as a commit does.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := New(nil, broker.NewMemory())
			stop := h.Start()
			defer stop()
			for i := 0; i < n; i++ {
				h.Subscribe("room:a", &sink{}, "user"+strconv.Itoa(i), false)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.publishCommitted([]store.Message{msg("room:a", uint64(i+1))})
			}
		})
	}
}

// BenchmarkEncodePresence encodes one gathered presence push of 20 joins.
func BenchmarkEncodePresence(b *testing.B) {
	join := make([]string, 20)
	for i := range join {
		join[i] = "user" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = EncodePresence("room:lobby", join, nil, defaultPresenceNames)
	}
}
