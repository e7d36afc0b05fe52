package tlsconf

import (
	"crypto/tls"
	"fmt"
)

// Profile names, as written in tls.profile.
const (
	ProfileIntermediate = "intermediate"
	ProfileModern       = "modern"
)

// intermediateSuites are the TLS 1.2 suites offered: ECDHE key exchange
// (forward secrecy) with an AEAD cipher only. TLS 1.3 suites are not
// configurable in Go and are all AEAD.
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves are the key-exchange groups: the post-quantum hybrid first (TLS
// 1.3 clients that support it get harvest-now-decrypt-later protection),
// then X25519, P-256 and P-384 as Mozilla's intermediate profile lists.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// ServerConfig returns the listener's TLS configuration for profile
// ("intermediate": TLS 1.2+ with ECDHE-AEAD suites; "modern": TLS 1.3
// only). certs supplies the certificate for each handshake; it may be nil
// when the caller sets GetCertificate itself (ACME). ALPN offers only
// http/1.1 because the WebSocket handshake here is HTTP/1.1 (RFC 6455).
func ServerConfig(profile string, certs *Reloader) (*tls.Config, error) {
	// #nosec G402 -- MinVersion is set by the profile switch below (1.2 or 1.3)
	c := &tls.Config{
		NextProtos:       []string{"http/1.1"},
		CurvePreferences: curves,
	}
	switch profile {
	case ProfileIntermediate:
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = intermediateSuites
	case ProfileModern:
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls.profile: %q is not a profile (allowed: intermediate, modern)", profile)
	}
	c.MaxVersion = tls.VersionTLS13
	if certs != nil {
		c.GetCertificate = certs.GetCertificate
	}
	return c, nil
}
