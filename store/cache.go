package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spacerouter/spacerouter/config"
)

// cacheFile is what store.cache_file holds: the values in force at a
// revision, from which config.BuildShared makes the same config.
type cacheFile struct {
	Revision int64       `json:"revision"`
	Keys     []config.KV `json:"keys"`
}

// writeCache rewrites the cache file at path atomically: a temporary file
// in the same directory, synced, renamed over it, the directory synced,
// so a crash leaves the old file or the new one. Mode 0600: it holds the
// keys of clients/.
func writeCache(path string, rev int64, sh *config.Shared) error {
	data, err := json.Marshal(cacheFile{Revision: rev, Keys: sh.InForce()})
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, a no-op
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readCache reads the cache file at path.
func readCache(path string) (cacheFile, error) {
	var c cacheFile
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parsing the cache file %s: %w", path, err)
	}
	return c, nil
}
