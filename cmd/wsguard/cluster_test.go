package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/broker/brokertest"
	"github.com/wsguard/wsguard/internal/store/pgtest"
)

// The cluster test runs three real `wsguard serve` processes as one
// cluster: one PostgreSQL database made for the test (dropped after), one
// Redis under a prefix of its own, one sealing key file and one TLS
// certificate that all three present, as a deployment behind a load
// balancer would. The client trusts that certificate and talks to each
// node on its own port.

const clusterPassword = "correct horse battery staple"

type clusterNode struct {
	name  string
	port  int
	admin int
	env   []string
	cmd   *exec.Cmd
	log   *syncBuf
	done  chan struct{}
	base  string // https://localhost:PORT
	roots *x509.CertPool
}

type cluster struct {
	bin   string
	nodes []*clusterNode
	roots *x509.CertPool
}

// newCluster prepares n nodes sharing store, broker, key and certificate,
// on the machine's test PostgreSQL and Redis.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)     // fails saying what to install when PostgreSQL is missing
	redisURL := brokertest.RedisURL(t) // likewise for Redis; a prefix of this test's own
	return newClusterOn(t, n, dbURL, redisURL)
}

// newClusterOn prepares n nodes on the store dbURL and the broker redisURL.
func newClusterOn(t *testing.T, n int, dbURL, redisURL string) *cluster {
	t.Helper()
	shared := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(shared, "secrets.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, tlsKeyFile, roots := clusterCert(t, shared)

	c := &cluster{bin: binary(t), roots: roots}
	var origins []string
	for i := 0; i < n; i++ {
		nd := &clusterNode{name: fmt.Sprintf("node %d", i+1), port: freePort(t), admin: freePort(t), roots: roots}
		nd.base = fmt.Sprintf("https://localhost:%d", nd.port)
		origins = append(origins, nd.base)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.env = append(os.Environ(),
			"WSGUARD_LISTEN=127.0.0.1:"+fmt.Sprint(nd.port),
			"WSGUARD_PUBLIC_URL="+nd.base,
			"WSGUARD_ALLOWED_ORIGINS="+strings.Join(origins, ","),
			"WSGUARD_DATA_DIR="+t.TempDir(),
			"WSGUARD_ADMIN_LISTEN=127.0.0.1:"+fmt.Sprint(nd.admin),
			"WSGUARD_STORE="+dbURL,
			"WSGUARD_BROKER="+redisURL,
			"WSGUARD_SECRETS_KEY_FILE="+keyFile,
			"WSGUARD_TLS_CERT_FILE="+certFile,
			"WSGUARD_TLS_KEY_FILE="+tlsKeyFile,
			"WSGUARD_LIMITS_CONNS_PER_USER=4",
			"WSGUARD_LIMITS_HANDSHAKES_PER_SECOND=1000",
			"WSGUARD_LIMITS_HANDSHAKE_BURST=1000",
			"WSGUARD_LIMITS_LOGINS_PER_MINUTE=1000",
			"WSGUARD_LIMITS_MESSAGES_PER_SECOND=100000",
			"WSGUARD_LIMITS_MESSAGE_BURST=100000",
			"WSGUARD_LIMITS_USER_MESSAGES_PER_SECOND=100000",
			"WSGUARD_LIMITS_IP_MESSAGES_PER_SECOND=100000",
		)
	}
	return c
}

// clusterCert writes one self-signed certificate for localhost and
// 127.0.0.1 that every node presents, and returns the pool that trusts it.
func clusterCert(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsguard cluster test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, roots
}

// cli runs a wsguard command with node nd's configuration (the shared store).
func (c *cluster) cli(t *testing.T, nd *clusterNode, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = nd.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wsguard %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// start runs `wsguard serve` for nd and waits until its /readyz answers 200
// (store and Redis reached).
func (c *cluster) start(t *testing.T, nd *clusterNode) {
	t.Helper()
	nd.cmd = exec.Command(c.bin, "serve")
	nd.cmd.Env = nd.env
	nd.log = &syncBuf{}
	nd.cmd.Stdout = io.Discard
	nd.cmd.Stderr = nd.log
	nd.done = make(chan struct{})
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, log, done := nd.cmd, nd.log, nd.done
	go func() { _ = cmd.Wait(); close(done) }()
	name := nd.name
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, log.String())
		}
	})
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", nd.admin)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("%s exited at start:\n%s", nd.name, log.String())
		default:
		}
		if resp, err := hc.Get(ready); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30 s:\n%s", nd.name, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browser is one signed-in user agent (its own cookie jar) trusting the
// cluster's certificate. Cookies are kept per host, not port, so a session
// made on one node is sent to all of them, as behind one public name.
type browser struct {
	t    *testing.T
	http *http.Client
	csrf string // the signed-in page's CSRF token
}

func (c *cluster) newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, http: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// signIn posts the login form on nd and reads the page's CSRF token there.
func (b *browser) signIn(nd *clusterNode, user string) {
	t := b.t
	t.Helper()
	m := formTok.FindStringSubmatch(get(t, b.http, nd.base+"/login"))
	if m == nil {
		t.Fatalf("%s: no login form", nd.name)
	}
	resp := postForm(t, b.http, nd.base, "/login", url.Values{"username": {user}, "password": {clusterPassword}, "csrf_token": {m[1]}})
	text := readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: login %s: %d %s", nd.name, user, resp.StatusCode, text)
	}
	mt := metaTok.FindStringSubmatch(get(t, b.http, nd.base+"/"))
	if mt == nil {
		t.Fatalf("%s: no CSRF token on the signed-in page", nd.name)
	}
	b.csrf = mt[1]
}

// dial opens the chat socket on nd sending origin, with the session
// cookie when cookies is set; the HTTP status of a refusal is returned
// with the error.
func (b *browser) dial(nd *clusterNode, origin string, cookies bool, protocols ...string) (*websocket.Conn, int, error) {
	h := http.Header{"Origin": {origin}}
	u, _ := url.Parse(nd.base)
	for _, ck := range b.http.Jar.Cookies(u) {
		if cookies {
			h.Add("Cookie", ck.Name+"="+ck.Value)
		}
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: nd.roots}, Subprotocols: append([]string{"wsguard.v1"}, protocols...), HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss://"+strings.TrimPrefix(nd.base, "https://")+"/ws", h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	return ws, status, err
}

// session opens the chat socket on nd with the session and CSRF token.
func (b *browser) session(nd *clusterNode) *websocket.Conn {
	b.t.Helper()
	ws, status, err := b.dial(nd, nd.base, true, "wsguard.csrf."+b.csrf)
	if err != nil {
		b.t.Fatalf("%s: session socket: %v (HTTP %d)", nd.name, err, status)
	}
	b.t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// ticket asks nd for a one-time ticket, from nd's origin.
func (b *browser) ticket(nd *clusterNode) string {
	t := b.t
	t.Helper()
	req, _ := http.NewRequest("POST", nd.base+"/api/v1/tickets", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", nd.base)
	req.Header.Set("X-CSRF-Token", b.csrf)
	resp, err := b.http.Do(req)
	text := body(t, resp, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: ticket: %d %s", nd.name, resp.StatusCode, text)
	}
	var r struct {
		Ticket string `json:"ticket"`
	}
	if err := json.Unmarshal([]byte(text), &r); err != nil || r.Ticket == "" {
		t.Fatalf("%s: ticket answer %s", nd.name, text)
	}
	return r.Ticket
}

// request sends one request on ws and returns its answer, skipping pushes;
// the answer must be ok.
func request(t *testing.T, ws *websocket.Conn, v map[string]any) frame {
	t.Helper()
	f := ask(t, ws, v)
	if !f.OK {
		t.Fatalf("%v failed: %+v", v, f.Error)
	}
	return f
}

func TestCluster(t *testing.T) {
	c := newCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	// Users are made by the CLI against the shared store, before any node runs.
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		c.cli(t, n1, clusterPassword+"\n", "user", "add", u, "--password-stdin")
	}
	for _, nd := range c.nodes {
		c.start(t, nd)
	}

	// (a) A user the CLI created signs in on node 2 and connects there.
	t.Run("CLIUserOnNode2", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n2, "alice")
		ws := b.session(n2)
		f := request(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:a"})
		var r struct {
			Offset uint64 `json:"offset"`
		}
		if err := json.Unmarshal(f.Result, &r); err != nil || r.Offset != 0 {
			t.Fatalf("subscribe answer %s", f.Result)
		}
		// The user's side: a wrong password is refused on another node too.
		other := c.newBrowser(t)
		m := formTok.FindStringSubmatch(get(t, other.http, n3.base+"/login"))
		if m == nil {
			t.Fatal("no login form")
		}
		resp := postForm(t, other.http, n3.base, "/login", url.Values{"username": {"alice"}, "password": {"not the password"}, "csrf_token": {m[1]}})
		if text := readAll(t, resp); resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("node 3 signed alice in with a wrong password: %d %s", resp.StatusCode, text)
		}
	})
	// (b) Three nodes publish into one channel at once; a subscriber on
	// each node receives 1..N in order, no gap, no duplicate.
	t.Run("OrderAcrossNodes", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n1, "bob")
		const perNode = 60
		const total = perNode * 3
		socks := make([]*websocket.Conn, len(c.nodes))
		for i, nd := range c.nodes {
			socks[i] = b.session(nd)
			f := request(t, socks[i], map[string]any{"id": 1, "op": "subscribe", "channel": "room:order"})
			var r struct {
				Offset uint64 `json:"offset"`
			}
			if err := json.Unmarshal(f.Result, &r); err != nil || r.Offset != 0 {
				t.Fatalf("%s: subscribe answer %s", nd.name, f.Result)
			}
		}
		type seen struct {
			pushes, acks []uint64
			err          error
		}
		results := make([]seen, len(socks))
		deadline := time.Now().Add(60 * time.Second)
		var wg sync.WaitGroup
		for i, ws := range socks {
			wg.Add(2)
			go func() { // publisher: all at once, pipelined
				defer wg.Done()
				for k := 0; k < perNode; k++ {
					msg, _ := json.Marshal(map[string]any{"id": 100 + k, "op": "publish", "channel": "room:order", "data": map[string]any{"text": fmt.Sprintf("node %d #%d", i+1, k)}})
					_ = ws.SetWriteDeadline(deadline)
					if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
						return // the reader reports the socket's end
					}
				}
			}()
			go func() { // reader: acks of its own publishes, pushes of everyone's
				defer wg.Done()
				r := &results[i]
				for len(r.pushes) < total || len(r.acks) < perNode {
					_ = ws.SetReadDeadline(deadline)
					_, msg, err := ws.ReadMessage()
					if err != nil {
						r.err = err
						return
					}
					var f frame
					if err := json.Unmarshal(msg, &f); err != nil {
						r.err = fmt.Errorf("frame %s: %w", msg, err)
						return
					}
					switch {
					case f.Push == "message" && f.Channel == "room:order":
						r.pushes = append(r.pushes, f.Offset)
					case f.Push == "" && f.ID >= 100:
						var a struct {
							Offset uint64 `json:"offset"`
						}
						if !f.OK || json.Unmarshal(f.Result, &a) != nil || a.Offset == 0 {
							r.err = fmt.Errorf("publish answer %s", msg)
							return
						}
						r.acks = append(r.acks, a.Offset)
					}
				}
			}()
		}
		wg.Wait()
		acked := map[uint64]string{}
		for i, r := range results {
			name := c.nodes[i].name
			if r.err != nil {
				t.Fatalf("%s: after %d pushes and %d acknowledgements: %v", name, len(r.pushes), len(r.acks), r.err)
			}
			for _, off := range r.acks {
				if other, dup := acked[off]; dup {
					t.Fatalf("offset %d acknowledged on %s and on %s", off, other, name)
				}
				acked[off] = name
			}
			for k, off := range r.pushes {
				if off != uint64(k+1) {
					t.Fatalf("%s: push %d has offset %d, want %d (order, gap or duplicate): %v", name, k, off, k+1, r.pushes)
				}
			}
		}
		for off := uint64(1); off <= total; off++ {
			if _, ok := acked[off]; !ok {
				t.Fatalf("offset %d was never acknowledged (acknowledged: %d)", off, len(acked))
			}
		}
	})
	// (c) A ticket minted on node 1 is redeemed on node 2 and refused the
	// second time, on node 3 and on node 2 alike.
	t.Run("TicketOnceInCluster", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n1, "alice")
		tk := b.ticket(n1)
		ws, status, err := b.dial(n2, n1.base, false, "wsguard.ticket."+tk)
		if err != nil {
			t.Fatalf("node 2 refused a ticket minted on node 1: %v (HTTP %d)", err, status)
		}
		defer ws.Close()
		request(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:ticket"})
		for _, nd := range []*clusterNode{n3, n2} {
			if ws, status, err := b.dial(nd, n1.base, false, "wsguard.ticket."+tk); err == nil {
				ws.Close()
				t.Fatalf("%s accepted a ticket already used on node 2", nd.name)
			} else if status != http.StatusUnauthorized {
				t.Fatalf("%s: a used ticket got HTTP %d (%v), want 401", nd.name, status, err)
			}
		}
	})

	// (d) Logout on node 1 closes the session's socket on node 3 within 1 s.
	t.Run("LogoutClosesOtherNode", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n1, "dave")
		ws := b.session(n3)
		request(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:logout"})
		resp := postForm(t, b.http, n1.base, "/logout", url.Values{"csrf_token": {b.csrf}})
		if text := readAll(t, resp); resp.StatusCode >= 400 {
			t.Fatalf("logout on node 1: %d %s", resp.StatusCode, text)
		}
		loggedOut := time.Now()
		_ = ws.SetReadDeadline(loggedOut.Add(time.Second))
		for {
			_, _, err := ws.ReadMessage()
			if err == nil {
				continue // a presence push, say
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4001 {
				t.Fatalf("node 3 socket after logout on node 1: %v (want close 4001 within 1 s)", err)
			}
			t.Logf("closed %v after the logout answer: %q", time.Since(loggedOut).Round(time.Millisecond), ce.Text)
			break
		}
		// The ended session opens nothing anywhere.
		if ws, status, err := b.dial(n2, n2.base, true, "wsguard.csrf."+b.csrf); err == nil {
			ws.Close()
			t.Fatal("node 2 opened a socket for a session logged out on node 1")
		} else if status != http.StatusUnauthorized {
			t.Fatalf("node 2: a logged-out session got HTTP %d (%v), want 401", status, err)
		}
	})

	// (d, by the CLI) `wsguard user disable`, run against the shared store
	// on no node at all, closes the user's sockets on every node within 1 s;
	// enabled again, the user signs in and connects.
	t.Run("CLIDisableClosesEverywhere", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n2, "erin")
		socks := []*websocket.Conn{b.session(n1), b.session(n3)}
		for _, ws := range socks {
			request(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": "room:disable"})
		}
		c.cli(t, n1, "", "user", "disable", "erin")
		disabled := time.Now()
		for i, ws := range socks {
			_ = ws.SetReadDeadline(disabled.Add(time.Second))
			for {
				_, _, err := ws.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != 4001 {
					t.Fatalf("socket %d after user disable: %v (want close 4001 within 1 s)", i, err)
				}
				break
			}
		}
		t.Logf("both sockets closed %v after the CLI returned", time.Since(disabled).Round(time.Millisecond))
		c.cli(t, n1, "", "user", "enable", "erin")
		again := c.newBrowser(t)
		again.signIn(n3, "erin")
		request(t, again.session(n2), map[string]any{"id": 1, "op": "subscribe", "channel": "room:disable"})
	})

	// (e) A user's connection cap (limits.conns_per_user: 4) holds for the
	// cluster, not per node.
	t.Run("ConnCapAcrossNodes", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n1, "carol")
		var open []*websocket.Conn
		for _, nd := range []*clusterNode{n1, n2, n3, n1} {
			open = append(open, b.session(nd))
		}
		for _, nd := range []*clusterNode{n2, n3} {
			if ws, status, err := b.dial(nd, nd.base, true, "wsguard.csrf."+b.csrf); err == nil {
				ws.Close()
				t.Fatalf("%s opened carol's 5th socket across the cluster (cap 4)", nd.name)
			} else if status != http.StatusTooManyRequests {
				t.Fatalf("%s: 5th socket got HTTP %d (%v), want 429", nd.name, status, err)
			}
		}
		// Closing one frees its slot for the whole cluster.
		_ = open[1].Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ws, status, err := b.dial(n3, n3.base, true, "wsguard.csrf."+b.csrf)
			if err == nil {
				ws.Close()
				break
			}
			if status != http.StatusTooManyRequests || time.Now().After(deadline) {
				t.Fatalf("node 3 after one of carol's sockets closed: HTTP %d (%v)", status, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// (f) kill -9 of node 2 while it acknowledges publishes: history read
	// on another node has every acknowledged offset, with no gap.
	t.Run("Kill9NoAcknowledgedLost", func(t *testing.T) {
		b := c.newBrowser(t)
		b.signIn(n1, "alice")
		ws := b.session(n2)
		const total = 300
		go func() {
			for i := 1; i <= total; i++ {
				msg, _ := json.Marshal(map[string]any{"id": i, "op": "publish", "channel": "room:crash", "data": map[string]any{"n": i}})
				_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if ws.WriteMessage(websocket.TextMessage, msg) != nil {
					return
				}
			}
		}()
		acked := map[uint64]bool{}
		killed := false
		deadline := time.Now().Add(30 * time.Second)
		for {
			_ = ws.SetReadDeadline(deadline)
			_, msg, err := ws.ReadMessage()
			if err != nil {
				if !killed {
					t.Fatalf("node 2 socket before the kill, %d acknowledged: %v", len(acked), err)
				}
				break // the node is gone: what was acknowledged is all counted
			}
			var f frame
			_ = json.Unmarshal(msg, &f)
			var a struct {
				Offset uint64 `json:"offset"`
			}
			if f.Push == "" && f.OK && json.Unmarshal(f.Result, &a) == nil && a.Offset > 0 {
				acked[a.Offset] = true
			}
			if !killed && len(acked) >= 50 {
				if err := n2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		select {
		case <-n2.done:
		case <-time.After(10 * time.Second):
			t.Fatal("node 2 did not exit after SIGKILL")
		}
		// Read the channel's history on node 1 and on node 3.
		for _, nd := range []*clusterNode{n1, n3} {
			hs := b.session(nd)
			f := request(t, hs, map[string]any{"id": 1, "op": "history", "channel": "room:crash", "limit": 1000})
			var h struct {
				Messages []struct {
					Offset uint64 `json:"offset"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(f.Result, &h); err != nil {
				t.Fatalf("%s: history answer: %v", nd.name, err)
			}
			have := map[uint64]bool{}
			for i, m := range h.Messages {
				if m.Offset != uint64(i+1) {
					t.Fatalf("%s: history not gap-free: position %d has offset %d", nd.name, i, m.Offset)
				}
				have[m.Offset] = true
			}
			for off := range acked {
				if !have[off] {
					t.Fatalf("%s: acknowledged offset %d missing after kill -9 of node 2 (history has %d)", nd.name, off, len(have))
				}
			}
			t.Logf("%s: %d of %d publishes acknowledged before the kill, %d in history", nd.name, len(acked), total, len(have))
			_ = hs.Close()
		}
	})
}
