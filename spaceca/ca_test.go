package spaceca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenErrors: each bad CA gets an error naming the file at fault,
// never a panic and never an open CA.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	certPath, keyPath, _ := caPaths(base)
	_, err := Init(certPath, keyPath, testSpace)
	require.NoError(t, err)
	otherKey := writeKey(t, base, "other-key.pem", newKey(t))
	now := time.Now()
	leafKey := newKey(t)
	leaf := issue(t, tmpl{cn: "leaf", notBefore: now, notAfter: now.Add(time.Hour)}, leafKey.Public(), nil, leafKey)
	leafPath := writePEM(t, base, "leaf.pem", "CERTIFICATE", leaf.Raw)
	leafKeyPath := writeKey(t, base, "leaf-key.pem", leafKey)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p384CA := issue(t, tmpl{cn: "p384", ca: true, notBefore: now, notAfter: now.Add(time.Hour)}, p384.Public(), nil, p384)
	p384Path := writePEM(t, base, "p384.pem", "CERTIFICATE", p384CA.Raw)
	p384KeyPath := writeKey(t, base, "p384-key.pem", p384)
	encrypted := filepath.Join(base, "encrypted.pem")
	require.NoError(t, os.WriteFile(encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), 0o600))
	garbage := filepath.Join(base, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM\n"), 0o600))
	missing := filepath.Join(base, "missing.pem")

	cases := []struct {
		name string
		o    func(o *Options)
		file string // the error names it
		msg  string // and says this
	}{
		{"missing certificate", func(o *Options) { o.CertPath = missing }, missing, "no such file"},
		{"missing key", func(o *Options) { o.KeyPath = missing }, missing, "no such file"},
		{"certificate not PEM", func(o *Options) { o.CertPath = garbage }, garbage, "no PEM CERTIFICATE block"},
		{"key not PEM", func(o *Options) { o.KeyPath = garbage }, garbage, "no PEM private key block"},
		{"key of another certificate", func(o *Options) { o.KeyPath = otherKey }, otherKey, "does not match the CA certificate"},
		{"not a CA", func(o *Options) { o.CertPath, o.KeyPath = leafPath, leafKeyPath }, leafPath, "not a CA certificate"},
		{"P-384", func(o *Options) { o.CertPath, o.KeyPath = p384Path, p384KeyPath }, p384Path, "ECDSA P-384 key"},
		{"encrypted key", func(o *Options) { o.KeyPath = encrypted }, encrypted, "encrypted"},
		{"previous missing", func(o *Options) {
			o.Previous = []Previous{{CertPath: missing, RetireAt: now.Add(time.Hour)}}
		}, missing, "no such file"},
		{"previous not a CA", func(o *Options) {
			o.Previous = []Previous{{CertPath: leafPath, RetireAt: now.Add(time.Hour)}}
		}, leafPath, "not a CA certificate"},
		{"previous without retire time", func(o *Options) {
			o.Previous = []Previous{{CertPath: p384Path}}
		}, p384Path, "needs a retire time"},
		{"no space", func(o *Options) { o.Space = "" }, "", "set space in the config"},
		{"space not a trust domain", func(o *Options) { o.Space = "My Space" }, `"My Space"`, "lower-case letters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Options{CertPath: certPath, KeyPath: keyPath, StateDir: filepath.Join(t.TempDir(), "state"), Space: testSpace}
			tc.o(&o)
			ca, err := Open(o)
			require.Error(t, err)
			assert.Nil(t, ca)
			assert.Contains(t, err.Error(), tc.file, "the error names the file")
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), "\n", "one line")
		})
	}
}

// TestOpenUnreadable: a CA key the router's user cannot read is an error
// naming it.
func TestOpenUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	certPath, keyPath, state := caPaths(dir)
	_, err := Init(certPath, keyPath, testSpace)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(keyPath, 0))
	_, err = Open(Options{CertPath: certPath, KeyPath: keyPath, StateDir: state, Space: testSpace})
	require.ErrorIs(t, err, fs.ErrPermission)
	assert.Contains(t, err.Error(), keyPath)
}

// TestOpenRSA: an RSA CA is accepted, and signs client certificates.
func TestOpenRSA(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("RSA key generation is slow")
	}
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	now := time.Now()
	cert := issue(t, tmpl{cn: "rsa CA", ca: true, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(5, 0, 0)}, key.Public(), nil, key)
	ca, err := Open(Options{CertPath: writePEM(t, dir, "ca.pem", "CERTIFICATE", cert.Raw),
		KeyPath:  writePEM(t, dir, "ca-key.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)),
		StateDir: filepath.Join(dir, "state"), Space: testSpace})
	require.NoError(t, err)
	c, err := ca.Issue("shop", "")
	require.NoError(t, err)
	assert.NoError(t, certOf(t, ca, c.ID).CheckSignatureFrom(cert))
}

// TestOpenStateDir: Open creates the state directory with mode 0700, and
// warns about an existing one, or a CA key, that other users may read.
func TestOpenStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, dir)
	assert.Equal(t, fs.FileMode(0o700), mode(t, ca.StateDir()))
	assert.Equal(t, fs.FileMode(0o700), mode(t, ca.clientsDir()))
	assert.Empty(t, ca.Warnings())

	_, keyPath, state := caPaths(dir)
	require.NoError(t, os.Chmod(state, 0o755))
	require.NoError(t, os.Chmod(keyPath, 0o644))
	ca = openCA(t, dir)
	w := strings.Join(ca.Warnings(), "\n")
	assert.Contains(t, w, "the state directory "+state+" has mode 0755")
	assert.Contains(t, w, "the CA key "+keyPath+" has mode 0644")
}

// TestOpenPrevious: previous CAs are anchors with their retire times; one
// already retired at load is a warning.
func TestOpenPrevious(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldDir := filepath.Join(dir, "old")
	oldCert, oldKey, _ := caPaths(oldDir)
	_, err := Init(oldCert, oldKey, testSpace)
	require.NoError(t, err)
	newCA(t, dir)
	certPath, keyPath, state := caPaths(dir)
	now := time.Now()
	retired := filepath.Join(dir, "retired.pem")
	data, err := os.ReadFile(oldCert)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(retired, data, 0o644))

	ca, err := Open(Options{CertPath: certPath, KeyPath: keyPath, StateDir: state, Space: testSpace,
		Previous: []Previous{{CertPath: oldCert, RetireAt: now.Add(time.Hour)}, {CertPath: retired, RetireAt: now.Add(-time.Hour)}}})
	require.NoError(t, err)
	anchors := ca.Anchors()
	require.Len(t, anchors, 3)
	assert.True(t, anchors[0].Cert.Equal(ca.Certificate()))
	assert.True(t, anchors[0].RetireAt.IsZero(), "the current CA never retires")
	assert.Equal(t, now.Add(time.Hour), anchors[1].RetireAt)
	require.Len(t, ca.Warnings(), 1)
	assert.Contains(t, ca.Warnings()[0], "the previous CA "+retired+" was retired at")
}
