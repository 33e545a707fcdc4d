package router

// Helpers of the dyno_tls tests (issue 12): CAs and dyno certificates made
// in the test, and TLS dynos (Go TLS servers on a raw listener, so every
// byte after the handshake is the test's).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// dynoCA is a CA that signs dyno certificates.
type dynoCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial atomic.Int64 // parallel subtests share a CA
}

func newDynoCA(t testing.TB, cn string) *dynoCA {
	t.Helper()
	return newDynoCAUntil(t, cn, time.Now().Add(365*24*time.Hour))
}

// newDynoCAUntil is newDynoCA valid until notAfter.
func newDynoCAUntil(t testing.TB, cn string, notAfter time.Time) *dynoCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &dynoCA{cert: cert, key: key}
	ca.serial.Store(1)
	return ca
}

// dynoCert shapes a dyno certificate.
type dynoCert struct {
	names   []string // DNS names and IP addresses
	expired bool     // valid until an hour ago
	// eku is the certificate's extended key usage; 0 is server auth.
	eku x509.ExtKeyUsage
}

// issue makes a dyno certificate signed by ca (nil: self-signed).
func (ca *dynoCA) issue(t testing.TB, dc dynoCert) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial := int64(1)
	if ca != nil {
		serial = ca.serial.Add(1)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: dc.names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if dc.expired {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	}
	if dc.eku != 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{dc.eku}
	}
	for _, n := range dc.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writeBundle writes the certificates of cas (and the leaves of certs: a
// self-signed dyno certificate as its own anchor) into the PEM file path
// and returns path.
func writeBundle(t testing.TB, path string, cas []*dynoCA, certs ...tls.Certificate) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})...)
	}
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// bundlePath is a path for a bundle in a directory of the test.
func bundlePath(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(t.TempDir(), name)
}

// tlsDyno is a dyno behind a Go TLS server: handle gets each connection
// after its handshake.
type tlsDyno struct {
	*rawDyno
	mu sync.Mutex
	// snis and alpns are each ClientHello's server name and protocols;
	// handshakes counts the handshakes that completed, resumed those that
	// resumed a session.
	snis       []string
	alpns      [][]string
	handshakes int
	resumed    int
	// ended receives one value per connection whose handler returned (the
	// router closed it, or it broke).
	ended chan struct{}
}

func startTLSDyno(t testing.TB, cert tls.Certificate, handle func(c net.Conn)) *tlsDyno {
	t.Helper()
	d := &tlsDyno{ended: make(chan struct{}, 64)}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			d.mu.Lock()
			d.snis = append(d.snis, h.ServerName)
			d.alpns = append(d.alpns, h.SupportedProtos)
			d.mu.Unlock()
			return nil, nil
		},
	}
	d.rawDyno = startRawDyno(t, func(c net.Conn) {
		defer func() { d.ended <- struct{}{} }()
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		d.mu.Lock()
		d.handshakes++
		if tc.ConnectionState().DidResume {
			d.resumed++
		}
		d.mu.Unlock()
		handle(tc)
	})
	return d
}

// hellos returns the server names and ALPN lists of the ClientHellos so far.
func (d *tlsDyno) hellos() ([]string, [][]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.snis...), append([][]string(nil), d.alpns...)
}

// handshakeCount returns the handshakes that completed and those resumed.
func (d *tlsDyno) handshakeCount() (all, resumed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handshakes, d.resumed
}

// waitEnded waits up to 5 s for a connection's handler to return.
func (d *tlsDyno) waitEnded(t testing.TB, why string) {
	t.Helper()
	select {
	case <-d.ended:
	case <-time.After(5 * time.Second):
		t.Fatalf("the dyno's connection was not closed within 5s: %s", why)
	}
}

// noneEnded asserts that no connection of the dyno ended so far.
func (d *tlsDyno) noneEnded(t testing.TB, why string) {
	t.Helper()
	select {
	case <-d.ended:
		t.Fatalf("a connection of the dyno was closed: %s", why)
	default:
	}
}

// port returns the dyno's port.
func (d *tlsDyno) port() string {
	_, port, _ := net.SplitHostPort(d.addr())
	return port
}

// dynoTLSYAML is an app's dyno_tls line.
func dynoTLSYAML(mode, serverName string, trust ...string) string {
	s := "dyno_tls: {mode: " + mode
	if len(trust) > 0 {
		q := make([]string, len(trust))
		for i, p := range trust {
			q[i] = fmt.Sprintf("%q", p)
		}
		s += ", trust: [" + strings.Join(q, ", ") + "]"
	}
	if serverName != "" {
		s += ", server_name: " + serverName
	}
	return s + "}"
}

// tlsPools returns the pools the router holds for addr over TLS.
func (tr *testRouter) tlsPools(addr string) []*pool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []*pool
	for key, be := range tr.backends {
		if strings.HasPrefix(key, addr+" tls ") {
			out = append(out, be.pool)
		}
	}
	return out
}

// waitTLSIdle waits up to 2 s until the router holds n idle TLS
// connections to addr.
func (tr *testRouter) waitTLSIdle(t testing.TB, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := 0
		for _, p := range tr.tlsPools(addr) {
			got += p.idleCount()
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router holds %d idle TLS connections to %s; want %d", got, addr, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// dynoHandshakes returns spacerouter_dyno_tls_handshakes_total{result}.
func (tr *testRouter) dynoHandshakes(t testing.TB, result string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, tr.m.dynoHandshakes.WithLabelValues(result).Write(&m))
	return m.GetCounter().GetValue()
}

// strayCount returns spacerouter_dyno_stray_bytes_total.
func (tr *testRouter) strayCount(t testing.TB) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, tr.m.strayBytes.Write(&m))
	return m.GetCounter().GetValue()
}
