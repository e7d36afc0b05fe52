package conn

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/store"
)

func benchNode(b *testing.B) (*hub.Hub, broker.Broker, store.Store, *authz.Rules) {
	b.Helper()
	st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "bench.db"), store.SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	br := broker.NewMemory()
	h := hub.New(st, br)
	b.Cleanup(h.Start())
	rules, err := authz.New(config.Default().Namespaces)
	if err != nil {
		b.Fatal(err)
	}
	return h, br, st, rules
}

// BenchmarkSubscribeDistinctUsers is one subscribe, as the read loop runs
// it, by a new connection of a user of its own to one room of the default
// rules (presence on): parsing, the rights checks, the hub's bookkeeping
// and presence, the latest offset, the answer and its write. The
// connections share one sink socket, so that no set-up is counted with
// them. Every 1000 they leave, so the room stays at most that large
// whatever b.N.
func BenchmarkSubscribeDistinctUsers(b *testing.B) {
	h, _, st, rules := benchNode(b)
	frame := []byte(`{"id":1,"op":"subscribe","channel":"room:lobby"}`)
	ctx := context.Background()
	const room = 1000
	conns := make([]*Conn, 0, room)
	nc := newSinkConn()
	ws := sinkSocket(b, nc)
	answered := make(chan struct{}, 1)
	nc.wrote = func(p []byte) {
		if bytes.Contains(p, []byte(`{"id":1,"ok":true`)) { // not a presence push
			answered <- struct{}{}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(conns) == room {
			for _, c := range conns {
				h.Unsubscribe("room:lobby", c, c.User())
			}
			conns = conns[:0]
		}
		c := New(ws, h, st, rules, Options{Principal: authz.Principal{Name: "u" + strconv.Itoa(i)}})
		req, err := ParseRequest(frame)
		if err != nil {
			b.Fatal(err)
		}
		c.handle(ctx, req)
		<-answered
		conns = append(conns, c)
	}
}

// BenchmarkDeliver is one message of 100 bytes fanned out to n live
// subscribers of one channel, from the broker event to the write of each
// socket, one message at a time (in flight 1). It reports the socket
// writes per message: the floor is one per subscriber.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h, br, st, rules := benchNode(b)
			var wg sync.WaitGroup
			socks := make([]*sinkConn, n)
			for i := range socks {
				socks[i] = newSinkConn()
				c := New(sinkSocket(b, socks[i]), h, st, rules, Options{Principal: authz.Principal{Name: "u" + strconv.Itoa(i)}})
				c.handle(context.Background(), Request{ID: 1, Op: "subscribe", Channel: "room:lobby"})
			}
			time.Sleep(500 * time.Millisecond) // the answers and the presence push go out
			for _, s := range socks {
				s.writes.Store(0)
				s.wrote = func([]byte) { wg.Done() }
			}
			payload := []byte(`{"push":"message","channel":"room:lobby","offset":1,"from":"alice","ts":"2026-12-01T10:00:00.123456789Z","data":{"text":"0123456789012345678901234567890123"}}`)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				wg.Add(n)
				if err := br.Publish(ctx, broker.Event{Kind: broker.KindMessage, Channel: "room:lobby",
					Batch: []broker.Encoded{{Offset: uint64(i + 1), Frame: payload}}}); err != nil {
					b.Fatal(err)
				}
				wg.Wait()
			}
			b.StopTimer()
			var writes int64
			for _, s := range socks {
				writes += s.writes.Load()
			}
			b.ReportMetric(float64(writes)/float64(b.N)/float64(n), "writes/delivery")
		})
	}
}
