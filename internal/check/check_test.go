package check

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// scanOpts are the options a user of the test server gives: its CA, its
// session cookie, its origin.
func (ts *testServer) scanOpts() Options {
	return Options{
		Target:       ts.url,
		Origin:       ts.origin,
		Cookies:      []string{testCookie + "=" + testSecret},
		Subprotocols: []string{"app.v1"},
		Roots:        ts.roots,
		Message:      "hello",
	}
}

func runScan(t *testing.T, opt Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, opt)
	if err != nil {
		t.Fatalf("Run(%s): %v", opt.Target, err)
	}
	return rep
}

func ids(fs []Finding) []ID {
	var out []ID
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func dump(r *Report) string {
	var b strings.Builder
	_ = r.WriteTextVerbose(&b, false)
	return b.String()
}

// TestScanWeakServers runs the scanner against a server with every
// defence (nothing to report), then against one weak server per finding,
// each showing exactly its own.
func TestScanWeakServers(t *testing.T) {
	cases := []struct {
		name string
		weak weakness
		opt  func(*Options)
		want []ID
	}{
		{name: "strong", want: nil},
		{name: "any origin", weak: weakness{anyOrigin: true}, want: []ID{OriginForeign, OriginSibling, OriginNull, OriginMissing}},
		{name: "plain ws", weak: weakness{plain: true}, want: []ID{Plaintext}},
		{name: "echoed credential", weak: weakness{echoProto: true},
			opt:  func(o *Options) { o.Subprotocols = []string{"x-token.0123456789abcdef", "app.v1"} },
			want: []ID{CredEcho}},
		{name: "no read limit", weak: weakness{noReadLimit: true}, want: []ID{Size}},
		{name: "deflate", weak: weakness{deflate: true}, want: []ID{Deflate}},
		{name: "TLS 1.0", weak: weakness{tlsMin: 0x0301}, want: []ID{TLSOld}},
		{name: "no HSTS", weak: weakness{noHSTS: true}, want: []ID{HSTS}},
		{name: "loose cookie", weak: weakness{looseCookie: true}, want: []ID{Cookie}},
		{name: "expired certificate", weak: weakness{expiredCert: true}, want: []ID{Cert}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startTestServer(t, tc.weak)
			opt := ts.scanOpts()
			if tc.opt != nil {
				tc.opt(&opt)
			}
			rep := runScan(t, opt)
			if got := ids(rep.Findings); !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v\n%s", got, tc.want, dump(rep))
			}
			for _, f := range rep.Findings {
				if f.Evidence == "" || f.Fix == "" || f.Title == "" {
					t.Errorf("%s: evidence, fix and title must all be set: %+v", f.ID, f)
				}
			}
			// Every check either passed, found or said why it could not run.
			if n := len(rep.Findings) + len(rep.Passed) + len(rep.Skipped); n != len(order) {
				t.Errorf("%d outcomes for %d checks\n%s", n, len(order), dump(rep))
			}
			for _, s := range rep.Skipped {
				if s.Reason == "" {
					t.Errorf("%s skipped without a reason", s.ID)
				}
			}
			t.Logf("%s", dump(rep))
		})
	}
}
