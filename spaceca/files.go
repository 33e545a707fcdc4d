package spaceca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of what the package creates: private keys and everything under the
// state directory are for the router's user only (SPEC.md section 11.3).
const (
	dirMode     fs.FileMode = 0o700
	privateMode fs.FileMode = 0o600
	publicMode  fs.FileMode = 0o644 // certificates written by Download
)

// files writes files so that a crash leaves either the old content or the
// new, never part of it: the bytes go to a temporary file in the same
// directory, which is synced and then renamed (or linked) into place, and
// the directory is synced. The zero value writes with (*os.File).Write.
type files struct {
	// write writes p to f; nil means f.Write. Tests make it fail half way.
	write func(f *os.File, p []byte) (int, error)
}

// writeTemp writes data to a new temporary file next to path and returns
// its name; on error nothing is left behind.
func (fw files) writeTemp(path string, data []byte, mode fs.FileMode) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	if err := fw.fill(f, data, mode); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// fill writes data to f with mode, syncs and closes it.
func (fw files) fill(f *os.File, data []byte, mode fs.FileMode) error {
	if err := f.Chmod(mode); err != nil {
		return err
	}
	write := fw.write
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(f, data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// replace writes data to path, replacing any file there in one step.
func (fw files) replace(path string, data []byte, mode fs.FileMode) error {
	tmp, err := fw.writeTemp(path, data, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// create writes data to path, which must not exist: an existing file is
// never overwritten, even one that appears while data is being written
// (the temporary file is hard-linked to path, which fails if path exists).
func (fw files) create(path string, data []byte, mode fs.FileMode) error {
	if err := refuseExisting(path); err != nil {
		return err
	}
	tmp, err := fw.writeTemp(path, data, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = os.Link(tmp, path)
	_ = os.Remove(tmp)
	switch {
	case errors.Is(err, fs.ErrExist):
		return existsError(path)
	case err != nil:
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// existsError is the refusal to overwrite path; it wraps fs.ErrExist.
func existsError(path string) error {
	return fmt.Errorf("%s already exists: refusing to overwrite it: %w", path, fs.ErrExist)
}

// refuseExisting returns existsError when something is at path (a
// dangling symbolic link included), nil when nothing is.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return existsError(path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// mkdirPrivate creates dir and its missing parents with mode 0700.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	return nil
}

// looseMode returns a warning when path can be read or written by users
// other than its owner, "" when not (or when it cannot be checked).
func looseMode(path, what string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s has mode %04o: other users may read it; chmod %04o %s",
		what, path, fi.Mode().Perm(), wantMode(fi), path)
}

func wantMode(fi fs.FileInfo) fs.FileMode {
	if fi.IsDir() {
		return dirMode
	}
	return privateMode
}

// ReplaceFile writes data to path with mode, replacing any file there in
// one step: a crash leaves the old content or the new, never a part. The
// router keeps its other state under state_dir with it.
func ReplaceFile(path string, data []byte, mode fs.FileMode) error {
	return files{}.replace(path, data, mode)
}
