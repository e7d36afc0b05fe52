package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/server"
)

// startWSGuard runs a wsguard node with its default config on a loopback
// port, signs a user in as a browser would, and returns the scan options
// that user's page would have: the session cookie, the CSRF subprotocol,
// the node's origin and its dev CA.
func startWSGuard(t *testing.T) Options {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := "localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	base := "https://" + host
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = base
	cfg.AllowedOrigins = []string{base}
	cfg.Audit.File = filepath.Join(cfg.DataDir, "audit.log")
	cfg.Audit.KeyFile = filepath.Join(cfg.DataDir, "audit.key")
	cfg.AdminListen = ""
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx, server.Listeners{Public: ln}, nil); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
		_ = srv.Close()
	})
	caFile := filepath.Join(cfg.DataDir, "tls", "ca.pem")
	var pem []byte
	for i := 0; i < 250; i++ {
		if pem, err = os.ReadFile(caFile); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dev CA not written: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	if _, err := server.CreateUser(context.Background(), srv.Store(), identity.NewHasher(identity.HasherOptions{}), "alice", "correct horse battery staple", false); err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		var resp *http.Response
		for i := 0; ; i++ { // the first request may race the listener's start
			resp, err = c.Get(base + path)
			if err == nil || i > 200 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	form := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(get("/login"))
	if form == nil {
		t.Fatal("no csrf_token on /login")
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{
		"username": {"alice"}, "password": {"correct horse battery staple"}, "csrf_token": {form[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	meta := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`).FindStringSubmatch(get("/"))
	if meta == nil {
		t.Fatal("no csrf-token meta on /")
	}
	u, _ := url.Parse(base)
	var cookies []string
	for _, ck := range jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	return Options{
		Target:       "wss://" + host + "/ws",
		Origin:       base,
		Cookies:      cookies,
		Subprotocols: []string{"wsguard.v1", "wsguard.csrf." + meta[1]},
		Roots:        roots,
	}
}

// TestScanWSGuard: wsguard with its defaults, scanned with a signed-in
// user's credential, has nothing above low to report.
func TestScanWSGuard(t *testing.T) {
	opt := startWSGuard(t)
	rep := runScan(t, opt)
	t.Logf("%s", dump(rep))
	if w := rep.Worst(); w > Low {
		t.Fatalf("worst finding %s, want none above low\n%s", w, dump(rep))
	}
	if rep.Grade != "A" {
		t.Errorf("grade %s, want A", rep.Grade)
	}
	// The credential was good: the checks that need an open socket ran.
	for _, id := range []ID{OriginForeign, OriginMissing, CredEcho, Size, UTF8, Rate} {
		for _, s := range rep.Skipped {
			if s.ID == id {
				t.Errorf("%s not checked: %s", id, s.Reason)
			}
		}
	}
}
