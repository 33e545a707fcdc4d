package config

import (
	"fmt"
	"net/netip"

	"go.yaml.in/yaml/v3"
)

// ipRules decodes the app's ip_rules (SPEC.md section 11.2): at most
// MaxIPRules networks, each listed once. Nothing is no rule: every address
// is accepted.
func (d *decoder) ipRules(key string, n *yaml.Node) []IPRule {
	out := []IPRule{}
	listed := map[netip.Prefix]listedRule{}
	count := 0
	d.list(key, n, func(k string, item *yaml.Node) {
		if count++; count == MaxIPRules+1 {
			d.problem(item, k, "rule %d is one too many: an app has at most %d ip_rules; merge networks into wider CIDRs",
				count, MaxIPRules)
		}
		if r, ok := d.ipRule(k, item, listed); ok {
			out = append(out, r)
		}
	})
	return out
}

// listedRule is a rule already in the list, for the message about a
// duplicate.
type listedRule struct {
	key, cidr string // apps[0].ip_rules[0], the cidr as written
}

// ipRule decodes one {cidr, description}; listed holds the networks of
// the rules before it, and gets this one's.
func (d *decoder) ipRule(key string, n *yaml.Node, listed map[netip.Prefix]listedRule) (IPRule, bool) {
	var r IPRule
	if v := deref(n); v.Kind == yaml.ScalarNode && !isNull(v) {
		d.problem(n, key, "want a mapping with keys cidr, description, such as {cidr: 203.0.113.0/24, description: Office}, got %s",
			describe(v))
		return r, false
	}
	var cidr string
	seen, ok := d.fields(key, n, d.ipRuleFields(&r, &cidr))
	if !ok {
		return r, false
	}
	d.need(key, n, seen, "cidr", "every rule needs cidr, a network such as 203.0.113.0/24")
	if cidr == "" {
		return r, false
	}
	at, k := seen["cidr"].v, join(key, "cidr")
	p, msg := ruleNetwork(cidr)
	if msg != "" {
		d.problem(at, k, "%s", msg)
		return r, false
	}
	if first, dup := listed[p]; dup {
		d.problem(at, k, "%q is the same network as %s (%s): list each network once", cidr, first.key, first.cidr)
		return r, false
	}
	listed[p] = listedRule{key: key, cidr: cidr}
	r.Prefix = p
	return r, true
}

// ipRuleFields is the table of the keys of one ip rule; the cidr is kept
// as written in *cidr, to be checked once the rule is read.
func (d *decoder) ipRuleFields(r *IPRule, cidr *string) []field {
	return []field{
		{"cidr", func(k string, v *yaml.Node) { *cidr = d.str(k, v) }},
		{"description", func(k string, v *yaml.Node) { r.Description = d.str(k, v) }},
	}
}

// ruleNetwork parses the cidr of an ip rule: an IPv4 or IPv6 network in
// CIDR form without host bits. A bare address is refused rather than
// taken as /32 or /128, so that 10.0.0.0 meant as a network is not
// silently one host. An IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is
// returned as the IPv4 network it names (10.0.0.0/8), since the router
// compares the unmapped client address. It returns the masked network, or
// a message saying what is wrong and what to write.
func ruleNetwork(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return netip.Prefix{}, fmt.Sprintf("bad cidr %q: an address without a prefix length: write %s for this address alone",
				s, netip.PrefixFrom(a, a.BitLen()))
		}
		return netip.Prefix{}, fmt.Sprintf("bad cidr %q: want an IPv4 or IPv6 network in CIDR form, such as 203.0.113.0/24 or 2001:db8::/48", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Sprintf("bad cidr %q: host bits are set; did you mean %s?", s, m)
	}
	if a := p.Addr(); a.Is4In6() {
		// Masked, so a mapped address keeps its ::ffff: and Bits() >= 96.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, ""
}
