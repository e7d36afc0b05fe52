package check

import (
	"strings"
	"testing"
)

// TestScanStaysWithinBudget counts, on the server's side, the connections,
// bytes and frames a full scan sends to an endpoint that accepts
// everything (so that every probe runs to its end), and holds them to the
// documented budget and to what the report says it sent.
func TestScanStaysWithinBudget(t *testing.T) {
	ts := startTestServer(t, weakness{anyOrigin: true, noReadLimit: true, deflate: true, noRateLimit: true})
	opt := ts.scanOpts()
	opt.Subprotocols = []string{"app.v1", "x-token.0123456789abcdef"}
	rep := runScan(t, opt)
	conns, bytes, frames := ts.count.get()
	t.Logf("server counted %d connections, %d bytes, %d frames; report says %+v\n%s", conns, bytes, frames, rep.Sent, dump(rep))
	b := DefaultBudget
	if conns > b.Connections || bytes > b.Bytes || frames > b.Frames {
		t.Fatalf("sent %d connections, %d bytes, %d frames; budget %+v", conns, bytes, frames, b)
	}
	if conns != rep.Sent.Connections || bytes > rep.Sent.Bytes || frames > rep.Sent.Frames { // a last close may be written and never read
		t.Errorf("the server counted %d connections, %d bytes, %d frames; the report says %+v", conns, bytes, frames, rep.Sent)
	}
	// Every message probe ran: the largest ones were sent.
	for _, id := range []ID{Size, Deflate, Rate} {
		if !rep.Has(id) {
			t.Errorf("%s not found on an endpoint that accepts everything\n%s", id, dump(rep))
		}
	}
	if frames < rateProbe {
		t.Errorf("%d frames: the rate probe alone sends %d", frames, rateProbe)
	}
}

// TestScanBudgetSpentIsSkipped: a budget too small for a probe leaves that
// check "not checked" with the reason, never passed, and is never crossed.
func TestScanBudgetSpentIsSkipped(t *testing.T) {
	ts := startTestServer(t, weakness{noRateLimit: true})
	opt := ts.scanOpts()
	opt.Budget = Budget{Connections: 32, Frames: 60, Bytes: 512 << 10}
	rep := runScan(t, opt)
	conns, bytes, frames := ts.count.get()
	if conns > opt.Budget.Connections || bytes > opt.Budget.Bytes || frames > opt.Budget.Frames {
		t.Fatalf("sent %d connections, %d bytes, %d frames; budget %+v", conns, bytes, frames, opt.Budget)
	}
	reasons := map[ID]string{}
	for _, s := range rep.Skipped {
		reasons[s.ID] = s.Reason
	}
	for _, id := range []ID{Size, Rate} { // 1 MiB over 512 KiB; 200 frames over 60
		if !strings.Contains(reasons[id], "budget") {
			t.Errorf("%s: want not checked for the budget, got %q\n%s", id, reasons[id], dump(rep))
		}
	}
}
