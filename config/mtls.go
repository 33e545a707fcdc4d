package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// mtlsModes and forwards are the values mtls.mode and mtls.forward may
// take (SPEC.md section 11.1).
var (
	mtlsModes = []string{MTLSOff, MTLSOptional, MTLSRequire}
	forwards  = []string{ForwardXFCC, ForwardNone}
)

// defaultMTLS is an app's client certificate policy when mtls is omitted:
// no certificate asked for, and xfcc should a mode be set.
func defaultMTLS() MTLS {
	return MTLS{Mode: MTLSOff, Trust: []string{}, Forward: ForwardXFCC}
}

// mtls decodes the app's mtls section; nothing is the same as leaving it
// out. tls is the app's tls value (nil when omitted) and spaceCA whether
// the file has a space_ca, which trust defaults to.
func (d *decoder) mtls(key string, n, tls *yaml.Node, spaceCA bool) MTLS {
	m := defaultMTLS()
	if n == nil || isNull(n) {
		return m
	}
	seen, ok := d.fields(key, n, d.mtlsFields(&m, spaceCA))
	if !ok {
		return m
	}
	switch {
	case m.Mode == MTLSOff:
		d.noEffect(key, n, seen)
		return m
	case !slices.Contains(mtlsModes, m.Mode):
		return m // a bad mode is reported; what it needs is not known
	}
	if !hasItems(tls) {
		d.problem(n, key, "mode %s needs a TLS certificate, and the app has no tls entries: add tls, or remove mtls", m.Mode)
	}
	trust, set := seen["trust"]
	switch {
	case (!set || isNull(trust.v)) && spaceCA:
		m.Trust = []string{TrustSpace}
	case !set || isNull(trust.v):
		d.problem(n, join(key, "trust"), "missing: mode %s needs CAs to check client certificates against: "+
			"add trust with PEM bundle paths, or a space_ca, which trust then defaults to", m.Mode)
	case len(m.Trust) == 0 && isEmptyList(trust.v):
		d.problem(trust.v, join(key, "trust"), "empty: mode %s needs at least one CA: list space and/or PEM bundle paths", m.Mode)
	}
	return m
}

// mtlsFields is the table of the keys of an app's mtls; spaceCA says
// whether trust may name the space CA.
func (d *decoder) mtlsFields(m *MTLS, spaceCA bool) []field {
	return []field{
		{"mode", func(k string, v *yaml.Node) {
			m.Mode = d.str(k, v)
			d.oneOf(v, k, "mode", m.Mode, mtlsModes)
		}},
		{"trust", func(k string, v *yaml.Node) { m.Trust = d.trust(k, v, spaceCA) }},
		{"forward", func(k string, v *yaml.Node) {
			m.Forward = d.str(k, v)
			d.oneOf(v, k, "forward", m.Forward, forwards)
		}},
	}
}

// noEffect warns about trust and forward under mode off: they are checked,
// but the app asks no client for a certificate.
func (d *decoder) noEffect(key string, n *yaml.Node, seen map[string]pair) {
	var set []string
	for _, name := range []string{"trust", "forward"} {
		if p, ok := seen[name]; ok && !isNull(p.v) {
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
	mode := "mode is off"
	if _, ok := seen["mode"]; !ok {
		mode = "mode is off (the default)"
	}
	d.warn(n, key, "%s: %s %s no effect; set mode: optional or require to ask clients for a certificate",
		mode, strings.Join(set, " and "), verb)
}

// trust decodes mtls.trust: "space" and/or PEM bundle paths, each listed
// once. Each bundle is loaded to prove it holds CA certificates only.
func (d *decoder) trust(key string, n *yaml.Node, spaceCA bool) []string {
	out := []string{}
	listed := map[string]bool{}
	d.list(key, n, func(_ string, item *yaml.Node) {
		s := d.str(key, item)
		switch {
		case deref(item).Kind != yaml.ScalarNode:
			return
		case s == "":
			d.problem(item, key, "empty entry in the list: want space or a PEM bundle path")
			return
		}
		entry := s
		if s != TrustSpace {
			entry = d.path(s)
		}
		if listed[entry] {
			d.problem(item, key, "%q is listed twice", s)
			return
		}
		listed[entry] = true
		if s == TrustSpace && !spaceCA {
			d.problem(item, key, "%q names the space CA, but the file has no space_ca: add space_ca, or list PEM bundle paths", s)
		} else if s != TrustSpace {
			d.trustBundle(item, key, entry)
		}
		out = append(out, entry)
	})
	return out
}

// trustBundle loads a PEM bundle of mtls.trust: it must hold CA
// certificates only, at least one.
func (d *decoder) trustBundle(n *yaml.Node, key, path string) {
	certs := d.pemCerts(n, key, path, "a PEM bundle of CA certificates")
	for i, cert := range certs {
		what := fmt.Sprintf("certificate %d of %q (CN %q)", i+1, path, cert.Subject.CommonName)
		if !isCA(cert) {
			d.problem(n, key, "%s is not a CA: want only CA certificates (basic constraints CA:true) in a trust bundle", what)
			continue
		}
		d.checkCAValidity(n, key, what, cert)
	}
}

// hasItems reports whether n is a list with at least one item, or a value
// other than a list (a problem of its own), so that a broken tls key does
// not also count as no tls.
func hasItems(n *yaml.Node) bool {
	return n != nil && !isNull(n) && !isEmptyList(n)
}

// isEmptyList reports whether n is the list [].
func isEmptyList(n *yaml.Node) bool {
	v := deref(n)
	return v.Kind == yaml.SequenceNode && len(v.Content) == 0
}
