// Package bench measures a wsguard node on the figures BENCHMARKS.md
// reports and sets targets for: idle connections held and memory each, handshakes per second,
// fan-out deliveries per second, server CPU per delivery and delivery
// latency, all over wss on loopback with every control on and every
// publish durable.
//
// It is built to compare servers fairly: every subscriber is a user of its
// own unless asked otherwise (one user for all hides what a server does per
// distinct user, such as presence), both servers are published to the same
// way with the same number of messages in flight, memory is the median of
// several readings after a forced collection, and the load client can be
// built on either of two WebSocket libraries.
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
	// OneUser seats every subscriber as the same user, as the bench did
	// before; by default each subscriber is a user of its own, as in a
	// real room, so per-user work (presence) is counted.
	OneUser bool
	// Publisher is how messages are published: PublishHTTP (one service
	// API call at a time) or PublishSocket (frames on a client socket).
	// Zero means PublishHTTP, the same for both servers.
	Publisher string
	// Client is the load client's WebSocket library: ClientGorilla or
	// ClientCoder. Zero means ClientGorilla.
	Client string
	// MemorySamples is how many RSS readings, each after a forced GC, the
	// idle memory figure takes the median of. Zero means 5.
	MemorySamples int
	// Timeout bounds the whole run. Zero means 5 minutes.
	Timeout time.Duration
	// Nodes is how many server processes run as one cluster. Zero means 1,
	// a single node on its default store and broker. With more, subscribers
	// are spread over the nodes in turn and every publish goes through the
	// first: wsguard's nodes share a PostgreSQL database made for the run
	// and a Redis, Centrifugo's share the same Redis as its engine.
	Nodes int
	// Postgres is the URL of a PostgreSQL maintenance database where a
	// cluster run creates (and afterwards drops) a database of its own.
	// Zero means DefaultPostgres.
	Postgres string
	// Redis is the URL of the Redis a cluster run's nodes share, each run
	// under a key prefix of its own. Zero means DefaultRedis.
	Redis string
}

// The services a cluster run uses unless told otherwise: the machine's own.
const (
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedis    = "redis://127.0.0.1:6379/0"
)

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
	if o.Publisher == "" {
		o.Publisher = PublishHTTP
	}
	if o.Client == "" {
		o.Client = ClientGorilla
	}
	if o.MemorySamples <= 0 {
		o.MemorySamples = 5
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	if o.Postgres == "" {
		o.Postgres = DefaultPostgres
	}
	if o.Redis == "" {
		o.Redis = DefaultRedis
	}
}

func (o *Options) check() error {
	if o.Binary == "" {
		return errors.New("bench: Options.Binary is required")
	}
	if o.Publisher != PublishHTTP && o.Publisher != PublishSocket {
		return fmt.Errorf("bench: unknown publisher %q (allowed: %s, %s)", o.Publisher, PublishHTTP, PublishSocket)
	}
	if o.Client != ClientGorilla && o.Client != ClientCoder {
		return fmt.Errorf("bench: unknown client %q (allowed: %s, %s)", o.Client, ClientGorilla, ClientCoder)
	}
	return nil
}

// userFor names subscriber i's user: its own, or with OneUser the same for all.
func (o *Options) userFor(i int) string {
	if o.OneUser {
		return "bench"
	}
	return fmt.Sprintf("u%06d", i)
}

// Result is what one run measured.
type Result struct {
	Target                string
	Nodes                 int // server processes, one cluster
	Conns, Messages, Size int
	InFlight              int
	Users                 int     // distinct users the subscribers are seated as
	Publisher, Client     string  // PublishHTTP or PublishSocket; ClientGorilla or ClientCoder
	Handshakes            float64 // per second
	// Subscribes per second (each answered), and whole connection set-ups
	// per second: handshake and subscribe, the two phases' times added.
	// With distinct users a server's per-user work on joining (presence)
	// shows here rather than in the handshakes.
	Subscribes, SetUps float64
	// Idle memory per subscribed connection: server RSS growth (median of
	// the samples after forced GC), the samples' spread per connection,
	// and whether that spread makes the growth unreliable.
	IdleKiB, IdleNoiseKiB float64
	IdleNoisy             bool
	// What the Go runtime reports per idle connection: goroutines, heap and stack KiB.
	GoroutinesPerConn, HeapKiB, StackKiB float64
	Deliveries                           int64         // received by subscribers
	DeliveriesPerSec                     float64       // from first publish to last delivery
	CPUPerDelivery                       time.Duration // server CPU time / deliveries
	FanOutCPU                            time.Duration // server CPU time during the fan-out, in 10 ms ticks
	// With several nodes: the CPU the machine's PostgreSQL and Redis
	// processes used during the fan-out, per delivery, which the nodes'
	// own figure leaves out.
	BackingCPUPerDelivery time.Duration
	P50, P99, Max         time.Duration // publish sent to push received
}

// Markdown renders r as the rows BENCHMARKS.md keeps.
func (r Result) Markdown() string {
	var b strings.Builder
	if r.Nodes > 1 {
		fmt.Fprintf(&b, "| nodes | %d, one cluster: subscribers spread over all, publishes through the first |\n", r.Nodes)
	}
	fmt.Fprintf(&b, "| subscribers × messages × bytes (in flight) | %d × %d × %d (%d) |\n", r.Conns, r.Messages, r.Size, r.InFlight)
	users := "each subscriber its own user"
	if r.Users == 1 {
		users = "one user for all subscribers (--one-user)"
	}
	fmt.Fprintf(&b, "| users | %d: %s |\n", r.Users, users)
	fmt.Fprintf(&b, "| publisher / load client | %s / %s |\n", publisherLabel(r.Publisher), r.Client)
	fmt.Fprintf(&b, "| idle memory per connection (server RSS) | %s |\n", r.idleText())
	fmt.Fprintf(&b, "| of which Go heap / stacks, goroutines | %.1f KiB / %.1f KiB, %.1f |\n", r.HeapKiB, r.StackKiB, r.GoroutinesPerConn)
	fmt.Fprintf(&b, "| handshakes per second | %.0f |\n", r.Handshakes)
	fmt.Fprintf(&b, "| subscribes per second | %.0f |\n", r.Subscribes)
	fmt.Fprintf(&b, "| connection set-ups per second (handshake + subscribe) | %.0f |\n", r.SetUps)
	fmt.Fprintf(&b, "| deliveries per second | %.0f (%d delivered) |\n", r.DeliveriesPerSec, r.Deliveries)
	fmt.Fprintf(&b, "| server CPU per delivery | %.2f µs (%s in all) |\n", float64(r.CPUPerDelivery.Nanoseconds())/1000, r.FanOutCPU)
	if r.Nodes > 1 {
		fmt.Fprintf(&b, "| PostgreSQL and Redis CPU per delivery | %.2f µs |\n", float64(r.BackingCPUPerDelivery.Nanoseconds())/1000)
	}
	fmt.Fprintf(&b, "| delivery latency p50 / p99 / max | %s / %s / %s |\n", r.P50.Round(time.Microsecond*100), r.P99.Round(time.Microsecond*100), r.Max.Round(time.Microsecond*100))
	return b.String()
}

func publisherLabel(p string) string {
	if p == PublishSocket {
		return "socket (publish frames on a client socket, answers not awaited)"
	}
	return "http (service API, one call at a time)"
}

// idleText says the idle memory figure with how far to trust it.
func (r Result) idleText() string {
	switch {
	case r.IdleKiB <= 0:
		return fmt.Sprintf("not measurable: RSS did not grow beyond the samples' spread (±%.1f KiB per connection); use more connections", r.IdleNoiseKiB)
	case r.IdleNoisy:
		return fmt.Sprintf("%.1f KiB, noisy (samples spread ±%.1f KiB per connection)", r.IdleKiB, r.IdleNoiseKiB)
	}
	return fmt.Sprintf("%.1f KiB (±%.1f)", r.IdleKiB, r.IdleNoiseKiB)
}

func mib(b []int64) string {
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = fmt.Sprintf("%.1f", float64(v)/(1<<20))
	}
	return strings.Join(s, " ")
}

// perConn turns two memory readings into the growth per connection. The
// spreads of both readings bound how wrong it can be; a growth that is not
// several times that spread is marked noisy, and a shrink is reported as
// no figure at all rather than as negative memory.
func perConn(before, after memory, conns int) (kib, noiseKiB float64, noisy bool) {
	growth := after.median - before.median
	noise := before.spread + after.spread
	per := 1024 * float64(conns)
	noiseKiB = float64(noise) / per
	if growth <= 0 {
		return 0, noiseKiB, true
	}
	return float64(growth) / per, noiseKiB, noise*4 > growth
}

// system is one server under test: how to start it, open an
// authenticated subscriber, publish, and read its pushes.
type system interface {
	// dial opens subscriber i's connection, to one of the nodes in turn,
	// authenticated as user and ready to subscribe.
	dial(ctx context.Context, i int, user string) (wsConn, error)
	// subscribe subscribes ws to the bench channel and waits for the answer.
	subscribe(ctx context.Context, ws wsConn) error
	// publisher prepares publishing the way how names (PublishHTTP or
	// PublishSocket); publish then sends message i (from 1).
	publisher(ctx context.Context, how string) (publish func(ctx context.Context, i int, data []byte) error, err error)
	// sentAt returns the publisher timestamps of the message pushes in a
	// frame, answering any server ping on ws as the protocol asks.
	sentAt(ctx context.Context, ws wsConn, frame []byte) []int64
	// procs are the server processes, the first the one publishes go through.
	procs() []*node
	stop()
}

// Run starts a server, loads it and returns what it measured.
func Run(ctx context.Context, opt Options, progress io.Writer) (Result, error) {
	opt.defaults()
	if err := opt.check(); err != nil {
		return Result{}, err
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
		sys, err = startWSGuard(ctx, opt)
	case "centrifugo":
		sys, err = startCentrifugo(ctx, opt)
	default:
		err = fmt.Errorf("bench: unknown target %q (allowed: wsguard, centrifugo)", opt.Target)
	}
	if err != nil {
		return Result{}, err
	}
	defer sys.stop()
	ns := sys.procs()

	res := Result{Target: opt.Target, Nodes: opt.Nodes, Conns: opt.Conns, Messages: opt.Messages, Size: opt.Size, InFlight: opt.InFlight,
		Users: opt.Conns, Publisher: opt.Publisher, Client: opt.Client}
	if res.Target == "" {
		res.Target = "wsguard"
	}
	if opt.OneUser {
		res.Users = 1
	}
	mem0, err := sampleMemory(ns, opt.MemorySamples)
	if err != nil {
		return res, err
	}
	g0, h0, s0, err := goStatsOf(ns)
	if err != nil {
		return res, err
	}

	// 1. Handshakes: open every subscriber, DialConcurrency at a time,
	// each with a credential of its user.
	users := "each its own user"
	if opt.OneUser {
		users = "all as one user"
	}
	say("opening %d connections to %d node(s) (%s, %s client)...", opt.Conns, len(ns), users, opt.Client)
	conns := make([]wsConn, opt.Conns)
	defer func() {
		for _, ws := range conns {
			if ws != nil {
				ws.close()
			}
		}
	}()
	start := time.Now()
	if err := parallel(ctx, opt.Conns, opt.DialConcurrency, func(i int) error {
		ws, err := sys.dial(ctx, i, opt.userFor(i))
		conns[i] = ws
		return err
	}); err != nil {
		return res, fmt.Errorf("bench: handshake: %w", err)
	}
	handshakes := time.Since(start)
	res.Handshakes = float64(opt.Conns) / handshakes.Seconds()

	// 2. Subscribe everyone. From its subscribe on, each subscriber reads
	// everything the server sends, as a real client does (presence pushes
	// included), counting and timestamping the messages.
	say("subscribing...")
	start = time.Now()
	total := int64(opt.Conns) * int64(opt.Messages)
	lat := make([][]time.Duration, opt.Conns)
	var received atomic.Int64
	allDone := make(chan struct{})
	// A socket the server closes before the run ends (a slow reader cut,
	// say) explains missing deliveries: count them and keep the first why.
	var lost atomic.Int64
	var lostWhy atomic.Value
	broken := make(chan struct{}) // closed at the first early end: the run cannot complete
	var breakOnce sync.Once
	if err := parallel(ctx, opt.Conns, opt.DialConcurrency, func(i int) error {
		ws := conns[i]
		if err := sys.subscribe(ctx, ws); err != nil {
			return err
		}
		lat[i] = make([]time.Duration, 0, opt.Messages)
		go func() {
			for {
				b, err := ws.read(ctx)
				if err != nil {
					if ctx.Err() == nil && received.Load() < total {
						lost.Add(1)
						lostWhy.CompareAndSwap(nil, err.Error())
						breakOnce.Do(func() { close(broken) })
					}
					return
				}
				for _, sent := range sys.sentAt(ctx, ws, b) {
					lat[i] = append(lat[i], time.Since(time.Unix(0, sent)))
					if received.Add(1) == total {
						close(allDone)
					}
				}
			}
		}()
		return nil
	}); err != nil {
		return res, fmt.Errorf("bench: subscribe: %w", err)
	}
	subscribes := time.Since(start)
	res.Subscribes = float64(opt.Conns) / subscribes.Seconds()
	res.SetUps = float64(opt.Conns) / (handshakes + subscribes).Seconds()

	// 3. What the idle subscribed connections hold.
	mem1, err := sampleMemory(ns, opt.MemorySamples)
	if err != nil {
		return res, err
	}
	res.IdleKiB, res.IdleNoiseKiB, res.IdleNoisy = perConn(mem0, mem1, opt.Conns)
	say("server RSS after forced GC, idle: %s MiB; with %d subscribed: %s MiB", mib(mem0.samples), opt.Conns, mib(mem1.samples))
	g1, h1, s1, err := goStatsOf(ns)
	if err != nil {
		return res, err
	}
	if opt.HeapProfile != "" {
		if err := ns[0].saveProfile(opt.HeapProfile, "/debug/pprof/heap"); err != nil {
			return res, fmt.Errorf("bench: heap profile: %w", err)
		}
	}
	per := float64(opt.Conns)
	res.GoroutinesPerConn, res.HeapKiB, res.StackKiB = (g1-g0)/per, (h1-h0)/1024/per, (s1-s0)/1024/per

	// 4. Fan-out: one publisher, at most InFlight messages on their way.
	say("publishing %d messages of %d bytes to %d subscribers (%s publisher, %d in flight)...",
		opt.Messages, opt.Size, opt.Conns, opt.Publisher, opt.InFlight)
	publish, err := sys.publisher(ctx, opt.Publisher)
	if err != nil {
		return res, fmt.Errorf("bench: publisher: %w", err)
	}
	profDone := make(chan error, 1)
	if opt.CPUProfile != "" {
		go func() { profDone <- ns[0].cpuProfile(opt.CPUProfile, 10*time.Second) }()
	} else {
		profDone <- nil
	}
	cpu0, _ := cpuOf(ns)
	backing0 := backingCPU()
	pad := strings.Repeat("x", max(0, opt.Size-len(`{"t":1700000000000000000,"p":""}`)))
	start = time.Now()
	for i := 1; i <= opt.Messages; i++ {
		// Wait until message i-InFlight has reached every subscriber (as a
		// count: with InFlight 1 that is exact, since each subscriber gets
		// the messages in order).
		for want := int64(i-opt.InFlight) * int64(opt.Conns); received.Load() < want && ctx.Err() == nil && lost.Load() == 0; {
			time.Sleep(200 * time.Microsecond)
		}
		if lost.Load() > 0 {
			break
		}
		data := fmt.Sprintf(`{"t":%d,"p":"%s"}`, time.Now().UnixNano(), pad)
		if err := publish(ctx, i, []byte(data)); err != nil {
			return res, fmt.Errorf("bench: publish: %w", err)
		}
	}
	select {
	case <-allDone:
	case <-broken:
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	cpu1, _ := cpuOf(ns)
	backing1 := backingCPU()
	res.Deliveries = received.Load()
	if res.Deliveries < total {
		why := ""
		if k := lost.Load(); k > 0 {
			why = fmt.Sprintf(": %d subscriber sockets ended early, the first with: %v", k, lostWhy.Load())
		} else {
			why = " before the timeout"
		}
		return res, fmt.Errorf("bench: %d of %d deliveries arrived%s", res.Deliveries, total, why)
	}
	if err := <-profDone; err != nil {
		return res, fmt.Errorf("bench: cpu profile: %w", err)
	}
	res.DeliveriesPerSec = float64(res.Deliveries) / elapsed.Seconds()
	res.FanOutCPU = cpu1 - cpu0
	res.CPUPerDelivery = res.FanOutCPU / time.Duration(res.Deliveries)
	if opt.Nodes > 1 {
		res.BackingCPUPerDelivery = (backing1 - backing0) / time.Duration(res.Deliveries)
	}
	// Every delivery has been counted, and each reader appends before it
	// counts (an atomic add), so the latencies are all in place.
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
