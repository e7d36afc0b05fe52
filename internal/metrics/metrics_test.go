package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "wsguard_") {
			t.Errorf("metric %q lacks the wsguard_ prefix", mf.GetName())
		}
	}
	// Nothing leaked onto the global registry.
	if err := prometheus.DefaultRegisterer.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "wsguard_bans_total"})); err != nil {
		t.Fatalf("global registry holds wsguard metrics: %v", err)
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
