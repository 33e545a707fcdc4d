package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dynoTLSDir makes a directory with the files the dyno_tls tests name: an
// old and a new dyno CA (dynos-2025.pem, dynos-2026.pem) and a dyno's
// self-signed certificate (web1.pem), its own trust anchor.
func dynoTLSDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeCA(t, dir, "dynos-2025.pem", "", "dynos 2025")
	writeCA(t, dir, "dynos-2026.pem", "", "dynos 2026")
	writeCert(t, dir, "web1.pem", "web1-key.pem", "web1.shop.internal")
	return dir
}

// dynoTLSConfig is a config whose app shop has the dynos of SPEC.md
// section 2 (web.1 at an IP address, web.2 at a host name) and the lines
// app (indented four spaces), from line 8.
func dynoTLSConfig(app string) string {
	return `listen: {http: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    dynos:
      - {name: web.1, address: 127.0.0.1:5001}
      - {name: web.2, address: dyno2.internal:5000}
` + app
}

func TestDynoTLS(t *testing.T) {
	t.Parallel()
	dir := dynoTLSDir(t)
	bundle := func(name string) string { return filepath.Join(dir, name) }
	cases := []struct {
		name string
		app  string
		want DynoTLS
	}{
		{"omitted", "", DynoTLS{Mode: DynoTLSOff, Trust: []string{}}},
		{"null", "    dyno_tls:\n", DynoTLS{Mode: DynoTLSOff, Trust: []string{}}},
		{"off", "    dyno_tls: {mode: off}\n", DynoTLS{Mode: DynoTLSOff, Trust: []string{}}},
		{"require", "    dyno_tls: {mode: require}\n", DynoTLS{Mode: DynoTLSRequire, Trust: []string{}}},
		{"verify-ca, old and new CA", "    dyno_tls: {mode: verify-ca, trust: [dynos-2026.pem, dynos-2025.pem]}\n",
			DynoTLS{Mode: DynoTLSVerifyCA, Trust: []string{bundle("dynos-2026.pem"), bundle("dynos-2025.pem")}}},
		{"verify-ca, a self-signed dyno certificate", "    dyno_tls: {mode: verify-ca, trust: [web1.pem]}\n",
			DynoTLS{Mode: DynoTLSVerifyCA, Trust: []string{bundle("web1.pem")}}},
		{"verify-full, server_name for the IP address", "    dyno_tls:\n      mode: verify-full\n      trust: [dynos-2026.pem]\n      server_name: Shop.Dynos_1.internal\n",
			DynoTLS{Mode: DynoTLSVerifyFull, Trust: []string{bundle("dynos-2026.pem")}, ServerName: "Shop.Dynos_1.internal"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := dynoTLSConfig(tc.app)
			c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			assert.Equal(t, tc.want, c.Apps[0].DynoTLS, "config:\n%s", src)
			assert.Empty(t, c.Warnings(), "config:\n%s", src)
		})
	}

	// verify-full with every dyno at a host name needs no server_name.
	src := "listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n" +
		"    dynos: [{name: web.1, address: \"localhost:5001\"}, {name: web.2, address: \"dyno2.internal:5000\"}]\n" +
		"    dyno_tls: {mode: verify-full, trust: [dynos-2026.pem]}\n"
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	assert.Equal(t, DynoTLS{Mode: DynoTLSVerifyFull, Trust: []string{bundle("dynos-2026.pem")}}, c.Apps[0].DynoTLS)
}

func TestDynoTLSProblems(t *testing.T) {
	t.Parallel()
	dir := dynoTLSDir(t)
	writeFile(t, dir, "junk.pem", []byte("junk\n"))
	writeFile(t, dir, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	cases := []struct {
		name string
		app  string
		want []string // DIR for the directory
	}{
		{"verify-full at an IP address", "    dyno_tls: {mode: verify-full, trust: [dynos-2026.pem]}\n", []string{
			`DIR/space.yaml:6: apps[0].dynos[0].address: dyno web.1 has an IP address (127.0.0.1), and dyno_tls mode verify-full checks ` +
				`the dyno's certificate against a host name: set dyno_tls.server_name to the name in the dynos' certificates, or use mode verify-ca`}},
		{"bundles", "    dyno_tls:\n      mode: verify-ca\n      trust:\n        - junk.pem\n        - bad.pem\n        - .\n        - none.pem\n", []string{
			`DIR/space.yaml:11: apps[0].dyno_tls.trust: no certificate in "DIR/junk.pem": want a PEM bundle of the CA certificates (or self-signed certificates) of the dynos`,
			// The text after the file name comes from crypto/x509.
			`DIR/space.yaml:12: apps[0].dyno_tls.trust: parsing certificate 1 of "DIR/bad.pem": x509: malformed certificate`,
			`DIR/space.yaml:13: apps[0].dyno_tls.trust: "DIR" is not a regular file`,
			`DIR/space.yaml:14: apps[0].dyno_tls.trust: stat DIR/none.pem: no such file or directory`}},
		{"bundles under mode off are checked", "    dyno_tls: {trust: [none.pem]}\n", []string{
			`DIR/space.yaml:8: apps[0].dyno_tls.trust: stat DIR/none.pem: no such file or directory`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := dynoTLSConfig(tc.app)
			_, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.ReplaceAll(w, "DIR", dir)
			}
			assert.Equal(t, want, problems(t, err), "config:\n%s", src)
		})
	}
}

func TestDynoTLSWarnings(t *testing.T) {
	t.Parallel()
	dir := dynoTLSDir(t)
	tmpl := caTemplate("dynos 2024")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().AddDate(-3, 0, 0), time.Now().AddDate(0, -1, 0)
	expired := makeCert(t, tmpl, nil)
	tmpl = caTemplate("dynos 2099")
	tmpl.NotBefore = time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC)
	future := makeCert(t, tmpl, nil)
	writeFile(t, dir, "rotation.pem", append(expired.certPEM, future.certPEM...))
	path := filepath.Join(dir, "space.yaml")
	rotation := filepath.Join(dir, "rotation.pem")
	cases := []struct {
		name string
		app  string
		want []string
	}{
		{"trust and server_name without mode", "    dyno_tls: {trust: [dynos-2026.pem], server_name: web.shop.internal}\n", []string{
			path + `:8: apps[0].dyno_tls: mode is off (the default): trust and server_name have no effect; set mode: verify-ca or verify-full to verify the dynos' certificates`}},
		{"trust under require", "    dyno_tls:\n      mode: require\n      trust: [dynos-2026.pem]\n      server_name: \"\"\n", []string{
			path + `:9: apps[0].dyno_tls: mode is require: trust has no effect; set mode: verify-ca or verify-full to verify the dynos' certificates`}},
		{"server_name under verify-ca", "    dyno_tls: {mode: verify-ca, trust: [dynos-2026.pem], server_name: web.shop.internal}\n", []string{
			path + `:8: apps[0].dyno_tls: mode is verify-ca: server_name has no effect; it is the name mode verify-full checks the certificates of dynos at IP addresses against`}},
		{"expired and future anchors", "    dyno_tls: {mode: verify-full, trust: [rotation.pem], server_name: web.shop.internal}\n", []string{
			path + `:8: apps[0].dyno_tls.trust: certificate 1 of "` + rotation + `" (CN "dynos 2024") expired on ` +
				expired.cert.NotAfter.UTC().Format(time.DateOnly) + `: a dyno certificate that chains only to it fails verification (H43)`,
			path + `:8: apps[0].dyno_tls.trust: certificate 2 of "` + rotation + `" (CN "dynos 2099") is not valid before 2098-01-01 00:00:00: ` +
				`a dyno certificate that chains only to it fails verification (H43) until then`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := dynoTLSConfig(tc.app)
			c, err := Parse(path, []byte(src))
			require.NoError(t, err, "config:\n%s", src)
			assert.Equal(t, tc.want, c.Warnings(), "config:\n%s", src)
		})
	}
}
