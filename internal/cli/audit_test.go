package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/audit"
)

// TestAuditVerifyCommand: an attacker who can write the audit log but not
// read its key tampers with it; the operator's `wsguard audit verify`
// exits non-zero naming the first bad line. The honest log verifies.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	env := []string{"WSGUARD_DATA_DIR=" + dir}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb, env)
		return code, out.String(), errb.String()
	}
	// The node's log: ten events through the same path the CLI commands
	// take (key file, store head).
	_, al, closeNode, err := openNode("", env)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		al.Record(audit.Event{Type: "user.disabled", User: fmt.Sprint("user", i)})
	}
	if err := closeNode(); err != nil {
		t.Fatal(err)
	}
	honest, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(honest, []byte("\n"))[:10]
	for _, name := range []string{"audit.log", "audit.key"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", name, err)
		}
	}

	// The attacker's own chain: the same events, written with a key of
	// their own.
	forgedDir := t.TempDir()
	forged, err := audit.Open(filepath.Join(forgedDir, "audit.log"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		forged.Record(audit.Event{Type: "user.disabled", User: fmt.Sprint("user", i)})
	}
	forged.Close()
	rewritten, _ := os.ReadFile(filepath.Join(forgedDir, "audit.log"))

	edit := func(i int, from, to string) []byte {
		ls := make([][]byte, len(lines))
		copy(ls, lines)
		ls[i] = bytes.Replace(ls[i], []byte(from), []byte(to), 1)
		return bytes.Join(ls, nil)
	}
	without := func(i int) []byte {
		return append(bytes.Join(lines[:i], nil), bytes.Join(lines[i+1:], nil)...)
	}
	swapped := func(i int) []byte {
		ls := make([][]byte, len(lines))
		copy(ls, lines)
		ls[i], ls[i+1] = ls[i+1], ls[i]
		return bytes.Join(ls, nil)
	}
	tests := []struct {
		name string
		log  []byte
		want string // "" means the log verifies
	}{
		{"honest log", honest, ""},
		{"edited line", edit(4, "user4", "userX"), "line 5: MAC does not verify"},
		{"deleted line", without(4), "line 5: seq 6, want 5"},
		{"reordered pair", swapped(4), "line 5: seq 6, want 5"},
		{"truncated tail", bytes.Join(lines[:7], nil), "line 8: missing"},
		{"edited last line", edit(9, "user9", "userX"), "line 10: MAC does not verify"},
		{"chain rewritten without the key", rewritten, "line 1: MAC does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(logPath, tt.log, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := run("audit", "verify")
			if tt.want == "" {
				if code != 0 || !strings.Contains(out, "10 lines, MAC chain intact, signed head at line 10") {
					t.Fatalf("exit %d, out %q, err %q", code, out, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, logPath+": "+tt.want) {
				t.Fatalf("exit %d, stderr %q; want it to name %q", code, stderr, tt.want)
			}
		})
	}

	// A copy elsewhere verifies against the key alone, and says that a cut
	// tail could not show there.
	copyPath := filepath.Join(t.TempDir(), "copy.log")
	os.WriteFile(copyPath, bytes.Join(lines[:7], nil), 0o600)
	if code, out, stderr := run("audit", "verify", copyPath, "--key", filepath.Join(dir, "audit.key")); code != 0 || !strings.Contains(out, "7 lines") || !strings.Contains(out, "no signed head") {
		t.Fatalf("copy: exit %d, out %q, err %q", code, out, stderr)
	}
	// Without the key nothing can be verified; the refusal says what to pass.
	if code, _, stderr := run("audit", "verify", copyPath, "--key", filepath.Join(dir, "missing.key")); code != 1 || !strings.Contains(stderr, "--key FILE or audit.key_file") {
		t.Fatalf("missing key: exit %d, err %q", code, stderr)
	}
}

// TestAuditRotateCommand: the operator rotates the log; both files verify
// (the new one against the head) and the next command continues the new
// chain.
func TestAuditRotateCommand(t *testing.T) {
	dir := t.TempDir()
	env := []string{"WSGUARD_DATA_DIR=" + dir}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb, env)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("audit", "rotate"); code != 0 || !strings.Contains(out, "nothing to rotate") {
		t.Fatalf("empty rotate: %d %q", code, out)
	}
	_, al, closeNode, err := openNode("", env)
	if err != nil {
		t.Fatal(err)
	}
	al.Record(audit.Event{Type: "user.disabled", User: "a"})
	closeNode()
	code, out, stderr := run("audit", "rotate")
	if code != 0 || !strings.Contains(out, "audit log moved to "+filepath.Join(dir, "audit.log.")) {
		t.Fatalf("rotate: %d %q %q", code, out, stderr)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "audit.log.2*"))
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v", aside)
	}
	if code, out, stderr := run("audit", "verify", aside[0]); code != 0 || !strings.Contains(out, "1 lines") {
		t.Fatalf("old log: %d %q %q", code, out, stderr)
	}
	if code, out, stderr := run("audit", "verify"); code != 0 || !strings.Contains(out, "1 lines, MAC chain intact, signed head at line 1") {
		t.Fatalf("new log: %d %q %q", code, out, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "audit.log")); !bytes.Contains(b, []byte(`"type":"audit.rotated"`)) {
		t.Fatalf("new log does not start with audit.rotated:\n%s", b)
	}
}
