package check

// ID names one kind of finding. The ids are stable: CI configurations and
// dashboards match on them.
type ID string

// The finding ids, in the order a scan reports them.
const (
	Plaintext     ID = "WS-PLAINTEXT"
	TLSOld        ID = "WS-TLS-OLD"
	Cert          ID = "WS-CERT"
	HSTS          ID = "WS-HSTS"
	OriginForeign ID = "WS-ORIGIN-FOREIGN"
	OriginSibling ID = "WS-ORIGIN-SIBLING"
	OriginNull    ID = "WS-ORIGIN-NULL"
	OriginMissing ID = "WS-ORIGIN-MISSING"
	CredEcho      ID = "WS-CRED-ECHO" // #nosec G101 -- a finding id, not a credential
	Cookie        ID = "WS-COOKIE"
	Size          ID = "WS-SIZE"
	UTF8          ID = "WS-UTF8"
	Deflate       ID = "WS-DEFLATE"
	Rate          ID = "WS-RATE"
	Idle          ID = "WS-IDLE"
)

// Severity orders findings; a report's grade and the --fail-on threshold
// are read from it.
type Severity int

// Severities, lowest first.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

func (s Severity) String() string {
	switch s {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	case Critical:
		return "critical"
	}
	return "unknown"
}

// ParseSeverity reads a --fail-on value.
func ParseSeverity(s string) (Severity, bool) {
	for _, v := range []Severity{Low, Medium, High, Critical} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// MarshalText writes the severity as its name in JSON reports.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// kind is what every finding of one id shares: its severity, title and fix.
type kind struct {
	severity Severity
	title    string
	fix      string
}

// catalog lists every finding the scanner can report. The fixes name the
// setting to change in the servers people most often run.
var catalog = map[ID]kind{
	Plaintext: {High, "the endpoint upgrades without TLS (plain ws://)",
		"Serve WebSockets only over wss://: terminate TLS at the server or its proxy and close the plain port, or let it answer only with a redirect to https:// (nginx: a `listen 80` server block with `return 301 https://$host$request_uri;`). In wsguard, keep `insecure_dev: false`."},
	TLSOld: {High, "TLS 1.0/1.1 or a non-AEAD cipher suite is accepted",
		"Accept TLS 1.2 and 1.3 only, with AEAD suites (AES-GCM, ChaCha20-Poly1305): nginx `ssl_protocols TLSv1.2 TLSv1.3;` and an ECDHE+AESGCM/CHACHA20 `ssl_ciphers`; Go `tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: <AEAD suites>}`; Node `https.createServer({minVersion: 'TLSv1.2', ciphers: ...})`. wsguard's `tls.profile: intermediate` (the default) does this."},
	Cert: {High, "the certificate is invalid, expired, expiring within 14 days or for another name",
		"Serve a certificate for this host name from a CA clients trust, with its full chain, and renew it automatically well before expiry (ACME: certbot, Caddy, or wsguard's `tls.acme_domains`)."},
	HSTS: {Medium, "the HTTPS origin sends no HSTS header, or one with max-age under one year",
		"Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` on every HTTPS response (nginx `add_header Strict-Transport-Security \"max-age=63072000; includeSubDomains\" always;`, Apache `Header always set Strict-Transport-Security ...`). wsguard sends it by default."},
	OriginForeign: {Critical, "a handshake from a foreign Origin succeeds (cross-site WebSocket hijacking)",
		"Check the Origin header against an exact allowlist of your own origins before upgrading, and refuse others with 403: gorilla/websocket `Upgrader.CheckOrigin` (never `return true`), Node ws `verifyClient` or a check of `req.headers.origin` in the `upgrade` handler, Python websockets `serve(..., origins=[\"https://app.example.com\"])`, coder/websocket `AcceptOptions.OriginPatterns`. wsguard: `allowed_origins`."},
	OriginSibling: {High, "a handshake from a sibling origin (same host on another port, or a sibling subdomain) succeeds",
		"Compare the whole origin exactly (scheme, host and port): a host-only, suffix or substring match lets any other port or subdomain of the site, often a less trusted app, open the socket with the user's credential. List each allowed origin in full (gorilla `CheckOrigin`, Node ws `verifyClient`, Python websockets `origins=`)."},
	OriginNull: {High, "a handshake with `Origin: null` succeeds",
		"Refuse `Origin: null`: sandboxed iframes, file:// pages and some redirects send it, so any page can produce it. Do not put `null` (or Python websockets' `None`) in the allowed origins."},
	OriginMissing: {Medium, "a cookie-authenticated handshake with no Origin header succeeds",
		"When the credential is a cookie, refuse a handshake without an Origin header (browsers always send one on WebSocket handshakes); give non-browser clients a token (Authorization header or a one-time ticket) instead of a cookie."},
	CredEcho: {Medium, "a credential sent as a subprotocol is echoed back in Sec-WebSocket-Protocol",
		"Answer Sec-WebSocket-Protocol with the name of the protocol you speak, never with the token offered beside it, which then sits in logs and proxies: gorilla `Upgrader.Subprotocols` listing only protocol names, Node ws `handleProtocols` returning the protocol name, Python websockets `subprotocols=[...]`."},
	Cookie: {Medium, "the credential cookie lacks Secure, HttpOnly or SameSite",
		"Set the session cookie with `Secure; HttpOnly; SameSite=Strict` (or Lax), and prefer the `__Host-` name prefix with `Path=/` and no Domain, so script, plain HTTP and cross-site requests never carry it."},
	Size: {Medium, "a 1 MiB message is accepted",
		"Cap the message size at what the protocol needs (64 KiB is plenty for chat) and close with 1009 past it: gorilla `Conn.SetReadLimit`, Node ws `maxPayload` (default 100 MiB), Python websockets `max_size=` (default 1 MiB), coder/websocket `Conn.SetReadLimit`. wsguard: `limits.max_message_bytes`."},
	UTF8: {Low, "a text frame with invalid UTF-8 is accepted",
		"Validate every text message as UTF-8 and close with 1007 when it is not (gorilla/websocket does not check: call `utf8.Valid` on each text message; Node ws and Python websockets check by default)."},
	Deflate: {Medium, "permessage-deflate is accepted with no cap on the inflated size",
		"Switch permessage-deflate off unless you need it, or cap the size after inflating: gorilla `EnableCompression: false` (its read limit counts compressed bytes), Node ws `perMessageDeflate: false` or a small `maxPayload` (checked after inflating), Python websockets `compression=None` or `max_size=`. wsguard: `compression.max_decompressed`."},
	Rate: {Low, "200 messages in one second are all accepted",
		"Limit messages per connection (a token bucket of a few tens per second is typical) and answer excess with an error or close with 1008; limit per user and per IP as well. wsguard: `limits.messages_per_second`, `limits.message_burst`."},
	Idle: {Low, "a silent connection is still open after 120 s",
		"Ping idle connections and close those that send nothing, pongs included, within a minute or two: gorilla `SetReadDeadline` renewed in a `PongHandler`, Node ws a ping/pong heartbeat calling `ws.terminate()`, Python websockets `ping_interval`/`ping_timeout` (on by default). wsguard: `limits.idle_timeout`."},
}

// order is the order checks run and reports list them.
var order = []ID{Plaintext, TLSOld, Cert, HSTS, OriginForeign, OriginSibling, OriginNull, OriginMissing,
	CredEcho, Cookie, Size, UTF8, Deflate, Rate, Idle}

// Finding is one weakness found, with what showed it and how to fix it.
type Finding struct {
	ID       ID       `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Evidence string   `json:"evidence"`
	Fix      string   `json:"fix"`
}

// Skipped is a check that could not be made, and why.
type Skipped struct {
	ID     ID     `json:"id"`
	Reason string `json:"reason"`
}

func newFinding(id ID, evidence string) Finding {
	k := catalog[id]
	return Finding{ID: id, Severity: k.severity, Title: k.title, Evidence: evidence, Fix: k.fix}
}

// Note is what showed a check passed.
type Note struct {
	ID       ID     `json:"id"`
	Evidence string `json:"evidence"`
}
