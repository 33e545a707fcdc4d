package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, and that what it returns is
// either a complete config or a non-empty list of problems in file order.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("a: &a {<<: *a}\n"))
	f.Add([]byte("apps: &a [*a]\n"))
	f.Add([]byte("listen: {https: \":0\"}\nacme: {directory: \"https://ca.example/dir\", agree_tos: true, storage: s}\n" +
		"apps: [{name: shop, domains: [shop.example.com], tls: auto, dynos: [{name: web.1, address: \"10.0.0.1:5000\"}], " +
		"dyno_tls: {mode: require}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz/space.yaml"
		c, err := Parse(name, data)
		if err != nil {
			checkProblems(t, name, err)
			return
		}
		checkConfig(t, c)
	})
}

// checkProblems checks the error of a refused config.
func checkProblems(t *testing.T, name string, err error) {
	errs, ok := errors.AsType[*Errors](err)
	if !ok || len(errs.Problems) == 0 {
		t.Fatalf("error %T %v: want *Errors with problems", err, err)
	}
	for i, p := range errs.Problems {
		if p.File != name || p.Msg == "" {
			t.Errorf("problem %q: want file %q and a message", p, name)
		}
		if i > 0 && p.Line < errs.Problems[i-1].Line {
			t.Errorf("problem %q after line %d: want file order", p, errs.Problems[i-1].Line)
		}
	}
}

// checkConfig checks the invariants of an accepted config.
func checkConfig(t *testing.T, c *Config) {
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		t.Error("accepted a config without a listener")
	}
	if len(c.Apps) == 0 {
		t.Error("accepted a config without an app")
	}
	for _, d := range []int64{int64(c.Timeouts.Connect), int64(c.Timeouts.Shutdown), int64(c.Buffering.Window)} {
		if d <= 0 {
			t.Errorf("accepted a duration %d", d)
		}
	}
	l := c.Limits
	for _, n := range []int{l.RequestLineBytes, l.MethodBytes, l.HeaderNameBytes, l.HeaderBytes, l.CookieBytes,
		l.HeadersTotalBytes, l.HeaderCount, l.ConcurrencyPerDyno, l.Connections, l.ConnectionsPerClient,
		l.RequestsPerClient, l.H2MaxStreams, c.Buffering.Bytes} {
		if n <= 0 {
			t.Errorf("accepted a limit %d", n)
		}
	}
	if l.MinTransferRate < 0 || c.Buffering.RequestBytes < 0 || l.H2MaxStreams > 1<<31-1 {
		t.Errorf("accepted limits %+v, buffering %+v", l, c.Buffering)
	}
	for _, a := range c.Apps {
		if a.Name == "" || len(a.Domains) == 0 || len(a.FeatureSet) != len(a.Features) {
			t.Errorf("accepted app %+v", a)
		}
		for _, dy := range a.Dynos {
			if dy.Name == "" || dy.Address == "" || dy.State == "" {
				t.Errorf("accepted dyno %+v", dy)
			}
		}
		checkAppAccess(t, a)
		checkAppTLS(t, c, a)
	}
	if a := c.ACME; a != nil && (!strings.HasPrefix(a.Directory, "https://") || !a.AgreeTOS || a.Storage == "" || a.RenewBefore <= 0) {
		t.Errorf("accepted acme %+v", a)
	}
}

// checkAppTLS checks the tls: auto and dyno_tls of an accepted app.
func checkAppTLS(t *testing.T, c *Config, a App) {
	if a.TLSAuto && (len(a.TLS) != 0 || c.ACME == nil || slices.ContainsFunc(a.Domains, func(d string) bool { return strings.HasPrefix(d, "*") })) {
		t.Errorf("accepted tls: auto for app %+v, acme %+v", a, c.ACME)
	}
	dt := a.DynoTLS
	verify := dt.Mode == DynoTLSVerifyCA || dt.Mode == DynoTLSVerifyFull
	if !slices.Contains(dynoTLSModes, dt.Mode) || dt.Trust == nil || verify && len(dt.Trust) == 0 {
		t.Errorf("accepted dyno_tls %+v", dt)
	}
	if dt.Mode != DynoTLSVerifyFull || dt.ServerName != "" {
		return
	}
	for _, dy := range a.Dynos {
		if host, _, err := net.SplitHostPort(dy.Address); err == nil {
			if _, err := netip.ParseAddr(host); err == nil {
				t.Errorf("accepted dyno %+v at an IP address under verify-full without server_name", dy)
			}
		}
	}
}

// checkAppAccess checks the mtls and ip_rules of an accepted app.
func checkAppAccess(t *testing.T, a App) {
	m := a.MTLS
	if !slices.Contains(mtlsModes, m.Mode) || !slices.Contains(forwards, m.Forward) ||
		m.Mode != MTLSOff && len(m.Trust) == 0 {
		t.Errorf("accepted mtls %+v", m)
	}
	if len(a.IPRules) > MaxIPRules {
		t.Errorf("accepted %d ip_rules", len(a.IPRules))
	}
	seen := map[netip.Prefix]bool{}
	for _, r := range a.IPRules {
		checkNetwork(t, r.Prefix)
		if seen[r.Prefix] {
			t.Errorf("accepted %s twice", r.Prefix)
		}
		seen[r.Prefix] = true
	}
}

// checkNetwork checks an accepted ip rule network: valid, masked, without
// zone, IPv4 as IPv4 (never mapped into IPv6), as the router compares it.
func checkNetwork(t *testing.T, p netip.Prefix) {
	if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		t.Errorf("accepted network %v", p)
	}
}

// suggested finds the network a refused cidr's message suggests.
var suggested = regexp.MustCompile(`(?:did you mean|write) (\S+?)(?:\?$| for )`)

// FuzzIPRule checks the parsing of ip_rules cidrs: whatever the input, no
// panic; an accepted network is masked and valid; a network a message
// suggests is accepted; and the decoder agrees with ruleNetwork.
func FuzzIPRule(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "1.2.3.4/24", "::ffff:10.0.0.0/104", "::ffff:1.2.3.4/120",
		"2001:db8::/32", "fe80::1%eth0/64", "192.0.2.7", "::1", "", "::/0", "0.0.0.0/0", "10.0.0.0/33", "01.2.3.4/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cidr string) {
		p, msg := ruleNetwork(cidr)
		if msg == "" {
			checkNetwork(t, p)
		} else if p.IsValid() {
			t.Errorf("ruleNetwork(%q) = %v with problem %q: want no network", cidr, p, msg)
		}
		if m := suggested.FindStringSubmatch(msg); m != nil {
			if _, again := ruleNetwork(m[1]); again != "" {
				t.Errorf("ruleNetwork(%q) suggests %s, which is refused: %s", cidr, m[1], again)
			}
		}

		const name = "fuzz/space.yaml"
		// strconv.Quote's escapes are YAML's too: valid UTF-8 comes back as is.
		src := "listen: {http: \":0\"}\napps: [{name: shop, domains: [shop.example.com], ip_rules: [{cidr: " +
			strconv.Quote(cidr) + "}]}]\n"
		c, err := Parse(name, []byte(src))
		switch {
		case err != nil:
			checkProblems(t, name, err)
			if msg == "" && utf8.ValidString(cidr) {
				t.Errorf("ruleNetwork(%q) accepts it, Parse refuses it: %v", cidr, err)
			}
		case msg != "" && utf8.ValidString(cidr):
			t.Errorf("ruleNetwork(%q) refuses it (%s), Parse accepts it", cidr, msg)
		default:
			checkConfig(t, c)
			if msg == "" && (len(c.Apps[0].IPRules) != 1 || c.Apps[0].IPRules[0].Prefix != p) {
				t.Errorf("Parse gives rules %v for %q: want [%v]", c.Apps[0].IPRules, cidr, p)
			}
		}
	})
}
