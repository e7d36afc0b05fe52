package check

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// startProcessServer runs a server that prints its port on stdout and
// stops when its stdin closes, and returns ws://127.0.0.1:PORT/.
func startProcessServer(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...) // #nosec G204 -- test servers from testdata
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatalf("%s printed no port; stderr: %s", name, stderr.String())
		}
		return "ws://127.0.0.1:" + p + "/"
	case <-time.After(20 * time.Second):
		t.Fatalf("%s printed no port within 20 s; stderr: %s", name, stderr.String())
	}
	return ""
}

// interopOpts scans a server nobody here wrote as a site with a cookie
// session would: the cookie makes the missing-Origin check apply.
func interopOpts(target string) Options {
	return Options{Target: target, Cookies: []string{"session=0123456789abcdef"}, Message: "hello"}
}

func wantFindings(t *testing.T, rep *Report, want []ID) {
	t.Helper()
	got := ids(rep.Findings)
	if !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v\n%s", got, want, dump(rep))
	}
	t.Logf("%s", dump(rep))
}

// TestScanPythonWebsockets scans Debian's python3-websockets (10.4) echo
// server on its defaults: it checks no Origin unless given origins=, and
// its max_size default (1 MiB) admits a message of exactly 1 MiB; it
// validates UTF-8 and caps inflated messages at max_size.
func TestScanPythonWebsockets(t *testing.T) {
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import websockets").CombinedOutput(); err != nil { // #nosec G204 -- a fixed command
		t.Fatalf("%s cannot import websockets (install python3-websockets: apt-get install python3-websockets): %v %s", py, err, out)
	}
	target := startProcessServer(t, py, filepath.Join("testdata", "python_echo.py"))
	rep := runScan(t, interopOpts(target))
	wantFindings(t, rep, []ID{Plaintext, OriginForeign, OriginSibling, OriginNull, OriginMissing, Size, Rate})
}

// TestScanNodeWS scans an echo server on the defaults of the npm package
// ws: no Origin check unless verifyClient is set, maxPayload 100 MiB,
// permessage-deflate off, UTF-8 validated.
func TestScanNodeWS(t *testing.T) {
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		t.Fatalf("run npm ci in %s (scripts/test.sh does): %v", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("install Node.js 20 or later: %v", err)
	}
	target := startProcessServer(t, node, filepath.Join(dir, "server.js"))
	rep := runScan(t, interopOpts(target))
	wantFindings(t, rep, []ID{Plaintext, OriginForeign, OriginSibling, OriginNull, OriginMissing, Size, Rate})
}

// TestScanIdle: with Slow, a socket that sends nothing (not even pongs) is
// held open for IdleWait. A server that closes it passes; Node ws, which
// has no idle timeout of its own, keeps it.
func TestScanIdle(t *testing.T) {
	ts := startTestServer(t, weakness{idle: 500 * time.Millisecond})
	opt := ts.scanOpts()
	opt.Slow, opt.IdleWait = true, 2*time.Second
	rep := runScan(t, opt)
	if len(rep.Findings) != 0 || !slices.Contains(rep.Passed, Idle) {
		t.Fatalf("a server closing idle sockets: want WS-IDLE passed\n%s", dump(rep))
	}

	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		t.Fatalf("run npm ci in %s (scripts/test.sh does): %v", dir, err)
	}
	opt = interopOpts(startProcessServer(t, "node", filepath.Join(dir, "server.js")))
	opt.Slow, opt.IdleWait = true, time.Second
	if rep := runScan(t, opt); !rep.Has(Idle) {
		t.Fatalf("Node ws keeps silent sockets: want WS-IDLE\n%s", dump(rep))
	}
}
