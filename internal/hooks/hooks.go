package hooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/internal/authz"
)

// Options configure the hooks. An empty URL switches that hook off.
type Options struct {
	Connect, Subscribe, Publish, Events string
	// Secret signs every request (at least MinSecret bytes).
	Secret []byte
	// Timeout bounds one decision request. Zero means 2 s.
	Timeout time.Duration
	// QueueSize bounds the webhook events waiting. Zero means 10000.
	QueueSize int
	// Attempts is how many times a webhook is tried. Zero means 5.
	Attempts int
	// Backoff is the wait before the first retry; it doubles per retry, up
	// to 30 s, with jitter. Zero means 500 ms.
	Backoff time.Duration
	// MaxData bounds amended publish data, as limits.max_message_bytes
	// bounds a client's. Zero means 64 KiB.
	MaxData int
	// Client sends the requests; nil means one with TLS 1.2 or later, no
	// redirects followed and no proxy.
	Client *http.Client
	// Registerer receives the hooks' metrics; nil means none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// ErrUnavailable wraps every failure to get a clear answer (timeout,
// transport error, bad status, malformed answer): the decision is no,
// but the client may retry later.
var ErrUnavailable = errors.New("backend hook unavailable")

// maxAnswer bounds an answer's size besides MaxData.
const maxAnswer = 16 << 10

// Hooks calls the backend. Its methods are safe for concurrent use.
type Hooks struct {
	o      Options
	client *http.Client
	log    *slog.Logger

	calls     *prometheus.CounterVec // by hook and outcome
	webhooks  *prometheus.CounterVec // by outcome
	dropped   prometheus.Counter
	droppedN  atomic.Int64
	queueSize prometheus.GaugeFunc

	mu     sync.Mutex
	queue  []Event // ring: head index, count n
	head   int
	n      int
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// New validates the options and returns hooks ready to use; call Start
// for webhook delivery.
func New(o Options) (*Hooks, error) {
	if len(o.Secret) < MinSecret {
		return nil, fmt.Errorf("hooks: secret holds %d bytes; at least %d random bytes are needed", len(o.Secret), MinSecret)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxData <= 0 {
		o.MaxData = 64 << 10
	}
	h := &Hooks{o: o, client: o.Client, log: o.Logger,
		queue: make([]Event, o.QueueSize), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if h.client == nil {
		h.client = &http.Client{
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: 32,
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect is not an answer: the decision fails closed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wsguard", Name: "hook_requests_total",
		Help: "Decision hook requests by hook and outcome (allow, deny, error)."}, []string{"hook", "outcome"})
	h.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wsguard", Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome (delivered, retry, failed)."}, []string{"outcome"})
	h.dropped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "wsguard", Name: "webhook_dropped_total",
		Help: "Webhook events dropped because the queue was full (oldest first)."})
	h.queueSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "wsguard", Name: "webhook_queue",
		Help: "Webhook events waiting for delivery."}, func() float64 { return float64(h.Queued()) })
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{h.calls, h.webhooks, h.dropped, h.queueSize} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("hooks: metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Dropped returns how many webhook events were dropped (for tests and logs).
func (h *Hooks) Dropped() int64 {
	return h.droppedN.Load()
}

// ConnectRequest is what the connect hook is told of a new connection.
type ConnectRequest struct {
	Hook   string   `json:"hook"` // "connect"
	User   string   `json:"user"`
	Kind   string   `json:"kind"` // session, ticket, jwt or apikey
	Roles  []string `json:"roles"`
	IP     string   `json:"ip"`
	Origin string   `json:"origin,omitempty"`
}

// ConnectAnswer is the connect hook's answer: Allow, and roles to add for
// this connection.
type ConnectAnswer struct {
	Allow  bool     `json:"allow"`
	Roles  []string `json:"roles,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// Enabled reports whether a decision hook is set ("connect", "subscribe",
// "publish") or webhooks are ("events").
func (h *Hooks) Enabled(hook string) bool {
	if h == nil {
		return false
	}
	switch hook {
	case "connect":
		return h.o.Connect != ""
	case "subscribe":
		return h.o.Subscribe != ""
	case "publish":
		return h.o.Publish != ""
	case "events":
		return h.o.Events != ""
	}
	return false
}

// Connect asks whether to allow a connection. With the hook off it allows
// and adds nothing. A no returns an error wrapping authz.ErrForbidden; no
// clear answer, one wrapping ErrUnavailable.
func (h *Hooks) Connect(ctx context.Context, req ConnectRequest) ([]string, error) {
	if !h.Enabled("connect") {
		return nil, nil
	}
	req.Hook = "connect"
	if req.Roles == nil {
		req.Roles = []string{}
	}
	var ans struct {
		Allow  *bool    `json:"allow"`
		Roles  []string `json:"roles"`
		Reason string   `json:"reason"`
	}
	if err := h.ask(ctx, "connect", h.o.Connect, req, &ans); err != nil {
		return nil, err
	}
	if ans.Allow == nil {
		return nil, h.unclear("connect", "the answer has no allow field")
	}
	if !*ans.Allow {
		h.calls.WithLabelValues("connect", "deny").Inc()
		return nil, fmt.Errorf("%w: the application refused the connection", authz.ErrForbidden)
	}
	if len(ans.Roles) > 64 {
		return nil, h.unclear("connect", "more than 64 roles")
	}
	for _, r := range ans.Roles {
		if !authz.ValidRole(r) {
			return nil, h.unclear("connect", fmt.Sprintf("role %q is not a role name (1 to 64 of A-Z a-z 0-9 _ . -)", truncate(r, 64)))
		}
	}
	h.calls.WithLabelValues("connect", "allow").Inc()
	return ans.Roles, nil
}

// Subscribe asks whether user may subscribe to channel.
func (h *Hooks) Subscribe(ctx context.Context, user, channel string) error {
	if !h.Enabled("subscribe") {
		return nil
	}
	var ans struct {
		Allow *bool `json:"allow"`
	}
	body := map[string]any{"hook": "subscribe", "user": user, "channel": channel}
	if err := h.ask(ctx, "subscribe", h.o.Subscribe, body, &ans); err != nil {
		return err
	}
	return h.verdict("subscribe", ans.Allow)
}

// Publish asks whether user may publish data to channel, and returns the
// data to store: the backend's amended data when its answer has "data",
// else data unchanged.
func (h *Hooks) Publish(ctx context.Context, user, channel string, data json.RawMessage) (json.RawMessage, error) {
	if !h.Enabled("publish") {
		return data, nil
	}
	var ans struct {
		Allow *bool           `json:"allow"`
		Data  json.RawMessage `json:"data"`
	}
	body := map[string]any{"hook": "publish", "user": user, "channel": channel, "data": data}
	if err := h.ask(ctx, "publish", h.o.Publish, body, &ans); err != nil {
		return nil, err
	}
	if err := h.verdict("publish", ans.Allow); err != nil {
		return nil, err
	}
	if len(ans.Data) == 0 {
		return data, nil
	}
	switch {
	case string(ans.Data) == "null":
		return nil, h.unclear("publish", "amended data is null")
	case len(ans.Data) > h.o.MaxData:
		return nil, h.unclear("publish", fmt.Sprintf("amended data is %d bytes, over %d", len(ans.Data), h.o.MaxData))
	case depth(ans.Data) > 32:
		return nil, h.unclear("publish", "amended data nests deeper than 32")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ans.Data); err != nil {
		return nil, h.unclear("publish", "amended data is not JSON")
	}
	return compact.Bytes(), nil
}

func (h *Hooks) verdict(hook string, allow *bool) error {
	if allow == nil {
		return h.unclear(hook, "the answer has no allow field")
	}
	if !*allow {
		h.calls.WithLabelValues(hook, "deny").Inc()
		return fmt.Errorf("%w: the application refused the %s", authz.ErrForbidden, hook)
	}
	h.calls.WithLabelValues(hook, "allow").Inc()
	return nil
}

func (h *Hooks) unclear(hook, why string) error {
	h.calls.WithLabelValues(hook, "error").Inc()
	h.log.Warn("backend hook answer refused", "hook", hook, "why", why)
	return fmt.Errorf("%w: %s hook: %s", ErrUnavailable, hook, why)
}

// ask posts body, signed, and decodes a 200 JSON answer into out.
func (h *Hooks) ask(ctx context.Context, hook, url string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return h.unclear(hook, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	resp, err := h.post(ctx, url, hook, "", b)
	if err != nil {
		return h.unclear(hook, "no answer: "+err.Error())
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxAnswer+h.o.MaxData)+1))
	if err != nil {
		return h.unclear(hook, "answer unreadable: "+err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return h.unclear(hook, fmt.Sprintf("status %d (want 200 with a JSON answer)", resp.StatusCode))
	}
	if len(ans) > maxAnswer+h.o.MaxData {
		return h.unclear(hook, "answer too large")
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return h.unclear(hook, "answer is not a JSON object of the expected shape")
	}
	return nil
}

func (h *Hooks) post(ctx context.Context, url, hook, delivery string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wsguard-hooks")
	req.Header.Set("Wsguard-Hook", hook)
	if delivery != "" {
		req.Header.Set("Wsguard-Delivery", delivery)
	}
	req.Header.Set(SignatureHeader, Sign(h.o.Secret, body, time.Now()))
	return h.client.Do(req) // #nosec G107 G704 -- the operator's configured hook URL, never a client's
}

// depth returns how deeply b's arrays and objects nest.
func depth(b []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func newDeliveryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
