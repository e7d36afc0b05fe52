package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/wsguard/wsguard/internal/tlsconf"
)

// Listeners lets tests and embedders pass ready listeners; nil fields are
// opened from the config.
type Listeners struct {
	Public, Admin, Redirect net.Listener
}

// Run serves until ctx ends, then drains: new connections are refused,
// live ones are told to reconnect elsewhere (1001), and Run returns once
// they are gone or the drain timeout passes. reload, when non-nil, is a
// channel on which SIGHUP arrives: the certificate is reloaded.
func (s *Server) Run(ctx context.Context, ls Listeners, reload <-chan os.Signal) error {
	tlsCfg, reloader, err := s.tlsConfig()
	if err != nil {
		return err
	}
	s.applyClientCAs(tlsCfg) // mtls.go
	if ls.Public == nil {
		if ls.Public, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	// net/http's own errors (TLS handshake failures, slowloris cut off) go
	// to the structured log at debug level: each is one attacker packet, and
	// on stderr they would let a scanner flood the log.
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	public := &http.Server{Handler: s.Handler(), TLSConfig: tlsCfg, ErrorLog: errorLog} // #nosec G112 -- ServerTimeouts sets ReadHeaderTimeout below
	tlsconf.ServerTimeouts(public, s.cfg.Limits.HandshakeTimeout.D())
	errc := make(chan error, 3)
	go func() {
		var err error
		if tlsCfg != nil {
			err = public.Serve(tls.NewListener(ls.Public, tlsCfg))
		} else {
			err = public.Serve(ls.Public)
		}
		errc <- err
	}()
	s.log.Info("wsguard serving", "listen", ls.Public.Addr().String(), "public_url", s.cfg.PublicURL, "tls", tlsCfg != nil)
	if s.gateway != nil {
		s.log.Info("gateway mode: relaying the upstream behind sign-in and the handshake guard", "path", s.cfg.Proxy.Path, "upstream", s.gateway.label)
	}

	var admin *http.Server
	if s.cfg.AdminListen != "" || ls.Admin != nil {
		if ls.Admin == nil {
			if ls.Admin, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
				return fmt.Errorf("admin_listen: %w", err)
			}
		}
		admin = &http.Server{Handler: s.AdminHandler()} // #nosec G112 -- ServerTimeouts sets ReadHeaderTimeout below
		tlsconf.ServerTimeouts(admin, 10*time.Second)
		go func() { errc <- admin.Serve(ls.Admin) }()
	}
	var redirect *http.Server
	if s.cfg.TLS.RedirectListen != "" || ls.Redirect != nil {
		if ls.Redirect == nil {
			if ls.Redirect, err = net.Listen("tcp", s.cfg.TLS.RedirectListen); err != nil {
				return fmt.Errorf("tls.redirect_listen: %w", err)
			}
		}
		redirect = &http.Server{Handler: tlsconf.RedirectHandler(s.cfg.PublicURL)} // #nosec G112 -- ServerTimeouts sets ReadHeaderTimeout below
		tlsconf.ServerTimeouts(redirect, 10*time.Second)
		go func() { errc <- redirect.Serve(ls.Redirect) }()
	}

	s.printSetupBanner()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if reloader != nil {
		go reloader.Watch(watchCtx, 2*time.Second)
	}
	for {
		select {
		case <-reload:
			if reloader != nil {
				if err := reloader.Reload(); err != nil {
					s.log.Error("certificate reload failed; keeping the old one", "err", err)
				} else {
					s.log.Info("certificate reloaded")
				}
			}
			continue
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		case <-ctx.Done():
		}
		break
	}
	started := time.Now()
	open := len(s.sock.live.list())
	s.log.Info("draining: telling every socket to reconnect elsewhere", "sockets", open, "timeout", s.cfg.DrainTimeout.D().String())
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout.D())
	defer cancel()
	s.sock.draining.Store(true)
	_ = public.Shutdown(dctx) // stops accepting; hijacked sockets are ours to drain
	s.Drain(dctx)
	if admin != nil {
		_ = admin.Shutdown(dctx)
	}
	if redirect != nil {
		_ = redirect.Shutdown(dctx)
	}
	// The last line of a run: what the drain achieved, so an operator (or a
	// rolling deploy's log) sees whether drain_timeout was long enough.
	left := len(s.sock.live.list())
	s.log.Info("wsguard stopped", "sockets_drained", max(0, open-left), "sockets_left_at_timeout", left,
		"took", time.Since(started).Round(time.Millisecond).String())
	return nil
}

// tlsConfig returns the listener's TLS config (nil when TLS is off in
// insecure_dev) and the reloader for file certificates.
func (s *Server) tlsConfig() (*tls.Config, *tlsconf.Reloader, error) {
	if !s.cfg.TLSEnabled() {
		return nil, nil, nil
	}
	if len(s.cfg.TLS.ACMEDomains) > 0 {
		m := tlsconf.ACMEManager(s.cfg.TLS.ACMEDomains, filepath.Join(s.cfg.DataDir, "acme"))
		c, err := tlsconf.ServerConfig(s.cfg.TLS.Profile, nil)
		if err != nil {
			return nil, nil, err
		}
		c.GetCertificate = m.GetCertificate
		c.NextProtos = append(c.NextProtos, "acme-tls/1")
		return c, nil, nil
	}
	certFile, keyFile := s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile
	if certFile == "" {
		dir := filepath.Join(s.cfg.DataDir, "tls")
		caFile := filepath.Join(dir, tlsconf.CAFile)
		_, statErr := os.Stat(caFile)
		if errors.Is(statErr, fs.ErrNotExist) {
			s.log.Info("first start: creating a development CA and a certificate for localhost (no tls.cert_file set)", "dir", dir)
		}
		var err error
		certFile, keyFile, err = tlsconf.EnsureDevCA(dir, time.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("dev certificate: %w", err)
		}
		if statErr != nil {
			s.log.Info("development CA created: trust it to open the chat without a certificate warning (curl --cacert, or import into the browser)", "ca", caFile)
		}
	}
	r, err := tlsconf.NewReloader(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
	}
	c, err := tlsconf.ServerConfig(s.cfg.TLS.Profile, r)
	return c, r, err
}
