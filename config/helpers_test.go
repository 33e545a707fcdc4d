package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeCert writes a self-signed ECDSA certificate for names, valid now,
// and its key, at certPath and keyPath under dir.
func writeCert(t *testing.T, dir, certPath, keyPath string, names ...string) {
	t.Helper()
	now := time.Now()
	writeCertValid(t, dir, certPath, keyPath, now.Add(-time.Hour), now.Add(24*time.Hour), names...)
}

// writeCertValid is writeCert with a chosen validity period.
func writeCertValid(t *testing.T, dir, certPath, keyPath string, from, until time.Time, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    from,
		NotAfter:     until,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	writeFile(t, dir, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, dir, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// writeFile writes data at name under dir, making directories, and
// returns the full path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// problems returns the lines of err, which must be an *Errors.
func problems(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	errs, ok := errors.AsType[*Errors](err)
	require.True(t, ok, "error is %T, want *Errors: %v", err, err)
	out := make([]string, len(errs.Problems))
	for i, p := range errs.Problems {
		out[i] = p.String()
	}
	return out
}

// testCA is a certificate made by makeCert, with its key and both in PEM.
type testCA struct {
	cert            *x509.Certificate
	key             crypto.Signer
	certPEM, keyPEM []byte
}

// caTemplate returns the template of a CA certificate named cn, valid from
// an hour ago for ten years, as spacerouter ca init makes.
func caTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// newKey returns a new ECDSA key on curve.
func newKey(t *testing.T, curve elliptic.Curve) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	require.NoError(t, err)
	return key
}

// makeCert self-signs tmpl with key (nil: a new ECDSA P-256 key).
func makeCert(t *testing.T, tmpl *x509.Certificate, key crypto.Signer) testCA {
	t.Helper()
	if key == nil {
		key = newKey(t, elliptic.P256())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return testCA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// writeCA writes a new ECDSA P-256 CA named cn at certPath and, unless it
// is "", its key at keyPath, under dir.
func writeCA(t *testing.T, dir, certPath, keyPath, cn string) testCA {
	t.Helper()
	ca := makeCert(t, caTemplate(cn), nil)
	writeFile(t, dir, certPath, ca.certPEM)
	if keyPath != "" {
		writeFile(t, dir, keyPath, ca.keyPEM)
	}
	return ca
}

// readFile returns the contents of the file at path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}
