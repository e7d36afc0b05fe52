package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// unitKeys reads a systemd unit file: each key of the [Service] section
// with every value it is given, in order.
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path) // #nosec G304 -- a file of this repository
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case section == "Service":
			k, v, _ := strings.Cut(line, "=")
			keys[k] = append(keys[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// systemdAnalyze returns the path of systemd-analyze, or fails the test
// saying what to install: the unit is never left unchecked.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is required to check deploy/wsguard.service: install systemd (Debian: sudo apt-get install systemd; scripts/test.sh does)")
	}
	return p
}

// TestSystemdUnitVerifies: systemd's own checker accepts the unit with no
// complaint at all (it only warns, exit status 0, on unknown keys and bad
// values, so any output fails the test). ExecStart is pointed at a binary
// built as the image builds it, since verify checks that it exists.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	bin := staticBinary(t)
	b, err := os.ReadFile("wsguard.service")
	if err != nil {
		t.Fatal(err)
	}
	const installed = "/usr/local/bin/wsguard"
	if !strings.Contains(string(b), "ExecStart="+installed+" ") {
		t.Fatalf("wsguard.service: ExecStart does not run %s", installed)
	}
	unit := filepath.Join(t.TempDir(), "wsguard.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), installed, bin)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput() // #nosec G204 -- our own temporary unit
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify wsguard.service: %v\n%s", err, out)
	}
	// The sandbox as systemd scores it: "OK" is below 2.0 on its scale of
	// 10 (the threshold is in tenths). A key removed by mistake shows here.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput() // #nosec G204 -- our own temporary unit
	if err != nil {
		t.Errorf("systemd-analyze security wsguard.service: exposure above 2.0 (%v)\n%s", err, out)
	}

	// The bad-unit side: a misspelt sandboxing key is what verify must
	// catch, or the check above proves nothing.
	bad := filepath.Join(t.TempDir(), "wsguard.service")
	misspelt := strings.ReplaceAll(string(b), "ProtectSystem=strict", "ProtectSytem=strict")
	if err := os.WriteFile(bad, []byte(strings.ReplaceAll(misspelt, installed, bin)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput() // #nosec G204 -- our own temporary unit
	if !strings.Contains(string(out), "ProtectSytem") {
		t.Errorf("systemd-analyze verify did not flag a misspelt key:\n%s", out)
	}
}

// TestSystemdUnitSandbox: the keys that confine the service are there with
// the values that confine it, and stopping leaves the drain its time.
func TestSystemdUnitSandbox(t *testing.T) {
	keys := unitKeys(t, "wsguard.service")
	want := map[string]string{
		"User":                    "wsguard",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"StateDirectory":          "wsguard",
		"ReadWritePaths":          "/var/lib/wsguard",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"UMask":                   "0077",
		"MemoryDenyWriteExecute":  "yes",
	}
	for k, v := range want {
		if got := keys[k]; len(got) != 1 || got[0] != v {
			t.Errorf("wsguard.service %s=%q, want %q", k, got, v)
		}
	}
	if f := keys["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("wsguard.service SystemCallFilter=%q: want @system-service first", f)
	}
	// Capabilities: none, or exactly the one that binds a port below 1024.
	bound, ambient := keys["CapabilityBoundingSet"], keys["AmbientCapabilities"]
	switch {
	case len(bound) == 1 && bound[0] == "":
	case len(bound) == 1 && bound[0] == "CAP_NET_BIND_SERVICE" && len(ambient) == 1 && ambient[0] == "CAP_NET_BIND_SERVICE":
	default:
		t.Errorf("wsguard.service CapabilityBoundingSet=%q AmbientCapabilities=%q: want empty, or CAP_NET_BIND_SERVICE in both", bound, ambient)
	}
	if n := keys["LimitNOFILE"]; len(n) != 1 || len(n[0]) < 6 {
		t.Errorf("wsguard.service LimitNOFILE=%q: want at least 100000 (one descriptor per socket)", n)
	}

	// ExecStart's config is deploy/wsguard.yaml: valid, its data_dir the
	// StateDirectory, and its drain shorter than TimeoutStopSec.
	cfg, err := config.LoadValid("wsguard.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/wsguard" {
		t.Errorf("wsguard.yaml data_dir %q, want the unit's StateDirectory /var/lib/wsguard", cfg.DataDir)
	}
	stop, err := time.ParseDuration(keys["TimeoutStopSec"][0])
	if err != nil {
		t.Fatalf("wsguard.service TimeoutStopSec: %v", err)
	}
	if stop <= cfg.DrainTimeout.D()+5*time.Second {
		t.Errorf("wsguard.service TimeoutStopSec=%v: want more than drain_timeout (%v) plus 5s, or systemd kills the drain", stop, cfg.DrainTimeout.D())
	}
	if !strings.Contains(strings.Join(keys["ExecStart"], ""), "--config /etc/wsguard/wsguard.yaml") {
		t.Errorf("wsguard.service ExecStart=%q: want --config /etc/wsguard/wsguard.yaml", keys["ExecStart"])
	}
}
