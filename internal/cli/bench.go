package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/wsguard/wsguard/internal/bench"
)

// benchCmd runs the BENCHMARKS.md scenario against a fresh local node started
// from this same binary, and prints the figures as BENCHMARKS.md rows.
func benchCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opt bench.Options
	fs.IntVar(&opt.Conns, "conns", 10000, "subscribers to open")
	fs.IntVar(&opt.Messages, "messages", 100, "messages published to all subscribers")
	fs.IntVar(&opt.Size, "size", 100, "payload bytes per message")
	fs.IntVar(&opt.DialConcurrency, "dial-concurrency", 64, "handshakes in flight at once")
	fs.IntVar(&opt.InFlight, "inflight", 1, "messages on their way to subscribers at once (1: latency of one fan-out)")
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write the server's CPU profile during the fan-out to this file")
	fs.StringVar(&opt.HeapProfile, "heapprofile", "", "write the server's heap profile with every connection idle to this file")
	fs.StringVar(&opt.Target, "target", "wsguard", "server under test: wsguard, or centrifugo for the side-by-side figures")
	fs.StringVar(&opt.CentrifugoBinary, "centrifugo", "", "the centrifugo executable, for --target centrifugo")
	fs.BoolVar(&opt.OneUser, "one-user", false, "seat every subscriber as the same user (default: each its own user)")
	fs.StringVar(&opt.Publisher, "publisher", bench.PublishHTTP, "how to publish, the same for both targets: http (service API, one call at a time) or socket (frames on a client socket)")
	fs.StringVar(&opt.Client, "client", bench.ClientGorilla, "the load client's WebSocket library: gorilla or coder")
	fs.IntVar(&opt.MemorySamples, "memory-samples", 5, "RSS readings, each after a forced GC, whose median is the memory figure")
	fs.DurationVar(&opt.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.IntVar(&opt.Nodes, "nodes", 1, "server processes run as one cluster: subscribers spread over them, publishes through the first (wsguard on PostgreSQL and Redis, Centrifugo on its Redis engine)")
	fs.StringVar(&opt.Postgres, "postgres", bench.DefaultPostgres, "with --nodes > 1: PostgreSQL maintenance database where the run creates and drops a database of its own")
	fs.StringVar(&opt.Redis, "redis", bench.DefaultRedis, "with --nodes > 1: the Redis the nodes share (the run uses a key prefix of its own)")
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: cannot find this binary to run as the server: %w", err)
	}
	opt.Binary = bin
	res, err := bench.Run(context.Background(), opt, stderr)
	if err != nil {
		return err
	}
	extra := ""
	if opt.OneUser {
		extra = " --one-user"
	}
	if opt.Nodes > 1 {
		extra += fmt.Sprintf(" --nodes %d", opt.Nodes)
	}
	fmt.Fprintf(stdout, "wsguard bench --target %s --conns %d --messages %d --size %d --inflight %d --publisher %s --client %s%s (%s, %d CPUs, %s)\n\n",
		res.Target, opt.Conns, opt.Messages, opt.Size, opt.InFlight, res.Publisher, res.Client, extra,
		runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "| measure | %s |\n", res.Target)
	fmt.Fprintln(stdout, "|---|---|")
	fmt.Fprint(stdout, res.Markdown())
	return nil
}
