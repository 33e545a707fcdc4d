package spaceca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// servedRoot is a self-signed root of an app's served chain.
func servedRoot(t *testing.T) *x509.Certificate {
	key := newKey(t)
	now := time.Now()
	return issue(t, tmpl{cn: "served root", ca: true, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(1, 0, 0)}, key.Public(), nil, key)
}

// TestDownload: the four files, their modes and contents.
func TestDownload(t *testing.T) {
	t.Parallel()
	ca := newCA(t, t.TempDir())
	c, err := ca.Issue("shop", "laptop")
	require.NoError(t, err)
	root1, root2 := servedRoot(t), servedRoot(t)
	dir := filepath.Join(t.TempDir(), "new", "dir")
	require.NoError(t, ca.Download(c.ID, dir, "demo_", []*x509.Certificate{root1, root2}))

	assert.Equal(t, []string{"demo_client.crt", "demo_client.key", "demo_client.pk8", "demo_root.crt"}, listDir(t, dir))
	assert.Equal(t, fs.FileMode(0o700), mode(t, dir))
	for name, want := range map[string]fs.FileMode{"demo_client.crt": 0o644, "demo_client.key": 0o600, "demo_client.pk8": 0o600, "demo_root.crt": 0o644} {
		assert.Equal(t, want, mode(t, filepath.Join(dir, name)), name)
	}
	chain, err := readCertificates(filepath.Join(dir, "demo_client.crt"))
	require.NoError(t, err)
	require.Len(t, chain, 2, "the certificate, then the CA")
	assert.True(t, chain[0].Equal(certOf(t, ca, c.ID)))
	assert.True(t, chain[1].Equal(ca.Certificate()))
	roots, err := readCertificates(filepath.Join(dir, "demo_root.crt"))
	require.NoError(t, err)
	require.Len(t, roots, 2)
	assert.True(t, roots[0].Equal(root1))
	assert.True(t, roots[1].Equal(root2))
	key, err := readKey(filepath.Join(dir, "demo_client.key"))
	require.NoError(t, err)
	assert.True(t, chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()))
	der, err := os.ReadFile(filepath.Join(dir, "demo_client.pk8"))
	require.NoError(t, err)
	pk8, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(t, err)
	assert.True(t, key.(interface{ Equal(crypto.PrivateKey) bool }).Equal(pk8), "client.pk8 is client.key")

	// Without a prefix, into an existing directory.
	plain := t.TempDir()
	require.NoError(t, ca.Download(c.ID, plain, "", []*x509.Certificate{root1}))
	assert.Equal(t, []string{"client.crt", "client.key", "client.pk8", "root.crt"}, listDir(t, plain))
}

// TestDownloadPKCS8MatchesOpenSSL: client.pk8 is byte for byte what
// `openssl pkcs8 -topk8 -outform DER -nocrypt -in client.key` writes.
func TestDownloadPKCS8MatchesOpenSSL(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	ca := newCA(t, t.TempDir())
	for i := range 5 { // a few keys: one with a short scalar would show a padding difference
		c, err := ca.Issue("shop", "")
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, ca.Download(c.ID, dir, "", []*x509.Certificate{ca.Certificate()}))
		cmd := exec.Command(openssl, "pkcs8", "-topk8", "-outform", "DER", "-nocrypt", "-in", filepath.Join(dir, "client.key"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		want, err := cmd.Output()
		require.NoError(t, err, "openssl: %s", stderr.String())
		got, err := os.ReadFile(filepath.Join(dir, "client.pk8"))
		require.NoError(t, err)
		assert.Equal(t, want, got, "key %d: client.pk8 differs from openssl's output", i)
	}
}

// TestDownloadRefuses: a file already there, an unknown id, a revoked or
// expired certificate, a bad prefix: an error naming it, nothing written.
func TestDownloadRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		c, err := ca.Issue("shop", "")
		require.NoError(t, err)
		roots := []*x509.Certificate{ca.Certificate()}

		for _, existing := range []string{"p_client.crt", "p_client.key", "p_client.pk8", "p_root.crt"} {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, existing), []byte("keep me"), 0o600))
			err := ca.Download(c.ID, dir, "p_", roots)
			require.ErrorIs(t, err, fs.ErrExist, existing)
			assert.Contains(t, err.Error(), filepath.Join(dir, existing))
			assert.Equal(t, []string{existing}, listDir(t, dir), "nothing written")
			got, err := os.ReadFile(filepath.Join(dir, existing))
			require.NoError(t, err)
			assert.Equal(t, "keep me", string(got))
		}

		dir := filepath.Join(t.TempDir(), "out")
		var unknown *UnknownIDError
		require.ErrorAs(t, ca.Download("0123456789abcdef", dir, "", roots), &unknown)
		require.ErrorAs(t, ca.Download("../state", dir, "", roots), &unknown)
		assert.ErrorContains(t, ca.Download(c.ID, dir, "a/b", roots), `prefix "a/b"`)
		assert.ErrorContains(t, ca.Download(c.ID, dir, "", nil), "the app shop serves no certificate chain")

		r, err := ca.Issue("shop", "")
		require.NoError(t, err)
		_, _, err = ca.Revoke(r.ID)
		require.NoError(t, err)
		assert.ErrorContains(t, ca.Download(r.ID, dir, "", roots), "client certificate "+r.ID+" was revoked on 2000-01-01T00:00:00Z")
		time.Sleep(time.Until(c.NotAfter))
		assert.ErrorContains(t, ca.Download(c.ID, dir, "", roots), "client certificate "+c.ID+" expired on 2001-02-01T00:00:00Z")
		assert.NoDirExists(t, dir)
	})
}

// TestDownloadAtomic: a write that fails half way leaves none of the four
// files.
func TestDownloadAtomic(t *testing.T) {
	t.Parallel()
	ca := newCA(t, t.TempDir())
	c, err := ca.Issue("shop", "")
	require.NoError(t, err)
	for failOn := 1; failOn <= 4; failOn++ {
		calls := 0
		ca.fw.write = func(f *os.File, p []byte) (int, error) {
			calls++
			if calls == failOn {
				n, _ := f.Write(p[:len(p)/2])
				return n, errors.New("disk full")
			}
			return f.Write(p)
		}
		dir := t.TempDir()
		err := ca.Download(c.ID, dir, "", []*x509.Certificate{ca.Certificate()})
		require.ErrorContains(t, err, "disk full")
		assert.Empty(t, listDir(t, dir), "write %d failed: no file left", failOn)
	}
}

// TestServedRoots: the top certificate of each chain file, once.
func TestServedRoots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	rootKey, leafKey := newKey(t), newKey(t)
	root := issue(t, tmpl{cn: "root", ca: true, notBefore: now, notAfter: now.Add(time.Hour)}, rootKey.Public(), nil, rootKey)
	leaf := issue(t, tmpl{cn: "leaf", notBefore: now, notAfter: now.Add(time.Hour)}, leafKey.Public(), root, rootKey)
	withRoot := writePEM(t, dir, "with-root.pem", "CERTIFICATE", leaf.Raw, root.Raw)
	again := writePEM(t, dir, "again.pem", "CERTIFICATE", leaf.Raw, root.Raw)
	leafOnly := writePEM(t, dir, "leaf.pem", "CERTIFICATE", leaf.Raw)
	roots, err := ServedRoots(withRoot, again, leafOnly)
	require.NoError(t, err)
	require.Len(t, roots, 2)
	assert.True(t, roots[0].Equal(root))
	assert.True(t, roots[1].Equal(leaf), "the top certificate of a chain without its root")

	_, err = ServedRoots(filepath.Join(dir, "missing.pem"))
	assert.ErrorContains(t, err, filepath.Join(dir, "missing.pem"))
}

// TestFiles: Files gives, in memory, exactly the files Download writes,
// and refuses as it does.
func TestFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		c, err := ca.Issue("shop", "laptop")
		require.NoError(t, err)
		roots := []*x509.Certificate{servedRoot(t)}
		dir := t.TempDir()
		require.NoError(t, ca.Download(c.ID, dir, "", roots))
		files, err := ca.Files(c.ID, roots)
		require.NoError(t, err)
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
			disk, err := os.ReadFile(filepath.Join(dir, f.Name))
			require.NoError(t, err)
			assert.Equal(t, disk, f.Data, f.Name)
			assert.Equal(t, mode(t, filepath.Join(dir, f.Name)), f.Mode, f.Name)
		}
		assert.Equal(t, []string{FileCert, FileKey, FilePKCS8, FileRootCA}, names)

		var unknown *UnknownIDError
		_, err = ca.Files("0123456789abcdef", roots)
		require.ErrorAs(t, err, &unknown)
		_, err = ca.Files(c.ID, nil)
		assert.ErrorContains(t, err, "the app shop serves no certificate chain")
		_, _, err = ca.Revoke(c.ID)
		require.NoError(t, err)
		_, err = ca.Files(c.ID, roots)
		var st *StatusError
		require.ErrorAs(t, err, &st)
		assert.Equal(t, StatusRevoked, st.Status)
		assert.Equal(t, "client certificate "+c.ID+" was revoked on 2000-01-01T00:00:00Z", err.Error())
	})
}
