package tlsconf

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

func TestACMEHostPolicy(t *testing.T) {
	m := ACMEManager([]string{"chat.example.com"}, filepath.Join(t.TempDir(), "acme"))
	ctx := context.Background()
	if err := m.HostPolicy(ctx, "chat.example.com"); err != nil {
		t.Errorf("configured host refused: %v", err)
	}
	for _, h := range []string{"evil.example", "sub.chat.example.com", "chat.example.com.evil.example", "localhost", ""} {
		if err := m.HostPolicy(ctx, h); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}

func TestServerTimeouts(t *testing.T) {
	srv := &http.Server{WriteTimeout: time.Second}
	ServerTimeouts(srv, 0)
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 10*time.Second || srv.WriteTimeout != 0 ||
		srv.IdleTimeout <= 0 || srv.MaxHeaderBytes != 16<<10 || srv.TLSNextProto == nil {
		t.Errorf("%+v", srv)
	}
	ServerTimeouts(srv, 3*time.Second)
	if srv.ReadHeaderTimeout != 3*time.Second || srv.ReadTimeout != 3*time.Second {
		t.Errorf("%+v", srv)
	}
}

// TestSilentClientCut is SECURITY.md M7: a client that opens TCP and sends
// nothing (or trickles a ClientHello) is closed by the handshake timeout.
func TestSilentClientCut(t *testing.T) {
	certFile, keyFile, _ := devPair(t)
	r, _ := NewReloader(certFile, keyFile)
	cfg, _ := ServerConfig(ProfileIntermediate, r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: okHandler(), ErrorLog: quietLog()}
	ServerTimeouts(srv, 100*time.Millisecond)
	go srv.Serve(tls.NewListener(ln, cfg))
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03}) // the first bytes of a ClientHello, then silence
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a silent connection open")
	}
}
