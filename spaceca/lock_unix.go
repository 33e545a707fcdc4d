//go:build unix

package spaceca

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes the exclusive lock of the state directory's lock file,
// waiting for another writer (the ca subcommand, a router) to finish. The
// kernel drops the lock when its holder dies, so a crashed writer never
// leaves the directory locked.
func lockDir(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, privateMode)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
