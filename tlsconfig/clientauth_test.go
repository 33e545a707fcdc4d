package tlsconfig

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handshakeFrom is handshake from the local address ip.
func handshakeFrom(ip, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

// TestIPRulesRefuseHandshake: an app with ip_rules refuses a handshake
// from another address with the alert access_denied (SPEC.md 11.2), not
// internal_error, and counts it; other apps and allowed addresses are
// served.
func TestIPRulesRefuseHandshake(t *testing.T) {
	t.Parallel()
	var refused []string
	s := newStore(t, Options{OnHandshakeFailure: func(reason, sni string) { refused = append(refused, reason+" "+sni) }},
		App{Name: "private", Domains: []string{"private.test"}, Certs: bothCerts(t, "private", "private.test"),
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}},
		App{Name: "public", Domains: []string{"public.test"}, Certs: bothCerts(t, "public", "public.test")},
	)
	addr := serve(t, s)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := clientConfig(t, "private.test")
		cfg.MinVersion, cfg.MaxVersion = v, v
		_, err := handshakeFrom("127.0.0.1", addr, cfg)
		require.NoError(t, err, "from an allowed address")
		_, err = handshakeFrom("127.0.0.2", addr, cfg)
		assert.True(t, receivedAlert(err, "access denied"), "from 127.0.0.2, outside the rules: %v", err)
		cfg.ServerName = "public.test"
		_, err = handshakeFrom("127.0.0.2", addr, cfg)
		assert.NoError(t, err, "an app without ip_rules accepts every address")
	}
	assert.Equal(t, []string{"ip_rule private.test", "ip_rule private.test"}, refused)
	// An ACME validation is exempt from the rules: it is not refused for
	// the address (it fails later: this store has no ACME certificate).
	cfg := clientConfig(t, "private.test")
	cfg.NextProtos = []string{"acme-tls/1"}
	_, err := handshakeFrom("127.0.0.2", addr, cfg)
	assert.False(t, receivedAlert(err, "access denied"), "acme-tls/1 is exempt: %v", err)
}

// TestRequestClientCert: an app with RequestClientCert asks for a client
// certificate and completes the handshake with or without one, without
// verifying it; others never ask.
func TestRequestClientCert(t *testing.T) {
	t.Parallel()
	p := pkiFor(t)
	client := p.writeLeaf(t, t.TempDir(), leafSpec{file: "client", ecdsa: true, names: []string{"laptop"}})
	pair, err := tls.LoadX509KeyPair(client.Cert, client.Key)
	require.NoError(t, err)
	s := newStore(t, Options{},
		App{Name: "private", Domains: []string{"private.test"}, Certs: bothCerts(t, "private", "private.test"), RequestClientCert: true},
		App{Name: "public", Domains: []string{"public.test"}, Certs: bothCerts(t, "public", "public.test")},
	)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	peers := make(chan int, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				peers <- len(tc.ConnectionState().PeerCertificates)
			} else {
				peers <- -1
			}
			tc.Close()
		}
	}()
	asked := false
	cfg := clientConfig(t, "private.test")
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &pair, nil
	}
	_, err = handshakeFrom("127.0.0.1", ln.Addr().String(), cfg)
	require.NoError(t, err)
	assert.True(t, asked, "the app with mtls asks for a certificate")
	assert.Positive(t, <-peers, "the certificate (and its chain) reaches the server, unverified")

	cfg = clientConfig(t, "private.test")
	_, err = handshakeFrom("127.0.0.1", ln.Addr().String(), cfg)
	require.NoError(t, err, "a client without a certificate completes the handshake")
	assert.Equal(t, 0, <-peers)

	asked = false
	cfg = clientConfig(t, "public.test")
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &pair, nil
	}
	_, err = handshakeFrom("127.0.0.1", ln.Addr().String(), cfg)
	require.NoError(t, err)
	assert.False(t, asked, "an app without mtls never asks: browsers see no prompt")
	assert.Equal(t, 0, <-peers)
}
