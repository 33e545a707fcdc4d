package tlsconfig

import (
	"crypto/tls"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goSuites returns every TLS 1.2-and-older suite crypto/tls implements
// that can run at version v.
func goSuites(v uint16) []uint16 {
	var out []uint16
	for _, s := range implementedSuites() {
		if slices.Contains(s.SupportedVersions, v) {
			out = append(out, s.ID)
		}
	}
	slices.Sort(out)
	return out
}

// suiteVersions returns the profile's pre-1.3 versions at which suite id
// runs.
func suiteVersions(p Profile, id uint16) []uint16 {
	var out []uint16
	for _, s := range implementedSuites() {
		if s.ID != id {
			continue
		}
		for _, v := range p.Versions {
			if v <= tls.VersionTLS12 && slices.Contains(s.SupportedVersions, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// TestProfileHandshakes checks that what a Go client sees is exactly the
// SPEC.md section 5 table, for each profile: every listed suite negotiates
// alone at every listed version it can run at, every other suite Go
// implements is refused, every listed version works and every other is
// refused. The app has an RSA and an ECDSA certificate, as ECDSA suites
// need the latter.
func TestProfileHandshakes(t *testing.T) {
	for i := range profiles {
		spec := &profiles[i]
		t.Run(spec.name, func(t *testing.T) {
			t.Parallel()
			features := []string{spec.feature}
			p, _, err := ProfileFor(features)
			require.NoError(t, err)
			host := spec.name + ".example.com"
			s := newStore(t, Options{HTTP2: true}, App{Name: spec.name, Domains: []string{host}, Features: features, Certs: bothCerts(t, spec.name, host)})
			addr := serve(t, s)
			t.Run("listed suites", func(t *testing.T) { checkListedSuites(t, addr, host, p) })
			t.Run("unlisted suites", func(t *testing.T) { checkUnlistedSuites(t, addr, host, p) })
			t.Run("versions", func(t *testing.T) { checkVersions(t, addr, host, p) })
		})
	}
}

func checkListedSuites(t *testing.T, addr, host string, p Profile) {
	for _, id := range p.Suites {
		versions := suiteVersions(p, id)
		require.NotEmpty(t, versions, "suite %s runs at none of the profile's versions", tls.CipherSuiteName(id))
		for _, v := range versions {
			cfg := clientConfig(t, host)
			cfg.CipherSuites, cfg.MinVersion, cfg.MaxVersion = []uint16{id}, v, v
			st, err := handshake(addr, cfg)
			if assert.NoError(t, err, "offered %s alone at %s", tls.CipherSuiteName(id), tls.VersionName(v)) {
				assert.Equal(t, tls.CipherSuiteName(id), tls.CipherSuiteName(st.CipherSuite))
				assert.Equal(t, tls.VersionName(v), tls.VersionName(st.Version))
			}
		}
	}
}

func checkUnlistedSuites(t *testing.T, addr, host string, p Profile) {
	refused := 0
	for _, id := range goSuites(tls.VersionTLS12) {
		if slices.Contains(p.Suites, id) {
			continue
		}
		cfg := clientConfig(t, host)
		cfg.CipherSuites, cfg.MaxVersion = []uint16{id}, tls.VersionTLS12
		st, err := handshake(addr, cfg)
		assert.Error(t, err, "offered %s alone (not in the profile): negotiated %s at %s",
			tls.CipherSuiteName(id), tls.CipherSuiteName(st.CipherSuite), tls.VersionName(st.Version))
		refused++
	}
	assert.Positive(t, refused, "some Go suite is outside every profile")
}

func checkVersions(t *testing.T, addr, host string, p Profile) {
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		cfg := clientConfig(t, host)
		cfg.MinVersion, cfg.MaxVersion = v, v
		if v < tls.VersionTLS13 {
			cfg.CipherSuites = goSuites(v) // every suite Go has: only the version decides
		}
		st, err := handshake(addr, cfg)
		if !slices.Contains(p.Versions, v) {
			assert.Error(t, err, "%s is not in the profile: negotiated %s", tls.VersionName(v), tls.CipherSuiteName(st.CipherSuite))
			continue
		}
		if !assert.NoError(t, err, "%s is in the profile", tls.VersionName(v)) {
			continue
		}
		assert.Equal(t, tls.VersionName(v), tls.VersionName(st.Version))
		if v == tls.VersionTLS13 {
			assert.Contains(t, []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}, st.CipherSuite)
		} else {
			assert.Contains(t, p.Suites, st.CipherSuite, "negotiated %s", tls.CipherSuiteName(st.CipherSuite))
		}
	}
}

// TestTLS11ECDHERSA pins the strict profile's TLS 1.1 case by name.
func TestTLS11ECDHERSA(t *testing.T) {
	t.Parallel()
	host := "old.example.com"
	s := newStore(t, Options{}, App{Name: "old", Domains: []string{host}, Features: []string{"spaces-strict-tls"}, Certs: bothCerts(t, "old", host)})
	addr := serve(t, s)
	cfg := clientConfig(t, host)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
	st, err := handshake(addr, cfg)
	require.NoError(t, err)
	assert.Equal(t, "TLS 1.1", tls.VersionName(st.Version))
	assert.Equal(t, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", tls.CipherSuiteName(st.CipherSuite))
}
