package tlsconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPKI is a root CA, an intermediate CA under it and one RSA-2048 and
// one ECDSA P-256 leaf key. Leaf certificates are made per test; the keys
// are made once because RSA key generation is slow under -race.
type testPKI struct {
	root      *x509.Certificate
	inter     *x509.Certificate
	interKey  *ecdsa.PrivateKey
	roots     *x509.CertPool
	rsaLeaf   *rsa.PrivateKey
	ecdsaLeaf *ecdsa.PrivateKey
}

// sharedPKI is a test fixture, made on first use.
var sharedPKI = sync.OnceValues(newTestPKI)

func newTestPKI() (*testPKI, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p := &testPKI{roots: x509.NewCertPool()}
	if p.root, err = makeCert(caTemplate("test root"), nil, rootKey, rootKey); err != nil {
		return nil, err
	}
	p.roots.AddCert(p.root)
	if p.interKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if p.inter, err = makeCert(caTemplate("test intermediate"), p.root, p.interKey, rootKey); err != nil {
		return nil, err
	}
	if p.rsaLeaf, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	p.ecdsaLeaf, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return p, err
}

func pkiFor(t testing.TB) *testPKI {
	t.Helper()
	p, err := sharedPKI()
	require.NoError(t, err, "making the test PKI")
	return p
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// makeCert signs tmpl with signer; parent nil means self-signed.
func makeCert(tmpl, parent *x509.Certificate, key crypto.Signer, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// leafSpec describes a leaf certificate to make.
type leafSpec struct {
	file     string // base name of the .pem and .key files
	ecdsa    bool   // ECDSA P-256, else RSA-2048
	names    []string
	notAfter time.Time // zero: one year from now
}

// writeLeaf makes a leaf signed by the intermediate and writes its chain
// (leaf, intermediate) and key as PEM files under dir.
func (p *testPKI) writeLeaf(t testing.TB, dir string, spec leafSpec) CertFiles {
	t.Helper()
	var key crypto.Signer = p.rsaLeaf
	if spec.ecdsa {
		key = p.ecdsaLeaf
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	leaf, err := makeCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: spec.file},
		DNSNames:    spec.names,
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    spec.notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, p.inter, key, p.interKey)
	require.NoError(t, err, "making leaf %s", spec.file)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	files := CertFiles{Cert: filepath.Join(dir, spec.file+".pem"), Key: filepath.Join(dir, spec.file+".key")}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.inter.Raw})...)
	require.NoError(t, os.WriteFile(files.Cert, chain, 0o600))
	require.NoError(t, os.WriteFile(files.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return files
}

// bothCerts writes an ECDSA and an RSA leaf for names, named after prefix.
func bothCerts(t testing.TB, prefix string, names ...string) []CertFiles {
	p, dir := pkiFor(t), t.TempDir()
	return []CertFiles{
		p.writeLeaf(t, dir, leafSpec{file: prefix + "-rsa", names: names}),
		p.writeLeaf(t, dir, leafSpec{file: prefix + "-ecdsa", ecdsa: true, names: names}),
	}
}

// newStore builds a Store or stops the test.
func newStore(t testing.TB, opts Options, apps ...App) *Store {
	t.Helper()
	s, err := New(apps, opts)
	require.NoError(t, err, "New(%+v)", apps)
	return s
}

// serve runs a TLS server with s.Config() on 127.0.0.1 until the test ends
// (see serveConfig).
func serve(t testing.TB, s *Store) string {
	t.Helper()
	return serveConfig(t, s.Config())
}

// serveConfig runs a TLS server with cfg on 127.0.0.1 until the test ends.
// After a handshake it writes one byte ("x"), so that a TLS 1.3 client has
// read the session tickets sent after the handshake, and closes.
func serveConfig(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { answer(c.(*tls.Conn)) })
		}
	})
	return ln.Addr().String()
}

func answer(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if c.Handshake() != nil {
		return
	}
	_, _ = c.Write([]byte("x"))
}

// clientConfig is a verifying client for sni (no SNI when sni is ""),
// willing to speak TLS 1.0 to 1.3 unless the case pins versions.
func clientConfig(t testing.TB, sni string) *tls.Config {
	return &tls.Config{
		ServerName: sni,
		RootCAs:    pkiFor(t).roots,
		MinVersion: tls.VersionTLS10,
		MaxVersion: tls.VersionTLS13,
	}
}

// handshake dials addr with cfg, completes the handshake, reads the
// server's byte and returns the connection state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return c.ConnectionState(), err
	}
	return c.ConnectionState(), nil
}

// receivedAlert reports whether err is the alert name sent by the server.
// crypto/tls reports a received alert as a *net.OpError "remote error"
// wrapping an unexported type, so its text ("tls: unrecognized name") is
// the only handle: this is the one place that compares error text.
func receivedAlert(err error, name string) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err.Error() == "tls: "+name
}

// suiteNames turns IDs into IANA names, for messages.
func suiteNames(ids []uint16) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tls.CipherSuiteName(id)
	}
	return out
}
