package check

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestScanFollowsNoRedirects: redirects to another host, on the handshake
// or on the origin's root page, are reported as answers and never followed.
func TestScanFollowsNoRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	otherWS := "ws" + strings.TrimPrefix(other.URL, "http")

	// A handshake redirected elsewhere: the first handshake fails with
	// the 302 itself.
	redirecting := httptest.NewServer(http.RedirectHandler(otherWS+"/ws", http.StatusFound))
	defer redirecting.Close()
	_, err := Run(context.Background(), Options{Target: "ws" + strings.TrimPrefix(redirecting.URL, "http") + "/ws", StepTimeout: 2 * time.Second})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "302") {
		t.Fatalf("err %v, want unreachable with the 302", err)
	}

	// An endpoint whose root page redirects elsewhere: HSTS is judged on
	// the redirect itself.
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.Handle("/", http.RedirectHandler(other.URL+"/", http.StatusFound))
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())
	target := "wss" + strings.TrimPrefix(tlsSrv.URL, "https") + "/ws"
	rep := runScan(t, Options{Target: target, Roots: roots, StepTimeout: 2 * time.Second})
	if !rep.Has(HSTS) {
		t.Errorf("want WS-HSTS from the redirect without HSTS\n%s", dump(rep))
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the scan made %d requests to another host", n)
	}
}
