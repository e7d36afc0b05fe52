package tlsconf

import "golang.org/x/crypto/acme/autocert"

// ACMEManager returns an ACME (Let's Encrypt) certificate manager for
// domains, caching account and certificates in cacheDir (created 0700).
// The host policy is a whitelist of domains: without it, anyone could point
// a DNS name at the server and make it request certificates for that name
// (burning the CA's rate limit). Its GetCertificate goes into the
// tls.Config and "acme-tls/1" into NextProtos for the TLS-ALPN-01
// challenge.
func ACMEManager(domains []string, cacheDir string) *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cacheDir),
		HostPolicy: autocert.HostWhitelist(domains...),
	}
}
