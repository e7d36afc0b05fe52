package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "wsguard"

// latencyBuckets span 100 µs to 5 s, about three per decade.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5,
}

// Metrics are wsguard's collectors, registered on their own registry.
type Metrics struct {
	// Connections is the number of open WebSocket connections.
	Connections prometheus.Gauge
	// Handshakes counts WebSocket handshakes by outcome
	// ("accepted", "refused", "upgrade_failed").
	Handshakes *prometheus.CounterVec
	// Refusals counts refused handshakes and forms by reason.
	Refusals *prometheus.CounterVec
	// MessagesIn counts client frames received.
	MessagesIn prometheus.Counter
	// MessagesOut counts pushes delivered to connections.
	MessagesOut prometheus.Counter
	// DeliveryLatency observes seconds from commit to hand-off to a
	// connection's queue.
	DeliveryLatency prometheus.Histogram
	// QueueDrops counts frames dropped because a send queue was full.
	QueueDrops prometheus.Counter
	// SlowConsumerCuts counts connections closed for not reading (4008).
	SlowConsumerCuts prometheus.Counter
	// RateLimited counts refusals by the limit that refused
	// ("connection", "user", "ip", "handshake", "login").
	RateLimited *prometheus.CounterVec
	// Logins counts sign-in attempts by outcome
	// ("ok", "failed", "throttled", "busy").
	Logins *prometheus.CounterVec
	// StoreCommit observes seconds per store commit.
	StoreCommit prometheus.Histogram
	// InsecureSettings is 1 for each weakening setting that is on, so that
	// an alert can fire on any series of it.
	InsecureSettings *prometheus.GaugeVec
	// Bans counts IP bans started.
	Bans prometheus.Counter
	// AuditWriteErrors counts audit records that failed to be written
	// (wire audit.Options.OnError to its Inc).
	AuditWriteErrors prometheus.Counter
	// AuditChainBroken counts audit logs found not to match their key or
	// signed head (truncated, edited, replaced), each set aside for a new
	// chain (wire audit.Options.OnBreak to its Inc).
	AuditChainBroken prometheus.Counter
	// Proxy are gateway mode's collectors (wsguard_proxy_*).
	Proxy *Proxy

	reg *prometheus.Registry
}

// New builds the collectors on a fresh private registry, together with the
// Go runtime and process collectors (go_*, process_*) and
// wsguard_build_info. Each call is independent.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg:         reg,
		Connections: f.gauge("connections", "Open WebSocket connections."),
		Handshakes: f.counterVec("handshakes_total",
			"WebSocket handshakes by outcome.", "outcome"),
		Refusals: f.counterVec("refusals_total",
			"Refused handshakes and requests by reason.", "reason"),
		MessagesIn:  f.counter("messages_in_total", "Client frames received."),
		MessagesOut: f.counter("messages_out_total", "Pushes delivered to connections."),
		DeliveryLatency: f.histogram("delivery_latency_seconds",
			"Seconds from a message's commit to its hand-off to a connection."),
		QueueDrops: f.counter("queue_drops_total",
			"Frames dropped because a connection's send queue was full."),
		SlowConsumerCuts: f.counter("slow_consumer_cuts_total",
			"Connections cut because they did not read fast enough."),
		RateLimited: f.counterVec("rate_limited_total",
			"Requests refused by a rate limit, by limit.", "limit"),
		Logins: f.counterVec("logins_total", "Sign-in attempts by outcome.", "outcome"),
		StoreCommit: f.histogram("store_commit_seconds",
			"Seconds per store commit."),
		InsecureSettings: f.gaugeVec("insecure_settings",
			"1 for each security-weakening setting that is switched on.", "setting"),
		Bans: f.counter("bans_total", "Temporary IP bans started."),
		AuditWriteErrors: f.counter("audit_write_errors_total",
			"Audit records that could not be written durably."),
		AuditChainBroken: f.counter("audit_chain_broken_total",
			"Audit logs found tampered with or cut short, set aside for a new chain."),
	}
	m.Proxy = newProxy(reg)
	// Runtime and process collectors under their standard, unprefixed
	// names (go_goroutines, process_open_fds, ...): stock dashboards and
	// alerts query exactly these.
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(debug.ReadBuildInfo()),
	)
	return m
}

// buildInfo is wsguard_build_info, always 1, labelled with what was built:
// the module version ("(devel)" for a build from a checkout), the VCS
// revision ("unknown" when the build recorded none, as with
// -buildvcs=false) and the Go version. Joining on it tells which build
// produced any other series.
func buildInfo(bi *debug.BuildInfo, ok bool) prometheus.Collector {
	version, revision, goVersion := "unknown", "unknown", runtime.Version()
	if ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels say which build of wsguard is running.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"revision":  revision,
			"goversion": goVersion,
		},
	}, func() float64 { return 1 })
}

// Registry returns the private registry, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. Wrap it
// in an access check (the server uses package admin; LoopbackOnly is the
// simplest).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // self-instrumentation of scrape errors
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// factory registers each collector as it is made.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, []string{label})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help, label string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, []string{label})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: latencyBuckets})
	f.reg.MustRegister(h)
	return h
}
