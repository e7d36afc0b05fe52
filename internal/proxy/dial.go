package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// wsguard's own subprotocols: the protocol name and the two credential
// carriers. None of them is ever forwarded to the upstream.
const (
	Subprotocol  = "wsguard.v1"
	csrfPrefix   = "wsguard.csrf."
	ticketPrefix = "wsguard.ticket."
)

// cookiePrefix starts every cookie of wsguard's own (the session cookie
// and the pre-session CSRF cookie): they are the client's credentials for
// wsguard, not for the upstream, and are never forwarded.
const cookiePrefix = "__Host-wsguard"

// Upstream is the backend a proxied socket is relayed to.
type Upstream struct {
	// URL is the backend, ws:// or wss://. The client's query string is
	// appended to it (Socket.IO and others carry parameters there).
	URL *url.URL
	// Secret keys the identity headers' HMAC (at least MinSecretBytes).
	Secret []byte
	// RootCAs verifies a wss:// backend. Nil means the system roots.
	RootCAs *x509.CertPool
	// HandshakeTimeout bounds the dial and the upstream's handshake. Zero
	// means 10 s.
	HandshakeTimeout time.Duration
	// Now is the clock of the identity timestamp. Nil means time.Now.
	Now func() time.Time
}

// LoadCAs reads a PEM bundle for Upstream.RootCAs.
func LoadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configured path
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// DialError is an upstream that could not be opened; the client is
// answered 502 and nothing is upgraded. Status is the upstream's answer
// when it answered something other than 101, else 0.
type DialError struct {
	Status int
	Err    error
}

func (e *DialError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("upstream refused the handshake with status %d", e.Status)
	}
	return "upstream unreachable: " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// Dial opens the upstream for the client request r, already passed by the
// guard, on behalf of id. clientIP is the client's address after trusted-
// proxy resolution and secure whether it arrived over TLS. It returns the
// upstream socket and the subprotocol it chose ("" for none).
//
// What the upstream receives: the identity headers; the subprotocols the
// client offered except wsguard's own; Origin and User-Agent as the client
// sent them; the client's cookies except wsguard's session cookie;
// X-Forwarded-For and X-Forwarded-Proto. Nothing else of the client's
// request is forwarded, so neither its Authorization nor any X-Wsguard-*
// header it sent can reach the upstream.
func (u *Upstream) Dial(ctx context.Context, r *http.Request, id Identity, clientIP string, secure bool) (*websocket.Conn, string, error) {
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	h, err := Sign(u.Secret, id, now())
	if err != nil {
		return nil, "", err
	}
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Origin", o)
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		h.Set("User-Agent", ua)
	}
	if c := forwardCookies(r); c != "" {
		h.Set("Cookie", c)
	}
	h.Set("X-Forwarded-For", clientIP)
	proto := "http"
	if secure {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)

	offered := ForwardedProtocols(r)
	timeout := u.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	d := websocket.Dialer{
		HandshakeTimeout: timeout,
		Subprotocols:     offered,
		TLSClientConfig:  &tls.Config{RootCAs: u.RootCAs, MinVersion: tls.VersionTLS12},
		ReadBufferSize:   1024,
		WriteBufferPool:  writePool,
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, u.target(r).String(), h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		de := &DialError{Err: err}
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			de.Status = resp.StatusCode
		}
		return nil, "", de
	}
	chosen := ws.Subprotocol()
	if chosen != "" && !slices.Contains(offered, chosen) {
		_ = ws.Close()
		return nil, "", &DialError{Err: fmt.Errorf("upstream chose subprotocol %q, which the client did not offer", chosen)}
	}
	return ws, chosen, nil
}

// target is the upstream URL with the client's query string added.
func (u *Upstream) target(r *http.Request) *url.URL {
	t := *u.URL
	switch {
	case r.URL.RawQuery == "":
	case t.RawQuery == "":
		t.RawQuery = r.URL.RawQuery
	default:
		t.RawQuery += "&" + r.URL.RawQuery
	}
	return &t
}

// ForwardedProtocols lists the subprotocols the client offered that go to
// the upstream: all but wsguard.v1 and the credential carriers.
func ForwardedProtocols(r *http.Request) []string {
	var out []string
	for _, p := range OfferedProtocols(r) {
		if p == Subprotocol || strings.HasPrefix(p, csrfPrefix) || strings.HasPrefix(p, ticketPrefix) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// OfferedProtocols lists the subprotocols the client offered, at most 8.
func OfferedProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && len(out) < 8 {
				out = append(out, p)
			}
		}
	}
	return out
}

// Answer is the subprotocol the proxy answers the client with: the
// upstream's choice, else wsguard.v1 when the client offered it (a
// browser fails a handshake that offered protocols and got none back).
func Answer(r *http.Request, upstreamChoice string) string {
	if upstreamChoice != "" {
		return upstreamChoice
	}
	if slices.Contains(OfferedProtocols(r), Subprotocol) {
		return Subprotocol
	}
	return ""
}

// forwardCookies is the client's Cookie header without wsguard's own
// cookies.
func forwardCookies(r *http.Request) string {
	var keep []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			continue
		}
		keep = append(keep, c.Name+"="+c.Value)
	}
	return strings.Join(keep, "; ")
}
