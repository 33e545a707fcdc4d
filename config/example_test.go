package config

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExampleClientCertificates: the space_ca, mtls and ip_rules lines
// examples/space.yaml has commented out make a valid config once
// uncommented, with the TLS lines they need and files at the paths they
// name. (cmd/spacerouter checks the example as it is, with -check.)
func TestExampleClientCertificates(t *testing.T) {
	t.Parallel()
	data := readFile(t, filepath.Join("..", "examples", "space.yaml"))
	prefixes := []string{
		"# https:", "# tls:", "#   - cert:", "#     key:",
		"# space_ca:", "#   cert:", "#   key:", "#   state_dir:",
		"# mtls:", "#   mode:", "#   trust:", "#   forward:",
		"# ip_rules:", "#   - {cidr:",
	}
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
	require.Equal(t, 15, uncommented, "the commented lines of examples/space.yaml")

	dir := t.TempDir()
	writeCert(t, dir, "certs/shop.example.com.pem", "certs/shop.example.com-key.pem", "shop.example.com", "*.shop.example.com")
	writeCA(t, dir, "ca/space.pem", "ca/space-key.pem", "example space CA")
	path := filepath.Join(dir, "space.yaml")
	c, err := Parse(path, []byte(b.String()))
	require.NoError(t, err, "config:\n%s", b.String())
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
