package spaceca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testSpace is the space name of the test CAs.
const testSpace = "my-space"

// caPaths are the files of a test CA in dir.
func caPaths(dir string) (cert, key, state string) {
	return filepath.Join(dir, "ca", "space.pem"), filepath.Join(dir, "ca", "space-key.pem"), filepath.Join(dir, "state")
}

// newCA makes a CA with Init in dir and opens it with the real clock (the
// fake one inside a synctest bubble).
func newCA(t *testing.T, dir string) *CA {
	t.Helper()
	cert, key, _ := caPaths(dir)
	_, err := Init(cert, key, testSpace)
	require.NoError(t, err)
	return openCA(t, dir)
}

// openCA opens the CA newCA made in dir, as a second process would.
func openCA(t *testing.T, dir string) *CA {
	t.Helper()
	cert, key, state := caPaths(dir)
	ca, err := Open(Options{CertPath: cert, KeyPath: key, StateDir: state, Space: testSpace})
	require.NoError(t, err)
	return ca
}

// mode returns the permission bits of path.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// certOf reads the certificate of an issued client.
func certOf(t *testing.T, ca *CA, id string) *x509.Certificate {
	t.Helper()
	certs, err := readCertificates(filepath.Join(ca.clientsDir(), id, FileCert))
	require.NoError(t, err)
	require.Len(t, certs, 1)
	return certs[0]
}

// writePEM writes blocks of typ to dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var data []byte
	for _, der := range ders {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})...)
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// writeKey writes key as PKCS#8 PEM to dir/name.
func writeKey(t *testing.T, dir, name string, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}

// tmpl is a certificate template for the PKI of the verify tests.
type tmpl struct {
	cn        string
	ca        bool
	notBefore time.Time
	notAfter  time.Time
	usages    []x509.ExtKeyUsage
	serial    int64
}

// issue signs t for pub with parent and parentKey (self-signed when parent
// is nil).
func issue(tb testing.TB, t tmpl, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	tb.Helper()
	serial := t.serial
	if serial == 0 {
		serial = 1
	}
	c := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: t.cn},
		NotBefore:             t.notBefore,
		NotAfter:              t.notAfter,
		ExtKeyUsage:           t.usages,
		BasicConstraintsValid: true,
		IsCA:                  t.ca,
	}
	if t.ca {
		c.KeyUsage = x509.KeyUsageCertSign
	} else {
		c.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent = c
	}
	der, err := x509.CreateCertificate(rand.Reader, c, parent, pub, parentKey)
	require.NoError(tb, err)
	out, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	return out
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	return k
}
