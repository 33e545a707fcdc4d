package config

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIPRules(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`listen: {http: ":0"}
apps:
  - name: shop
    domains: [shop.example.com]
    ip_rules:
      - {cidr: 203.0.113.0/24, description: Office}
      - cidr: "2001:db8:1::/48"
        description: VPN, "eu-west"
      - {cidr: "::ffff:198.51.100.0/120"}
      - {cidr: 192.0.2.7/32, description: ""}
      - {cidr: 0.0.0.0/0, description: every IPv4 client}
      - {cidr: "::/0"}
  - name: blog
    domains: [blog.example.com]
    ip_rules: []
  - name: docs
    domains: [docs.example.com]
    ip_rules:
`))
	require.NoError(t, err)
	assert.Equal(t, []IPRule{
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Description: "Office"},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Description: `VPN, "eu-west"`},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24")},
		{Prefix: netip.MustParsePrefix("192.0.2.7/32")},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Description: "every IPv4 client"},
		{Prefix: netip.MustParsePrefix("::/0")},
	}, c.Apps[0].IPRules)
	assert.Equal(t, []IPRule{}, c.Apps[1].IPRules)
	assert.Equal(t, []IPRule{}, c.Apps[2].IPRules)
	assert.Empty(t, c.Warnings())
}

// TestIPRulesLimit: 60 rules are allowed (SPEC.md section 11.2); the 61st
// is a problem (TestParseProblems).
func TestIPRulesLimit(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte("listen: {http: \":0\"}\napps:\n  - name: shop\n    domains: [shop.example.com]\n    ip_rules:\n"+rules(MaxIPRules)))
	require.NoError(t, err)
	assert.Len(t, c.Apps[0].IPRules, MaxIPRules)
}

func TestRuleNetwork(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cidr string
		want string // the network; "" when refused
		msg  string
	}{
		{"10.0.0.0/8", "10.0.0.0/8", ""},
		{"192.0.2.7/32", "192.0.2.7/32", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"2001:DB8::/32", "2001:db8::/32", ""},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", ""},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0", ""},
		{"::ffff:192.0.2.7/128", "192.0.2.7/32", ""},
		{"::ffff:0:0/80", "", `bad cidr "::ffff:0:0/80": host bits are set; did you mean ::/80?`},
		{"::/0", "::/0", ""},
		{"10.1.2.3/8", "", `bad cidr "10.1.2.3/8": host bits are set; did you mean 10.0.0.0/8?`},
		{"10.0.0.1/0", "", `bad cidr "10.0.0.1/0": host bits are set; did you mean 0.0.0.0/0?`},
		{"fe80::1/10", "", `bad cidr "fe80::1/10": host bits are set; did you mean fe80::/10?`},
		{"10.0.0.0", "", `bad cidr "10.0.0.0": an address without a prefix length: write 10.0.0.0/32 for this address alone`},
		{"fe80::1%eth0", "", `bad cidr "fe80::1%eth0": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`},
		{"10.0.0.0/-1", "", `bad cidr "10.0.0.0/-1": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`},
		{"10.0.0.0/129", "", `bad cidr "10.0.0.0/129": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`},
		{"10/8", "", `bad cidr "10/8": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`},
		{"", "", `bad cidr "": want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48`},
	}
	for _, tc := range cases {
		t.Run(tc.cidr, func(t *testing.T) {
			t.Parallel()
			p, msg := ruleNetwork(tc.cidr)
			assert.Equal(t, tc.msg, msg)
			if tc.want == "" {
				assert.False(t, p.IsValid(), "a refused cidr gives no network")
				return
			}
			assert.Equal(t, netip.MustParsePrefix(tc.want), p)
		})
	}
}
