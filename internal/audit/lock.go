package audit

import (
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f (flock), waiting for
// another process's append to finish.
func lockFile(f *os.File) (unlock func(), err error) {
	fd := int(f.Fd()) // #nosec G115 -- a file descriptor fits in int
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock audit log: %w", err)
	}
	return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, nil
}
