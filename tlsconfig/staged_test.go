package tlsconfig

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testClock is a clock a test moves by hand.
type testClock struct{ at atomic.Pointer[time.Time] }

func newTestClock(at time.Time) *testClock {
	c := &testClock{}
	c.set(at)
	return c
}

func (c *testClock) now() time.Time   { return *c.at.Load() }
func (c *testClock) set(at time.Time) { c.at.Store(&at) }

// servedLog records what Options.OnServed is told, by connection.
type servedLog struct {
	mu   sync.Mutex // guards last, n
	last map[string]served
	n    int
}

type served struct {
	serial string
	source string
}

func (l *servedLog) onServed(conn net.Conn, cert *tls.Certificate, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]served{}
	}
	// The server side's remote address is the client's local one.
	l.last[conn.RemoteAddr().String()] = served{cert.Leaf.SerialNumber.String(), source}
	l.n++
}

func (l *servedLog) get(clientAddr string) (served, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.last[clientAddr]
	return s, ok
}

// handshakeLocal is handshake that also returns the client's local address.
func handshakeLocal(addr string, cfg *tls.Config) (tls.ConnectionState, string, error) {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	local := raw.LocalAddr().String()
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, local, err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return c.ConnectionState(), local, err
}

// TestServeFrom: a staged chain is served instead of the app's chains of
// its key type from its serve_from on, by the Store's clock, with no
// rebuild; the other key type is untouched; a ticket issued before the
// switch does not resume after it; Certificates and Expiry follow the
// clock.
func TestServeFrom(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	names := []string{"shop.example.com"}
	oldEC := p.writeLeaf(t, dir, leafSpec{file: "old-ecdsa", ecdsa: true, names: names, notAfter: time.Now().Add(20 * 24 * time.Hour)})
	oldRSA := p.writeLeaf(t, dir, leafSpec{file: "old-rsa", names: names})
	newEC := p.writeLeaf(t, dir, leafSpec{file: "new-ecdsa", ecdsa: true, names: names})
	laterEC := p.writeLeaf(t, dir, leafSpec{file: "later-ecdsa", ecdsa: true, names: names})
	switchAt := time.Now().Add(24 * time.Hour)
	newEC.ServeFrom = switchAt
	laterEC.ServeFrom = switchAt.Add(24 * time.Hour)
	clock := newTestClock(switchAt.Add(-time.Second))
	var log servedLog
	s := newStore(t, Options{Now: clock.now, OnServed: log.onServed, Tickets: NewTickets()},
		App{Name: "shop", Domains: names, Features: []string{"spaces-tls-modern"}, Certs: []CertFiles{laterEC, oldRSA, newEC, oldEC}})
	addr := serve(t, s)
	servedCN := func(t *testing.T, cfg *tls.Config) string {
		t.Helper()
		st, local, err := handshakeLocal(addr, cfg)
		require.NoError(t, err)
		got, ok := log.get(local)
		require.True(t, ok, "OnServed was not told of the handshake")
		assert.Equal(t, st.PeerCertificates[0].SerialNumber.String(), got.serial, "OnServed names the chain served")
		assert.Equal(t, SourceFile, got.source)
		return st.PeerCertificates[0].Subject.CommonName
	}
	ecdsaOnly := clientConfig(t, "shop.example.com")
	ecdsaOnly.MaxVersion = tls.VersionTLS12
	ecdsaOnly.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	rsaOnly := clientConfig(t, "shop.example.com")
	rsaOnly.MaxVersion = tls.VersionTLS12
	rsaOnly.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}

	assert.Equal(t, "old-ecdsa", servedCN(t, ecdsaOnly), "before serve_from")
	assert.Equal(t, "old-rsa", servedCN(t, rsaOnly))
	exp, ok := s.Expiry("shop")
	require.True(t, ok)
	assert.WithinDuration(t, time.Now().Add(20*24*time.Hour), exp, time.Minute, "the old ECDSA chain expires first")

	cache := &lastSession{}
	resuming := clientConfig(t, "shop.example.com")
	resuming.ClientSessionCache = cache
	_, _, err := handshakeLocal(addr, resuming)
	require.NoError(t, err)
	require.NotNil(t, cache.session(), "a ticket before the switch")

	clock.set(switchAt)
	assert.Equal(t, "new-ecdsa", servedCN(t, ecdsaOnly), "at serve_from, without a rebuild")
	assert.Equal(t, "old-rsa", servedCN(t, rsaOnly), "the RSA chain is not replaced by an ECDSA one")
	st, _, err := handshakeLocal(addr, resuming)
	require.NoError(t, err)
	assert.False(t, st.DidResume, "a ticket from before the switch resumed after it")
	assert.Equal(t, "new-ecdsa", st.PeerCertificates[0].Subject.CommonName)
	st, local, err := handshakeLocal(addr, resuming)
	require.NoError(t, err)
	require.True(t, st.DidResume, "a ticket issued after the switch resumes")
	got, _ := log.get(local)
	assert.Equal(t, "new-ecdsa", cnOf(t, s, got.serial), "a resumed connection is reported with the chain of its generation")

	byFile := map[string]CertInfo{}
	for _, c := range s.Certificates("shop") {
		byFile[c.File] = c
	}
	assert.True(t, byFile[newEC.Cert].Served)
	assert.False(t, byFile[oldEC.Cert].Served)
	assert.True(t, byFile[oldRSA.Cert].Served)
	assert.False(t, byFile[laterEC.Cert].Served)
	assert.Equal(t, laterEC.ServeFrom, byFile[laterEC.Cert].ServeFrom)

	clock.set(laterEC.ServeFrom.Add(time.Hour))
	assert.Equal(t, "later-ecdsa", servedCN(t, ecdsaOnly), "the latest serve_from that has come wins")
}

// cnOf returns the common name of the app shop's chain with serial.
func cnOf(t *testing.T, s *Store, serial string) string {
	t.Helper()
	for _, c := range s.Certificates("shop") {
		if c.Leaf.SerialNumber.String() == serial {
			return c.Leaf.Subject.CommonName
		}
	}
	t.Fatalf("no chain of shop has serial %s", serial)
	return ""
}

// TestServeFromOnly: an app whose only chain is staged has no certificate
// until its time (refused as no_certificate), then serves it.
func TestServeFromOnly(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	staged := p.writeLeaf(t, dir, leafSpec{file: "staged", ecdsa: true, names: []string{"a.test"}})
	staged.ServeFrom = time.Now().Add(time.Hour)
	clock := newTestClock(time.Now())
	var reasons []string
	var mu sync.Mutex
	s := newStore(t, Options{Now: clock.now, OnHandshakeFailure: func(reason, _ string) {
		mu.Lock()
		reasons = append(reasons, reason)
		mu.Unlock()
	}}, App{Name: "aaa", Domains: []string{"a.test"}, Features: []string{"spaces-tls-modern"}, Certs: []CertFiles{staged}})
	addr := serve(t, s)
	_, err := handshake(addr, clientConfig(t, "a.test"))
	assert.True(t, receivedAlert(err, "unrecognized name"), "before serve_from: %v", err)
	mu.Lock()
	assert.Equal(t, []string{ReasonNoCertificate}, reasons)
	mu.Unlock()
	_, ok := s.Expiry("aaa")
	assert.False(t, ok, "nothing served yet")
	clock.set(staged.ServeFrom)
	st, err := handshake(addr, clientConfig(t, "a.test"))
	require.NoError(t, err)
	assert.Equal(t, "staged", st.PeerCertificates[0].Subject.CommonName)
}

// TestGetCertificateHook: a tls: auto app serves what App.GetCertificate
// gives (reported as SourceACME); an error refuses the handshake with
// unrecognized_name, reason acme_pending; files and a hook at once are
// refused by New.
func TestGetCertificateHook(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	files := p.writeLeaf(t, dir, leafSpec{file: "auto", ecdsa: true, names: []string{"auto.test"}})
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	require.NoError(t, err)
	var pending atomic.Bool
	pending.Store(true)
	errPending := errors.New("no certificate yet")
	hook := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if pending.Load() {
			return nil, errPending
		}
		return &cert, nil
	}
	var mu sync.Mutex
	var reasons []string
	var log servedLog
	s := newStore(t, Options{HTTP2: true, OnServed: log.onServed, OnHandshakeFailure: func(reason, sni string) {
		mu.Lock()
		reasons = append(reasons, reason+" "+sni)
		mu.Unlock()
	}}, App{Name: "auto", Domains: []string{"auto.test"}, Features: []string{"spaces-tls-modern"}, GetCertificate: hook})
	assert.Empty(t, s.Warnings(), "the modern profile has ECDSA suites for TLS 1.2")
	addr := serve(t, s)

	_, err = handshake(addr, clientConfig(t, "auto.test"))
	assert.True(t, receivedAlert(err, "unrecognized name"), "pending: %v", err)
	mu.Lock()
	assert.Equal(t, []string{"acme_pending auto.test"}, reasons)
	mu.Unlock()

	pending.Store(false)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := clientConfig(t, "auto.test")
		cfg.MinVersion, cfg.MaxVersion = v, v
		cfg.NextProtos = []string{"h2", "http/1.1"}
		st, local, err := handshakeLocal(addr, cfg)
		require.NoError(t, err, "version %x", v)
		assert.Equal(t, "auto", st.PeerCertificates[0].Subject.CommonName)
		assert.Equal(t, "h2", st.NegotiatedProtocol)
		got, ok := log.get(local)
		require.True(t, ok)
		assert.Equal(t, served{cert.Leaf.SerialNumber.String(), SourceACME}, got)
	}
	_, ok := s.Expiry("auto")
	assert.False(t, ok, "a tls: auto app's expiry is the acme package's")

	t.Run("the salesforce profile warns: ECDSA keys have no TLS 1.2 suite there", func(t *testing.T) {
		s := newStore(t, Options{}, App{Name: "auto", Domains: []string{"auto.test"}, Features: []string{"spaces-tls-salesforce"}, GetCertificate: hook})
		require.Len(t, s.Warnings(), 1)
		assert.Contains(t, s.Warnings()[0], "clients without TLS 1.3 will fail the handshake")
	})
	t.Run("files and a hook", func(t *testing.T) {
		_, err := New([]App{{Name: "auto", Domains: []string{"auto.test"}, GetCertificate: hook, Certs: []CertFiles{files}}}, Options{})
		assert.ErrorIs(t, err, ErrCertsAndHook)
	})
}
