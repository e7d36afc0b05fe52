package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// plainEcho is a gorilla echo server over plain ws:// with gorilla's
// default same-host Origin check and no read limit.
func plainEcho(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil || ws.WriteMessage(typ, data) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func TestCheckUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check"}, "one URL"},
		{[]string{"check", "wss://a/ws", "wss://b/ws"}, "one URL"},
		{[]string{"check", "https://example.com/ws"}, "ws:// or wss://"},
		{[]string{"check", "wss://example.com/ws", "--fail-on", "severe"}, "critical, high, medium or low"},
		{[]string{"check", "wss://example.com/ws", "--header", "no colon"}, "Name: value"},
		{[]string{"check", "wss://example.com/ws", "--header", "Origin: https://x"}, "--origin"},
		{[]string{"check", "wss://example.com/ws", "--cookie", "novalue"}, "NAME=VALUE"},
		{[]string{"check", "wss://example.com/ws", "--origin", "example.com"}, "scheme://host"},
		{[]string{"check", "wss://example.com/ws", "--ca", notPEM}, "no PEM certificate"},
		{[]string{"check", "wss://example.com/ws", "--bogus"}, "bogus"},
	} {
		code, _, stderr := run(nil, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestCheckUnreachableExits2(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	srv.Close() // nothing listens there now
	code, stdout, stderr := run(nil, "check", url)
	if code != exitUsage || !strings.Contains(stderr, "unreachable") || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and unreachable", code, stdout, stderr)
	}
	// A handshake refused with the given credential is as unreachable:
	// nothing can be compared with it.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	code, _, stderr = run(nil, "check", "ws"+strings.TrimPrefix(refusing.URL, "http")+"/ws")
	if code != exitUsage || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--cookie") {
		t.Fatalf("exit %d, stderr %q; want 2, the 401 and a hint", code, stderr)
	}
}

// TestCheckJSONAndFailOn: the JSON report has the documented shape, and
// the exit code follows --fail-on.
func TestCheckJSONAndFailOn(t *testing.T) {
	url := plainEcho(t)
	code, stdout, stderr := run(nil, "check", url, "--json", "--message", "hi")
	if code != exitError {
		t.Fatalf("exit %d, want 1 (WS-PLAINTEXT is high)\n%s%s", code, stdout, stderr)
	}
	var rep struct {
		Target   string `json:"target"`
		Grade    string `json:"grade"`
		Findings []struct {
			ID, Severity, Title, Evidence, Fix string
		} `json:"findings"`
		Passed  []string                      `json:"passed"`
		Skipped []struct{ ID, Reason string } `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if rep.Target != url || rep.Grade != "C" || len(rep.Findings) == 0 || rep.Findings[0].ID != "WS-PLAINTEXT" || rep.Findings[0].Severity != "high" || rep.Findings[0].Fix == "" {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(stdout, `"passed": [`) || !strings.Contains(stdout, "WS-ORIGIN-FOREIGN") {
		t.Errorf("gorilla's default Origin check should pass WS-ORIGIN-FOREIGN:\n%s", stdout)
	}
	code, stdout, _ = run(nil, "check", url, "--fail-on", "critical", "--message", "hi")
	if code != exitOK || !strings.Contains(stdout, "HIGH") || strings.Contains(stdout, "\x1b[") {
		t.Errorf("--fail-on critical: exit %d, want 0, a plain (uncoloured) report:\n%s", code, stdout)
	}
}
