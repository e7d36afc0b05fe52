package metrics_test

import (
	"net/http"

	"github.com/wsguard/wsguard/internal/metrics"
)

func ExampleLoopbackOnly() {
	m := metrics.New()
	m.Handshakes.WithLabelValues("accepted").Inc()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.LoopbackOnly(m.Handler()))
	_ = mux // serve on the admin listener
}
