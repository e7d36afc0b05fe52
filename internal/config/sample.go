package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// sample is the file `wsguard config init` writes: every key at its
// default, each with a comment saying what it does. Keys whose default is
// derived from another key are written empty, which keeps them derived.
// TestSampleIsDefaults loads it back and compares it with Default, and
// checks that every key appears, so it cannot drift from the code.
const sample = `# wsguard configuration: every key at its default.
# WSGUARD_<KEY> environment variables override this file (nested keys joined
# by _, e.g. WSGUARD_TLS_CERT_FILE). Check it with: wsguard config check FILE
# Reference: docs/CONFIG.md

# HTTPS/WSS address to listen on.
listen: localhost:8443
# SQLite database, development CA, audit log and keys live here (made 0700).
data_dir: ./wsguard-data
# The URL browsers use. Empty: https://<listen host>:<listen port>
# (localhost when listen has no host or a wildcard one).
public_url: ""
# Exact scheme://host[:port] origins allowed to open WebSockets.
# Empty: the origin of public_url.
allowed_origins: []
# Allows plain ws:// on loopback for development; warns at every start.
insecure_dev: false
# Empty for SQLite in data_dir, sqlite:PATH, or postgres://USER@HOST:5432/DB?sslmode=verify-full
# for a database every node shares.
store: ""
# Empty or memory: in-process. redis://HOST:6379/N[?prefix=P] (or rediss://)
# joins a cluster: every node on one Redis and one shared store.
broker: ""
# CIDRs whose X-Forwarded-* headers are believed (your reverse proxies).
trusted_proxies: []
# Metrics, health and (opt-in) profiles, plain HTTP. Empty turns it off.
admin_listen: localhost:9443
# How long SIGTERM waits for live sockets to move elsewhere.
drain_timeout: 10s
# The key that seals TOTP secrets in the store. Empty: <data_dir>/secrets.key,
# made on first start. With a postgres:// store it must be set, to a file given
# to every node (32 random bytes in base64); a node then never makes its own.
secrets_key_file: ""

admin:
  # Extra Host names the admin listener answers besides loopback names and IPs.
  hosts: []
  # CIDRs whose peers may read /metrics, /healthz, /readyz without a token.
  metrics_networks: []
  # File holding a bearer token that lets any peer read metrics and health.
  metrics_token_file: ""
  # Serve /debug/pprof/ to loopback peers (a heap profile holds secrets).
  pprof: false

tls:
  # PEM certificate chain and key; reloaded on change and SIGHUP.
  # Both empty (and no acme_domains): a development CA in data_dir/tls,
  # valid for localhost, 127.0.0.0/8 and ::1 only.
  cert_file: ""
  key_file: ""
  # intermediate (TLS 1.2+, AEAD ciphers) or modern (TLS 1.3 only).
  profile: intermediate
  # Public host names to get ACME (Let's Encrypt) certificates for.
  acme_domains: []
  # Optional plain-HTTP listener that only redirects to HTTPS.
  redirect_listen: ""
  # Add "preload" to the HSTS header.
  hsts_preload: false
  # CA bundle for mutual TLS on the service API.
  client_ca_file: ""

jwt:
  # Both required as soon as a key or jwks_url is set.
  audience: ""
  issuer: ""
  # https URL of a JWKS document.
  jwks_url: ""
  # Verification keys: - {kid: k1, alg: HS256|RS256|ES256|EdDSA, secret_file: F | public_key_file: F}
  keys: []
  # Clock-skew allowance, at most 60s.
  leeway: 5s

identity:
  # Who must use two-factor: admins, all or none.
  require_2fa: admins
  # A session ends after this long idle, and after session_absolute in any case.
  session_idle: 30m
  session_absolute: 12h
  # Concurrent argon2id password hashes.
  max_hashing: 4

limits:
  max_message_bytes: 65536        # read limit per message
  send_queue: 256                 # outbound frames queued per connection before it is cut
  send_queue_bytes: 1048576       # outbound bytes queued per connection
  replays_per_user: 4             # replays and history answers in progress per user
  messages_per_second: 20         # per connection
  message_burst: 40
  user_messages_per_second: 50    # per user across connections
  ip_messages_per_second: 200     # per IP across users
  handshakes_per_second: 10       # per IP
  handshake_burst: 30
  logins_per_minute: 30           # per IP
  conns_per_user: 20
  conns_per_ip: 200
  max_conns: 100000               # whole node
  ban_after_failures: 50          # failed origin, credential or validation checks per IP before a ban
  ban_duration: 10m
  conn_lifetime: 24h              # absolute lifetime of a WebSocket
  idle_timeout: 60s               # no frame (pong included) for this long closes
  ping_interval: 25s
  write_timeout: 10s
  handshake_timeout: 10s          # TLS handshake and request headers

compression:
  # permessage-deflate; max_decompressed (bytes, > 0) is required when enabled.
  enabled: false
  max_decompressed: 0

# Who may do what in channels "<namespace>:*": users (any signed-in user),
# owner (user:<name> is that user's), role:<r>, scope (API keys by scope).
# history_size (messages kept per channel) and history_ttl bound history;
# 0 means the defaults, 1000 messages and 720h. presence_pushes: false
# stops join/leave pushes (presence requests still answer), for rooms too
# big for them.
namespaces:
  room:
    subscribe: [users]
    publish: [users, scope]
    history: [users]
    presence: [users]
    history_size: 0
    history_ttl: 0s
    presence_pushes: true
  user:
    subscribe: [owner]
    publish: [owner]
    history: [owner]
    presence: [owner]
    history_size: 0
    history_ttl: 0s
    presence_pushes: true

audit:
  # JSON lines, MAC-chained. Empty: <data_dir>/audit.log.
  file: ""
  # Key of the log's MACs, made 0600 on first use. Empty: <data_dir>/audit.key.
  key_file: ""

# The application's backend in the loop (docs/CLIENTS.md, "Backend hooks").
# connect, subscribe, publish: URLs asked, signed, before each decision;
# no answer within timeout means no. events: URL told of joins, leaves and
# connection ends (retried, never blocking delivery). Empty: off.
hooks:
  connect: ""
  subscribe: ""
  publish: ""
  events: ""
  secret_file: ""                 # HMAC-SHA256 key, >= 32 bytes; required with any hook
  timeout: 2s                     # 100ms to 30s
  allow_loopback_http: false      # http:// to loopback only; warns at every start
  events_queue: 10000             # webhooks waiting; full drops the oldest
  events_attempts: 5              # tries per webhook, with backoff

# The server's own log, JSON lines on standard error (not the audit log).
log:
  # Least severe level written: debug, info, warn or error.
  level: info

# Gateway mode (wsguard proxy): the same sign-in, handshake checks and
# frame limits in front of an existing WebSocket backend.
proxy:
  # The backend, ws:// or wss://; wsguard proxy --upstream sets it.
  upstream: ""
  # Where the proxied socket is served.
  path: /ws
  # Secret (>= 32 bytes) keying the X-Wsguard-Signature header; the
  # backend reads the same file. Empty: <data_dir>/proxy-identity.key.
  identity_secret_file: ""
  # PEM bundle verifying a wss:// backend. Empty: the system roots.
  upstream_ca_file: ""
  # Only JSON text frames, one value each, both ways.
  json_only: false
`

// Sample returns the commented config `wsguard config init` writes.
func Sample() []byte { return []byte(sample) }

// WriteSample writes Sample to path (0600: a config may later hold
// secrets' paths and the operator's choices). An existing file is kept
// unless force is set: init must never eat a config someone edited.
func WriteSample(path string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600) // #nosec G304 -- the file the operator named
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; not overwritten (pass --force to replace it with the defaults)", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(Sample())
	return errors.Join(err, f.Close())
}
