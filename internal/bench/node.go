package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// node is a server under test running as a child process, so that its
// memory and CPU are measured apart from the load client's.
type node struct {
	cmd     *exec.Cmd
	dir     string  // scratch directory, removed by stop
	admin   string  // its metrics listener, 127.0.0.1:PORT
	clkTick float64 // USER_HZ, the unit of /proc/PID/stat times: 100 on Linux
}

// waitHealthy polls url until it answers 200, for at most 30 s.
func waitHealthy(c *http.Client, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s did not answer 200 within 30s", url)
}

// usage reads the server's resident memory (bytes) and CPU time used so far.
func (n *node) usage() (rss int64, cpu time.Duration, err error) {
	pid := n.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: memory is read from /proc (Linux only): %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(status)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name; utime and stime are 14 and 15.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, errors.New("bench: unexpected /proc stat format")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	cpu = time.Duration((ut + st) / n.clkTick * float64(time.Second))
	return rss, cpu, nil
}

func (n *node) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(n.dir)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// goStats reads the Go runtime's own view of the server from its metrics:
// goroutines, heap in use and stack in use.
func (n *node) goStats() (goroutines, heap, stack float64, err error) {
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch strings.TrimPrefix(f[0], "wsguard_") {
		case "go_goroutines":
			goroutines = v
		case "go_memstats_heap_inuse_bytes":
			heap = v
		case "go_memstats_stack_inuse_bytes":
			stack = v
		}
	}
	return goroutines, heap, stack, sc.Err()
}

// cpuProfile saves the server's CPU profile over the next d to path.
func (n *node) cpuProfile(path string, d time.Duration) error {
	return n.saveProfile(path, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())))
}

// saveProfile saves one of the server's pprof profiles to path.
func (n *node) saveProfile(path, endpoint string) error {
	resp, err := http.Get("http://" + n.admin + endpoint)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile answered %d", resp.StatusCode)
	}
	f, err := os.Create(path) // #nosec G304 -- the operator's --cpuprofile/--heapprofile path
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// memory is the server's resident memory read as a stable figure: the
// median of several samples, each taken after a forced garbage collection
// (the pprof heap handler runs one with gc=1), and the spread of those
// samples (of the middle ones, from five samples on), which says how far
// the median could be off.
type memory struct {
	median, spread int64   // bytes
	samples        []int64 // bytes, in the order read
}

// sampleMemory forces a collection on every node and reads their RSS,
// summed, samples times, a short pause apart. A first collection, whose
// reading is dropped, lets what came before finish: the first reading
// after a burst of work is still falling as the runtime hands freed pages
// back.
func sampleMemory(ns []*node, samples int) (memory, error) {
	time.Sleep(time.Second)
	for _, n := range ns {
		n.forceGC()
	}
	time.Sleep(time.Second)
	rss := make([]int64, 0, samples)
	for range samples {
		for _, n := range ns {
			n.forceGC()
		}
		time.Sleep(300 * time.Millisecond)
		var sum int64
		for _, n := range ns {
			r, _, err := n.usage()
			if err != nil {
				return memory{}, err
			}
			sum += r
		}
		rss = append(rss, sum)
	}
	sorted := slices.Sorted(slices.Values(rss))
	// The spread of the middle readings: one straggler (RSS still falling
	// as freed pages go back) moves neither the median nor this.
	mid := sorted
	if len(mid) >= 5 {
		mid = mid[1 : len(mid)-1]
	}
	return memory{median: sorted[len(sorted)/2], spread: mid[len(mid)-1] - mid[0], samples: rss}, nil
}

// cpuOf is the CPU time every node has used so far.
func cpuOf(ns []*node) (time.Duration, error) {
	var sum time.Duration
	for _, n := range ns {
		_, cpu, err := n.usage()
		if err != nil {
			return 0, err
		}
		sum += cpu
	}
	return sum, nil
}

// goStatsOf adds up the Go runtime's figures of every node.
func goStatsOf(ns []*node) (goroutines, heap, stack float64, err error) {
	for _, n := range ns {
		g, h, s, err := n.goStats()
		if err != nil {
			return 0, 0, 0, err
		}
		goroutines, heap, stack = goroutines+g, heap+h, stack+s
	}
	return goroutines, heap, stack, nil
}

// backingCPU is the CPU time used so far by the machine's PostgreSQL and
// Redis processes, which a cluster's nodes lean on: a node that does less
// work itself because its store or broker does more must not look cheaper
// for it. A process that exits between two readings takes its share with
// it, which the bench avoids by keeping its connections open throughout.
func backingCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var ticks float64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat") // #nosec G304 -- /proc entries
		if err != nil {
			continue
		}
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open || closing+2 > len(s) {
			continue
		}
		switch s[open+1 : closing] {
		case "postgres", "redis-server":
		default:
			continue
		}
		f := strings.Fields(s[closing+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		ticks += ut + st
	}
	return time.Duration(ticks / 100 * float64(time.Second))
}

// forceGC asks the server for a garbage collection. Both servers serve Go's
// pprof handlers on their admin port (wsguard with admin.pprof on, which
// the bench config sets); gc=1 makes the heap profile collect first.
func (n *node) forceGC() {
	if resp, err := http.Get("http://" + n.admin + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
