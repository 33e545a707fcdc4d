package tlsconfig

import (
	"crypto/tls"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWarnings(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	in30 := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second) // x509 keeps seconds
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	soon := p.writeLeaf(t, dir, leafSpec{file: "soon", names: []string{"shop.example.com"}, notAfter: in30})
	gone := p.writeLeaf(t, dir, leafSpec{file: "gone", ecdsa: true, names: []string{"old.example.com"}, notAfter: past})
	fine := p.writeLeaf(t, dir, leafSpec{file: "fine", names: []string{"ok.example.com"}})
	s := newStore(t, Options{},
		App{Name: "shop", Domains: []string{"shop.example.com"}, Certs: []CertFiles{soon}},
		App{Name: "old", Domains: []string{"old.example.com"}, Features: []string{"spaces-strict-tls"}, Certs: []CertFiles{gone}},
		App{Name: "ok", Domains: []string{"ok.example.com"}, Certs: []CertFiles{fine}},
	)
	assert.Equal(t, []string{
		"app old: spaces-strict-tls is deprecated; use spaces-tls-modern",
	}, s.Warnings(), "expiry is the router's to warn about (Certificates)")
	info := s.Certificates("shop")
	require.Len(t, info, 1)
	assert.Equal(t, soon.Cert, info[0].File)
	assert.True(t, in30.Equal(info[0].Leaf.NotAfter), "not_after %s, want %s", info[0].Leaf.NotAfter, in30)
	assert.True(t, info[0].Served)
	assert.Nil(t, s.Certificates("nope"))
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	certs := bothCerts(t, "a", "a.example.com")
	missing := []CertFiles{{Cert: filepath.Join(t.TempDir(), "none.pem"), Key: filepath.Join(t.TempDir(), "none.key")}}
	for _, tc := range []struct {
		name string
		apps []App
		want error
	}{
		{"retired profile", []App{{Name: "a", Features: []string{"spaces-tls-legacy"}}}, ErrRetiredProfile},
		{"missing certificate", []App{{Name: "a", Certs: missing}}, fs.ErrNotExist},
		{"key of another certificate", []App{{Name: "a", Certs: []CertFiles{{Cert: certs[0].Cert, Key: certs[1].Key}}}}, nil},
		{"domain twice", []App{{Name: "a", Domains: []string{"a.example.com"}}, {Name: "b", Domains: []string{"A.example.com"}}}, ErrDuplicateDomain},
		{"wildcard twice", []App{{Name: "a", Domains: []string{"*.example.com"}}, {Name: "b", Domains: []string{"*.example.com"}}}, ErrDuplicateDomain},
		{"app twice", []App{{Name: "a"}, {Name: "a"}}, ErrDuplicateApp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.apps, Options{})
			require.Error(t, err, "apps %+v", tc.apps)
			assert.Nil(t, s)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func TestStoreProfile(t *testing.T) {
	t.Parallel()
	s := newStore(t, Options{}, App{Name: "a", Features: []string{"spaces-tls-modern", "spaces-strict-tls"}})
	p, ok := s.Profile("a")
	require.True(t, ok)
	assert.Equal(t, []string{"modern", "strict"}, p.Names)
	assert.Equal(t, uint16(tls.VersionTLS11), p.MinVersion)
	assert.Equal(t, uint16(tls.VersionTLS13), p.MaxVersion)
	p.Suites[0] = 0 // a copy: the store is unchanged
	again, _ := s.Profile("a")
	assert.NotZero(t, again.Suites[0])
	_, ok = s.Profile("b")
	assert.False(t, ok)
}

func TestGetConfigForClientAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a build without -race")
	}
	s := newStore(t, Options{HTTP2: true}, App{Name: "a", Domains: []string{"*.example.com"}, Certs: bothCerts(t, "a", "*.example.com")})
	hello := &tls.ClientHelloInfo{
		ServerName:        "www.example.com",
		SupportedVersions: []uint16{tls.VersionTLS12},
		CipherSuites:      []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		SupportedProtos:   []string{"h2", "http/1.1"},
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.GetConfigForClient(hello); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "GetConfigForClient for a lower-case name")
}

// BenchmarkHandshake measures full handshakes (no resumption) per profile
// and certificate key type, over loopback, client and server in this
// process.
func BenchmarkHandshake(b *testing.B) {
	p, dir := pkiFor(b), b.TempDir()
	for _, spec := range profiles {
		for _, ecdsa := range []bool{false, true} {
			kind := map[bool]string{false: "RSA-2048", true: "ECDSA-P256"}[ecdsa]
			b.Run(spec.name+"/"+kind, func(b *testing.B) {
				host := spec.name + ".example.com"
				cert := p.writeLeaf(b, dir, leafSpec{file: spec.name + kind, ecdsa: ecdsa, names: []string{host}})
				s := newStore(b, Options{HTTP2: true}, App{Name: "a", Domains: []string{host}, Features: []string{spec.feature}, Certs: []CertFiles{cert}})
				addr := serve(b, s)
				cfg := clientConfig(b, host)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := handshake(addr, cfg); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			})
		}
	}
}

func TestWarnsWhenNoCertificateFitsTLS12(t *testing.T) {
	t.Parallel()
	p, dir := pkiFor(t), t.TempDir()
	ecdsaOnly := []CertFiles{p.writeLeaf(t, dir, leafSpec{file: "ec", ecdsa: true, names: []string{"ec.example.com"}})}
	s := newStore(t, Options{},
		App{Name: "sf", Domains: []string{"sf.example.com"}, Features: []string{"spaces-tls-salesforce"}, Certs: ecdsaOnly},
		App{Name: "mod", Domains: []string{"mod.example.com"}, Features: []string{"spaces-tls-modern"}, Certs: ecdsaOnly},
	)
	assert.Equal(t, []string{"app sf: no certificate fits the profile's TLS 1.2 suites: clients without TLS 1.3 will fail the handshake"}, s.Warnings())
}
