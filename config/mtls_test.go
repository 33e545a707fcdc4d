package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mtlsDir makes a directory with the files the mtls tests name: the app's
// certificate (shop.pem), a space CA (ca.pem) and a bundle of two client
// CAs (clients.pem).
func mtlsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeCert(t, dir, "shop.pem", "shop-key.pem", "shop.example.com")
	writeCA(t, dir, "ca.pem", "ca-key.pem", "space CA")
	a, b := makeCert(t, caTemplate("partner A"), nil), makeCert(t, caTemplate("partner B"), nil)
	writeFile(t, dir, "clients.pem", append(a.certPEM, b.certPEM...))
	return dir
}

// mtlsConfig is a config whose app shop has a certificate and the lines
// app (indented four spaces); withCA adds a space_ca.
func mtlsConfig(withCA bool, app string) string {
	src := "listen: {http: \":0\"}\n"
	if withCA {
		src += "space_ca: {cert: ca.pem, key: ca-key.pem, state_dir: state}\n"
	}
	return src + `apps:
  - name: shop
    domains: [shop.example.com]
    tls: [{cert: shop.pem, key: shop-key.pem}]
` + app
}

func TestMTLS(t *testing.T) {
	t.Parallel()
	dir := mtlsDir(t)
	clients := filepath.Join(dir, "clients.pem")
	cases := []struct {
		name   string
		withCA bool
		app    string
		want   MTLS
	}{
		{"omitted", true, "", MTLS{Mode: MTLSOff, Trust: []string{}, Forward: ForwardXFCC}},
		{"null", false, "    mtls:\n", MTLS{Mode: MTLSOff, Trust: []string{}, Forward: ForwardXFCC}},
		{"off", false, "    mtls: {mode: off}\n", MTLS{Mode: MTLSOff, Trust: []string{}, Forward: ForwardXFCC}},
		{"require trusts space by default", true, "    mtls: {mode: require}\n",
			MTLS{Mode: MTLSRequire, Trust: []string{TrustSpace}, Forward: ForwardXFCC}},
		{"trust null is omitted", true, "    mtls:\n      mode: require\n      trust:\n",
			MTLS{Mode: MTLSRequire, Trust: []string{TrustSpace}, Forward: ForwardXFCC}},
		{"optional with a bundle", false, "    mtls: {mode: optional, trust: [clients.pem], forward: none}\n",
			MTLS{Mode: MTLSOptional, Trust: []string{clients}, Forward: ForwardNone}},
		{"bundle instead of space", true, "    mtls: {mode: require, trust: [clients.pem]}\n",
			MTLS{Mode: MTLSRequire, Trust: []string{clients}, Forward: ForwardXFCC}},
		{"space and a bundle", true, "    mtls: {mode: require, trust: [space, clients.pem], forward: xfcc}\n",
			MTLS{Mode: MTLSRequire, Trust: []string{TrustSpace, clients}, Forward: ForwardXFCC}},
		{"a file named space", false, "    mtls: {mode: require, trust: [./space]}\n",
			MTLS{Mode: MTLSRequire, Trust: []string{filepath.Join(dir, "space")}, Forward: ForwardXFCC}},
	}
	writeFile(t, dir, "space", makeCert(t, caTemplate("a CA in a file named space"), nil).certPEM)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := mtlsConfig(tc.withCA, tc.app)
			c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			assert.Equal(t, tc.want, c.Apps[0].MTLS, "config:\n%s", src)
			assert.Empty(t, c.Warnings(), "config:\n%s", src)
		})
	}
}

func TestMTLSProblems(t *testing.T) {
	t.Parallel()
	dir := mtlsDir(t)
	writeFile(t, dir, "junk.pem", []byte("junk\n"))
	mixed := makeCert(t, caTemplate("partner A"), nil).certPEM
	writeCert(t, dir, "leaf.pem", "leaf-key.pem", "client.example.com")
	writeFile(t, dir, "mixed.pem", append(mixed, readFile(t, filepath.Join(dir, "leaf.pem"))...))
	cases := []struct {
		name   string
		withCA bool
		app    string
		want   []string // DIR for the directory
	}{
		{"trust omitted without space_ca", false, "    mtls: {mode: require}\n", []string{
			`DIR/space.yaml:6: apps[0].mtls.trust: missing: mode require needs CAs to check client certificates against: ` +
				`add trust with PEM bundle paths, or a space_ca, which trust then defaults to`}},
		{"trust empty", true, "    mtls:\n      mode: optional\n      trust: []\n", []string{
			`DIR/space.yaml:9: apps[0].mtls.trust: empty: mode optional needs at least one CA: list space and/or PEM bundle paths`}},
		{"bundles", true, "    mtls:\n      mode: require\n      trust:\n        - junk.pem\n        - mixed.pem\n        - .\n        - none.pem\n", []string{
			`DIR/space.yaml:10: apps[0].mtls.trust: no certificate in "DIR/junk.pem": want a PEM bundle of CA certificates`,
			`DIR/space.yaml:11: apps[0].mtls.trust: certificate 2 of "DIR/mixed.pem" (CN "client.example.com") is not a CA: ` +
				`want only CA certificates (basic constraints CA:true) in a trust bundle`,
			`DIR/space.yaml:12: apps[0].mtls.trust: "DIR" is not a regular file`,
			`DIR/space.yaml:13: apps[0].mtls.trust: stat DIR/none.pem: no such file or directory`}},
		{"space listed twice", true, "    mtls: {mode: require, trust: [space, clients.pem, space, ./clients.pem]}\n", []string{
			`DIR/space.yaml:7: apps[0].mtls.trust: "space" is listed twice`,
			`DIR/space.yaml:7: apps[0].mtls.trust: "./clients.pem" is listed twice`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := mtlsConfig(tc.withCA, tc.app)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}

func TestMTLSWarnings(t *testing.T) {
	t.Parallel()
	dir := mtlsDir(t)
	tmpl := caTemplate("old partner")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().AddDate(-3, 0, 0), time.Now().AddDate(0, -1, 0)
	expired := makeCert(t, tmpl, nil)
	writeFile(t, dir, "expired.pem", append(readFile(t, filepath.Join(dir, "clients.pem")), expired.certPEM...))
	path := filepath.Join(dir, "space.yaml")
	cases := []struct {
		name string
		app  string
		want []string
	}{
		{"trust and forward without mode", "    mtls: {trust: [space], forward: none}\n", []string{
			path + `:7: apps[0].mtls: mode is off (the default): trust and forward have no effect; set mode: optional or require to ask clients for a certificate`}},
		{"forward with mode off", "    mtls:\n      mode: off\n      forward: xfcc\n", []string{
			path + `:8: apps[0].mtls: mode is off: forward has no effect; set mode: optional or require to ask clients for a certificate`}},
		{"expired CA in a bundle", "    mtls: {mode: require, trust: [expired.pem]}\n", []string{
			path + `:7: apps[0].mtls.trust: certificate 3 of "` + filepath.Join(dir, "expired.pem") + `" (CN "old partner") expired on ` +
				expired.cert.NotAfter.UTC().Format(time.DateOnly) + `: client certificates it issued are refused`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := mtlsConfig(true, tc.app)
			c, err := Parse(path, []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			assert.Equal(t, tc.want, c.Warnings(), "config:\n%s", src)
		})
	}
}
