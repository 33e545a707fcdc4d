package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// certs decodes the app's certificate chains and loads each to prove it is
// usable.
func (d *decoder) certs(key string, n *yaml.Node, domains []string) []Cert {
	out := []Cert{}
	if n == nil {
		return out
	}
	d.list(key, n, func(k string, item *yaml.Node) {
		if c, ok := d.cert(k, item, domains); ok {
			out = append(out, c)
		}
	})
	return out
}

// cert decodes one {cert, key} pair, resolving relative paths against the
// config file's directory.
func (d *decoder) cert(key string, n *yaml.Node, domains []string) (Cert, bool) {
	var c Cert
	seen, ok := d.fields(key, n, d.certFields(&c))
	if !ok {
		return c, false
	}
	d.need(key, n, seen, "cert", "every certificate needs cert, a PEM file with the chain, leaf first")
	d.need(key, n, seen, "key", "every certificate needs key, a PEM file with the private key")
	if c.Cert == "" || c.Key == "" {
		return c, false
	}
	certAt, keyAt := seen["cert"].v, seen["key"].v
	if !d.regularFile(certAt, join(key, "cert"), c.Cert) || !d.regularFile(keyAt, join(key, "key"), c.Key) {
		return c, false
	}
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		d.problem(certAt, join(key, "cert"), "loading certificate and key: %v", err)
		return c, false
	}
	d.checkLeaf(certAt, join(key, "cert"), pair, domains)
	return c, true
}

// certFields is the table of the keys of one certificate.
func (d *decoder) certFields(c *Cert) []field {
	return []field{
		{"cert", func(k string, v *yaml.Node) { c.Cert = d.path(d.str(k, v)) }},
		{"key", func(k string, v *yaml.Node) { c.Key = d.path(d.str(k, v)) }},
	}
}

// maxPEMBytes bounds a certificate or key file; real chains are a few KiB.
const maxPEMBytes = 1 << 20

// regularFile refuses a path that is missing, not a regular file or too
// big, so a device, a FIFO or a wrong path to a huge file is never read.
func (d *decoder) regularFile(n *yaml.Node, key, path string) bool {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		d.problem(n, key, "%v", err)
	case !fi.Mode().IsRegular():
		d.problem(n, key, "%q is not a regular file", path)
	case fi.Size() > maxPEMBytes:
		d.problem(n, key, "%q has %d bytes: want a PEM file of at most %d", path, fi.Size(), maxPEMBytes)
	default:
		return true
	}
	return false
}

// checkLeaf warns about a certificate that covers none of the app's
// domains or is outside its validity period; clients would refuse it, but
// the operator may be rolling certificates, so it is not an error.
func (d *decoder) checkLeaf(n *yaml.Node, key string, pair tls.Certificate, domains []string) {
	leaf := pair.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return // LoadX509KeyPair parsed it already
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		d.warn(n, key, "certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	} else if now.Before(leaf.NotBefore) {
		d.warn(n, key, "certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.DateTime))
	}
	if len(domains) > 0 && !coversAny(leaf, domains) {
		d.warn(n, key, "certificate for %s covers none of the app's domains (%s)",
			certNames(leaf), strings.Join(domains, ", "))
	}
}

// coversAny reports whether leaf is valid for at least one of domains. A
// wildcard domain is covered by the same wildcard in the certificate, or
// by one that matches a name under it.
func coversAny(leaf *x509.Certificate, domains []string) bool {
	for _, dom := range domains {
		if rest, ok := strings.CutPrefix(dom, "*."); ok {
			for _, name := range leaf.DNSNames {
				if strings.EqualFold(name, dom) {
					return true
				}
			}
			dom = "wildcard-probe." + rest
		}
		if leaf.VerifyHostname(dom) == nil {
			return true
		}
	}
	return false
}

// certNames lists the names a certificate is for, for messages.
func certNames(leaf *x509.Certificate) string {
	names := append([]string{}, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("%q (no DNS names)", leaf.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}
