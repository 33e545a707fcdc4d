package tlsconfig

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// specTable is SPEC.md section 5, copied verbatim (versions and suites
// columns), the oracle the profile table is checked against.
var specTable = map[string][2]string{
	"salesforce": {"1.2, 1.3", "ECDHE_RSA_AES_256_GCM_SHA384, ECDHE_RSA_AES_128_GCM_SHA256, ECDHE_RSA_AES_128_CBC_SHA256, RSA_AES_256_GCM_SHA384, RSA_AES_128_GCM_SHA256, RSA_AES_128_CBC_SHA256, RSA_AES_256_CBC_SHA, RSA_AES_128_CBC_SHA"},
	"modern":     {"1.2, 1.3", "ECDHE_ECDSA_CHACHA20_POLY1305, ECDHE_RSA_CHACHA20_POLY1305, ECDHE_ECDSA_AES_128_GCM_SHA256, ECDHE_RSA_AES_128_GCM_SHA256, ECDHE_ECDSA_AES_256_GCM_SHA384, ECDHE_RSA_AES_256_GCM_SHA384, ECDHE_ECDSA_AES_128_CBC_SHA256"},
	"default":    {"1.2, 1.3", "ECDHE_ECDSA_CHACHA20_POLY1305, ECDHE_RSA_CHACHA20_POLY1305, ECDHE_ECDSA_AES_128_GCM_SHA256, ECDHE_RSA_AES_128_GCM_SHA256, ECDHE_ECDSA_AES_256_GCM_SHA384, ECDHE_RSA_AES_256_GCM_SHA384, ECDHE_ECDSA_AES_128_CBC_SHA256, ECDHE_RSA_AES_128_CBC_SHA256, RSA_AES_128_GCM_SHA256, RSA_AES_128_CBC_SHA256, RSA_AES_256_GCM_SHA384, ECDHE_RSA_AES_128_CBC_SHA, ECDHE_RSA_AES_256_CBC_SHA"},
	"strict":     {"1.1, 1.2", "ECDHE_ECDSA_CHACHA20_POLY1305, ECDHE_RSA_CHACHA20_POLY1305, ECDHE_ECDSA_AES_128_GCM_SHA256, ECDHE_RSA_AES_128_GCM_SHA256, ECDHE_ECDSA_AES_256_GCM_SHA384, ECDHE_RSA_AES_256_GCM_SHA384, ECDHE_ECDSA_AES_128_CBC_SHA256, ECDHE_RSA_AES_128_CBC_SHA, ECDHE_RSA_AES_256_CBC_SHA"},
}

// versionText writes a version as SPEC.md does ("1.2").
func versionText(v uint16) string {
	return strings.TrimPrefix(tls.VersionName(v), "TLS ")
}

func versionsText(vs []uint16) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = versionText(v)
	}
	return strings.Join(out, ", ")
}

func TestProfileTableIsSPEC(t *testing.T) {
	require.Len(t, profiles, len(specTable))
	for _, spec := range profiles {
		t.Run(spec.name, func(t *testing.T) {
			want, ok := specTable[spec.name]
			require.True(t, ok, "profile %s is not in SPEC.md section 5", spec.name)
			assert.Equal(t, want[0], versionsText(spec.versions), "versions")
			assert.Equal(t, want[1], strings.Join(spec.suites, ", "), "suites")
		})
	}
}

func TestEverySPECSuiteResolves(t *testing.T) {
	known := implementedSuites()
	for _, spec := range profiles {
		t.Run(spec.name, func(t *testing.T) {
			for _, short := range spec.suites {
				iana, ok := ianaName(short)
				require.True(t, ok, "short name %s", short)
				s := known[iana]
				require.NotNil(t, s, "%s → %s is not a crypto/tls suite", short, iana)
				assert.Equal(t, iana, tls.CipherSuiteName(s.ID))
			}
			p, _, err := ProfileFor([]string{spec.feature})
			require.NoError(t, err)
			assert.Len(t, p.Suites, len(spec.suites), "every listed suite served, none twice")
		})
	}
}

func TestIANAName(t *testing.T) {
	t.Parallel()
	for short, want := range map[string]string{
		"ECDHE_RSA_AES_256_GCM_SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"ECDHE_ECDSA_CHACHA20_POLY1305":  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"ECDHE_RSA_CHACHA20_POLY1305":    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"RSA_AES_128_CBC_SHA":            "TLS_RSA_WITH_AES_128_CBC_SHA",
		"ECDHE_ECDSA_AES_128_CBC_SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	} {
		got, ok := ianaName(short)
		assert.True(t, ok, short)
		assert.Equal(t, want, got, short)
	}
}

func TestResolveSuitesRefusesTypos(t *testing.T) {
	t.Parallel()
	known := implementedSuites()
	tls12 := []uint16{tls.VersionTLS12}
	for _, tc := range []struct {
		name     string
		suite    string
		versions []uint16
	}{
		{"typo", "ECDHE_RSA_AES_128_GCM_SHA265", tls12},
		{"not implemented by Go (SHA384 CBC)", "ECDHE_RSA_AES_256_CBC_SHA384", tls12},
		{"not implemented by Go (AES256-SHA256)", "RSA_AES_256_CBC_SHA256", tls12},
		{"DHE", "DHE_RSA_AES_128_GCM_SHA256", tls12},
		{"TLS 1.3 suite", "AES_128_GCM_SHA256", tls12},
		{"no key exchange after prefix", "RSA_", tls12},
		{"TLS 1.2-only suite in a TLS 1.1-only profile", "ECDHE_RSA_AES_128_GCM_SHA256", []uint16{tls.VersionTLS11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveSuites(known, []string{tc.suite}, tc.versions)
			require.ErrorIs(t, err, ErrUnknownSuite, "suite %s", tc.suite)
		})
	}
}

// dumpProfile writes p for the golden file: versions, h2, and each suite
// as ID, IANA name and SPEC.md short name.
func dumpProfile(b *strings.Builder, spec *profileSpec, p Profile) {
	feature := spec.feature
	if feature == "" {
		feature = "(no TLS profile feature)"
	}
	fmt.Fprintf(b, "%s  %s\n", spec.name, feature)
	fmt.Fprintf(b, "  versions: %s (min %s, max %s)\n", versionsText(p.Versions), versionText(p.MinVersion), versionText(p.MaxVersion))
	fmt.Fprintf(b, "  http2: %v\n", p.HTTP2)
	if p.MaxVersion >= tls.VersionTLS13 {
		fmt.Fprintf(b, "  TLS 1.3 (fixed by Go): %s\n", strings.Join(tls13Suites(), ", "))
	}
	for i, id := range p.Suites {
		fmt.Fprintf(b, "  %#04x %-45s %s\n", id, tls.CipherSuiteName(id), spec.suites[i])
	}
	b.WriteString("\n")
}

// tls13Suites names the suites crypto/tls offers at TLS 1.3, so the golden
// file notices a Go release that changes them.
func tls13Suites() []string {
	var out []string
	for _, s := range tls.CipherSuites() {
		if slices.Equal(s.SupportedVersions, []uint16{tls.VersionTLS13}) {
			out = append(out, s.Name)
		}
	}
	return out
}

func TestProfilesGolden(t *testing.T) {
	var b strings.Builder
	for i := range profiles {
		p, _, err := ProfileFor([]string{profiles[i].feature})
		require.NoError(t, err)
		require.Equal(t, []string{profiles[i].name}, p.Names)
		dumpProfile(&b, &profiles[i], p)
	}
	path := filepath.Join("testdata", "profiles.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), b.String(), "profile dump differs from %s (go test -update rewrites it)", path)
}

// suiteSet returns the suites of the named features' profile as a set.
func suiteSet(t *testing.T, features ...string) map[uint16]bool {
	p, _, err := ProfileFor(features)
	require.NoError(t, err)
	m := map[uint16]bool{}
	for _, id := range p.Suites {
		m[id] = true
	}
	return m
}

func union(sets ...map[uint16]bool) map[uint16]bool {
	m := map[uint16]bool{}
	for _, s := range sets {
		for id := range s {
			m[id] = true
		}
	}
	return m
}

func TestProfileFor(t *testing.T) {
	t.Parallel()
	v11, v12, v13 := uint16(tls.VersionTLS11), uint16(tls.VersionTLS12), uint16(tls.VersionTLS13)
	deprecated := "spaces-strict-tls is deprecated; use spaces-tls-modern"
	for _, tc := range []struct {
		name     string
		features []string
		names    []string
		versions []uint16
		warnings []string
	}{
		{"nil list: default", nil, []string{"default"}, []uint16{v12, v13}, nil},
		{"empty list: default", []string{}, []string{"default"}, []uint16{v12, v13}, nil},
		{"no TLS feature: default", []string{"http-disable-http2", "spaces-extra-resolver"}, []string{"default"}, []uint16{v12, v13}, nil},
		{"salesforce", []string{"spaces-tls-salesforce"}, []string{"salesforce"}, []uint16{v12, v13}, nil},
		{"modern among others", []string{"http-disable-http2", "spaces-tls-modern"}, []string{"modern"}, []uint16{v12, v13}, nil},
		{"strict warns", []string{"spaces-strict-tls"}, []string{"strict"}, []uint16{v11, v12}, []string{deprecated}},
		{"strict twice warns once", []string{"spaces-strict-tls", "spaces-strict-tls"}, []string{"strict"}, []uint16{v11, v12}, []string{deprecated}},
		{"strict + modern: 1.1 to 1.3", []string{"spaces-strict-tls", "spaces-tls-modern"}, []string{"modern", "strict"}, []uint16{v11, v12, v13}, []string{deprecated}},
		{"salesforce + modern", []string{"spaces-tls-modern", "spaces-tls-salesforce"}, []string{"salesforce", "modern"}, []uint16{v12, v13}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, warnings, err := ProfileFor(tc.features)
			require.NoError(t, err, "features %q", tc.features)
			assert.Equal(t, tc.names, p.Names)
			assert.Equal(t, tc.versions, p.Versions)
			assert.Equal(t, tc.versions[0], p.MinVersion)
			assert.Equal(t, tc.versions[len(tc.versions)-1], p.MaxVersion)
			assert.Equal(t, tc.warnings, warnings)
			assert.True(t, p.HTTP2, "every SPEC profile has ECDHE_RSA_AES_128_GCM_SHA256")
		})
	}
}

func TestProfileForUnion(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"spaces-tls-modern", "spaces-strict-tls"},
		{"spaces-tls-salesforce", "spaces-tls-modern"},
		{"spaces-tls-salesforce", "spaces-strict-tls"},
	} {
		t.Run(pair[0]+"+"+pair[1], func(t *testing.T) {
			got := suiteSet(t, pair[0], pair[1])
			assert.Equal(t, union(suiteSet(t, pair[0]), suiteSet(t, pair[1])), got)
			p, _, err := ProfileFor(pair[:])
			require.NoError(t, err)
			assert.Len(t, p.Suites, len(got), "no suite twice")
		})
	}
}

func TestProfileForRefusesLegacy(t *testing.T) {
	t.Parallel()
	_, _, err := ProfileFor([]string{"spaces-tls-modern", "spaces-tls-legacy"})
	require.ErrorIs(t, err, ErrRetiredProfile)
	// The message must name the choices (SPEC.md section 3).
	assert.Contains(t, err.Error(), "spaces-tls-salesforce")
	assert.Contains(t, err.Error(), "spaces-tls-modern")
}

func TestProfileHTTP2Rule(t *testing.T) {
	t.Parallel()
	tls12 := []uint16{tls.VersionTLS12, tls.VersionTLS13}
	for _, tc := range []struct {
		suites []string
		want   bool
	}{
		{[]string{"ECDHE_RSA_AES_128_GCM_SHA256"}, true},
		{[]string{"ECDHE_ECDSA_AES_128_GCM_SHA256", "RSA_AES_128_CBC_SHA"}, true},
		{[]string{"ECDHE_RSA_AES_256_GCM_SHA384", "ECDHE_RSA_CHACHA20_POLY1305"}, false},
		{[]string{"RSA_AES_128_GCM_SHA256"}, false},
	} {
		p, err := unite([]*profileSpec{{name: "test", versions: tls12, suites: tc.suites}})
		require.NoError(t, err)
		assert.Equal(t, tc.want, p.HTTP2, "suites %v", tc.suites)
	}
}
