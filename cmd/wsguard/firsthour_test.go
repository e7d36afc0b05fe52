package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A newcomer sets only the port, inside a pod that Kubernetes filled with
// WSGUARD_PORT and friends for a Service named wsguard: config check and
// serve agree, the setup link is on that port, the first start says what it
// creates, and SIGTERM ends with a line saying what the drain did.
func TestFirstHourOnlyListen(t *testing.T) {
	bin := binary(t)
	wd := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("https://localhost:%d", port)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WSGUARD_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		fmt.Sprintf("WSGUARD_LISTEN=localhost:%d", port),
		fmt.Sprintf("WSGUARD_ADMIN_LISTEN=127.0.0.1:%d", adminPort),
		"WSGUARD_PORT=tcp://10.96.0.12:8443",
		"WSGUARD_PORT_8443_TCP_ADDR=10.96.0.12",
		"WSGUARD_SERVICE_HOST=10.96.0.12",
		"WSGUARD_SERVICE_PORT=8443",
	)
	exitCode := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, wd
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := exitCode("--help"); code != 0 || !strings.Contains(out, "Usage:") {
		t.Errorf("wsguard --help: exit %d\n%s", code, out)
	}
	if code, out := exitCode("serve", "--help"); code != 0 || !strings.Contains(out, "wsguard serve") {
		t.Errorf("wsguard serve --help: exit %d\n%s", code, out)
	}
	if code, out := exitCode("serve", "--no-such-flag"); code != 2 {
		t.Errorf("wsguard serve --no-such-flag: exit %d, want 2\n%s", code, out)
	}
	if code, out := exitCode("config", "check"); code != 0 || !strings.Contains(out, "public_url "+base) {
		t.Fatalf("wsguard config check: exit %d, want ok with public_url %s\n%s", code, base, out)
	}

	srv := startServe(t, bin, env, wd)
	setupURL := srv.setupURL
	if !strings.HasPrefix(setupURL, base+"/setup?token=") {
		t.Errorf("setup URL %q is not on the listen port (%s)", setupURL, base)
	}
	for _, want := range []string{"first start: creating a development CA", "first start: creating the database"} {
		if !strings.Contains(srv.stderr.String(), want) {
			t.Errorf("start log lacks %q", want)
		}
	}
	srv.terminate(20 * time.Second)
	lines := strings.Split(strings.TrimSpace(srv.stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, `"msg":"wsguard stopped"`) || !strings.Contains(last, `"sockets_drained":0`) || !strings.Contains(last, `"took":`) {
		t.Errorf("last log line %q; want the drain summary", last)
	}
}
