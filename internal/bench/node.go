package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// node is a wsguard server running as a child process, so that its memory
// and CPU are measured apart from the load client's.
type node struct {
	cmd     *exec.Cmd
	dir     string
	host    string // localhost:PORT
	admin   string // the metrics listener, 127.0.0.1:PORT
	env     []string
	bin     string
	roots   *x509.CertPool
	clkTick float64 // USER_HZ, the unit of /proc/PID/stat times: 100 on Linux
}

// benchConfig is the server config for a run. Every control stays on (TLS,
// Origin, session + CSRF, read limit, bounded queues, durable publishes);
// only the caps that a single load client on one IP and one user would hit
// are raised, because the bench deliberately is that client.
const benchConfig = `listen: 127.0.0.1:%d
public_url: https://localhost:%d
data_dir: %s
admin_listen: 127.0.0.1:%d
limits:
  conns_per_user: %d
  conns_per_ip: %d
  handshakes_per_second: 1000000
  handshake_burst: 1000000
  messages_per_second: 100000
  message_burst: 100000
  user_messages_per_second: 100000
  ip_messages_per_second: 100000
`

func startNode(ctx context.Context, bin string, conns int) (*node, error) {
	dir, err := os.MkdirTemp("", "wsguard-bench-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "wsguard.yaml")
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(benchConfig, port, port, filepath.Join(dir, "data"), adminPort, conns+10, conns+10)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	n := &node{dir: dir, host: "localhost:" + strconv.Itoa(port), admin: "127.0.0.1:" + strconv.Itoa(adminPort), bin: bin, clkTick: 100,
		env: append(os.Environ(), "WSGUARD_CONFIG="+cfgPath)}
	n.cmd = exec.CommandContext(ctx, bin, "serve")
	n.cmd.Env = n.env
	n.cmd.Stdout, n.cmd.Stderr = nil, nil
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pem, err := os.ReadFile(filepath.Join(dir, "data", "tls", "ca.pem")); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				n.roots = pool
				c := n.httpClient(nil)
				if resp, err := c.Get("https://" + n.host + "/healthz"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return n, nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, errors.New("bench: the server did not become healthy within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) run(stdin string, args ...string) error {
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("wsguard %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n *node) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: n.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func (n *node) httpClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: n.tlsConfig(), DialContext: (&net.Dialer{}).DialContext,
			ForceAttemptHTTP2: false},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
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
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
