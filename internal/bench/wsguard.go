package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
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
// API key, which the room namespace admits by scope.
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

// wsguardSys drives a wsguard node: subscribers dial with a bearer JWT of
// their own user, the publisher uses the service API or a socket.
type wsguardSys struct {
	n      *node
	client string // the load client's WebSocket library
	host   string // localhost:PORT
	roots  *x509.CertPool
	tokens *minter
	apiKey string
	http   *http.Client
}

func startWSGuard(ctx context.Context, bin, client string, conns int) (*wsguardSys, error) {
	dir, err := os.MkdirTemp("", "wsguard-bench-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	// The secret is hex text, so that no byte of it is the trailing
	// newline the server would strip from the file.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	secret = secretHex(secret)
	secretPath := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "wsguard.yaml")
	cfg := fmt.Sprintf(wsguardConfig, port, port, filepath.Join(dir, "data"), adminPort, secretPath, conns+10, conns+10)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "WSGUARD_CONFIG="+cfgPath)
	w := &wsguardSys{host: "localhost:" + strconv.Itoa(port), client: client,
		n:      &node{dir: dir, admin: "127.0.0.1:" + strconv.Itoa(adminPort), clkTick: 100},
		tokens: &minter{secret: secret, kid: "bench", issuer: benchIssuer, audience: benchAudience},
	}
	w.n.cmd = exec.CommandContext(ctx, bin, "serve")
	w.n.cmd.Env = env
	logf, err := os.Create(filepath.Join(dir, "wsguard.log")) // #nosec G304 -- our own scratch dir
	if err == nil {
		w.n.cmd.Stdout, w.n.cmd.Stderr = logf, logf
	}
	if err := w.n.cmd.Start(); err != nil {
		return nil, err
	}
	if err := w.waitCA(filepath.Join(dir, "data", "tls", "ca.pem")); err != nil {
		w.stop()
		return nil, err
	}
	w.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: w.tlsConfig()}}
	if err := waitHealthy(w.http, "https://"+w.host+"/healthz"); err != nil {
		w.stop()
		return nil, err
	}
	add := exec.Command(bin, "apikey", "add", "bench", "--scope", "publish:room:*") // #nosec G204 -- this same binary
	add.Env = env
	out, err := add.Output()
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("bench: apikey add: %w: %s", err, out)
	}
	w.apiKey = strings.TrimSpace(string(out))
	return w, nil
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

func (w *wsguardSys) proc() *node { return w.n }
func (w *wsguardSys) stop()       { w.n.stop() }

func (w *wsguardSys) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: w.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func (w *wsguardSys) dial(ctx context.Context, user string) (wsConn, error) {
	tok, err := w.tokens.mint(user)
	if err != nil {
		return nil, err
	}
	return dialWS(ctx, w.client, dialSpec{
		url:       "wss://" + w.host + "/ws",
		tls:       w.tlsConfig(),
		header:    http.Header{"Origin": {"https://" + w.host}, "Authorization": {"Bearer " + tok}},
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
		ws, err := w.dial(ctx, "bench-publisher")
		if err != nil {
			return nil, err
		}
		return socketPublisher(ctx, ws, func(i int, data []byte) []byte {
			return fmt.Appendf(nil, `{"id":%d,"op":"publish","channel":"%s","data":%s}`, i, benchChannel, data)
		}, func([]byte) {}), nil
	}
	url := "https://" + w.host + "/api/v1/publish"
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
