package admin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/wsguard/wsguard/internal/admin"
)

// Metrics for loopback peers and a cluster's pod network, under the
// listener's own names only.
func ExamplePolicy() {
	p := &admin.Policy{
		Hosts:    []string{"wsguard-admin.monitoring.svc"},
		Networks: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")},
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "wsguard_connections 3") })
	h := admin.Guard(p.CheckHost, admin.Guard(p.CheckScrape, metrics))

	for _, c := range []struct{ host, peer string }{
		{"10.42.0.5:9443", "10.42.7.1:40000"},    // Prometheus in the cluster
		{"evil.example:9443", "127.0.0.1:40000"}, // a DNS-rebinding page
		{"localhost:9443", "198.51.100.4:40000"}, // a stranger
	} {
		r := httptest.NewRequest("GET", "http://"+c.host+"/metrics", nil)
		r.RemoteAddr = c.peer
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Println(rec.Code)
	}
	// Output:
	// 200
	// 421
	// 403
}
