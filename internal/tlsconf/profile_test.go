package tlsconf

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProfiles is SECURITY.md T2: old protocol versions and weak suites are
// refused, modern clients connect.
func TestProfiles(t *testing.T) {
	certFile, keyFile, roots := devPair(t)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, // static RSA: no forward secrecy
	}
	weak := []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_RC4_128_SHA}
	gcm := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	chacha := []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	cases := []struct {
		name     string
		min, max uint16
		suites   []uint16
		inter    bool // succeeds under intermediate
		modern   bool // succeeds under modern
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, nil, false, false},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, nil, false, false},
		{"TLS 1.2 CBC only", tls.VersionTLS12, tls.VersionTLS12, cbc, false, false},
		{"TLS 1.2 3DES/RC4 only", tls.VersionTLS10, tls.VersionTLS12, weak, false, false},
		{"TLS 1.2 ECDHE-GCM", tls.VersionTLS12, tls.VersionTLS12, gcm, true, false},
		{"TLS 1.2 ECDHE-ChaCha20", tls.VersionTLS12, tls.VersionTLS12, chacha, true, false},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, true, true},
		{"default client", 0, 0, nil, true, true},
	}
	for _, profile := range []string{ProfileIntermediate, ProfileModern} {
		cfg, err := ServerConfig(profile, r)
		if err != nil {
			t.Fatal(err)
		}
		addr := serveTLS(t, cfg, okHandler())
		for _, tc := range cases {
			t.Run(profile+"/"+tc.name, func(t *testing.T) {
				want := tc.inter
				if profile == ProfileModern {
					want = tc.modern
				}
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
					RootCAs: roots, ServerName: "localhost",
					MinVersion: tc.min, MaxVersion: tc.max, CipherSuites: tc.suites,
					NextProtos: []string{"h2", "http/1.1"},
				})
				if !want {
					if err == nil {
						c.Close()
						t.Fatalf("handshake succeeded; want refused")
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake refused: %v", err)
				}
				defer c.Close()
				st := c.ConnectionState()
				if st.NegotiatedProtocol != "http/1.1" {
					t.Errorf("ALPN = %q, want http/1.1", st.NegotiatedProtocol)
				}
				if get(t, c, bufio.NewReader(c), "/") != 200 {
					t.Error("request failed")
				}
			})
		}
	}
}

func TestServerConfigUnknownProfile(t *testing.T) {
	if _, err := ServerConfig("old", nil); err == nil || !strings.Contains(err.Error(), "tls.profile") {
		t.Fatalf("err = %v", err)
	}
	c, err := ServerConfig(ProfileIntermediate, nil)
	if err != nil || c.MinVersion != tls.VersionTLS12 || c.GetCertificate != nil {
		t.Fatalf("%v %+v", err, c)
	}
	for _, s := range c.CipherSuites {
		name := tls.CipherSuiteName(s)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("non ECDHE-AEAD suite %s offered", name)
		}
	}
}

// TestPlainHTTPToTLSPort is SECURITY.md T1: plaintext HTTP, an upgrade
// included, sent to the TLS port gets 400 and never 101.
func TestPlainHTTPToTLSPort(t *testing.T) {
	certFile, keyFile, _ := devPair(t)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := ServerConfig(ProfileIntermediate, r)
	addr := serveTLS(t, cfg, okHandler())
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.0 400") || strings.Contains(string(b), "101") {
			t.Errorf("plain request answered %q", b)
		}
	}
}
