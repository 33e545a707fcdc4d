package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clientPKI writes a CA and a client certificate it signed (PEM, the
// certificate then the CA) with its key into a test directory, and returns
// the CA pool and the two file paths.
func clientPKI(t *testing.T) (pool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "spacebench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	require.NoError(t, os.WriteFile(certFile, chain, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile
}

// TestRunClientCertificate: with ClientCert and ClientKey the load
// presents the certificate to a server that requires one, over HTTP/1.1
// and HTTP/2 on every connection; without them every request fails in
// TLS; one without the other does not run.
func TestRunClientCertificate(t *testing.T) {
	t.Parallel()
	pool, certFile, keyFile := clientPKI(t)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2"}[h2], func(t *testing.T) {
			t.Parallel()
			seen := make(chan string, 100)
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if len(r.TLS.PeerCertificates) > 0 {
					select {
					case seen <- r.TLS.PeerCertificates[0].Subject.CommonName:
					default:
					}
				}
				io.WriteString(w, "ok")
			}))
			s.Config.ErrorLog = log.New(io.Discard, "", 0)
			s.EnableHTTP2 = h2
			s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
			s.StartTLS()
			t.Cleanup(s.Close)

			res, err := Run(t.Context(), Config{URL: s.URL, Requests: 6, Conns: 3, HTTP2: h2, Insecure: true,
				ClientCert: certFile, ClientKey: keyFile}, nil)
			require.NoError(t, err)
			assert.EqualValues(t, 6, res.Requests, "errors: %v", res.Errors)
			assert.Equal(t, 6, res.Status[200], "statuses: %v, errors: %v", res.Status, res.Errors)
			assert.Equal(t, "spacebench", <-seen, "the server saw the client certificate")

			res, err = Run(t.Context(), Config{URL: s.URL, Requests: 2, HTTP2: h2, Insecure: true}, nil)
			require.NoError(t, err)
			assert.Zero(t, res.Status[200], "without a certificate")
			assert.Positive(t, res.Errors[KindTLS]+res.Errors[KindRead], "without a certificate: %v", res.Errors)
		})
	}
	t.Run("one without the other", func(t *testing.T) {
		t.Parallel()
		_, err := Run(t.Context(), Config{URL: "https://127.0.0.1:1/", Requests: 1, ClientCert: certFile}, nil)
		assert.ErrorContains(t, err, "needs its key")
		_, err = Run(t.Context(), Config{URL: "https://127.0.0.1:1/", Requests: 1, ClientKey: keyFile}, nil)
		assert.ErrorContains(t, err, "needs its certificate")
		_, err = Run(t.Context(), Config{URL: "https://127.0.0.1:1/", Requests: 1, ClientCert: certFile, ClientKey: certFile}, nil)
		assert.ErrorContains(t, err, "client certificate:")
	})
}
