package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// defaultRenewBefore is acme.renew_before when omitted (SPEC.md section 2):
// renewal starts 30 days before expiry, a third of the life of a 90-day
// certificate.
const defaultRenewBefore = 720 * time.Hour

// agreeTOS says why acme.agree_tos must be true and how to make it so.
const agreeTOS = "the CA issues certificates only to an account that agrees to its terms of service: " +
	"read them (meta.termsOfService in the directory) and set agree_tos: true"

// acme decodes the acme section (SPEC.md section 12.1); nothing is the same
// as leaving it out. The result is not nil for a section that is there,
// even a broken one, so that apps with tls: auto are not also told the
// file has no acme.
func (d *decoder) acme(key string, n *yaml.Node) *ACME {
	if isNull(n) {
		return nil
	}
	a := &ACME{RenewBefore: defaultRenewBefore}
	seen, ok := d.fields(key, n, d.acmeFields(a))
	if !ok {
		return a
	}
	d.need(key, n, seen, "directory", "acme needs directory, the URL of the CA's ACME directory, "+
		"such as https://acme-v02.api.letsencrypt.org/directory")
	d.need(key, n, seen, "agree_tos", agreeTOS)
	d.need(key, n, seen, "storage", "acme needs storage, the directory of the ACME account, certificates and keys, "+
		"such as /var/lib/spacerouter/acme")
	return a
}

// acmeFields is the table of the keys of acme. Files are checked as they
// are read: trusted_roots must hold a certificate, and what is at storage
// must be a directory (it need not exist).
func (d *decoder) acmeFields(a *ACME) []field {
	return []field{
		{"directory", func(k string, v *yaml.Node) {
			a.Directory = d.str(k, v)
			if msg := directoryProblem(a.Directory); a.Directory != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"email", func(k string, v *yaml.Node) {
			a.Email = d.str(k, v)
			if msg := emailProblem(a.Email); a.Email != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}},
		{"agree_tos", func(k string, v *yaml.Node) {
			if isEmpty(v) {
				return // need reports it
			}
			d.boolean(k, v, &a.AgreeTOS)
			if deref(v).ShortTag() == "!!bool" && !a.AgreeTOS {
				d.problem(v, k, "false: %s", agreeTOS)
			}
		}},
		{"trusted_roots", func(k string, v *yaml.Node) {
			if a.TrustedRoots = d.path(d.str(k, v)); a.TrustedRoots != "" {
				d.anchorBundle(v, k, a.TrustedRoots, "a PEM bundle of the root certificates to trust the ACME server with",
					"a certificate that chains only to it does not verify")
			}
		}},
		{"storage", func(k string, v *yaml.Node) {
			if a.Storage = d.path(d.str(k, v)); a.Storage != "" {
				d.dirPath(v, k, a.Storage, "the directory of the ACME account, certificates and keys")
			}
		}},
		{"renew_before", func(k string, v *yaml.Node) { d.duration(k, v, &a.RenewBefore) }},
	}
}

// directoryProblem checks acme.directory: an absolute https:// URL. Plain
// HTTP is refused, also on loopback: ACME runs over HTTPS only (RFC 8555
// section 6.1), and a test CA such as Pebble serves HTTPS with its own
// root, which acme.trusted_roots trusts. It returns "" when s is good.
func directoryProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.Scheme == "http" && u.Host != "":
		return fmt.Sprintf("bad directory %q: want an https:// URL: ACME runs over HTTPS only (RFC 8555 section 6.1); "+
			"for a test CA such as Pebble, trust its root with acme.trusted_roots", s)
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("bad directory %q: want the https:// URL of the CA's ACME directory, "+
			"such as https://acme-v02.api.letsencrypt.org/directory", s)
	}
	return ""
}

// emailProblem checks acme.email: one bare address (no display name, no
// mailto:), which the router gives the CA as the account's contact.
func emailProblem(s string) string {
	if rest, ok := strings.CutPrefix(s, "mailto:"); ok {
		return fmt.Sprintf("bad email %q: write the address alone, %q", s, rest)
	}
	if a, err := mail.ParseAddress(s); err != nil || a.Name != "" || a.Address != s {
		return fmt.Sprintf("bad email %q: want one address such as ops@example.com", s)
	}
	return ""
}

// tlsAuto checks an app with tls: auto (SPEC.md section 12.1): the file
// has an acme section; no domain is a wildcard, whose certificate needs
// the DNS-01 challenge while the router answers TLS-ALPN-01 only; and
// listen.https is on, as the CA validates over it (a warning: the app
// still serves plain HTTP).
func (d *decoder) tlsAuto(key string, n *yaml.Node, domains []string, c *Config) {
	if c.ACME == nil {
		d.problem(n, key, "auto needs the acme section, the CA to get certificates from: "+
			"add acme at the top of the file, or list certificate files")
	}
	for _, dom := range domains {
		if strings.HasPrefix(dom, "*.") {
			d.problem(n, key, "auto cannot get a certificate for the wildcard domain %q: a wildcard certificate needs "+
				"the DNS-01 challenge, and the router answers TLS-ALPN-01 only; list the names under it one by one, "+
				"or give this app certificate files", dom)
		}
	}
	if c.Listen.HTTPS == "" {
		d.warn(n, key, "auto without listen.https: the CA validates each domain over TLS-ALPN-01 on the https listener, "+
			"so no certificate can be obtained; set listen.https")
	}
}
