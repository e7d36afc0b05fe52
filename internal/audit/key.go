package audit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// keyBytes is the length of the chain key (HMAC-SHA256 takes any length;
// 32 bytes is its natural strength).
const keyBytes = 32

// ReadKey reads the chain key from path: one line of 64 hex characters.
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's audit.key_file setting
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != keyBytes {
		return nil, fmt.Errorf("audit key: %q is not %d bytes in hex (move it aside to have a new key made, which starts a new chain)", path, keyBytes)
	}
	return key, nil
}

// loadOrCreateKey reads the key at path, or makes a new one (mode 0600) if
// there is none. The file appears whole or not at all: it is written under
// a temporary name and linked into place, so a process starting at the
// same moment reads either nothing or the full key, never half of it.
func loadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = ReadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key = make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err = errors.Join(err, tmp.Sync(), tmp.Close()); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		key, err = ReadKey(path) // another process made it first
		return key, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	return key, true, nil
}
