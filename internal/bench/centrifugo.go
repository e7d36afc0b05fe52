package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// centrifugoSys drives Centrifugo (v6) over the same wss path, for the
// side-by-side figures: a connection JWT per user (its sub), a subscribe,
// and the same publishers as wsguard's (its HTTP API, or a client socket). Centrifugo's memory engine keeps history in memory
// only; wsguard's every publish is durable on disk, which is the harder
// job.
type centrifugoSys struct {
	nodes   []*node
	hosts   []string // localhost:PORT of each node
	api     string   // http://127.0.0.1:PORT of the first node (internal port: API, metrics, pprof)
	client  string   // the load client's WebSocket library
	dir     string   // what the nodes share, removed by stop
	roots   *x509.CertPool
	tokens  *minter
	http    *http.Client
	channel string
}

const centrifugoAPIKey = "bench-api-key" // #nosec G101 -- a throwaway key for a loopback bench server

// startCentrifugo starts opt.Nodes Centrifugo nodes: one on its memory
// engine, or several sharing the Redis wsguard's cluster uses, as its
// Redis engine (PUB/SUB between nodes, history and presence in Redis).
func startCentrifugo(ctx context.Context, opt Options) (sys *centrifugoSys, err error) {
	if opt.CentrifugoBinary == "" {
		return nil, errors.New("bench: target centrifugo needs --centrifugo PATH (go install github.com/centrifugal/centrifugo/v6@v6.9.1)")
	}
	dir, err := os.MkdirTemp("", "centrifugo-bench-")
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	c := &centrifugoSys{
		dir:    dir,
		client: opt.Client,
		tokens: &minter{secret: secretHex(secret)},
		http:   &http.Client{Timeout: 30 * time.Second},
		// The same channel name grammar both accept; Centrifugo's "room:"
		// would be a namespace needing its own config.
		channel: "bench",
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	certFile, keyFile, roots, err := writeCert(dir)
	if err != nil {
		return nil, err
	}
	c.roots = roots
	ports, internals := make([]int, opt.Nodes), make([]int, opt.Nodes)
	var origins []string
	for i := range opt.Nodes {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
		if internals[i], err = freePort(); err != nil {
			return nil, err
		}
		c.hosts = append(c.hosts, "localhost:"+strconv.Itoa(ports[i]))
		origins = append(origins, "https://"+c.hosts[i])
	}
	var engine map[string]any
	if opt.Nodes > 1 {
		redisURL, err := withPrefix(opt.Redis)
		if err != nil {
			return nil, err
		}
		engine = map[string]any{"type": "redis", "redis": map[string]any{
			"address": []string{"redis://" + redisAddress(redisURL)}, "prefix": redisPrefix(redisURL),
		}}
	}
	for i := range opt.Nodes {
		cfg := map[string]any{
			"http_server": map[string]any{
				"address": "127.0.0.1", "port": ports[i],
				"internal_address": "127.0.0.1", "internal_port": strconv.Itoa(internals[i]),
				"tls": map[string]any{"enabled": true, "cert_pem": certFile, "key_pem": keyFile},
				// TLS on the client port only; the internal port (API, metrics)
				// stays plain HTTP on loopback, like wsguard's admin listener.
				"tls_external": true,
			},
			"log": map[string]any{"level": "error"},
			"client": map[string]any{
				"token":           map[string]any{"hmac_secret_key": string(secretHex(secret))},
				"allowed_origins": origins,
				// The load client reads a socket only from its subscribe on,
				// so a server ping during a long set-up phase (three nodes
				// seating 10,000 users) would go unanswered and Centrifugo
				// would close with 3012 "no pong". wsguard pings with
				// WebSocket ping frames and closes only after 60 s without
				// any input, which the subscribe itself is.
				"ping_interval": "120s",
			},
			"channel": map[string]any{"without_namespace": map[string]any{
				"allow_subscribe_for_client": true, "history_size": 1000, "history_ttl": "300s",
				// For the socket publisher (bench --publisher socket).
				"allow_publish_for_client": true,
			}},
			"http_api":   map[string]any{"key": centrifugoAPIKey},
			"prometheus": map[string]any{"enabled": true},
			"health":     map[string]any{"enabled": true},
			"debug":      map[string]any{"enabled": true},
		}
		if engine != nil {
			cfg["engine"] = engine
		}
		ndir := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		if err := os.Mkdir(ndir, 0o700); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(cfg)
		cfgPath := filepath.Join(ndir, "config.json")
		if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
			return nil, err
		}
		n := &node{dir: ndir, admin: "127.0.0.1:" + strconv.Itoa(internals[i]), clkTick: 100}
		c.nodes = append(c.nodes, n)
		n.cmd = exec.CommandContext(ctx, opt.CentrifugoBinary, "--config", cfgPath) // #nosec G204 -- the operator names the binary to measure
		logf, err := os.Create(filepath.Join(ndir, "centrifugo.log"))               // #nosec G304 -- our own scratch dir
		if err == nil {
			n.cmd.Stdout, n.cmd.Stderr = logf, logf
		}
		if err := n.cmd.Start(); err != nil {
			return nil, err
		}
	}
	c.api = "http://127.0.0.1:" + strconv.Itoa(internals[0])
	for _, n := range c.nodes {
		if err := waitHealthy(c.http, "http://"+n.admin+"/health"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func secretHex(b []byte) []byte { return fmt.Appendf(nil, "%x", b) }

func (c *centrifugoSys) procs() []*node { return c.nodes }

func (c *centrifugoSys) stop() {
	stopAll(c.nodes)
	_ = os.RemoveAll(c.dir)
}

func (c *centrifugoSys) dial(ctx context.Context, i int, user string) (wsConn, error) {
	tok, err := c.tokens.mint(user) // sub is the Centrifugo user
	if err != nil {
		return nil, err
	}
	host := c.hosts[i%len(c.hosts)]
	ws, err := dialWS(ctx, c.client, dialSpec{
		url:    "wss://" + host + "/connection/websocket",
		tls:    &tls.Config{RootCAs: c.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		header: http.Header{"Origin": {"https://" + host}},
	})
	if err != nil {
		return nil, err
	}
	if err := c.command(ctx, ws, 1, `{"id":1,"connect":{"token":"`+tok+`"}}`); err != nil {
		ws.close()
		return nil, fmt.Errorf("centrifugo connect: %w", err)
	}
	return ws, nil
}

func (c *centrifugoSys) subscribe(ctx context.Context, ws wsConn) error {
	return c.command(ctx, ws, 2, `{"id":2,"subscribe":{"channel":"`+c.channel+`"}}`)
}

// command sends one command and waits for the reply with its id.
func (c *centrifugoSys) command(ctx context.Context, ws wsConn, id int, cmd string) error {
	if err := ws.write(ctx, []byte(cmd)); err != nil {
		return err
	}
	for {
		b, err := ws.read(ctx)
		if err != nil {
			return err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var r struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil || r.ID != id {
				continue
			}
			if r.Error != nil {
				return fmt.Errorf("refused: %s", r.Error)
			}
			return nil
		}
	}
}

// publisher returns how the bench publishes: PublishHTTP through the
// server HTTP API, which answers once the publication is in (memory)
// history; PublishSocket with publish commands on a client connection of
// its own, not waiting for each reply.
func (c *centrifugoSys) publisher(ctx context.Context, how string) (func(context.Context, int, []byte) error, error) {
	if how == PublishSocket {
		ws, err := c.dial(ctx, 0, "bench-publisher")
		if err != nil {
			return nil, err
		}
		return socketPublisher(ctx, ws, func(i int, data []byte) []byte {
			// ids 1 and 2 were connect and subscribe; publishes follow.
			return fmt.Appendf(nil, `{"id":%d,"publish":{"channel":%q,"data":%s}}`, i+2, c.channel, data)
		}, func(b []byte) { c.sentAt(ctx, ws, b) }), nil
	}
	return func(ctx context.Context, _ int, data []byte) error {
		body := fmt.Sprintf(`{"channel":%q,"data":%s}`, c.channel, data)
		return apiCall(ctx, c.http, c.api+"/api/publish", body, http.Header{"X-API-Key": {centrifugoAPIKey}})
	}, nil
}

// sentAt reads the publications in a frame (Centrifugo joins several
// replies with newlines) and answers its ping, an empty object, as the
// protocol requires.
func (c *centrifugoSys) sentAt(ctx context.Context, ws wsConn, b []byte) []int64 {
	var out []int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		if string(line) == "{}" {
			_ = ws.write(ctx, []byte("{}"))
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"push":`)) && bytes.Contains(line, []byte(`"pub":`)) {
			if t, ok := stampIn(line); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// selfSigned makes a P-256 certificate for localhost, the same kind of key
// wsguard's dev CA issues, so both servers do the same TLS work.
func selfSigned() (certPEM, keyPEM []byte, roots *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), roots, nil
}
