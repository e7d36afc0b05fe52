package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const benchChannel = "room:bench"

// Who the bench's credentials say they come from: the tokens the load
// client mints carry this issuer and audience, as an app's backend's would.
const (
	benchIssuer   = "https://bench.wsguard.invalid"
	benchAudience = "wsguard-bench"
)

// wsguardConfig is the server config for a run. Every control stays on
// (TLS, Origin, credential check, read limit, bounded queues, durable
// publishes); only the caps that a single load client on one IP would hit
// are raised, because the bench deliberately is that client. Subscribers
// authenticate with JWTs the client signs (HS256), the path a non-browser
// program or an app's backend takes; the service API publishes with an
// API key, which the room namespace admits by scope. A cluster run adds
// clusterConfig.
const wsguardConfig = `listen: 127.0.0.1:%d
public_url: https://localhost:%d
data_dir: %s
admin_listen: 127.0.0.1:%d
admin:
  pprof: true
jwt:
  audience: ` + benchAudience + `
  issuer: ` + benchIssuer + `
  keys:
    - {kid: bench, alg: HS256, secret_file: %s}
namespaces:
  room: {subscribe: [users], publish: [users, scope], history: [users], presence: [users]}
limits:
  conns_per_user: %d
  conns_per_ip: %d
  handshakes_per_second: 1000000
  handshake_burst: 1000000
  messages_per_second: 100000
  message_burst: 100000
  user_messages_per_second: 100000
  ip_messages_per_second: 100000
`

// clusterConfig is what every node of a cluster run shares, as a
// deployment behind a load balancer would: the store, the broker, the
// sealing key, one certificate, and every node's origin.
const clusterConfig = `store: %s
broker: %s
secrets_key_file: %s
tls: {cert_file: %s, key_file: %s}
allowed_origins: [%s]
`

// wsguardSys drives wsguard nodes: subscribers dial with a bearer JWT of
// their own user, the publisher uses the service API or a socket of the
// first node.
type wsguardSys struct {
	nodes  []*node
	hosts  []string // localhost:PORT of each node
	client string   // the load client's WebSocket library
	dir    string   // what the nodes share, removed by stop
	roots  *x509.CertPool
	tokens *minter
	apiKey string
	http   *http.Client
	dropDB func() // a cluster run's database, dropped by stop
}

func startWSGuard(ctx context.Context, opt Options) (sys *wsguardSys, err error) {
	dir, err := os.MkdirTemp("", "wsguard-bench-")
	if err != nil {
		return nil, err
	}
	w := &wsguardSys{client: opt.Client, dir: dir}
	defer func() {
		if err != nil {
			w.stop()
		}
	}()
	// The secret is hex text, so that no byte of it is the trailing
	// newline the server would strip from the file.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secret = secretHex(secret)
	secretPath := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		return nil, err
	}
	w.tokens = &minter{secret: secret, kid: "bench", issuer: benchIssuer, audience: benchAudience}
	ports, admins := make([]int, opt.Nodes), make([]int, opt.Nodes)
	var origins []string
	for i := range opt.Nodes {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
		if admins[i], err = freePort(); err != nil {
			return nil, err
		}
		w.hosts = append(w.hosts, "localhost:"+strconv.Itoa(ports[i]))
		origins = append(origins, "https://"+w.hosts[i])
	}
	shared := ""
	if opt.Nodes > 1 {
		if shared, err = w.prepareCluster(ctx, opt, origins); err != nil {
			return nil, err
		}
	}
	conns := opt.Conns + 1
	var env0 []string
	for i := range opt.Nodes {
		ndir := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		if err := os.Mkdir(ndir, 0o700); err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(ndir, "wsguard.yaml")
		cfg := fmt.Sprintf(wsguardConfig, ports[i], ports[i], filepath.Join(ndir, "data"), admins[i], secretPath, conns+10, conns+10) + shared
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		env := append(os.Environ(), "WSGUARD_CONFIG="+cfgPath)
		if i == 0 {
			env0 = env
		}
		n := &node{dir: ndir, admin: "127.0.0.1:" + strconv.Itoa(admins[i]), clkTick: 100}
		w.nodes = append(w.nodes, n)
		n.cmd = exec.CommandContext(ctx, opt.Binary, "serve") // #nosec G204 -- this same binary, the bench's own child
		n.cmd.Env = env
		logf, err := os.Create(filepath.Join(ndir, "wsguard.log")) // #nosec G304 -- our own scratch dir
		if err == nil {
			n.cmd.Stdout, n.cmd.Stderr = logf, logf
		}
		if err := n.cmd.Start(); err != nil {
			return nil, err
		}
	}
	if w.roots == nil { // one node: it makes its dev CA on first start
		if err := w.waitCA(filepath.Join(dir, "node1", "data", "tls", "ca.pem")); err != nil {
			return nil, err
		}
	}
	w.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: w.tlsConfig()}}
	for _, h := range w.hosts {
		if err := waitHealthy(w.http, "https://"+h+"/healthz"); err != nil {
			return nil, err
		}
	}
	add := exec.Command(opt.Binary, "apikey", "add", "bench", "--scope", "publish:room:*") // #nosec G204 -- this same binary
	add.Env = env0
	out, err := add.Output()
	if err != nil {
		return nil, fmt.Errorf("bench: apikey add: %w: %s", err, out)
	}
	w.apiKey = strings.TrimSpace(string(out))
	return w, nil
}

// prepareCluster makes what a cluster's nodes share: a database of the
// run's own (dropped by stop), a Redis key prefix of its own, a sealing
// key and one certificate for localhost. It returns their config lines.
func (w *wsguardSys) prepareCluster(ctx context.Context, opt Options, origins []string) (string, error) {
	dbURL, drop, err := createDatabase(ctx, opt.Postgres)
	if err != nil {
		return "", err
	}
	w.dropDB = drop
	redisURL, err := withPrefix(opt.Redis)
	if err != nil {
		return "", err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyPath := filepath.Join(w.dir, "secrets.key")
	if err := os.WriteFile(keyPath, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", err
	}
	certFile, keyFile, roots, err := writeCert(w.dir)
	if err != nil {
		return "", err
	}
	w.roots = roots
	return fmt.Sprintf(clusterConfig, dbURL, redisURL, keyPath, certFile, keyFile, strings.Join(origins, ", ")), nil
}

// waitCA waits for the dev CA the server writes on first start.
func (w *wsguardSys) waitCA(path string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		pem, err := os.ReadFile(path) // #nosec G304 -- the CA the child server wrote in our scratch dir
		if err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				w.roots = pool
				return nil
			}
		}
	}
	return errors.New("bench: the server wrote no dev CA within 30s")
}

func (w *wsguardSys) procs() []*node { return w.nodes }

func (w *wsguardSys) stop() {
	stopAll(w.nodes)
	if w.dropDB != nil {
		w.dropDB()
	}
	_ = os.RemoveAll(w.dir)
}

func (w *wsguardSys) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: w.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func (w *wsguardSys) dial(ctx context.Context, i int, user string) (wsConn, error) {
	tok, err := w.tokens.mint(user)
	if err != nil {
		return nil, err
	}
	host := w.hosts[i%len(w.hosts)]
	return dialWS(ctx, w.client, dialSpec{
		url:       "wss://" + host + "/ws",
		tls:       w.tlsConfig(),
		header:    http.Header{"Origin": {"https://" + host}, "Authorization": {"Bearer " + tok}},
		protocols: []string{"wsguard.v1"},
	})
}

func (w *wsguardSys) subscribe(ctx context.Context, ws wsConn) error {
	if err := ws.write(ctx, []byte(`{"id":1,"op":"subscribe","channel":"`+benchChannel+`"}`)); err != nil {
		return err
	}
	for { // skip presence pushes until the answer
		b, err := ws.read(ctx)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(b, []byte(`{"push"`)) {
			continue
		}
		if !bytes.Contains(b, []byte(`"ok":true`)) {
			return fmt.Errorf("subscribe refused: %s", b)
		}
		return nil
	}
}

// publisher returns how the bench publishes. PublishHTTP makes one call to
// the service API at a time, each answered once the message is durable;
// PublishSocket writes publish frames on a socket of its own without
// waiting for their answers, which a reader checks.
func (w *wsguardSys) publisher(ctx context.Context, how string) (func(context.Context, int, []byte) error, error) {
	if how == PublishSocket {
		ws, err := w.dial(ctx, 0, "bench-publisher")
		if err != nil {
			return nil, err
		}
		return socketPublisher(ctx, ws, func(i int, data []byte) []byte {
			return fmt.Appendf(nil, `{"id":%d,"op":"publish","channel":"%s","data":%s}`, i, benchChannel, data)
		}, func([]byte) {}), nil
	}
	url := "https://" + w.hosts[0] + "/api/v1/publish"
	return func(ctx context.Context, _ int, data []byte) error {
		body := fmt.Sprintf(`{"channel":%q,"data":%s}`, benchChannel, data)
		return apiCall(ctx, w.http, url, body, http.Header{"Authorization": {"Bearer " + w.apiKey}})
	}, nil
}

// sentAt reads the publisher's timestamp from a message push. The load
// client shares the cores with the server, so it looks for the one field
// it needs rather than decoding the whole frame.
func (w *wsguardSys) sentAt(_ context.Context, _ wsConn, b []byte) []int64 {
	if !bytes.HasPrefix(b, []byte(`{"push":"message"`)) {
		return nil // a presence push or other frame
	}
	if t, ok := stampIn(b); ok {
		return []int64{t}
	}
	return nil
}

// stampIn finds the "t":<nanoseconds> the bench publisher put in data.
func stampIn(b []byte) (int64, bool) {
	i := bytes.Index(b, []byte(`"t":`))
	if i < 0 {
		return 0, false
	}
	var t int64
	for _, c := range b[i+4:] {
		if c < '0' || c > '9' {
			break
		}
		t = t*10 + int64(c-'0')
	}
	return t, t > 0
}
