package spaceca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInit: a new ECDSA P-256 CA, self-signed, valid ten years, the key
// mode 0600 in directories made 0700.
func TestInit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		certPath, keyPath, _ := caPaths(dir)
		start := time.Now()
		cert, err := Init(certPath, keyPath, testSpace)
		require.NoError(t, err)

		assert.Equal(t, fs.FileMode(0o600), mode(t, keyPath), "key mode")
		assert.Equal(t, fs.FileMode(0o644), mode(t, certPath), "certificate mode")
		assert.Equal(t, fs.FileMode(0o700), mode(t, filepath.Dir(keyPath)), "created directory mode")
		assert.Equal(t, []string{"space-key.pem", "space.pem"}, listDir(t, filepath.Dir(keyPath)), "no temporary file left")

		assert.Equal(t, "my-space space CA", cert.Subject.CommonName)
		assert.True(t, cert.IsCA)
		assert.True(t, cert.MaxPathLenZero)
		assert.Equal(t, start.AddDate(CAYears, 0, 0).UTC(), cert.NotAfter.UTC())
		assert.NoError(t, cert.CheckSignatureFrom(cert), "self-signed")
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		require.True(t, ok, "an ECDSA key, got %T", cert.PublicKey)
		assert.Equal(t, elliptic.P256(), pub.Curve)

		key, err := readKey(keyPath)
		require.NoError(t, err)
		assert.NoError(t, checkCA(cert, key, certPath, keyPath))
	})
}

// TestInitRefusesExisting: Init never overwrites a CA file, and writes
// nothing when one of the two exists.
func TestInitRefusesExisting(t *testing.T) {
	t.Parallel()
	for _, existing := range []string{"key", "cert"} {
		t.Run(existing, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certPath, keyPath, _ := caPaths(dir)
			there := map[string]string{"key": keyPath, "cert": certPath}[existing]
			require.NoError(t, os.MkdirAll(filepath.Dir(there), 0o700))
			require.NoError(t, os.WriteFile(there, []byte("keep me"), 0o600))

			_, err := Init(certPath, keyPath, testSpace)
			require.Error(t, err)
			assert.ErrorIs(t, err, fs.ErrExist)
			assert.Contains(t, err.Error(), there, "the error names the file")
			got, err := os.ReadFile(there)
			require.NoError(t, err)
			assert.Equal(t, "keep me", string(got), "the existing file is untouched")
			assert.Len(t, listDir(t, filepath.Dir(there)), 1, "nothing else written")
		})
	}
}

// TestInitAtomic: a write that fails half way leaves no file, not even a
// temporary one.
func TestInitAtomic(t *testing.T) {
	t.Parallel()
	for _, failOn := range []int{1, 2} { // the key, then the certificate
		dir := t.TempDir()
		certPath, keyPath, _ := caPaths(dir)
		calls := 0
		fw := files{write: func(f *os.File, p []byte) (int, error) {
			calls++
			if calls == failOn {
				n, _ := f.Write(p[:len(p)/2])
				return n, errors.New("disk full")
			}
			return f.Write(p)
		}}
		_, err := initCA(fw, certPath, keyPath, testSpace, time.Now())
		require.Error(t, err, "write %d fails", failOn)
		assert.Contains(t, err.Error(), "disk full")
		assert.Empty(t, listDir(t, filepath.Dir(keyPath)), "write %d failed: no file is left, the key included", failOn)
	}
}

// TestInitBadSpace: the space name must be one Open accepts; nothing is
// written otherwise.
func TestInitBadSpace(t *testing.T) {
	t.Parallel()
	for _, space := range []string{"", "My Space", "a/b"} {
		dir := t.TempDir()
		certPath, keyPath, _ := caPaths(dir)
		_, err := Init(certPath, keyPath, space)
		require.Error(t, err, "space %q", space)
		assert.Contains(t, err.Error(), "space", "space %q", space)
		assert.NoDirExists(t, filepath.Dir(certPath))
	}
}
