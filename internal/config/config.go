package config

import (
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written in YAML as "30s", "15m", "24h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 30s, 15m, 24h)", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Toggle is a setting that is on unless written false: its zero value,
// the key left out, means on.
type Toggle uint8

// Toggle values.
const (
	On  Toggle = 0
	Off Toggle = 1
)

// UnmarshalText accepts true or false.
func (t *Toggle) UnmarshalText(b []byte) error {
	switch string(b) {
	case "true":
		*t = On
	case "false":
		*t = Off
	default:
		return fmt.Errorf("%q is not true or false", string(b))
	}
	return nil
}

// MarshalText writes t as true or false.
func (t Toggle) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t Toggle) String() string {
	if t == Off {
		return "false"
	}
	return "true"
}

// Config is the whole configuration. The zero value is not valid: start from Default.
type Config struct {
	Listen         string   `yaml:"listen"`          // HTTPS/WSS address. Default localhost:8443.
	DataDir        string   `yaml:"data_dir"`        // SQLite database, dev CA, audit log. Default ./wsguard-data.
	PublicURL      string   `yaml:"public_url"`      // The URL browsers use. Default https://<listen host>:<listen port> (localhost for a wildcard host).
	AllowedOrigins []string `yaml:"allowed_origins"` // Exact scheme://host[:port]. Default: the origin of public_url.
	InsecureDev    bool     `yaml:"insecure_dev"`    // Allows plain ws on loopback only; warns at every start. Default false.
	Store          string   `yaml:"store"`           // "" or sqlite:PATH, or postgres://... shared by every node. Default SQLite in data_dir.
	Broker         string   `yaml:"broker"`          // "" or "memory" (in-process, the default), or redis://HOST:6379/N[?prefix=P] / rediss://...
	TrustedProxies []string `yaml:"trusted_proxies"` // CIDRs whose X-Forwarded-* headers are believed. Default none.
	AdminListen    string   `yaml:"admin_listen"`    // Metrics, health and profiles (plain HTTP). Default localhost:9443.
	DrainTimeout   Duration `yaml:"drain_timeout"`   // SIGTERM drain budget. Default 10s.
	// SecretsKeyFile holds the key that seals TOTP secrets in the store.
	// Default <data_dir>/secrets.key, made on first start; with a shared
	// (postgres://) store it must be set, and the same file given to every
	// node: a node never makes its own then, and refuses to start without it.
	SecretsKeyFile string `yaml:"secrets_key_file"`

	Admin       Admin                `yaml:"admin"`
	TLS         TLS                  `yaml:"tls"`
	JWT         JWT                  `yaml:"jwt"`
	Identity    Identity             `yaml:"identity"`
	Limits      Limits               `yaml:"limits"`
	Compression Compression          `yaml:"compression"`
	Namespaces  map[string]Namespace `yaml:"namespaces"`
	Audit       Audit                `yaml:"audit"`
	Log         Log                  `yaml:"log"`
	Hooks       Hooks                `yaml:"hooks"`
	Proxy       Proxy                `yaml:"proxy"`
}

// Proxy configures gateway mode (`wsguard proxy`): every control of serve
// in front of an existing WebSocket backend, which receives the verified
// identity in signed headers. Unused by `wsguard serve`.
type Proxy struct {
	// Upstream is the backend's ws:// or wss:// URL. Required in proxy
	// mode; `wsguard proxy --upstream` sets it.
	Upstream string `yaml:"upstream"`
	// Path is where the proxied WebSocket is served. Default /ws.
	Path string `yaml:"path"`
	// IdentitySecretFile holds the raw secret (at least 32 bytes, one
	// trailing newline ignored) that keys the identity headers' HMAC; the
	// upstream reads the same file. Default <data_dir>/proxy-identity.key,
	// created 0600 with 32 random bytes on first start.
	IdentitySecretFile string `yaml:"identity_secret_file"`
	// UpstreamCAFile is a PEM bundle that wss:// upstream certificates are
	// verified against. Default: the system roots.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// JSONOnly refuses binary frames and text frames that are not one JSON
	// value, both ways. Default false.
	JSONOnly bool `yaml:"json_only"`
}

// Admin configures who the admin listener (admin_listen) answers. It
// has no listen key of its own: admin_listen stays the one address.
type Admin struct {
	// Hosts are extra Host names the admin listener answers, besides the
	// loopback names and IP addresses; any other name is refused (421), so
	// a DNS-rebinding page cannot read it. Default none.
	Hosts []string `yaml:"hosts"`
	// MetricsNetworks are CIDRs whose peers may read /metrics, /healthz and
	// /readyz without a token (Prometheus in a cluster). Judged on the
	// socket peer only. Default none: loopback peers only.
	MetricsNetworks []string `yaml:"metrics_networks"`
	// MetricsTokenFile holds a bearer token that lets any peer read
	// /metrics, /healthz and /readyz. Default none.
	MetricsTokenFile string `yaml:"metrics_token_file"`
	// Pprof serves /debug/pprof/ to loopback peers; a heap profile holds
	// secrets in memory, so it is off unless switched on. Default false.
	Pprof bool `yaml:"pprof"`
}

// TLS configures the listener.
type TLS struct {
	CertFile       string   `yaml:"cert_file"`       // PEM certificate chain; reloaded on change and SIGHUP. Default: dev CA leaf.
	KeyFile        string   `yaml:"key_file"`        // PEM private key.
	Profile        string   `yaml:"profile"`         // intermediate (TLS 1.2+, AEAD) | modern (TLS 1.3 only). Default intermediate.
	ACMEDomains    []string `yaml:"acme_domains"`    // Public host names for ACME certificates.
	RedirectListen string   `yaml:"redirect_listen"` // Optional plain-HTTP listener that only redirects to HTTPS. Default off.
	HSTSPreload    bool     `yaml:"hsts_preload"`    // Adds "preload" to HSTS. Default false.
	ClientCAFile   string   `yaml:"client_ca_file"`  // Optional mutual TLS for the service API.
}

// JWT configures bearer-token verification.
type JWT struct {
	Audience string   `yaml:"audience"`
	Issuer   string   `yaml:"issuer"`
	JWKSURL  string   `yaml:"jwks_url"`
	Keys     []JWTKey `yaml:"keys"`
	Leeway   Duration `yaml:"leeway"` // Clock-skew allowance, at most 60s. Default 5s.
}

// JWTKey is one verification key; its algorithm is fixed.
type JWTKey struct {
	KID           string `yaml:"kid"`
	Alg           string `yaml:"alg"` // HS256 | RS256 | ES256 | EdDSA
	SecretFile    string `yaml:"secret_file"`
	PublicKeyFile string `yaml:"public_key_file"`
}

// Identity configures accounts and sessions.
type Identity struct {
	Require2FA      string   `yaml:"require_2fa"`      // admins | all | none. Default admins.
	SessionIdle     Duration `yaml:"session_idle"`     // Idle lifetime. Default 30m.
	SessionAbsolute Duration `yaml:"session_absolute"` // Absolute lifetime. Default 12h.
	MaxHashing      int      `yaml:"max_hashing"`      // Concurrent argon2id computations. Default 4.
}

// Limits bound what one client can make the server do.
type Limits struct {
	MaxMessageBytes       int64    `yaml:"max_message_bytes"`        // Read limit per message (M1). Default 65536.
	SendQueue             int      `yaml:"send_queue"`               // Outbound frames queued per connection before cutting it (M6). Default 256.
	SendQueueBytes        int      `yaml:"send_queue_bytes"`         // Outbound bytes queued per connection: pushes past it cut, replays are paced to it (M12). Default 1 MiB.
	ReplaysPerUser        int      `yaml:"replays_per_user"`         // Replays and history answers one user may have in progress at once. Default 4.
	MessagesPerSecond     float64  `yaml:"messages_per_second"`      // Per connection (M4). Default 20.
	MessageBurst          int      `yaml:"message_burst"`            // Default 40.
	UserMessagesPerSecond float64  `yaml:"user_messages_per_second"` // Per user across connections. Default 50.
	IPMessagesPerSecond   float64  `yaml:"ip_messages_per_second"`   // Per IP across users. Default 200.
	HandshakesPerSecond   float64  `yaml:"handshakes_per_second"`    // Per IP (M5). Default 10.
	HandshakeBurst        int      `yaml:"handshake_burst"`          // Default 30.
	LoginsPerMinute       float64  `yaml:"logins_per_minute"`        // Per IP. Default 30.
	ConnsPerUser          int      `yaml:"conns_per_user"`           // Default 20.
	ConnsPerIP            int      `yaml:"conns_per_ip"`             // Default 200.
	MaxConns              int      `yaml:"max_conns"`                // Global. Default 100000.
	BanAfterFailures      int      `yaml:"ban_after_failures"`       // Failed origin/credential/validation checks per IP before a ban. Default 50.
	BanDuration           Duration `yaml:"ban_duration"`             // Default 10m.
	ConnLifetime          Duration `yaml:"conn_lifetime"`            // Absolute lifetime of a WebSocket. Default 24h.
	IdleTimeout           Duration `yaml:"idle_timeout"`             // No frame (pong included) for this long closes (M8). Default 60s.
	PingInterval          Duration `yaml:"ping_interval"`            // Default 25s.
	WriteTimeout          Duration `yaml:"write_timeout"`            // Per write (M6). Default 10s.
	HandshakeTimeout      Duration `yaml:"handshake_timeout"`        // TLS handshake and request headers (M7). Default 10s.
}

// Compression configures permessage-deflate. Off by default.
type Compression struct {
	Enabled         bool  `yaml:"enabled"`
	MaxDecompressed int64 `yaml:"max_decompressed"` // Required when enabled; must be >0.
}

// Namespace lists who may do what in channels "<name>:*". Each list holds
// "users" (any signed-in user), "owner" (user:<name> semantics), "role:<r>", "scope" (API keys by scope).
// HistorySize and HistoryTTL bound what the store keeps of each channel.
type Namespace struct {
	Subscribe []string `yaml:"subscribe"`
	Publish   []string `yaml:"publish"`
	History   []string `yaml:"history"`
	Presence  []string `yaml:"presence"`
	// HistorySize is how many messages are kept per channel; older ones
	// are pruned. It bounds the disk a flood into one channel can take.
	// Zero means 1000.
	HistorySize int `yaml:"history_size"`
	// HistoryTTL is how long a message is kept; older ones are pruned
	// (within a minute). Zero means 720h (30 days).
	HistoryTTL Duration `yaml:"history_ttl"`
	// PresencePushes is whether joins and leaves are pushed to the
	// channel's presence holders. A room of thousands may turn them off:
	// presence requests still answer. Nil (unset) means true.
	PresencePushes Toggle `yaml:"presence_pushes"`
}

// PushesPresence reports whether the namespace pushes joins and leaves.
func (n Namespace) PushesPresence() bool { return n.PresencePushes != Off }

// Retention defaults, and the bounds Validate allows.
const (
	DefaultHistorySize = 1000
	DefaultHistoryTTL  = 720 * time.Hour
	MaxHistorySize     = 1_000_000
	MinHistoryTTL      = time.Minute
	MaxHistoryTTL      = 10 * 8760 * time.Hour
)

// Retention returns the namespace's history size and TTL, defaults filled.
func (n Namespace) Retention() (size int, ttl time.Duration) {
	size, ttl = n.HistorySize, n.HistoryTTL.D()
	if size == 0 {
		size = DefaultHistorySize
	}
	if ttl == 0 {
		ttl = DefaultHistoryTTL
	}
	return size, ttl
}

// Audit configures the security event log.
type Audit struct {
	File string `yaml:"file"` // JSON lines, MAC-chained. Default <data_dir>/audit.log.
	// KeyFile holds the key of the log's MACs, made (0600) on first use.
	// Whoever can read it can rewrite the log undetected: keep it out of
	// reach of whoever may edit the log. Default <data_dir>/audit.key.
	KeyFile string `yaml:"key_file"`
}

// SharedStore reports whether store names a database several nodes share
// (PostgreSQL), so that secrets must come from files every node is given.
func (c Config) SharedStore() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// SecretsKeyPath is the sealing key's file: secrets_key_file, or
// secrets.key in data_dir.
func (c Config) SecretsKeyPath() string {
	if c.SecretsKeyFile != "" {
		return c.SecretsKeyFile
	}
	return strings.TrimSuffix(c.DataDir, "/") + "/secrets.key"
}

// Default returns the configuration wsguard runs with when given none.
// Its PublicURL is the one derived from its Listen; Load derives it again
// from whatever listen the file and environment set, unless they set
// public_url themselves.
func Default() Config {
	return Config{
		Listen:       "localhost:8443",
		DataDir:      "./wsguard-data",
		PublicURL:    "https://localhost:8443",
		AdminListen:  "localhost:9443",
		DrainTimeout: Duration(10 * time.Second),
		TLS:          TLS{Profile: "intermediate"},
		Log:          Log{Level: "info"},
		Proxy:        Proxy{Path: "/ws"},
		Hooks:        Hooks{Timeout: Duration(2 * time.Second), EventsQueue: 10000, EventsAttempts: 5},
		JWT:          JWT{Leeway: Duration(5 * time.Second)},
		Identity: Identity{
			Require2FA:      "admins",
			SessionIdle:     Duration(30 * time.Minute),
			SessionAbsolute: Duration(12 * time.Hour),
			MaxHashing:      4,
		},
		Limits: Limits{
			MaxMessageBytes:       64 << 10,
			SendQueue:             256,
			SendQueueBytes:        1 << 20,
			ReplaysPerUser:        4,
			MessagesPerSecond:     20,
			MessageBurst:          40,
			UserMessagesPerSecond: 50,
			IPMessagesPerSecond:   200,
			HandshakesPerSecond:   10,
			HandshakeBurst:        30,
			LoginsPerMinute:       30,
			ConnsPerUser:          20,
			ConnsPerIP:            200,
			MaxConns:              100000,
			BanAfterFailures:      50,
			BanDuration:           Duration(10 * time.Minute),
			ConnLifetime:          Duration(24 * time.Hour),
			IdleTimeout:           Duration(60 * time.Second),
			PingInterval:          Duration(25 * time.Second),
			WriteTimeout:          Duration(10 * time.Second),
			HandshakeTimeout:      Duration(10 * time.Second),
		},
		Namespaces: map[string]Namespace{
			// room honours API key scopes for publish, so a backend key with
			// publish:room:* can post into chat rooms.
			"room": {Subscribe: []string{"users"}, Publish: []string{"users", "scope"}, History: []string{"users"}, Presence: []string{"users"}},
			"user": {Subscribe: []string{"owner"}, Publish: []string{"owner"}, History: []string{"owner"}, Presence: []string{"owner"}},
		},
	}
}
