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

// tlsAutoValue is the value of apps[].tls that asks for certificates over
// ACME (SPEC.md section 12.1) instead of a list of files.
const tlsAutoValue = "auto"

// appTLS decodes the app's tls: the string auto, or a list of certificate
// chains, each loaded to prove it is usable. It returns the chains (empty
// for auto) and whether the app has tls: auto.
func (d *decoder) appTLS(key string, n *yaml.Node, domains []string, c *Config) ([]Cert, bool) {
	if n == nil || isNull(n) {
		return []Cert{}, false
	}
	const want = "auto, for certificates over ACME, or a list of certificates such as " +
		"[{cert: certs/shop.pem, key: certs/shop-key.pem}]"
	switch v := deref(n); {
	case v.Kind == yaml.ScalarNode && v.Value == tlsAutoValue:
		d.tlsAuto(key, n, domains, c)
		return []Cert{}, true
	case v.Kind == yaml.ScalarNode:
		d.problem(n, key, "bad tls %q: want %s", v.Value, want)
		return []Cert{}, false
	case v.Kind != yaml.SequenceNode:
		d.problem(n, key, "want %s, got %s", want, describe(v))
		return []Cert{}, false
	}
	return d.certs(key, n, domains), false
}

// certs decodes the app's certificate chains and loads each to prove it is
// usable.
func (d *decoder) certs(key string, n *yaml.Node, domains []string) []Cert {
	out := []Cert{}
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
	return c, d.loadCert(key, n, seen, c, domains)
}

// loadCert checks the decoded {cert, key} pair c of the mapping n: both
// keys present, both files regular, the key the certificate's own, and the
// leaf's validity (and, staged, its domains). It reports whether the pair
// loaded.
func (d *decoder) loadCert(key string, n *yaml.Node, seen map[string]pair, c Cert, domains []string) bool {
	d.need(key, n, seen, "cert", "every certificate needs cert, a PEM file with the chain, leaf first")
	d.need(key, n, seen, "key", "every certificate needs key, a PEM file with the private key")
	if c.Cert == "" || c.Key == "" {
		return false
	}
	certAt, keyAt := seen["cert"].v, seen["key"].v
	if !d.regularFile(certAt, join(key, "cert"), c.Cert) || !d.regularFile(keyAt, join(key, "key"), c.Key) {
		return false
	}
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		d.problem(certAt, join(key, "cert"), "loading certificate and key: %v", err)
		return false
	}
	if c.ServeFrom.IsZero() {
		d.checkLeaf(certAt, join(key, "cert"), pair, domains)
	} else {
		d.checkStaged(certAt, join(key, "cert"), pair, c.ServeFrom, domains)
	}
	return true
}

// certFields is the table of the keys of one certificate.
func (d *decoder) certFields(c *Cert) []field {
	return []field{
		{"cert", func(k string, v *yaml.Node) { c.Cert = d.path(d.str(k, v)) }},
		{"key", func(k string, v *yaml.Node) { c.Key = d.path(d.str(k, v)) }},
		{"serve_from", func(k string, v *yaml.Node) { d.rfc3339(k, v, &c.ServeFrom) }},
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

// leafOf returns the parsed leaf of a loaded chain, or nil.
func leafOf(pair tls.Certificate) *x509.Certificate {
	if pair.Leaf != nil {
		return pair.Leaf
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil // LoadX509KeyPair parsed it already
	}
	return leaf
}

// checkLeaf warns about a certificate that covers none of the app's
// domains or is outside its validity period; clients would refuse it, but
// the operator may be rolling certificates, so it is not an error.
func (d *decoder) checkLeaf(n *yaml.Node, key string, pair tls.Certificate, domains []string) {
	leaf := leafOf(pair)
	if leaf == nil {
		return
	}
	d.checkValidity(n, key, leaf)
	if len(domains) > 0 && !coversAny(leaf, domains) {
		d.warn(n, key, "certificate for %s covers none of the app's domains (%s)",
			certNames(leaf), strings.Join(domains, ", "))
	}
}

// checkValidity warns about a served certificate outside its validity
// period.
func (d *decoder) checkValidity(n *yaml.Node, key string, leaf *x509.Certificate) {
	if now := time.Now(); now.After(leaf.NotAfter) {
		d.warn(n, key, "certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	} else if now.Before(leaf.NotBefore) {
		d.warn(n, key, "certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.DateTime))
	}
}

// checkStaged checks a chain with serve_from (SPEC.md section 12.3). From
// that time on it replaces the app's chains of its key type with no or an
// earlier serve_from, without a reload, so what would break then is a
// problem now: a domain of the app it does not cover, and, for a time
// still to come, a certificate that is expired or not yet valid at it. A
// serve_from already past makes the chain current: its validity period
// gets the warnings of any served certificate.
func (d *decoder) checkStaged(n *yaml.Node, key string, pair tls.Certificate, from time.Time, domains []string) {
	leaf := leafOf(pair)
	if leaf == nil {
		return
	}
	var missing []string
	for _, dom := range domains {
		if !covers(leaf, dom) {
			missing = append(missing, fmt.Sprintf("%q", dom))
		}
	}
	if len(missing) > 0 {
		d.problem(n, key, "the staged certificate for %s does not cover %s: from serve_from on it is served instead of "+
			"the app's %s chains with no or an earlier serve_from, so it must cover every domain of the app",
			certNames(leaf), strings.Join(missing, ", "), leaf.PublicKeyAlgorithm)
	}
	if !from.After(time.Now()) {
		d.checkValidity(n, key, leaf)
		return
	}
	at := from.UTC().Format(time.RFC3339)
	switch {
	case !leaf.NotAfter.After(from):
		d.problem(n, key, "the staged certificate expires at %s, before its serve_from %s: "+
			"want a certificate still valid when it is served", leaf.NotAfter.UTC().Format(time.RFC3339), at)
	case leaf.NotBefore.After(from):
		d.problem(n, key, "the staged certificate is not valid before %s, after its serve_from %s: "+
			"clients would refuse it until then; want serve_from at or after its start",
			leaf.NotBefore.UTC().Format(time.RFC3339), at)
	}
}

// coversAny reports whether leaf is valid for at least one of domains.
func coversAny(leaf *x509.Certificate, domains []string) bool {
	for _, dom := range domains {
		if covers(leaf, dom) {
			return true
		}
	}
	return false
}

// covers reports whether leaf is valid for the app domain dom. A wildcard
// domain is covered by the same wildcard in the certificate, or by one
// that matches a name under it.
func covers(leaf *x509.Certificate, dom string) bool {
	if rest, ok := strings.CutPrefix(dom, "*."); ok {
		for _, name := range leaf.DNSNames {
			if strings.EqualFold(name, dom) {
				return true
			}
		}
		dom = "wildcard-probe." + rest
	}
	return leaf.VerifyHostname(dom) == nil
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
