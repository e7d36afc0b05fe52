package atrest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeyFile is the sealing key's file name inside data_dir.
const KeyFile = "secrets.key"

// sealedPrefix marks a sealed value. TOTP secrets are base32 (A-Z, 2-7),
// so a clear secret never starts with it.
const sealedPrefix = "sealed1:"

const (
	keyBytes   = 32
	nonceBytes = 12
)

// additionalData binds every sealed value to its purpose and version.
var additionalData = []byte("wsguard sealed secret v1")

// Sealer encrypts short secrets with AES-256-GCM under a key kept in a
// file of its own. The nonce is derived from the secret with HMAC-SHA256
// under a second subkey (a synthetic IV): equal secrets seal to equal
// text, and a nonce repeats only with its plaintext, which GCM tolerates.
type Sealer struct {
	path     string
	aead     cipher.AEAD
	nonceKey []byte
}

// LoadOrCreateKey reads the sealing key at path, or creates one (0600,
// 32 random bytes, base64) when the file does not exist. created reports
// the latter. A key file of the wrong size is refused, not replaced: the
// secrets sealed with it would be lost.
func LoadOrCreateKey(path string) (s *Sealer, created bool, err error) {
	b, err := os.ReadFile(path) // #nosec G304 -- <data_dir>/secrets.key
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, keyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("sealing key: %w", err)
		}
		if err := writeKey(path, key); err != nil {
			return nil, false, err
		}
		s, err := newSealer(path, key)
		return s, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("sealing key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != keyBytes {
		return nil, false, fmt.Errorf("sealing key %q: not %d base64-encoded bytes (restore the file from the backup taken with the database; it is needed to read sealed TOTP secrets)", path, keyBytes)
	}
	s, err = newSealer(path, key)
	return s, false, err
}

// KeyFor is how a node gets its sealing key: with a shared store it must
// be given (LoadKey), alone it is made on first start (LoadOrCreateKey).
func KeyFor(path string, shared bool) (s *Sealer, created bool, err error) {
	if shared {
		s, err = LoadKey(path)
		return s, false, err
	}
	return LoadOrCreateKey(path)
}

// LoadKey reads the sealing key at path and never creates one: a node
// sharing its store with others must use the key they use, so a missing
// file is an error that says so rather than a fresh key that would seal
// secrets no other node can open.
func LoadKey(path string) (*Sealer, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the configured secrets_key_file
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sealing key %q does not exist: with a shared store every node must be given the same key file (secrets_key_file); none is made, so that no node seals secrets the others cannot open", path)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != keyBytes {
		return nil, fmt.Errorf("sealing key %q: not %d base64-encoded bytes (the file every node shares, e.g. made with: head -c 32 /dev/urandom | base64)", path, keyBytes)
	}
	return newSealer(path, key)
}

// writeKey creates path 0600 with O_EXCL, so two starts racing cannot
// each write a key and keep secrets sealed with the loser's.
func writeKey(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode) // #nosec G304 -- <data_dir>/secrets.key
	if err != nil {
		return fmt.Errorf("sealing key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a half-written key must not be loaded next time
		return fmt.Errorf("sealing key %q: %w", path, err)
	}
	return nil
}

// newSealer derives the encryption and nonce subkeys from the file key,
// so neither use can weaken the other.
func newSealer(path string, key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(derive(key, "wsguard seal encryption v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{path: path, aead: aead, nonceKey: derive(key, "wsguard seal nonce v1")}, nil
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Seal returns plain sealed ("sealed1:" and base64 of nonce and
// ciphertext). The empty string stays empty: it means "no secret". A
// value already sealed is returned unchanged: a store carries a value it
// could not open as stored, and writing its row back must not seal it
// twice.
func (s *Sealer) Seal(plain string) (string, error) {
	if plain == "" || strings.HasPrefix(plain, sealedPrefix) {
		return plain, nil
	}
	m := hmac.New(sha256.New, s.nonceKey)
	m.Write([]byte(plain))
	nonce := m.Sum(nil)[:nonceBytes]
	// #nosec G407 -- not a fixed nonce: derived per plaintext under a secret key (synthetic IV, see Sealer)
	out := s.aead.Seal(nonce[:nonceBytes:nonceBytes], nonce, []byte(plain), additionalData)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open returns the plaintext of a value Seal produced. A value without
// the sealed prefix (written in clear by an earlier version) is returned
// unchanged with sealed false. A sealed value that does not open, under a
// different or damaged key, is an error naming the key file.
func (s *Sealer) Open(stored string) (plain string, sealed bool, err error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, false, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < nonceBytes+s.aead.Overhead() {
		return "", true, errors.New("sealed value is damaged")
	}
	p, err := s.aead.Open(nil, raw[:nonceBytes], raw[nonceBytes:], additionalData)
	if err != nil {
		return "", true, fmt.Errorf("sealed value does not open with the key in %q (a different key file than the one that sealed it)", s.path)
	}
	return string(p), true, nil
}
