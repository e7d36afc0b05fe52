package server

import (
	"errors"
	"fmt"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/origin"
	"github.com/wsguard/wsguard/internal/realip"
	"github.com/wsguard/wsguard/internal/tlsconf"
	"github.com/wsguard/wsguard/internal/token"
)

// CheckConfig makes every check serve makes of a loaded config before it
// opens anything: Validate, then building the policies and reading the
// files the config names (certificate and key, client CA, JWT keys, the
// metrics token). `wsguard config check` and `wsguard serve` both call
// it, so the one says ok exactly when the other would start. It opens no
// store, listener or log and writes nothing.
func CheckConfig(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var errs []error
	if _, err := origin.New(cfg.AllowedOrigins); err != nil {
		errs = append(errs, fmt.Errorf("allowed_origins: %w", err))
	}
	if _, err := realip.New(cfg.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if _, err := authz.New(cfg.Namespaces); err != nil {
		errs = append(errs, fmt.Errorf("namespaces: %w", err))
	}
	if _, err := adminPolicy(cfg.Admin); err != nil {
		errs = append(errs, err)
	}
	if j := cfg.JWT; len(j.Keys) > 0 || j.JWKSURL != "" {
		if _, err := token.NewVerifier(j, token.VerifierOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("jwt: %w", err))
		}
	}
	if cfg.TLS.CertFile != "" {
		if _, err := tlsconf.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("tls.cert_file/tls.key_file: %w", err))
		}
	}
	if err := (&Server{cfg: cfg}).loadClientCAs(); err != nil {
		errs = append(errs, err)
	}
	// Parse the broker URL as openBroker would, without opening it: a Redis
	// broker opened here connected and subscribed, and was never closed, so
	// every `wsguard serve` kept a second link to Redis (and logged each
	// outage twice) for as long as it ran.
	if cfg.Broker != "" && cfg.Broker != "memory" {
		if _, _, err := broker.ParseRedisURL(cfg.Broker); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
	}
	return errors.Join(errs...)
}
