package proxy

import (
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The proxy's overhead, for BENCHMARKS.md: run on an idle machine with
//
//	go test -run '^$' -bench Proxy -benchtime 5000x ./internal/proxy/
//
// BenchmarkProxyRoundTrip times one 100-byte message to an echo backend and
// back, directly and through the relay (the guard and TLS are not in the
// loop: they cost once per handshake, the same in serve mode); the
// difference is the latency the relay adds per message, both ways.
// BenchmarkProxyMemory reports the heap one idle proxied connection costs
// the proxy (its two sockets, queues and goroutine stacks), as the heap of
// N proxied connections less that of N direct ones, over N.
func BenchmarkProxyRoundTrip(b *testing.B) {
	up := echoUpstream(b)
	front := relayFront(b, wsURL(up), Options{MessagesPerSecond: 1e9, MessageBurst: 1 << 30})
	msg := make([]byte, 100)
	for _, c := range []struct {
		name string
		srv  *httptest.Server
	}{{"direct", up}, {"proxied", front}} {
		b.Run(c.name, func(b *testing.B) {
			ws, _, err := websocket.DefaultDialer.Dial(wsURL(c.srv), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProxyMemory(b *testing.B) {
	const n = 500
	up := echoUpstream(b)
	front := relayFront(b, wsURL(up), Options{})
	heap := func(url string) uint64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		conns := make([]*websocket.Conn, 0, n)
		for i := 0; i < n; i++ {
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, ws)
		}
		time.Sleep(200 * time.Millisecond) // let every relay settle into its idle state
		runtime.GC()
		runtime.ReadMemStats(&after)
		for _, ws := range conns {
			ws.Close()
		}
		time.Sleep(200 * time.Millisecond)
		return (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
	}
	for i := 0; i < b.N; i++ {
		direct := heap(wsURL(up))
		proxied := heap(wsURL(front))
		if proxied < direct {
			b.Fatalf("proxied heap %d below direct %d: measurement noise, run on an idle machine", proxied, direct)
		}
		b.ReportMetric(float64(proxied-direct)/n/1024, "KiB/proxied-conn")
		b.ReportMetric(float64(direct)/n/1024, "KiB/direct-conn")
	}
}
