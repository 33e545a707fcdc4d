package tlsconfig

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// servedCert is one loaded certificate chain of an app.
type servedCert struct {
	cert  *tls.Certificate // the whole chain, Leaf parsed
	ecdsa bool             // ECDSA or Ed25519 key, for the ECDSA suites
	file  string           // the PEM file, for warnings
	from  time.Time        // CertFiles.ServeFrom; zero: served from load
}

// loadCerts loads every chain, in file order.
func loadCerts(files []CertFiles) ([]servedCert, error) {
	out := make([]servedCert, 0, len(files))
	for _, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s: %w", f.Cert, err)
		}
		if c.Leaf == nil { // x509keypairleaf=0
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parsing certificate %s: %w", f.Cert, err)
			}
		}
		alg := c.Leaf.PublicKeyAlgorithm
		out = append(out, servedCert{cert: &c, ecdsa: alg == x509.ECDSA || alg == x509.Ed25519, file: f.Cert, from: f.ServeFrom})
	}
	return out, nil
}

// generation is the set of chains an app serves from one time on (SPEC.md
// 12.3): for each key type, the chains with the latest serve_from not
// after that time (no serve_from counts as the beginning of time). An app
// has one generation per distinct serve_from, plus the first; the one in
// force is the last whose from has come (site.current), so a staged chain
// takes over at its time without a reload.
type generation struct {
	from  time.Time
	certs []servedCert // ECDSA first, file order within a key type
	// h2Suites are the profile's suites HTTP/2 may run over for which the
	// generation has a certificate of the right key type.
	h2Suites []uint16
	// id binds the session tickets issued under this generation (see
	// Tickets): a ticket from another generation does not resume, so a
	// resumed session never carries a chain the app no longer serves.
	id     []byte
	config *tls.Config // ALPN as options, features and profile allow
	h1     *tls.Config // ALPN http/1.1 only; config itself when h2 is off
}

// generations splits certs (ECDSA first) into the generations of their
// serve_from times, earliest first; the first starts at the zero time.
func generations(certs []servedCert) []*generation {
	times := []time.Time{{}}
	for _, c := range certs {
		if !c.from.IsZero() {
			times = append(times, c.from)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	times = slices.CompactFunc(times, time.Time.Equal)
	gens := make([]*generation, 0, len(times))
	for _, at := range times {
		g := &generation{from: at}
		for _, ecdsa := range []bool{true, false} {
			latest, found := latestFrom(certs, ecdsa, at)
			for _, c := range certs {
				if found && c.ecdsa == ecdsa && c.from.Equal(latest) {
					g.certs = append(g.certs, c)
				}
			}
		}
		g.id = generationID(g.certs)
		gens = append(gens, g)
	}
	return gens
}

// latestFrom returns the latest serve_from, not after at, of the chains of
// one key type; found is false when the type has none served by then.
func latestFrom(certs []servedCert, ecdsa bool, at time.Time) (latest time.Time, found bool) {
	for _, c := range certs {
		if c.ecdsa == ecdsa && !c.from.After(at) && (!found || c.from.After(latest)) {
			latest, found = c.from, true
		}
	}
	return latest, found
}

// generationID is 16 bytes of the SHA-256 of the leaves served: the same
// chains give the same id across reloads, so tickets survive a reload
// that serves what was served.
func generationID(certs []servedCert) []byte {
	h := sha256.New()
	for _, c := range certs {
		sum := sha256.Sum256(c.cert.Leaf.Raw)
		h.Write(sum[:])
	}
	return h.Sum(nil)[:16]
}

// hasKind reports whether the generation has an ECDSA (ecdsa true) or an
// RSA certificate.
func (g *generation) hasKind(ecdsa bool) bool {
	return slices.ContainsFunc(g.certs, func(c servedCert) bool { return c.ecdsa == ecdsa })
}

// CertInfo describes one certificate chain of an app, for expiry checks
// and the operator's views.
type CertInfo struct {
	File string // the PEM file
	// Leaf is the chain's first certificate; the caller must not modify
	// it.
	Leaf *x509.Certificate
	// ServeFrom is the chain's serve_from; zero: served from load.
	ServeFrom time.Time
	// Served reports whether the chain is served at the time asked.
	Served bool
}
