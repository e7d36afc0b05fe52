package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// baseline verifies the certificate (for wss://), then opens the socket the
// way the site's own page would (legitimate origin, the credential) and
// learns how the endpoint answers the probe message. Without this handshake
// there is nothing to compare the others with, so its failure ends the scan
// with ErrUnreachable.
func (s *scan) baseline(ctx context.Context) error {
	if s.secure {
		if err := s.verifyCert(ctx); err != nil {
			return err
		}
	}
	k, resp, err := s.dial(ctx, "", handshake{origin: s.origin})
	if !upgraded(resp, err) {
		hint := ""
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest) {
			hint = "; give the credential and subprotocols a client of this endpoint uses (--cookie, --header, --subprotocol) and its page's origin (--origin)"
		}
		return fmt.Errorf("%w: the handshake with Origin %s: %s%s", ErrUnreachable, s.origin, answer(resp, err), hint)
	}
	s.base = resp
	defer k.close()
	if err := k.send(textMessage, []byte(s.opt.Message)); err != nil {
		s.msgClose = "the probe message could not be sent: " + err.Error()
		return nil
	}
	v := k.wait(ctx, 1, 2*time.Second)
	switch {
	case v.closed != "":
		s.msgClose = fmt.Sprintf("the endpoint answered the probe message %s with %s (give one it accepts with --message)", clipN(s.opt.Message, 40), v.closed)
	case v.replies > 0:
		s.replies = true
	}
	return nil
}

// verifyCert makes the first TLS connection, verifying the chain (against
// Options.Roots or the system roots), the name and the expiry. A TCP
// connection that fails is ErrUnreachable; a certificate that fails is
// kept for WS-CERT.
func (s *scan) verifyCert(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opt.StepTimeout)
	defer cancel()
	raw, err := s.meter.dial(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, s.addr, err)
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{ServerName: s.target.Hostname(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}) // #nosec G402 -- verified by hand below, to report why it fails rather than only that it does
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("%w: TLS handshake with %s: %w", ErrUnreachable, s.addr, err)
	}
	certs := conn.ConnectionState().PeerCertificates
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	_, err = leaf.Verify(x509.VerifyOptions{Roots: s.opt.Roots, Intermediates: inter, DNSName: s.target.Hostname()})
	switch {
	case err != nil:
		s.certErr = err
	case time.Until(leaf.NotAfter) < 14*24*time.Hour:
		s.certErr = fmt.Errorf("expires %s, within 14 days", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}

func (s *scan) checkCert(context.Context) outcome {
	if !s.secure {
		return skipped("the target is ws://: there is no certificate to check (scan the wss:// URL as well)")
	}
	if s.certErr != nil {
		return found("TLS handshake with %s (name %s): %v", s.addr, s.target.Hostname(), s.certErr)
	}
	return passed("chain, name and expiry verify")
}

// checkTLSOld offers only TLS 1.0 and 1.1, then TLS 1.2 with only CBC
// (non-AEAD) suites; a completed handshake of either is the finding.
func (s *scan) checkTLSOld(ctx context.Context) outcome {
	if !s.secure {
		return skipped("the target is ws://: no TLS to examine")
	}
	var cbc []uint16
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, c := range all {
		if strings.Contains(c.Name, "_CBC_") || strings.Contains(c.Name, "_RC4_") {
			cbc = append(cbc, c.ID)
		}
	}
	var ids []uint16
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	probes := []struct {
		what     string
		min, max uint16
		suites   []uint16
	}{
		{"TLS 1.0/1.1 only", tls.VersionTLS10, tls.VersionTLS11, ids},
		{"TLS 1.2 with only non-AEAD (CBC) suites", tls.VersionTLS12, tls.VersionTLS12, cbc},
	}
	var accepted, refused []string
	for _, p := range probes {
		st, err := s.tlsProbe(ctx, &tls.Config{
			ServerName:         s.target.Hostname(),
			MinVersion:         p.min,
			MaxVersion:         p.max,
			CipherSuites:       p.suites,
			InsecureSkipVerify: true, // #nosec G402 -- a probe of protocol versions, no data is exchanged
		})
		if errors.Is(err, errBudget) {
			return skipped("%v", err)
		}
		if err != nil {
			refused = append(refused, fmt.Sprintf("offered %s: refused", p.what))
			continue
		}
		accepted = append(accepted, fmt.Sprintf("offered %s: handshake completed with %s, %s", p.what, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
	}
	if len(accepted) > 0 {
		return found("%s", strings.Join(accepted, "; "))
	}
	return passed("%s", strings.Join(refused, "; "))
}

// tlsProbe makes one TLS handshake with cfg and hangs up.
func (s *scan) tlsProbe(ctx context.Context, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.StepTimeout)
	defer cancel()
	raw, err := s.meter.dial(ctx, "tcp", s.addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer raw.Close()
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return conn.ConnectionState(), nil
}

// checkHSTS reads Strict-Transport-Security from the origin's root page
// and from the handshake answer; either, with max-age of a year or more,
// passes.
func (s *scan) checkHSTS(ctx context.Context) outcome {
	if !s.secure {
		return skipped("the target is ws://: HSTS applies to HTTPS origins")
	}
	root := "https://" + s.target.Host + "/"
	value, where := s.base.Header.Get("Strict-Transport-Security"), "the handshake answer"
	if value == "" {
		c := &http.Client{
			Timeout:       s.opt.StepTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return s.meter.dial(ctx, network, addr)
				},
				TLSClientConfig:   s.tlsConfig(),
				DisableKeepAlives: true,
			},
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, root, nil)
		if err != nil {
			return skipped("GET %s: %v", root, err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return skipped("GET %s: %v", root, err)
		}
		_ = resp.Body.Close()
		s.cookies = append(s.cookies, resp.Cookies()...)
		value, where = resp.Header.Get("Strict-Transport-Security"), fmt.Sprintf("GET %s (%d)", root, resp.StatusCode)
	}
	if value == "" {
		return found("neither the handshake answer nor GET %s carries Strict-Transport-Security", root)
	}
	age := maxAge(value)
	if age < 365*24*3600 {
		return found("%s: Strict-Transport-Security: %s (max-age %d s, under one year)", where, value, age)
	}
	return passed("%s: %s", where, value)
}

// maxAge reads max-age from an HSTS value; -1 when absent or malformed.
func maxAge(v string) int64 {
	for part := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "max-age") {
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// checkPlaintext: a ws:// target is the finding itself; for wss:// the
// plain twin is tried on the same port, or on port 80 for port 443.
func (s *scan) checkPlaintext(ctx context.Context) outcome {
	if !s.secure {
		return found("GET %s over plain TCP with Origin %s -> %s", s.target.String(), s.origin, answer(s.base, nil))
	}
	host, port := s.target.Hostname(), s.target.Port()
	if port == "" || port == "443" {
		port = "80"
	}
	twin := *s.target
	twin.Scheme = "ws"
	twin.Host = net.JoinHostPort(host, port)
	k, resp, err := s.dial(ctx, twin.String(), handshake{origin: s.origin})
	if errors.Is(err, errBudget) {
		return skipped("%v", err)
	}
	if upgraded(resp, err) {
		k.close()
		return found("GET %s (the plain twin) -> %s", twin.String(), answer(resp, err))
	}
	return passed("GET %s -> %s", twin.String(), answer(resp, err))
}
