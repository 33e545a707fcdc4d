package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// spaceCA decodes the space_ca section (SPEC.md sections 11.3 and 12.3);
// nothing is the same as leaving it out. Unless d.opts.SkipSpaceCAFiles,
// the CA certificate, its key and the previous certificates are loaded to
// prove they are usable. The result is not nil for a section that is
// there, even a broken one, so that apps trusting "space" are not also
// told the space has no CA.
func (d *decoder) spaceCA(key string, n *yaml.Node) *SpaceCA {
	if isNull(n) {
		return nil
	}
	ca := &SpaceCA{Previous: []PreviousCA{}}
	var previous *yaml.Node
	seen, ok := d.fields(key, n, d.spaceCAFields(ca, &previous))
	if !ok {
		return ca
	}
	d.need(key, n, seen, "cert", "the space CA needs cert, the PEM file of its certificate (spacerouter ca init makes it)")
	d.need(key, n, seen, "key", "the space CA needs key, the PEM file of its private key (spacerouter ca init makes it)")
	d.need(key, n, seen, "state_dir", "the space CA needs state_dir, the directory of issued client certificates, such as /var/lib/spacerouter/ca")
	if ca.StateDir != "" {
		d.dirPath(seen["state_dir"].v, join(key, "state_dir"), ca.StateDir, "the directory of issued client certificates")
	}
	var current *x509.Certificate
	if !d.opts.SkipSpaceCAFiles && ca.Cert != "" {
		current = d.spaceCACert(seen["cert"].v, join(key, "cert"), ca.Cert)
	}
	if !d.opts.SkipSpaceCAFiles && ca.Key != "" {
		d.spaceCAKey(seen["key"].v, join(key, "key"), ca.Key, ca.Cert, current)
	}
	if previous != nil {
		ca.Previous = d.previousCAs(join(key, "previous"), previous, current)
	}
	return ca
}

// spaceCAFields is the table of the keys of space_ca; previous is only
// kept in *previous, to be decoded once the current CA is loaded.
func (d *decoder) spaceCAFields(ca *SpaceCA, previous **yaml.Node) []field {
	return []field{
		{"cert", func(k string, v *yaml.Node) { ca.Cert = d.path(d.str(k, v)) }},
		{"key", func(k string, v *yaml.Node) { ca.Key = d.path(d.str(k, v)) }},
		{"previous", func(_ string, v *yaml.Node) { *previous = v }},
		{"state_dir", func(k string, v *yaml.Node) { ca.StateDir = d.path(d.str(k, v)) }},
	}
}

// dirPath checks a directory the router writes to (space_ca.state_dir,
// acme.storage): it need not exist (the router creates it, mode 0700), but
// what is there must be a directory. what says what the directory holds,
// for the message.
func (d *decoder) dirPath(n *yaml.Node, key, path, what string) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		d.problem(n, key, "%v", err)
	case !fi.IsDir():
		d.problem(n, key, "%q is not a directory: want %s "+
			"(the router creates it, mode 0700, when it is missing)", path, what)
	}
}

// spaceCACert loads the space CA's certificate: one CA certificate with an
// ECDSA P-256 or RSA key. A missing file gets the command that makes one.
func (d *decoder) spaceCACert(n *yaml.Node, key, path string) *x509.Certificate {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		d.problem(n, key, "%v: make the CA with spacerouter ca init -config %s", err, d.file)
		return nil
	}
	return d.caCert(n, key, path, "one, the space CA's")
}

// caCert loads a PEM file holding exactly one CA certificate, of a key
// type a space CA may have; want says what the file should hold.
func (d *decoder) caCert(n *yaml.Node, key, path, want string) *x509.Certificate {
	certs := d.pemCerts(n, key, path, "a PEM file with a CERTIFICATE block")
	switch {
	case certs == nil:
		return nil
	case len(certs) > 1:
		d.problem(n, key, "%q holds %d certificates: want %s", path, len(certs), want)
		return nil
	}
	cert := certs[0]
	if !isCA(cert) {
		d.problem(n, key, "the certificate in %q (CN %q) is not a CA: want one with basic constraints CA:true",
			path, cert.Subject.CommonName)
		return nil
	}
	if what := caKeyProblem(cert); what != "" {
		d.problem(n, key, "the certificate in %q has %s: want ECDSA P-256 or RSA of at least %d bits",
			path, what, minRSABits)
		return nil
	}
	d.checkCAValidity(n, key, fmt.Sprintf("the CA certificate in %q", path), cert)
	return cert
}

// spaceCAKey loads the space CA's private key and, when the certificate
// loaded, checks that the key is its own.
func (d *decoder) spaceCAKey(n *yaml.Node, key, path, certPath string, cert *x509.Certificate) {
	data, ok := d.readPEM(n, key, path)
	if !ok {
		return
	}
	priv, err := parseKey(data)
	switch {
	case errors.Is(err, errNoKey):
		d.problem(n, key, "no private key in %q: want a PEM file with a PRIVATE KEY block (PKCS#8, PKCS#1 or SEC 1)", path)
	case err != nil:
		d.problem(n, key, "cannot parse the private key in %q: want an unencrypted PKCS#8, PKCS#1 (RSA) or SEC 1 (ECDSA) key", path)
	case cert != nil && !matches(priv, cert):
		d.problem(n, key, "the key in %q does not match the certificate in %q: want the CA certificate's own private key",
			path, certPath)
	}
}

// previousCAs decodes space_ca.previous: older CAs, each trusted until its
// retire_at. current is the loaded space_ca.cert (nil when it did not
// load or was not read), so that a CA is not listed twice.
func (d *decoder) previousCAs(key string, n *yaml.Node, current *x509.Certificate) []PreviousCA {
	out := []PreviousCA{}
	listed := map[string]string{} // certificate DER -> the key that lists it
	if current != nil {
		listed[string(current.Raw)] = "space_ca.cert"
	}
	d.list(key, n, func(k string, item *yaml.Node) {
		var p PreviousCA
		seen, ok := d.fields(k, item, d.previousFields(&p))
		if !ok {
			return
		}
		d.need(k, item, seen, "cert", "every previous CA needs cert, the PEM file of its certificate")
		d.need(k, item, seen, "retire_at", "every previous CA needs retire_at, when it stops being trusted, such as 2027-03-01T00:00:00Z")
		if p.Cert != "" && !d.opts.SkipSpaceCAFiles {
			d.previousCert(seen["cert"].v, join(k, "cert"), p.Cert, listed)
		}
		if at := seen["retire_at"].v; !p.RetireAt.IsZero() && !time.Now().Before(p.RetireAt) {
			d.warn(at, join(k, "retire_at"), "%s is past: the CA in %q is retired and client certificates it issued are refused; remove the entry",
				deref(at).Value, p.Cert)
		}
		out = append(out, p)
	})
	return out
}

// previousFields is the table of the keys of one previous CA.
func (d *decoder) previousFields(p *PreviousCA) []field {
	return []field{
		{"cert", func(k string, v *yaml.Node) { p.Cert = d.path(d.str(k, v)) }},
		{"retire_at", func(k string, v *yaml.Node) {
			if !isNull(v) { // need reports it
				d.rfc3339(k, v, &p.RetireAt)
			}
		}},
	}
}

// previousCert loads a previous CA's certificate and refuses one listed
// already, as space_ca.cert or an earlier previous CA.
func (d *decoder) previousCert(n *yaml.Node, key, path string, listed map[string]string) {
	cert := d.caCert(n, key, path, "one, the previous CA's")
	if cert == nil {
		return
	}
	if first, dup := listed[string(cert.Raw)]; dup {
		d.problem(n, key, "the certificate in %q is also %s: list each CA once", path, first)
		return
	}
	listed[string(cert.Raw)] = key
}

// rfc3339 sets *dst to the RFC 3339 time n.
func (d *decoder) rfc3339(key string, n *yaml.Node, dst *time.Time) {
	const want = "an RFC 3339 time such as 2027-03-01T00:00:00Z"
	v, ok := d.scalar(key, n, want)
	if !ok {
		return
	}
	t, err := time.Parse(time.RFC3339, v.Value)
	if err != nil {
		d.problem(n, key, "bad time %q: want %s", v.Value, want)
		return
	}
	*dst = t
}
