package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// adminGet sends GET path to the admin listener at base with the given
// Host header and headers, and returns the status and body.
func adminGet(t *testing.T, base, host, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestAdminRefusesRebinding is the DNS-rebinding page's view: its own name
// resolves to 127.0.0.1, so its requests reach the admin listener over
// loopback, with its own name in Host. They are refused before metrics or
// profiles are read; the operator's loopback scrape still works.
func TestAdminRefusesRebinding(t *testing.T) {
	ts := startServer(t, nil)
	adm := httptest.NewServer(ts.srv.AdminHandler()) // on 127.0.0.1, as admin_listen
	defer adm.Close()
	port := adm.URL[strings.LastIndex(adm.URL, ":")+1:]

	for _, path := range []string{"/metrics", "/debug/pprof/heap", "/healthz"} {
		code, body := adminGet(t, adm.URL, "rebind.evil.example:"+port, path, nil)
		if code != http.StatusMisdirectedRequest || strings.Contains(body, "wsguard_") || !strings.Contains(body, "admin.hosts") {
			t.Errorf("foreign Host %s: %d %q, want 421 naming admin.hosts", path, code, body)
		}
	}
	// The operator on the host.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		code, body := adminGet(t, adm.URL, host, "/metrics", nil)
		if code != http.StatusOK || !strings.Contains(body, "wsguard_connections") {
			t.Errorf("loopback scrape with Host %s: %d", host, code)
		}
	}
}

// TestAdminPprofOffByDefault: a heap profile holds secrets, so it is not
// served unless admin.pprof is on, and then to loopback peers only.
func TestAdminPprofOffByDefault(t *testing.T) {
	ts := startServer(t, nil)
	adm := httptest.NewServer(ts.srv.AdminHandler())
	defer adm.Close()
	if code, _ := adminGet(t, adm.URL, "", "/debug/pprof/heap", nil); code != http.StatusNotFound {
		t.Errorf("pprof with admin.pprof off: %d, want 404", code)
	}

	on := startServer(t, func(c *config.Config) { c.AdminListen = "127.0.0.1:0"; c.Admin.Pprof = true })
	adm2 := httptest.NewServer(on.srv.AdminHandler())
	defer adm2.Close()
	if code, _ := adminGet(t, adm2.URL, "", "/debug/pprof/", nil); code != http.StatusOK {
		t.Errorf("pprof with admin.pprof on, loopback: %d, want 200", code)
	}
	req := httptest.NewRequest("GET", "http://localhost:9443/debug/pprof/", nil)
	req.RemoteAddr = "10.0.0.9:5000"
	rec := httptest.NewRecorder()
	on.srv.AdminHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("pprof from the network: %d, want 403", rec.Code)
	}
}

// TestAdminMetricsFromTheNetwork: Prometheus in a cluster reads metrics
// from a configured network or with the bearer token; any other peer is
// refused, whatever forwarding header it sends.
func TestAdminMetricsFromTheNetwork(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	const token = "5b0f3c8e7d2a4f6b9c1e0a3d5f7b9e2c"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) {
		c.AdminListen = "127.0.0.1:0"
		c.Admin.MetricsNetworks = []string{"10.42.0.0/16"}
		c.Admin.MetricsTokenFile = tokenFile
		c.Admin.Hosts = []string{"wsguard-admin.monitoring.svc"}
	})
	h := ts.srv.AdminHandler()
	scrapeAs := func(peer, host, authz string) (int, string) {
		req := httptest.NewRequest("GET", "http://"+host+"/metrics", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		name, peer, host, authz string
		want                    int
	}{
		{"pod IP from the allowed network", "10.42.7.1:40000", "10.42.0.5:9443", "", http.StatusOK},
		{"service name from the allowed network", "10.42.7.1:40000", "wsguard-admin.monitoring.svc:9443", "", http.StatusOK},
		{"token from anywhere", "198.51.100.4:40000", "10.42.0.5:9443", "Bearer " + token, http.StatusOK},
		{"no token, other network", "198.51.100.4:40000", "10.42.0.5:9443", "", http.StatusUnauthorized},
		{"wrong token, other network", "198.51.100.4:40000", "10.42.0.5:9443", "Bearer " + strings.Repeat("x", len(token)), http.StatusUnauthorized},
		{"token but foreign Host", "198.51.100.4:40000", "evil.example:9443", "Bearer " + token, http.StatusMisdirectedRequest},
	} {
		code, body := scrapeAs(tc.peer, tc.host, tc.authz)
		if code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
		if code != http.StatusOK && strings.Contains(body, "wsguard_") {
			t.Errorf("%s: refused but the body holds metrics", tc.name)
		}
		if code == http.StatusOK && !strings.Contains(body, "wsguard_connections") {
			t.Errorf("%s: served without metrics", tc.name)
		}
	}
}
