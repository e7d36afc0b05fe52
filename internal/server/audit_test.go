package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wsguard/wsguard/internal/audit"
)

// syncBuffer is a log destination the server's goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAuditRefusesTruncatedLog: while the server runs, someone cuts the
// last lines off its audit log to hide what they did. The server's next
// event does not continue the chain over the cut: the log is set aside as
// found, a new segment starts with an audit.chain_broken event, an error
// is logged and wsguard_audit_chain_broken_total counts it. Events keep
// being recorded, and the new segment verifies against the signed head.
func TestAuditRefusesTruncatedLog(t *testing.T) {
	var logs syncBuffer
	ts := startServerWith(t, nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	refuse := func() { // one handshake.refused event
		t.Helper()
		c, resp, err := ts.dial(nil, "https://evil.example", "wsguard.v1")
		if err == nil {
			c.Close()
			t.Fatal("a foreign origin was let in")
		}
		if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign origin: %v %v", resp, err)
		}
	}
	for range 4 {
		refuse()
	}
	data, err := os.ReadFile(ts.cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) < 5 { // 4 lines and the empty rest
		t.Fatalf("%d audit lines before the cut:\n%s", len(lines)-1, data)
	}
	if got := series(scrape(t, ts), "wsguard_audit_chain_broken_total"); got != 0 {
		t.Fatalf("chain_broken before the cut = %v", got)
	}
	cut := bytes.Join(lines[:2], nil)
	if err := os.WriteFile(ts.cfg.Audit.File, cut, 0o600); err != nil {
		t.Fatal(err)
	}

	refuse()
	refuse()

	if got := series(scrape(t, ts), "wsguard_audit_chain_broken_total"); got != 1 {
		t.Errorf("wsguard_audit_chain_broken_total = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "does not match its key or signed head") {
		t.Errorf("no error logged for the break:\n%s", logs.String())
	}
	aside, _ := filepath.Glob(ts.cfg.Audit.File + ".broken-*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, cut) {
		t.Errorf("the cut log was not kept as found:\n%s", kept)
	}
	data, _ = os.ReadFile(ts.cfg.Audit.File)
	var recs []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r map[string]any
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 || recs[0]["type"] != "audit.chain_broken" || recs[0]["reason"] != "truncated" ||
		recs[1]["type"] != "handshake.refused" || recs[2]["type"] != "handshake.refused" {
		t.Fatalf("new segment:\n%s", data)
	}
	key, err := audit.ReadKey(filepath.Join(ts.cfg.DataDir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := audit.LoadHead(context.Background(), ts.srv.store, key)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := audit.Verify(bytes.NewReader(data), key, &head); err != nil || n != 3 || head.Seq != 3 {
		t.Fatalf("new segment: Verify = %d, %v (head at %d)", n, err, head.Seq)
	}
}
