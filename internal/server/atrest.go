package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/tlsconf"
)

// storePath is the SQLite database file the config names.
func storePath(cfg config.Config) string {
	if p, ok := strings.CutPrefix(cfg.Store, "sqlite:"); ok {
		return p
	}
	return filepath.Join(cfg.DataDir, "wsguard.db")
}

// secureFiles makes data_dir 0700 and every file wsguard keeps 0600,
// whatever the umask, and loads (or creates) the key that seals TOTP
// secrets. Whatever it had to tighten was readable by other users, so
// each one is a warning in the log: the operator should ask who read it.
func (s *Server) secureFiles() (*atrest.Sealer, error) {
	cfg := s.cfg
	warn := func(t *atrest.Tightened) {
		if t != nil {
			s.log.Warn("file was open to other users; set owner-only", "path", t.Path,
				"was", fmt.Sprintf("%04o", uint32(t.Was)), "now", fmt.Sprintf("%04o", uint32(t.Now)))
		}
	}
	t, err := atrest.Dir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	warn(t)
	// What wsguard owns: the directories it makes (tls/ for the dev CA,
	// acme/ for ACME state) and every file it writes. Missing ones are
	// created owner-only by whatever writes them.
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	db := storePath(cfg)
	files := []string{tlsDir, filepath.Join(cfg.DataDir, "acme"),
		db, db + "-wal", db + "-shm", cfg.Audit.File, cfg.Audit.KeyFile, cfg.SecretsKeyPath()}
	for _, f := range []string{tlsconf.CAFile, tlsconf.CAKeyFile, tlsconf.LeafFile, tlsconf.LeafKeyFile} {
		files = append(files, filepath.Join(tlsDir, f))
	}
	for _, f := range files {
		t, err := atrest.Tighten(f)
		if err != nil {
			return nil, err
		}
		warn(t)
	}
	keyPath := cfg.SecretsKeyPath()
	sealer, created, err := atrest.KeyFor(keyPath, cfg.SharedStore())
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("created the key that seals TOTP secrets; back it up with the database, which cannot open them without it", "path", keyPath)
	}
	return sealer, nil
}

// secretSealer is the part of a store that seals secrets left in clear.
type secretSealer interface {
	SealSecrets(ctx context.Context) (sealed int, unopened []string, err error)
}

// sealStoredSecrets seals the TOTP secrets an earlier version left in
// clear, and says loudly which users' secrets do not open with this key
// (they cannot pass two-factor until it is restored or reset).
func (s *Server) sealStoredSecrets(st any) error {
	ss, ok := st.(secretSealer)
	if !ok {
		return nil
	}
	n, unopened, err := ss.SealSecrets(context.Background())
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("sealed TOTP secrets stored in clear by an earlier version", "count", n)
	}
	if len(unopened) > 0 {
		s.log.Error("TOTP secrets do not open with the sealing key; these users cannot pass two-factor until the key file that sealed them is restored or their two-factor is reset (wsguard user reset-2fa)",
			"key_file", s.cfg.SecretsKeyPath(), "users", unopened)
	}
	return nil
}
