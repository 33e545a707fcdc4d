package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// dynoTLSModes are the values dyno_tls.mode may take (SPEC.md section 12.4).
var dynoTLSModes = []string{DynoTLSOff, DynoTLSRequire, DynoTLSVerifyCA, DynoTLSVerifyFull}

// defaultDynoTLS is how an app reaches its dynos when dyno_tls is omitted:
// plain HTTP/1.1.
func defaultDynoTLS() DynoTLS {
	return DynoTLS{Mode: DynoTLSOff, Trust: []string{}}
}

// dynoRef is a dyno of the app as the file has it: its key and the node of
// its address (nil when it has none), for problems about its address.
type dynoRef struct {
	key  string
	addr *yaml.Node
}

// dynoTLS decodes the app's dyno_tls; nothing is the same as leaving it
// out. dynos and refs are the app's dynos and where the file has them:
// under verify-full, a dyno whose address is an IP address needs
// server_name.
func (d *decoder) dynoTLS(key string, n *yaml.Node, dynos []Dyno, refs []dynoRef) DynoTLS {
	t := defaultDynoTLS()
	if n == nil || isNull(n) {
		return t
	}
	seen, ok := d.fields(key, n, d.dynoTLSFields(&t))
	if !ok {
		return t
	}
	switch t.Mode {
	case DynoTLSOff, DynoTLSRequire:
		d.dynoTLSNoEffect(key, n, seen, t.Mode, "trust", "server_name")
	case DynoTLSVerifyCA:
		d.needTrust(key, n, seen, t)
		d.dynoTLSNoEffect(key, n, seen, t.Mode, "server_name")
	case DynoTLSVerifyFull:
		d.needTrust(key, n, seen, t)
		if t.ServerName == "" {
			d.needServerName(dynos, refs)
		}
	}
	return t
}

// dynoTLSFields is the table of the keys of an app's dyno_tls. Bundles
// are loaded whatever the mode, so a broken one is found before the mode
// that uses it is set.
func (d *decoder) dynoTLSFields(t *DynoTLS) []field {
	return []field{
		{"mode", func(k string, v *yaml.Node) {
			t.Mode = d.str(k, v)
			d.oneOf(v, k, "mode", t.Mode, dynoTLSModes)
		}},
		{"trust", func(k string, v *yaml.Node) { t.Trust = d.dynoTrust(k, v) }},
		{"server_name", func(k string, v *yaml.Node) {
			t.ServerName = d.str(k, v)
			if msg := serverNameProblem(t.ServerName); t.ServerName != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
	}
}

// dynoTrust decodes dyno_tls.trust: PEM bundle paths, each listed once and
// holding at least one certificate. Any certificate is an anchor, a CA or
// a dyno's self-signed certificate (see anchorBundle).
func (d *decoder) dynoTrust(key string, n *yaml.Node) []string {
	out := []string{}
	d.list(key, n, func(_ string, item *yaml.Node) {
		s := d.str(key, item)
		switch {
		case deref(item).Kind != yaml.ScalarNode:
			return
		case s == "":
			d.problem(item, key, "empty entry in the list: want a PEM bundle path")
			return
		case slices.Contains(out, d.path(s)):
			d.problem(item, key, "%q is listed twice", s)
			return
		}
		out = append(out, d.path(s))
		d.anchorBundle(item, key, d.path(s), "a PEM bundle of the CA certificates (or self-signed certificates) of the dynos",
			"a dyno certificate that chains only to it fails verification (H43)")
	})
	return out
}

// needTrust refuses verify-ca and verify-full without a trust bundle.
func (d *decoder) needTrust(key string, n *yaml.Node, seen map[string]pair, t DynoTLS) {
	trust, set := seen["trust"]
	switch {
	case !set || isNull(trust.v):
		d.problem(n, join(key, "trust"), "missing: mode %s needs the CAs that sign the dynos' certificates: "+
			"add trust with PEM bundle paths", t.Mode)
	case len(t.Trust) == 0 && isEmptyList(trust.v):
		d.problem(trust.v, join(key, "trust"), "empty: mode %s needs at least one PEM bundle", t.Mode)
	}
}

// needServerName refuses, under verify-full without server_name, each
// dyno whose address is an IP address: verify-full checks the dyno's
// certificate against the host of its address, and an IP address is no
// host name to check (SPEC.md section 12.4).
func (d *decoder) needServerName(dynos []Dyno, refs []dynoRef) {
	for i, dy := range dynos {
		host, _, err := net.SplitHostPort(dy.Address)
		if err != nil || refs[i].addr == nil || addrProblem(dy.Address, 1) != "" {
			continue // no address, or a bad one: a problem of its own
		}
		if _, err := netip.ParseAddr(host); err != nil {
			continue
		}
		name := dy.Name
		if name == "" {
			name = refs[i].key
		}
		d.problem(refs[i].addr, join(refs[i].key, "address"), "dyno %s has an IP address (%s), and dyno_tls mode verify-full "+
			"checks the dyno's certificate against a host name: set dyno_tls.server_name to the name in the dynos' "+
			"certificates, or use mode verify-ca", name, host)
	}
}

// dynoTLSNoEffect warns about keys of dyno_tls that the mode does not use:
// they are checked, but nothing reads them.
func (d *decoder) dynoTLSNoEffect(key string, n *yaml.Node, seen map[string]pair, mode string, names ...string) {
	var set []string
	for _, name := range names {
		if p, ok := seen[name]; ok && !isEmpty(p.v) {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return
	}
	verb := "has"
	if len(set) > 1 {
		verb = "have"
	}
	what := "mode is " + mode
	if _, ok := seen["mode"]; !ok {
		what += " (the default)"
	}
	fix := "set mode: verify-ca or verify-full to verify the dynos' certificates"
	if mode == DynoTLSVerifyCA {
		fix = "it is the name mode verify-full checks the certificates of dynos at IP addresses against"
	}
	d.warn(n, key, "%s: %s %s no effect; %s", what, strings.Join(set, " and "), verb, fix)
}

// serverNameProblem checks dyno_tls.server_name: a DNS name (any case;
// "_" allowed, as container names have), not an IP address, as it stands
// for one. It returns "" when s is good.
func serverNameProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return fmt.Sprintf("bad server_name %q: an IP address: want the host name in the dynos' certificates, "+
			"such as web.shop.internal", s)
	}
	if msg := hostNameProblem(strings.ToLower(s), true); msg != "" {
		return fmt.Sprintf("bad server_name %q: %s", s, msg)
	}
	return ""
}
