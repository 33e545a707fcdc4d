package config

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uncommentExample returns examples/space.yaml with the comment lines that
// start with one of prefixes (once trimmed) uncommented, and how many
// lines that was.
func uncommentExample(t *testing.T, prefixes ...string) (string, int) {
	t.Helper()
	data := readFile(t, filepath.Join("..", "examples", "space.yaml"))
	var b strings.Builder
	uncommented := 0
	for line := range strings.Lines(string(data)) {
		trimmed := strings.TrimSpace(line)
		for _, prefix := range prefixes {
			if strings.HasPrefix(trimmed, prefix) {
				line = strings.Replace(line, "# ", "", 1)
				uncommented++
				break
			}
		}
		b.WriteString(line)
	}
	return b.String(), uncommented
}

// exampleTLS are the prefixes of the TLS lines examples/space.yaml has
// commented out: listen.https and shop's certificate.
var exampleTLS = []string{"# https:", "# tls:", "#   - cert:", "#     key:"}

// TestExampleClientCertificates: the space_ca, mtls and ip_rules lines
// examples/space.yaml has commented out make a valid config once
// uncommented, with the TLS lines they need and files at the paths they
// name. (cmd/spacerouter checks the example as it is, with -check.)
func TestExampleClientCertificates(t *testing.T) {
	t.Parallel()
	src, uncommented := uncommentExample(t, append([]string{
		"# space_ca:", "#   cert:", "#   key:", "#   state_dir:",
		"# mtls:", "#   mode:", "#   trust:", "#   forward:",
		"# ip_rules:", "#   - {cidr:",
	}, exampleTLS...)...)
	require.Equal(t, 15, uncommented, "the commented lines of examples/space.yaml")

	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.example.com.pem", "certs/shop.example.com-key.pem", "shop.example.com", "*.shop.example.com")
	writeCA(t, dir, "ca/space.pem", "ca/space-key.pem", "example space CA")
	path := filepath.Join(dir, "space.yaml")
	c, err := Parse(path, []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	shop := c.App("shop")
	assert.Equal(t, MTLS{Mode: MTLSRequire, Trust: []string{TrustSpace}, Forward: ForwardXFCC}, shop.MTLS)
	assert.Equal(t, []IPRule{
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Description: "Office"},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Description: "VPN"},
	}, shop.IPRules)
	assert.Equal(t, filepath.Join(dir, "ca", "issued"), c.SpaceCA.StateDir)
	// blog has no certificate: the example says why in its comments.
	require.Len(t, c.Warnings(), 1)
	assert.Contains(t, c.Warnings()[0], "apps[1].tls: no certificate")
}

// TestExampleACME: the acme, tls: auto and dyno_tls lines
// examples/space.yaml has commented out make a valid config once
// uncommented, with the TLS lines they need and files at the paths they
// name.
func TestExampleACME(t *testing.T) {
	t.Parallel()
	src, uncommented := uncommentExample(t, append([]string{
		"# acme:", "#   directory:", "#   email:", "#   agree_tos:", "#   storage:", "#   renew_before:",
		"# dyno_tls:",
		"# - name: api", "#   domains:", "#   tls: auto", "#   dynos:", "#     - {name:", "#   dyno_tls:",
	}, exampleTLS...)...)
	require.Equal(t, 17, uncommented, "the commented lines of examples/space.yaml")

	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.example.com.pem", "certs/shop.example.com-key.pem", "shop.example.com", "*.shop.example.com")
	writeCA(t, dir, "ca/dynos.pem", "", "example dyno CA")
	c, err := Parse(filepath.Join(dir, "space.yaml"), []byte(src))
	require.NoError(t, err, "config:\n%s", src)
	assert.Equal(t, &ACME{
		Directory:   "https://acme-staging-v02.api.letsencrypt.org/directory",
		Email:       "ops@example.com",
		AgreeTOS:    true,
		Storage:     "/var/lib/spacerouter/acme",
		RenewBefore: 720 * time.Hour,
	}, c.ACME)
	assert.Equal(t, DynoTLS{
		Mode: DynoTLSVerifyFull, Trust: []string{filepath.Join(dir, "ca", "dynos.pem")}, ServerName: "shop.dynos.internal",
	}, c.App("shop").DynoTLS)
	api := c.App("api")
	require.NotNil(t, api, "the app api of the example")
	assert.True(t, api.TLSAuto)
	assert.Equal(t, DynoTLS{Mode: DynoTLSRequire, Trust: []string{}}, api.DynoTLS)
	// blog has no certificate: the example says why in its comments.
	require.Len(t, c.Warnings(), 1)
	assert.Contains(t, c.Warnings()[0], "apps[1].tls: no certificate")
}
