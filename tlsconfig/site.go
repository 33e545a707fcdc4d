package tlsconfig

import (
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"time"
)

// ALPN protocol lists.
var (
	protosH2 = []string{"h2", "http/1.1"}
	protosH1 = []string{"http/1.1"}
)

// site is one app's TLS state, built by New and read-only after.
type site struct {
	name    string
	profile Profile
	certs   []servedCert // every chain, staged ones included; ECDSA first
	// gens are the app's generations, earliest first (see generation);
	// an app with GetCertificate has one, without certificates.
	gens []*generation
	// getCert serves the certificates of a tls: auto app (App.GetCertificate).
	getCert  func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	tickets  *Tickets // seals the app's session tickets
	allow    []netip.Prefix
	askCert  bool
	now      func() time.Time
	onServed func(conn net.Conn, cert *tls.Certificate, source string)
	refuse   func(reason, sni string) // Store.refuse
}

// allows reports whether the client may make a handshake for the app:
// its address is in the app's networks (all when there are none), or it
// is an ACME TLS-ALPN-01 validation.
func (st *site) allows(hello *tls.ClientHelloInfo) bool {
	if len(st.allow) == 0 || slices.Contains(hello.SupportedProtos, "acme-tls/1") {
		return true
	}
	var peer netip.Addr
	if hello.Conn != nil {
		if ta, ok := hello.Conn.RemoteAddr().(*net.TCPAddr); ok {
			peer = ta.AddrPort().Addr().Unmap()
		}
	}
	for _, p := range st.allow {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// newSite builds the TLS state of app. Its warnings carry no app prefix.
func newSite(app *App, opts *Options, tickets *Tickets, refuse func(reason, sni string)) (*site, []string, error) {
	p, warnings, err := ProfileFor(app.Features)
	if err != nil {
		return nil, nil, err
	}
	certs, err := loadCerts(app.Certs)
	if err != nil {
		return nil, nil, err
	}
	slices.SortStableFunc(certs, func(a, b servedCert) int { return boolRank(b.ecdsa) - boolRank(a.ecdsa) })
	st := &site{name: app.Name, profile: p, certs: certs, getCert: app.GetCertificate, tickets: tickets,
		allow: slices.Clone(app.Allow), askCert: app.RequestClientCert, now: opts.Now, onServed: opts.OnServed, refuse: refuse}
	if st.now == nil {
		st.now = time.Now
	}
	if st.getCert != nil {
		// certmagic, under the acme package, makes ECDSA P-256 keys.
		st.gens = []*generation{{certs: nil}}
		if !slices.ContainsFunc(p.Suites, ecdsaSigned) && p.MinVersion <= tls.VersionTLS12 {
			warnings = append(warnings, "tls: auto certificates have ECDSA keys, and the profile has no TLS 1.2 suite for them: "+
				"clients without TLS 1.3 will fail the handshake (spaces-tls-modern has such suites)")
		}
	} else {
		st.gens = generations(certs)
		if !st.servesPre13() {
			warnings = append(warnings, "no certificate fits the profile's TLS 1.2 suites: clients without TLS 1.3 will fail the handshake")
		}
	}
	h2 := opts.HTTP2 && p.HTTP2 && !app.DisableHTTP2
	for _, g := range st.gens {
		for _, id := range p.Suites {
			if http2Allowed(id) && (st.getCert != nil && ecdsaSigned(id) || g.hasKind(ecdsaSigned(id))) {
				g.h2Suites = append(g.h2Suites, id)
			}
		}
		g.h1 = st.tlsConfig(g, protosH1, false)
		g.config = g.h1
		if h2 {
			g.config = st.tlsConfig(g, protosH2, true)
		}
	}
	return st, warnings, nil
}

// boolRank orders true before false in a descending sort.
func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// servesPre13 reports whether one of the app's certificates can serve one
// of its profile's TLS 1.2-and-older suites (an app without certificates or
// a profile without those versions has nothing to serve). The salesforce
// profile, for one, lists RSA-signed suites only: an app with an ECDSA
// certificate alone serves only TLS 1.3 there.
func (st *site) servesPre13() bool {
	if len(st.certs) == 0 || st.profile.MinVersion > tls.VersionTLS12 {
		return true
	}
	return slices.ContainsFunc(st.profile.Suites, func(id uint16) bool {
		return slices.ContainsFunc(st.certs, func(c servedCert) bool { return c.ecdsa == ecdsaSigned(id) })
	})
}

// current returns the generation in force now: the last that has begun.
func (st *site) current() *generation {
	if len(st.gens) == 1 {
		return st.gens[0]
	}
	now := st.now()
	for i := len(st.gens) - 1; i > 0; i-- {
		if !now.Before(st.gens[i].from) {
			return st.gens[i]
		}
	}
	return st.gens[0]
}

// tlsConfig builds one of a generation's configs. Certificates stays
// empty so that crypto/tls always asks GetCertificate. Session tickets are
// sealed by st.tickets and bound to the app, the SNI name and the
// generation (see Tickets): the listener config's ticket keys, which
// crypto/tls would otherwise use for every app alike, are never used.
func (st *site) tlsConfig(g *generation, protos []string, h2 bool) *tls.Config {
	getCert := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c := g.certificate(&st.profile, hello, h2)
		if c != nil && st.onServed != nil {
			st.onServed(hello.Conn, c, SourceFile)
		}
		return c, nil
	}
	if st.getCert != nil {
		getCert = st.autoCertificate
	}
	return &tls.Config{
		MinVersion:     st.profile.MinVersion,
		MaxVersion:     st.profile.MaxVersion,
		CipherSuites:   slices.Clone(st.profile.Suites),
		NextProtos:     slices.Clone(protos),
		GetCertificate: getCert,
		WrapSession:    st.tickets.wrapFor(st.name, g.id),
		UnwrapSession:  st.tickets.unwrapFor(st.name, g.id),
		ClientAuth:     st.clientAuth(),
	}
}

// autoCertificate is GetCertificate of a tls: auto app: the certificate
// App.GetCertificate gives. Its error (a domain whose certificate is
// pending) gives crypto/tls no certificate, so the handshake ends with
// unrecognized_name, reported as ReasonACMEPending.
func (st *site) autoCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := st.getCert(hello)
	if err != nil || c == nil {
		st.refuse(ReasonACMEPending, normalizeSNI(hello.ServerName))
		return nil, nil
	}
	if st.onServed != nil {
		st.onServed(hello.Conn, c, SourceACME)
	}
	return c, nil
}

// clientAuth asks for a client certificate without verifying it: the
// router judges it (SPEC.md 11.1).
func (st *site) clientAuth() tls.ClientAuthType {
	if st.askCert {
		return tls.RequestClientCert
	}
	return tls.NoClientCert
}

// configFor returns the config of generation g for one ClientHello.
// crypto/tls picks ALPN before the cipher suite, and Go's HTTP/2 server
// kills a connection on a suite RFC 9113 forbids (INADEQUATE_SECURITY), so
// a client offering h2 that will end up on TLS 1.2 (or older) with no
// suite HTTP/2 allows gets http/1.1 (SPEC.md section 4b).
func (st *site) configFor(g *generation, hello *tls.ClientHelloInfo) *tls.Config {
	if g.config == g.h1 || !slices.Contains(hello.SupportedProtos, "h2") {
		return g.config
	}
	switch v := st.profile.negotiatedVersion(hello.SupportedVersions); {
	case v >= tls.VersionTLS13:
		return g.config
	case v == tls.VersionTLS12 && offersAny(hello, g.h2Suites):
		return g.config
	}
	return g.h1
}

// offersAny reports whether the client offers one of suites.
func offersAny(hello *tls.ClientHelloInfo, suites []uint16) bool {
	return slices.ContainsFunc(hello.CipherSuites, func(id uint16) bool { return slices.Contains(suites, id) })
}

// likely returns the chain of g a client resuming a session for the SNI
// name of hello most likely got: the first (ECDSA first) that covers the
// name. A TLS 1.3 resumption asks for no certificate, so this is what the
// connection is reported to use (Options.OnServed); a full handshake
// reports the chain certificate picks, which is this one for nearly
// every client.
func (g *generation) likely(hello *tls.ClientHelloInfo) *tls.Certificate {
	if len(g.certs) == 1 {
		return g.certs[0].cert // the common case, without VerifyHostname's allocations
	}
	name := normalizeSNI(hello.ServerName)
	for _, c := range g.certs {
		if c.cert.Leaf.VerifyHostname(name) == nil {
			return c.cert
		}
	}
	return g.certs[0].cert
}

// certificate picks the certificate to serve: one the client supports for
// the SNI name, ECDSA first; on the h2 config, one with which a suite
// HTTP/2 allows can be negotiated first, so the suite matches the ALPN
// choice configFor made. When none supports the name, one the client
// supports otherwise (the client decides whether a name mismatch matters);
// failing that, the first, and the handshake fails on the client's side.
// Nil only for a generation without certificates, which crypto/tls
// answers with unrecognized_name.
func (g *generation) certificate(p *Profile, hello *tls.ClientHelloInfo, h2 bool) *tls.Certificate {
	if len(g.certs) == 0 {
		return nil
	}
	if c := g.pick(p, hello, h2); c != nil {
		return c
	}
	anyName := *hello
	anyName.ServerName = ""
	if c := g.pick(p, &anyName, h2); c != nil {
		return c
	}
	return g.certs[0].cert
}

// pick returns the first certificate hello supports, preferring, when h2
// is set, one that goes with a suite HTTP/2 allows; nil when none.
func (g *generation) pick(p *Profile, hello *tls.ClientHelloInfo, h2 bool) *tls.Certificate {
	var supported *tls.Certificate
	tls13 := p.negotiatedVersion(hello.SupportedVersions) >= tls.VersionTLS13
	for _, c := range g.certs {
		if hello.SupportsCertificate(c.cert) != nil {
			continue
		}
		if !h2 || tls13 || g.offersH2SuiteFor(hello, c.ecdsa) {
			return c.cert
		}
		if supported == nil {
			supported = c.cert
		}
	}
	return supported
}

// offersH2SuiteFor reports whether the client offers a suite HTTP/2 allows
// that a certificate of the given key type can serve.
func (g *generation) offersH2SuiteFor(hello *tls.ClientHelloInfo, ecdsa bool) bool {
	return slices.ContainsFunc(hello.CipherSuites, func(id uint16) bool {
		return ecdsaSigned(id) == ecdsa && slices.Contains(g.h2Suites, id)
	})
}
