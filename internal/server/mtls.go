package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// Optional mutual TLS for the service API (tls.client_ca_file). With a
// client CA configured, the listener asks every client for a certificate
// but does not require one (browsers have none); /api/v1/publish and
// /api/v1/disconnect then refuse requests whose connection did not present
// a certificate chaining to that CA, whatever their bearer credential, and
// the handshake guard refuses an API key on /ws without one (401
// client_cert_required). A leaked API key alone is then not enough.

// loadClientCAs reads tls.client_ca_file, when set.
func (s *Server) loadClientCAs() error {
	path := s.cfg.TLS.ClientCAFile
	if path == "" {
		return nil
	}
	if !s.cfg.TLSEnabled() {
		return errors.New("tls.client_ca_file: mutual TLS needs TLS on this listener (insecure_dev without TLS cannot see client certificates)")
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's tls.client_ca_file
	if err != nil {
		return fmt.Errorf("tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("tls.client_ca_file %q: no PEM certificate found", path)
	}
	s.clientCAs = pool
	return nil
}

// applyClientCAs makes the listener request client certificates.
func (s *Server) applyClientCAs(c *tls.Config) {
	if c == nil || s.clientCAs == nil {
		return
	}
	c.ClientCAs = s.clientCAs
	c.ClientAuth = tls.VerifyClientCertIfGiven
}

// apiClientCert refuses a service-API request without a verified client
// certificate when mutual TLS is configured.
func (s *serviceAPI) apiClientCert(w http.ResponseWriter, r *http.Request) bool {
	if s.clientCAs == nil {
		return true
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	s.apiRefuse(w, r, http.StatusUnauthorized, "client_cert_missing", "this endpoint needs a client certificate (mutual TLS)", "")
	return false
}
