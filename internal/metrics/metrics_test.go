package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestCollectors(t *testing.T) {
	m := New()
	m.Handshakes.WithLabelValues("accepted").Inc()
	m.Handshakes.WithLabelValues("refused").Add(2)
	m.Connections.Inc()
	m.Connections.Inc()
	m.Connections.Dec()
	m.InsecureSettings.WithLabelValues("insecure_dev").Set(1)
	m.DeliveryLatency.Observe(0.0002)
	m.DeliveryLatency.Observe(3)

	if got := testutil.ToFloat64(m.Handshakes.WithLabelValues("refused")); got != 2 {
		t.Fatalf("refused handshakes = %v", got)
	}
	if got := testutil.ToFloat64(m.Connections); got != 1 {
		t.Fatalf("connections = %v", got)
	}
	want := `
# HELP wsguard_insecure_settings 1 for each security-weakening setting that is switched on.
# TYPE wsguard_insecure_settings gauge
wsguard_insecure_settings{setting="insecure_dev"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "wsguard_insecure_settings"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.DeliveryLatency); n != 1 {
		t.Fatalf("histogram series = %d", n)
	}
	// Two instances never collide (no global registry).
	m2 := New()
	if got := testutil.ToFloat64(m2.Connections); got != 0 {
		t.Fatalf("second instance shares state: %v", got)
	}
}

func TestNamesPrefixed(t *testing.T) {
	m := New()
	m.Logins.WithLabelValues("ok").Inc()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 10 {
		t.Fatalf("only %d metric families", len(mfs))
	}
	// wsguard's own series carry its prefix; the runtime and process ones
	// keep their standard names.
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "wsguard_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %q is neither wsguard_, go_ nor process_", name)
		}
	}
	// Nothing leaked onto the global registry.
	if err := prometheus.DefaultRegisterer.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "wsguard_bans_total"})); err != nil {
		t.Fatalf("global registry holds wsguard metrics: %v", err)
	}
}

// TestStandardRuntimeNames: the names stock Go and process dashboards
// query are there as they are spelled everywhere else, not under a prefix,
// and wsguard_build_info says which build is running.
func TestStandardRuntimeNames(t *testing.T) {
	m := New()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	want := []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds", "go_info", "wsguard_build_info"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes", "process_start_time_seconds")
	}
	for _, name := range want {
		if byName[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for name := range byName {
		if strings.HasPrefix(name, "wsguard_go_") || strings.HasPrefix(name, "wsguard_process_") {
			t.Errorf("%s: runtime metric under the wsguard_ prefix", name)
		}
	}
	bi := byName["wsguard_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 {
		t.Fatalf("wsguard_build_info: want one series, got %v", bi)
	}
	s := bi.GetMetric()[0]
	if v := s.GetGauge().GetValue(); v != 1 {
		t.Errorf("wsguard_build_info = %v, want 1", v)
	}
	labels := map[string]string{}
	for _, l := range s.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	for _, k := range []string{"version", "revision", "goversion"} {
		if labels[k] == "" {
			t.Errorf("wsguard_build_info has no %s label: %v", k, labels)
		}
	}
	if labels["goversion"] != runtime.Version() {
		t.Errorf("goversion = %q, want %q", labels["goversion"], runtime.Version())
	}
}

// TestBuildInfoLabels: the revision comes from the VCS stamp when the
// build has one, and is "unknown" (never empty) when it has none.
func TestBuildInfoLabels(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"}}}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"stamped", stamped, true, `wsguard_build_info{goversion="go1.99.1",revision="0123abcd",version="v1.2.3"} 1`},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}}, true,
			`wsguard_build_info{goversion="go1.99.1",revision="unknown",version="(devel)"} 1`},
		{"no build info", nil, false, `wsguard_build_info{goversion="` + runtime.Version() + `",revision="unknown",version="unknown"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(buildInfo(tt.bi, tt.ok))
			want := "# HELP wsguard_build_info Always 1; the labels say which build of wsguard is running.\n# TYPE wsguard_build_info gauge\n" + tt.want + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wsguard_build_info"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoopbackOnly(t *testing.T) {
	m := New()
	m.Bans.Inc()
	h := LoopbackOnly(m.Handler())
	tests := []struct {
		remote string
		xff    string
		want   int
	}{
		{"127.0.0.1:5000", "", 200},
		{"127.8.9.10:5000", "", 200},
		{"[::1]:5000", "", 200},
		{"[::ffff:127.0.0.1]:5000", "", 200},
		{"192.0.2.1:5000", "", 403},
		{"192.0.2.1:5000", "127.0.0.1", 403}, // forwarding headers are ignored
		{"[2001:db8::1]:5000", "", 403},
		{"[fe80::1%lo]:5000", "", 403},
		{"0.0.0.0:5000", "", 403},
		{"localhost:5000", "", 403},
		{"", "", 403},
		{"garbage", "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			body := w.Body.String()
			if tt.want == 200 && !strings.Contains(body, "wsguard_bans_total 1") {
				t.Fatalf("metrics missing:\n%.300s", body)
			}
			if tt.want == 403 && strings.Contains(body, "wsguard_") {
				t.Fatal("metrics leaked to a remote peer")
			}
		})
	}
}

func TestHandlerOverLoopbackServer(t *testing.T) {
	m := New()
	srv := httptest.NewServer(LoopbackOnly(m.Handler())) // listens on 127.0.0.1:0
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "wsguard_connections 0") {
		t.Fatalf("status %d body %.200s", resp.StatusCode, b)
	}
}
