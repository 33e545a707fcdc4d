//go:build !unix

package spaceca

import (
	"fmt"
	"os"
)

// lockDir only creates the lock file where flock(2) is missing: writers in
// one process are still serialized by the CA's mutex, but the ca
// subcommand and a running router must not write at the same moment.
func lockDir(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, privateMode)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	return func() { _ = f.Close() }, nil
}
