package atrest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Owner-only modes for what wsguard keeps on disk.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Tightened reports a directory or file whose mode let other users in,
// and which was set owner-only.
type Tightened struct {
	Path string
	Was  fs.FileMode // permission bits before
	Now  fs.FileMode // permission bits after
}

// Dir creates dir (and missing parents) owner-only, or tightens an
// existing dir to 0700. It returns what it tightened, if anything.
func Dir(dir string) (*Tightened, error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return tighten(dir, DirMode)
}

// Tighten sets an existing file to 0600, or an existing directory to
// 0700, when its mode lets group or others in; a missing path is no error
// and is left missing. It returns what it tightened, if anything.
func Tighten(path string) (*Tightened, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return tighten(path, DirMode)
	}
	return tighten(path, FileMode)
}

// CreateFile makes sure path exists, created 0600 when missing (an empty
// file: for SQLite, a valid empty database), and tightens it otherwise.
// Creating it first is what keeps the mode independent of the umask: files
// SQLite makes itself (-wal, -shm) copy the database file's mode.
func CreateFile(path string) (*Tightened, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode) // #nosec G304 -- a path inside the operator's data_dir or store setting
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("create %q: %w", path, err)
		}
		// The umask can only remove bits, and 0600 keeps none for others;
		// chmod anyway so the mode is exactly 0600.
		if err := os.Chmod(path, FileMode); err != nil {
			return nil, fmt.Errorf("create %q: %w", path, err)
		}
		return nil, nil
	case errors.Is(err, fs.ErrExist):
		return Tighten(path)
	default:
		return nil, fmt.Errorf("create %q: %w", path, err)
	}
}

// tighten sets path to want when its mode lets group or others in.
func tighten(path string, want fs.FileMode) (*Tightened, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	was := st.Mode().Perm()
	if was&0o077 == 0 {
		return nil, nil
	}
	if err := os.Chmod(path, want); err != nil {
		return nil, fmt.Errorf("tighten %q from %04o: %w", path, was, err)
	}
	return &Tightened{Path: path, Was: was, Now: want}, nil
}
