package metrics

import "github.com/prometheus/client_golang/prometheus"

// Proxy are gateway mode's collectors, each labelled with the upstream
// (its URL without the query), so one dashboard can follow several
// proxies.
type Proxy struct {
	// Connections is the number of open proxied connections.
	Connections *prometheus.GaugeVec
	// Frames counts relayed messages by direction ("in": client to
	// upstream, "out": upstream to client).
	Frames *prometheus.CounterVec
	// Bytes counts relayed payload bytes by direction.
	Bytes *prometheus.CounterVec
	// UpstreamErrors counts upstream failures by kind ("dial": unreachable
	// or refused at the handshake, answered 502; "gone": ended mid-stream,
	// 1014 to the client).
	UpstreamErrors *prometheus.CounterVec
	// Cuts counts proxied connections cut by side and reason (flood,
	// too_big, invalid_utf8, not_json, slow_consumer).
	Cuts *prometheus.CounterVec
}

func newProxy(reg *prometheus.Registry) *Proxy {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "proxy", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "proxy", Name: "connections",
		Help: "Open proxied WebSocket connections, by upstream."}, []string{"upstream"})
	reg.MustRegister(g)
	return &Proxy{
		Connections:    g,
		Frames:         vec("frames_total", "Relayed messages by upstream and direction (in: client to upstream).", "upstream", "direction"),
		Bytes:          vec("bytes_total", "Relayed payload bytes by upstream and direction.", "upstream", "direction"),
		UpstreamErrors: vec("upstream_errors_total", "Upstream failures by upstream and kind (dial, gone).", "upstream", "kind"),
		Cuts:           vec("cuts_total", "Proxied connections cut, by upstream, side and reason.", "upstream", "side", "reason"),
	}
}
