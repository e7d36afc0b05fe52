package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader serves a certificate and key from files and swaps them when the
// files change (Watch) or on request (Reload, wired to SIGHUP). Only new
// handshakes see a new certificate; established connections keep the one
// they negotiated (SECURITY.md F7). A pair that does not load is refused and
// the current one kept.
type Reloader struct {
	certFile, keyFile string

	// OnReload, when set before Watch starts, is called after every reload
	// Watch attempts, with nil on success. Zero means reloads are silent.
	OnReload func(error)

	cur   atomic.Pointer[tls.Certificate]
	mu    sync.Mutex // serialises Reload and guards stamp
	stamp string     // size and mtime of both files at the last attempt
}

// NewReloader loads the pair once; an unusable pair is an error.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	r.stamp = r.fileStamp()
	c, err := loadPair(certFile, keyFile, time.Now())
	if err != nil {
		return nil, err
	}
	r.cur.Store(c)
	return r, nil
}

// GetCertificate is the tls.Config hook: it returns the current pair.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Current returns the certificate new handshakes get.
func (r *Reloader) Current() *tls.Certificate { return r.cur.Load() }

// Reload reads the files again. On error the previous certificate stays in
// service and the error says why the new one was refused.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamp = r.fileStamp()
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() error {
	c, err := loadPair(r.certFile, r.keyFile, time.Now())
	if err != nil {
		return fmt.Errorf("certificate reload refused, keeping the current one: %w", err)
	}
	r.cur.Store(c)
	return nil
}

// Watch polls the files' size and modification time every interval (zero
// means 2 s) and reloads when they change, until ctx ends. A failed attempt
// is not retried until the files change again.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		s := r.fileStamp()
		if s == r.stamp {
			r.mu.Unlock()
			continue
		}
		r.stamp = s
		err := r.reloadLocked()
		r.mu.Unlock()
		if r.OnReload != nil {
			r.OnReload(err)
		}
	}
}

func (r *Reloader) fileStamp() string {
	var s string
	for _, p := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			s += "missing;"
			continue
		}
		s += fmt.Sprintf("%d:%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s
}

// loadPair loads and checks a certificate and key: they must parse, match,
// and the leaf must be valid at now.
func loadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load %q and %q: %w", certFile, keyFile, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse %q: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %q expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, errors.New("certificate " + fmt.Sprintf("%q", certFile) + " is not valid yet")
	}
	return &c, nil
}
