// Package bench measures a wsguard node on the figures BENCHMARKS.md
// reports and sets targets for: idle connections held and memory each, handshakes per second,
// fan-out deliveries per second, server CPU per delivery and delivery
// latency, all over wss on loopback with every control on and every
// publish durable.
//
// The server runs as a child process (the same binary, `wsguard serve`) so
// that its resident memory and CPU time are read from /proc apart from the
// load client's; the load client shares the machine's cores, as it did when
// Centrifugo was measured for comparison.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Options shape one run. Zero values get the BENCHMARKS.md scenario.
type Options struct {
	// Binary is the wsguard executable to run as the server. Required.
	Binary string
	// Conns is the number of subscribers. Zero means 10000.
	Conns int
	// Messages is how many messages are published to all of them. Zero means 100.
	Messages int
	// Size is each message's payload size in bytes. Zero means 100.
	Size int
	// DialConcurrency is how many handshakes are in flight at once. Zero means 64.
	DialConcurrency int
	// InFlight is how many messages the publisher lets be on their way to
	// subscribers at once; it publishes the next only when the oldest has
	// reached everyone. With 1, latency measures one fan-out, not a queue
	// of them; more lets a server batch. Zero means 1.
	InFlight int
	// CPUProfile, when set, is where the server's CPU profile during the
	// fan-out is written (pprof format).
	CPUProfile string
	// HeapProfile, when set, is where the server's heap profile with every
	// connection idle is written.
	HeapProfile string
	// Target is the server under test: "wsguard" (the default) or
	// "centrifugo", for the side-by-side figures in BENCHMARKS.md.
	Target string
	// CentrifugoBinary is the centrifugo executable, for Target centrifugo.
	CentrifugoBinary string
	// Timeout bounds the whole run. Zero means 5 minutes.
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Conns <= 0 {
		o.Conns = 10000
	}
	if o.Messages <= 0 {
		o.Messages = 100
	}
	if o.Size <= 0 {
		o.Size = 100
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 64
	}
	if o.InFlight <= 0 {
		o.InFlight = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
}

// Result is what one run measured.
type Result struct {
	Target                string
	Conns, Messages, Size int
	InFlight              int
	Handshakes            float64 // per second
	IdleKiB               float64 // server RSS growth per idle subscribed connection
	// What the Go runtime reports per idle connection: goroutines, heap and stack KiB.
	GoroutinesPerConn, HeapKiB, StackKiB float64
	Deliveries                           int64         // received by subscribers
	DeliveriesPerSec                     float64       // from first publish to last delivery
	CPUPerDelivery                       time.Duration // server CPU time / deliveries
	P50, P99, Max                        time.Duration // publish sent to push received
}

// Markdown renders r as the rows BENCHMARKS.md keeps.
func (r Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| subscribers × messages × bytes (in flight) | %d × %d × %d (%d) |\n", r.Conns, r.Messages, r.Size, r.InFlight)
	fmt.Fprintf(&b, "| idle memory per connection (server RSS) | %.1f KiB |\n", r.IdleKiB)
	fmt.Fprintf(&b, "| of which Go heap / stacks, goroutines | %.1f KiB / %.1f KiB, %.1f |\n", r.HeapKiB, r.StackKiB, r.GoroutinesPerConn)
	fmt.Fprintf(&b, "| handshakes per second | %.0f |\n", r.Handshakes)
	fmt.Fprintf(&b, "| deliveries per second | %.0f (%d delivered) |\n", r.DeliveriesPerSec, r.Deliveries)
	fmt.Fprintf(&b, "| server CPU per delivery | %.2f µs |\n", float64(r.CPUPerDelivery.Nanoseconds())/1000)
	fmt.Fprintf(&b, "| delivery latency p50 / p99 / max | %s / %s / %s |\n", r.P50.Round(time.Microsecond*100), r.P99.Round(time.Microsecond*100), r.Max.Round(time.Microsecond*100))
	return b.String()
}

// system is one server under test: how to start it, open an
// authenticated subscriber, publish, and read its pushes.
type system interface {
	// dial opens an authenticated connection, ready to subscribe.
	dial(ctx context.Context) (*websocket.Conn, error)
	// subscribe subscribes ws to the bench channel and waits for the answer.
	subscribe(ws *websocket.Conn) error
	// publisher prepares publishing; publish then sends message i.
	publisher(ctx context.Context) (publish func(i int, data []byte) error, err error)
	// sentAt returns the publisher timestamps of the message pushes in a
	// frame, answering any server ping on ws as the protocol asks.
	sentAt(ws *websocket.Conn, frame []byte) []int64
	proc() *node
	stop()
}

// Run starts a server, loads it and returns what it measured.
func Run(ctx context.Context, opt Options, progress io.Writer) (Result, error) {
	opt.defaults()
	if opt.Binary == "" {
		return Result{}, errors.New("bench: Options.Binary is required")
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	var sys system
	var err error
	switch opt.Target {
	case "", "wsguard":
		sys, err = startWSGuard(ctx, opt.Binary, opt.Conns+1)
	case "centrifugo":
		sys, err = startCentrifugo(ctx, opt.CentrifugoBinary)
	default:
		err = fmt.Errorf("bench: unknown target %q (allowed: wsguard, centrifugo)", opt.Target)
	}
	if err != nil {
		return Result{}, err
	}
	defer sys.stop()
	n := sys.proc()

	res := Result{Target: opt.Target, Conns: opt.Conns, Messages: opt.Messages, Size: opt.Size, InFlight: opt.InFlight}
	if res.Target == "" {
		res.Target = "wsguard"
	}
	n.settle()
	rss0, _, err := n.usage()
	if err != nil {
		return res, err
	}
	g0, h0, s0, err := n.goStats()
	if err != nil {
		return res, err
	}

	// 1. Handshakes: open every subscriber, DialConcurrency at a time.
	say("opening %d connections...", opt.Conns)
	conns := make([]*websocket.Conn, opt.Conns)
	start := time.Now()
	if err := parallel(ctx, opt.Conns, opt.DialConcurrency, func(i int) error {
		ws, err := sys.dial(ctx)
		conns[i] = ws
		return err
	}); err != nil {
		closeAll(conns)
		return res, fmt.Errorf("bench: handshake: %w", err)
	}
	res.Handshakes = float64(opt.Conns) / time.Since(start).Seconds()
	defer closeAll(conns)

	// 2. Subscribe everyone, then measure what the idle connections hold.
	say("subscribing...")
	if err := parallel(ctx, opt.Conns, opt.DialConcurrency, func(i int) error {
		return sys.subscribe(conns[i])
	}); err != nil {
		return res, fmt.Errorf("bench: subscribe: %w", err)
	}
	n.settle()
	rss1, _, err := n.usage()
	if err != nil {
		return res, err
	}
	res.IdleKiB = float64(rss1-rss0) / 1024 / float64(opt.Conns)
	g1, h1, s1, err := n.goStats()
	if err != nil {
		return res, err
	}
	if opt.HeapProfile != "" {
		if err := n.saveProfile(opt.HeapProfile, "/debug/pprof/heap"); err != nil {
			return res, fmt.Errorf("bench: heap profile: %w", err)
		}
	}
	per := float64(opt.Conns)
	res.GoroutinesPerConn, res.HeapKiB, res.StackKiB = (g1-g0)/per, (h1-h0)/1024/per, (s1-s0)/1024/per

	// 3. Fan-out: one publisher, at most InFlight messages on their way;
	// each subscriber counts and timestamps what it receives.
	say("publishing %d messages of %d bytes to %d subscribers...", opt.Messages, opt.Size, opt.Conns)
	publish, err := sys.publisher(ctx)
	if err != nil {
		return res, fmt.Errorf("bench: publisher: %w", err)
	}
	total := int64(opt.Conns) * int64(opt.Messages)
	lat := make([][]time.Duration, opt.Conns)
	var received atomic.Int64
	allDone := make(chan struct{})
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Add(1)
		lat[i] = make([]time.Duration, 0, opt.Messages)
		go func() {
			defer wg.Done()
			_ = ws.SetReadDeadline(time.Now().Add(opt.Timeout))
			for len(lat[i]) < opt.Messages {
				_, b, err := ws.ReadMessage()
				if err != nil {
					return
				}
				for _, sent := range sys.sentAt(ws, b) {
					lat[i] = append(lat[i], time.Since(time.Unix(0, sent)))
					if received.Add(1) == total {
						close(allDone)
					}
				}
			}
		}()
	}
	profDone := make(chan error, 1)
	if opt.CPUProfile != "" {
		go func() { profDone <- n.cpuProfile(opt.CPUProfile, 10*time.Second) }()
	} else {
		profDone <- nil
	}
	_, cpu0, _ := n.usage()
	pad := strings.Repeat("x", max(0, opt.Size-len(`{"t":1700000000000000000,"p":""}`)))
	start = time.Now()
	for i := 1; i <= opt.Messages; i++ {
		// Wait until message i-InFlight has reached every subscriber (as a
		// count: with InFlight 1 that is exact, since each subscriber gets
		// the messages in order).
		for want := int64(i-opt.InFlight) * int64(opt.Conns); received.Load() < want && ctx.Err() == nil; {
			time.Sleep(200 * time.Microsecond)
		}
		data := fmt.Sprintf(`{"t":%d,"p":"%s"}`, time.Now().UnixNano(), pad)
		if err := publish(i, []byte(data)); err != nil {
			return res, fmt.Errorf("bench: publish: %w", err)
		}
	}
	select {
	case <-allDone:
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	_, cpu1, _ := n.usage()
	res.Deliveries = received.Load()
	if res.Deliveries < total {
		closeAll(conns)
		wg.Wait()
		return res, fmt.Errorf("bench: %d of %d deliveries arrived before the timeout", res.Deliveries, total)
	}
	wg.Wait()
	if err := <-profDone; err != nil {
		return res, fmt.Errorf("bench: cpu profile: %w", err)
	}
	res.DeliveriesPerSec = float64(res.Deliveries) / elapsed.Seconds()
	res.CPUPerDelivery = (cpu1 - cpu0) / time.Duration(res.Deliveries)
	all := make([]time.Duration, 0, total)
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.P50 = all[len(all)/2]
	res.P99 = all[len(all)*99/100]
	res.Max = all[len(all)-1]
	return res, nil
}

// parallel runs fn(0..n-1), at most width at once, and returns the first error.
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for w := 0; w < width; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

func closeAll(conns []*websocket.Conn) {
	for _, ws := range conns {
		if ws != nil {
			_ = ws.Close()
		}
	}
}
