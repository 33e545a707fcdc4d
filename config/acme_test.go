package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acmeConfig is a config with an https listener, the acme section ac
// (indented two spaces under acme:; "" leaves it out) and the app lines
// app, whose first app is shop on shop.example.com.
func acmeConfig(ac, app string) string {
	src := "listen: {https: \":0\"}\n"
	if ac != "" {
		src += "acme:\n" + ac
	}
	return src + "apps:\n  - name: shop\n    domains: [shop.example.com, www.shop.example.com]\n" + app
}

// pebbleACME is an acme section as the tests against Pebble write it.
const pebbleACME = "  directory: https://127.0.0.1:14000/dir\n  agree_tos: true\n  trusted_roots: pebble.minica.pem\n  storage: acme\n"

func TestACME(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, "pebble.minica.pem", "", "Pebble minica root")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "storage"), 0o700))
	cases := []struct {
		name string
		ac   string
		want *ACME
	}{
		{"defaults", "  directory: https://acme-v02.api.letsencrypt.org/directory\n  agree_tos: true\n  storage: /var/lib/spacerouter/acme\n",
			&ACME{Directory: "https://acme-v02.api.letsencrypt.org/directory", AgreeTOS: true,
				Storage: "/var/lib/spacerouter/acme", RenewBefore: 720 * time.Hour}},
		{"pebble", pebbleACME,
			&ACME{Directory: "https://127.0.0.1:14000/dir", AgreeTOS: true, TrustedRoots: filepath.Join(dir, "pebble.minica.pem"),
				Storage: filepath.Join(dir, "acme"), RenewBefore: 720 * time.Hour}},
		{"every key", "  directory: https://acme.example.com:8443/directory?x=1\n  email: ops+acme@example.com\n  agree_tos: true\n" +
			"  trusted_roots: \"\"\n  storage: storage\n  renew_before: 240h\n",
			&ACME{Directory: "https://acme.example.com:8443/directory?x=1", Email: "ops+acme@example.com", AgreeTOS: true,
				Storage: filepath.Join(dir, "storage"), RenewBefore: 240 * time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := acmeConfig(tc.ac, "")
			c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			assert.Equal(t, tc.want, c.ACME, "config:\n%s", src)
			assert.False(t, c.Apps[0].TLSAuto)
		})
	}
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(acmeConfig("", "")+"    tls: []\n"))
	require.NoError(t, err)
	assert.Nil(t, c.ACME, "a file without acme")
	c, err = Parse(filepath.Join(dir, "space.yaml"), []byte("listen: {http: \":0\"}\nacme:\n"+app1))
	require.NoError(t, err)
	assert.Nil(t, c.ACME, "acme: with nothing after it")
}

func TestTLSAuto(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, "pebble.minica.pem", "", "Pebble minica root")
	writeCA(t, dir, "clients.pem", "", "clients")
	path := filepath.Join(dir, "space.yaml")
	src := acmeConfig(pebbleACME, "    tls: auto\n    mtls: {mode: require, trust: [clients.pem]}\n"+
		"  - name: blog\n    domains: [blog.example.com]\n    tls: \"auto\"\n")
	c, err := Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	for _, a := range c.Apps {
		assert.True(t, a.TLSAuto, "app %s", a.Name)
		assert.Equal(t, []Cert{}, a.TLS, "app %s", a.Name)
	}
	assert.Equal(t, MTLS{Mode: MTLSRequire, Trust: []string{filepath.Join(dir, "clients.pem")}, Forward: ForwardXFCC},
		c.Apps[0].MTLS, "mtls with tls: auto")
	assert.Empty(t, c.Warnings(), "no \"no certificate\" warning for tls: auto")

	// Without an https listener, no certificate can be obtained.
	src = strings.Replace(acmeConfig(pebbleACME, "    tls: auto\n"), "https:", "http:", 1)
	c, err = Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	assert.Equal(t, []string{path + `:10: apps[0].tls: auto without listen.https: the CA validates each domain over TLS-ALPN-01 ` +
		`on the https listener, so no certificate can be obtained; set listen.https`}, c.Warnings())
	assert.True(t, c.Apps[0].TLSAuto)
}

// TestACMEProblems: each case writes files into a temporary directory
// and has the problems of one acme section. DIR stands for the directory.
func TestACMEProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files func(t *testing.T, dir string)
		ac    string   // the acme section, from line 3
		app   string   // lines of app shop, from line 9 or so
		want  []string // problems, DIR for the directory
	}{
		{"roots without a certificate", func(t *testing.T, dir string) {
			writeFile(t, dir, "roots.pem", []byte("not a certificate\n"))
		}, "  directory: https://127.0.0.1:14000/dir\n  agree_tos: true\n  trusted_roots: roots.pem\n  storage: acme\n", "", []string{
			`DIR/space.yaml:5: acme.trusted_roots: no certificate in "DIR/roots.pem": want a PEM bundle of the root certificates to trust the ACME server with`}},
		{"roots a directory, storage a file", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "roots"), 0o755))
			writeFile(t, dir, "acme", []byte("a file\n"))
		}, "  directory: https://127.0.0.1:14000/dir\n  agree_tos: true\n  trusted_roots: roots\n  storage: acme\n", "", []string{
			`DIR/space.yaml:5: acme.trusted_roots: "DIR/roots" is not a regular file`,
			`DIR/space.yaml:6: acme.storage: "DIR/acme" is not a directory: want the directory of the ACME account, certificates and keys ` +
				`(the router creates it, mode 0700, when it is missing)`}},
		{"a broken acme is still an acme", func(t *testing.T, dir string) {}, "  directory: https://127.0.0.1:14000/dir\n  storage: acme\n",
			"    tls: auto\n", []string{
				`DIR/space.yaml:3: acme.agree_tos: missing: ` + agreeTOSMsg}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.files(t, dir)
			src := acmeConfig(tc.ac, tc.app)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}

func TestACMEWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := caTemplate("old root")
	old.NotBefore, old.NotAfter = time.Now().AddDate(-3, 0, 0), time.Now().AddDate(0, -1, 0)
	expired := makeCert(t, old, nil)
	writeFile(t, dir, "roots.pem", append(writeCA(t, dir, "new.pem", "", "new root").certPEM, expired.certPEM...))
	path := filepath.Join(dir, "space.yaml")
	src := acmeConfig("  directory: https://127.0.0.1:14000/dir\n  agree_tos: true\n  trusted_roots: roots.pem\n  storage: acme\n", "    tls: auto\n")
	c, err := Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	assert.Equal(t, []string{
		path + `:5: acme.trusted_roots: certificate 2 of "` + filepath.Join(dir, "roots.pem") + `" (CN "old root") expired on ` +
			expired.cert.NotAfter.UTC().Format(time.DateOnly) + `: a certificate that chains only to it does not verify`,
	}, c.Warnings())
}
