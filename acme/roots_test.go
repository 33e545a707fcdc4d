package acme

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRootsFromStorage: the root of a stored ACME chain is the pool's
// certificate it verifies to (the chain itself ends below it), once for
// many domains; no certificate yet, or a chain that does not verify, is a
// *NoRootError saying why.
func TestRootsFromStorage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	caPEM, leafPEM, _ := testChain(t, "shop.test", now.Add(60*24*time.Hour))
	rootsFile := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(rootsFile, caPEM, 0o600))
	opts := Options{Directory: "https://acme.example.com:14000/dir", AgreeTOS: true, Storage: filepath.Join(dir, "acme"), TrustedRootsFile: rootsFile}
	storage := &certmagic.FileStorage{Path: opts.Storage}
	require.NoError(t, storage.Store(context.Background(), certmagic.StorageKeys.SiteCert("acme.example.com-14000-dir", "shop.test"), leafPEM))
	caBlk, _ := pem.Decode(caPEM)

	roots, err := RootsFromStorage(opts, []string{"shop.test", "www.shop.test"}, now)
	require.NoError(t, err)
	require.Len(t, roots, 1)
	assert.Equal(t, caBlk.Bytes, roots[0].Raw, "the pool's root, which the stored chain does not hold")

	_, err = RootsFromStorage(opts, []string{"www.shop.test"}, now)
	var nr *NoRootError
	require.ErrorAs(t, err, &nr)
	assert.Contains(t, err.Error(), "no certificate obtained yet")

	noRoots := opts
	noRoots.TrustedRootsFile = ""
	_, err = RootsFromStorage(noRoots, []string{"shop.test"}, now)
	require.ErrorAs(t, err, &nr)
	assert.Contains(t, err.Error(), "does not verify")
	assert.Contains(t, err.Error(), "unknown authority")
}
