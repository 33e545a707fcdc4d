package tlsconfig

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestALPN(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	rsaOnly := []CertFiles{p.writeLeaf(t, dir, leafSpec{file: "rsa", names: []string{"rsa.example.com"}})}
	apps := []App{
		{Name: "both", Domains: []string{"both.example.com"}, Features: []string{"spaces-tls-modern"}, Certs: bothCerts(t, "both", "both.example.com")},
		{Name: "dflt", Domains: []string{"dflt.example.com"}, Certs: bothCerts(t, "dflt", "dflt.example.com")},
		{Name: "rsa", Domains: []string{"rsa.example.com"}, Certs: rsaOnly},
		{Name: "noh2", Domains: []string{"noh2.example.com"}, DisableHTTP2: true, Certs: bothCerts(t, "noh2", "noh2.example.com")},
		{Name: "strict", Domains: []string{"strict.example.com"}, Features: []string{"spaces-strict-tls"}, Certs: bothCerts(t, "strict", "strict.example.com")},
	}
	on := serve(t, newStore(t, Options{HTTP2: true}, apps...))
	off := serve(t, newStore(t, Options{}, apps...))
	for _, tc := range []struct {
		name     string
		addr     string
		sni      string
		min, max uint16
		suites   []uint16
		proto    string
		suite    uint16 // 0: any
	}{
		{"TLS 1.3", on, "dflt.example.com", 0, tls.VersionTLS13, nil, "h2", 0},
		{"TLS 1.2 with GCM", on, "dflt.example.com", 0, tls.VersionTLS12, nil, "h2", 0},
		{"http-disable-http2", on, "noh2.example.com", 0, tls.VersionTLS13, nil, "http/1.1", 0},
		{"Options.HTTP2 off", off, "dflt.example.com", 0, tls.VersionTLS13, nil, "http/1.1", 0},
		{"TLS 1.2 CBC only", on, "dflt.example.com", 0, tls.VersionTLS12,
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA256},
			"http/1.1", 0},
		{"TLS 1.2 RSA key exchange GCM only", on, "dflt.example.com", 0, tls.VersionTLS12,
			[]uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, "http/1.1", tls.TLS_RSA_WITH_AES_128_GCM_SHA256},
		{"CBC for TLS 1.2 but TLS 1.3 offered", on, "dflt.example.com", 0, tls.VersionTLS13,
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, "h2", 0},
		{"ECDSA GCM offered, app has only RSA", on, "rsa.example.com", 0, tls.VersionTLS12,
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
			"http/1.1", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
		{"ECDSA CBC and RSA GCM offered: RSA certificate for h2", on, "both.example.com", 0, tls.VersionTLS12,
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
			"h2", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		{"strict, TLS 1.2 GCM", on, "strict.example.com", 0, tls.VersionTLS12, nil, "h2", 0},
		{"strict, TLS 1.1", on, "strict.example.com", tls.VersionTLS11, tls.VersionTLS11,
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, "http/1.1", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientConfig(t, tc.sni)
			cfg.NextProtos = []string{"h2", "http/1.1"}
			cfg.CipherSuites, cfg.MaxVersion = tc.suites, tc.max
			if tc.min != 0 {
				cfg.MinVersion = tc.min
			}
			st, err := handshake(tc.addr, cfg)
			require.NoError(t, err, "suites %v", suiteNames(tc.suites))
			assert.Equal(t, tc.proto, st.NegotiatedProtocol, "offered h2 with suites %v; negotiated %s",
				suiteNames(tc.suites), tls.CipherSuiteName(st.CipherSuite))
			if tc.suite != 0 {
				assert.Equal(t, tls.CipherSuiteName(tc.suite), tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

func TestSessionResumption(t *testing.T) {
	t.Parallel()
	s := newStore(t, Options{HTTP2: true},
		App{Name: "one", Domains: []string{"one.example.com"}, Certs: bothCerts(t, "one", "one.example.com")},
		App{Name: "two", Domains: []string{"*.two.example.com"}, Features: []string{"spaces-strict-tls"}, Certs: bothCerts(t, "two", "*.two.example.com")},
	)
	addr := serve(t, s)
	for _, sni := range []string{"one.example.com", "a.two.example.com"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			if sni == "a.two.example.com" && v == tls.VersionTLS13 {
				continue // strict has no TLS 1.3
			}
			t.Run(sni+"/"+tls.VersionName(v), func(t *testing.T) {
				cfg := clientConfig(t, sni)
				cfg.MaxVersion = v
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				first, err := handshake(addr, cfg)
				require.NoError(t, err)
				assert.False(t, first.DidResume, "first connection")
				second, err := handshake(addr, cfg)
				require.NoError(t, err)
				assert.True(t, second.DidResume, "second connection with the session cache must resume")
				assert.Equal(t, tls.VersionName(v), tls.VersionName(second.Version))
			})
		}
	}
}
