package atrest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o002, 0o000} {
		old := syscall.Umask(umask)
		dir := filepath.Join(t.TempDir(), "data", "nested")
		if tt, err := Dir(dir); err != nil || tt != nil {
			t.Errorf("umask %03o: Dir on a new directory: %v %v", umask, tt, err)
		}
		f := filepath.Join(dir, "wsguard.db")
		if tt, err := CreateFile(f); err != nil || tt != nil {
			t.Errorf("umask %03o: CreateFile: %v %v", umask, tt, err)
		}
		syscall.Umask(old)
		if m := mode(t, dir); m != DirMode {
			t.Errorf("umask %03o: dir %04o, want 0700", umask, m)
		}
		if m := mode(t, f); m != FileMode {
			t.Errorf("umask %03o: file %04o, want 0600", umask, m)
		}
	}
}

func TestLooseOnesTightenedAndReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	_ = os.Chmod(f, 0o644)
	tt, err := Dir(dir)
	if err != nil || tt == nil || tt.Was != 0o755 || tt.Now != 0o700 || mode(t, dir) != 0o700 {
		t.Errorf("Dir: %+v %v, mode %04o", tt, err, mode(t, dir))
	}
	tt, err = Tighten(f)
	if err != nil || tt == nil || tt.Was != 0o644 || tt.Now != 0o600 || mode(t, f) != 0o600 {
		t.Errorf("Tighten: %+v %v, mode %04o", tt, err, mode(t, f))
	}
	sub := filepath.Join(dir, "tls")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(sub, 0o755)
	if tt, err := Tighten(sub); err != nil || tt == nil || tt.Now != DirMode || mode(t, sub) != DirMode {
		t.Errorf("Tighten on a directory: %+v %v, mode %04o", tt, err, mode(t, sub))
	}
	// CreateFile on an existing loose file keeps its contents.
	_ = os.Chmod(f, 0o640)
	if tt, err := CreateFile(f); err != nil || tt == nil || tt.Was != 0o640 {
		t.Errorf("CreateFile on a loose file: %+v %v", tt, err)
	}
	if b, _ := os.ReadFile(f); string(b) != "x" {
		t.Error("CreateFile changed an existing file's contents")
	}
	// Already tight, or missing: nothing to report.
	if tt, err := Tighten(f); err != nil || tt != nil {
		t.Errorf("tight file reported: %+v %v", tt, err)
	}
	if tt, err := Tighten(filepath.Join(dir, "missing")); err != nil || tt != nil {
		t.Errorf("missing file: %+v %v", tt, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("Tighten created a missing file")
	}
}

const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func TestSealer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFile)
	s, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	if m := mode(t, path); m != FileMode {
		t.Errorf("key file %04o, want 0600", m)
	}
	sealed, err := s.Seal(secret)
	if err != nil || !strings.HasPrefix(sealed, sealedPrefix) || strings.Contains(sealed, secret) {
		t.Fatalf("Seal: %q %v", sealed, err)
	}
	// Deterministic: the store compares sealed values in SQL.
	if again, _ := s.Seal(secret); again != sealed {
		t.Error("the same secret sealed to different text")
	}
	if other, _ := s.Seal(secret + "A"); other == sealed {
		t.Error("different secrets sealed to the same text")
	}
	// The same key, loaded again, opens it.
	s2, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("second load: created %v, %v", created, err)
	}
	if p, ok, err := s2.Open(sealed); err != nil || !ok || p != secret {
		t.Errorf("Open: %q %v %v", p, ok, err)
	}
	// Empty stays empty; clear text passes through unsealed; sealed text is
	// not sealed twice.
	if v, _ := s.Seal(""); v != "" {
		t.Errorf("Seal(\"\") = %q", v)
	}
	if p, ok, err := s.Open(secret); err != nil || ok || p != secret {
		t.Errorf("Open(clear) = %q %v %v", p, ok, err)
	}
	if v, _ := s.Seal(sealed); v != sealed {
		t.Error("sealed text sealed twice")
	}
	// Another key does not open it, and says which key file it tried.
	other, _, err := LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := other.Open(sealed); err == nil || !ok || !strings.Contains(err.Error(), "other.key") {
		t.Errorf("Open under another key: %v %v", ok, err)
	}
	// A tampered value does not open.
	b := []byte(sealed)
	b[len(b)-2] ^= 1
	if _, _, err := s.Open(string(b)); err == nil {
		t.Error("tampered value opened")
	}
	if _, _, err := s.Open(sealedPrefix + "!!"); err == nil {
		t.Error("damaged value opened")
	}
}

func TestKeyFileRefusedNotReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "restore") {
		t.Errorf("short key: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "c2hvcnQ=\n" {
		t.Error("a bad key file was overwritten")
	}
}

// TestLoadKeyNeverCreates: with a shared store a node is given its key;
// a missing or bad file is refused, never replaced, and a good one seals
// what a node that made the file opens.
func TestLoadKeyNeverCreates(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "shared.key")
	if _, err := LoadKey(missing); err == nil || !strings.Contains(err.Error(), "secrets_key_file") {
		t.Fatalf("LoadKey(missing) = %v, want a refusal naming secrets_key_file", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("LoadKey made a key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(bad); err == nil {
		t.Fatal("LoadKey accepted a short key")
	}
	made, created, err := LoadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil || !created {
		t.Fatal(err)
	}
	given, err := LoadKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := made.Seal("JBSWY3DPEHPK3PXP")
	if err != nil {
		t.Fatal(err)
	}
	if plain, ok, err := given.Open(sealed); err != nil || !ok || plain != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("the same key file does not open: %q %v %v", plain, ok, err)
	}
}
