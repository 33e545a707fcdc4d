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
	certs   []servedCert // ECDSA first
	// h2Suites are the profile's suites HTTP/2 may run over for which the
	// app has a certificate of the right key type.
	h2Suites []uint16
	config   *tls.Config // ALPN as options, features and profile allow
	h1       *tls.Config // ALPN http/1.1 only; config itself when h2 is off
	tickets  *Tickets    // seals the app's session tickets
	allow    []netip.Prefix
	askCert  bool
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
func newSite(app *App, http2 bool, tickets *Tickets, now time.Time) (*site, []string, error) {
	p, warnings, err := ProfileFor(app.Features)
	if err != nil {
		return nil, nil, err
	}
	certs, err := loadCerts(app.Certs)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range certs {
		if w, ok := expiryWarning(c, now); ok {
			warnings = append(warnings, w)
		}
	}
	slices.SortStableFunc(certs, func(a, b servedCert) int { return boolRank(b.ecdsa) - boolRank(a.ecdsa) })
	st := &site{name: app.Name, profile: p, certs: certs, tickets: tickets, allow: slices.Clone(app.Allow), askCert: app.RequestClientCert}
	if !st.servesPre13() {
		warnings = append(warnings, "no certificate fits the profile's TLS 1.2 suites: clients without TLS 1.3 will fail the handshake")
	}
	for _, id := range p.Suites {
		if http2Allowed(id) && st.hasKind(ecdsaSigned(id)) {
			st.h2Suites = append(st.h2Suites, id)
		}
	}
	st.h1 = st.tlsConfig(protosH1, false)
	st.config = st.h1
	if http2 && p.HTTP2 && !app.DisableHTTP2 {
		st.config = st.tlsConfig(protosH2, true)
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
	return slices.ContainsFunc(st.profile.Suites, func(id uint16) bool { return st.hasKind(ecdsaSigned(id)) })
}

// hasKind reports whether the app has an ECDSA (ecdsa true) or an RSA
// certificate.
func (st *site) hasKind(ecdsa bool) bool {
	return slices.ContainsFunc(st.certs, func(c servedCert) bool { return c.ecdsa == ecdsa })
}

// tlsConfig builds one of the app's configs. Certificates stays empty so
// that crypto/tls always asks GetCertificate. Session tickets are sealed by
// st.tickets and bound to the app and the SNI name (see Tickets): the
// listener config's ticket keys, which crypto/tls would otherwise use for
// every app alike, are never used.
func (st *site) tlsConfig(protos []string, h2 bool) *tls.Config {
	return &tls.Config{
		MinVersion:   st.profile.MinVersion,
		MaxVersion:   st.profile.MaxVersion,
		CipherSuites: slices.Clone(st.profile.Suites),
		NextProtos:   slices.Clone(protos),
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return st.certificate(hello, h2), nil
		},
		WrapSession:   st.tickets.wrapFor(st.name),
		UnwrapSession: st.tickets.unwrapFor(st.name),
		ClientAuth:    st.clientAuth(),
	}
}

// clientAuth asks for a client certificate without verifying it: the
// router judges it (SPEC.md 11.1).
func (st *site) clientAuth() tls.ClientAuthType {
	if st.askCert {
		return tls.RequestClientCert
	}
	return tls.NoClientCert
}

// configFor returns the app's config for one ClientHello. crypto/tls picks
// ALPN before the cipher suite, and Go's HTTP/2 server kills a connection
// on a suite RFC 9113 forbids (INADEQUATE_SECURITY), so a client offering
// h2 that will end up on TLS 1.2 (or older) with no suite HTTP/2 allows gets
// http/1.1 (SPEC.md section 4b).
func (st *site) configFor(hello *tls.ClientHelloInfo) *tls.Config {
	if st.config == st.h1 || !slices.Contains(hello.SupportedProtos, "h2") {
		return st.config
	}
	switch v := st.profile.negotiatedVersion(hello.SupportedVersions); {
	case v >= tls.VersionTLS13:
		return st.config
	case v == tls.VersionTLS12 && offersAny(hello, st.h2Suites):
		return st.config
	}
	return st.h1
}

// offersAny reports whether the client offers one of suites.
func offersAny(hello *tls.ClientHelloInfo, suites []uint16) bool {
	return slices.ContainsFunc(hello.CipherSuites, func(id uint16) bool { return slices.Contains(suites, id) })
}

// certificate picks the certificate to serve: one the client supports for
// the SNI name, ECDSA first; on the h2 config, one with which a suite
// HTTP/2 allows can be negotiated first, so the suite matches the ALPN
// choice configFor made. When none supports the name, one the client
// supports otherwise (the client decides whether a name mismatch matters);
// failing that, the first, and the handshake fails on the client's side.
// Nil only for an app without certificates, which crypto/tls answers with
// unrecognized_name.
func (st *site) certificate(hello *tls.ClientHelloInfo, h2 bool) *tls.Certificate {
	if len(st.certs) == 0 {
		return nil
	}
	if c := st.pick(hello, h2); c != nil {
		return c
	}
	anyName := *hello
	anyName.ServerName = ""
	if c := st.pick(&anyName, h2); c != nil {
		return c
	}
	return st.certs[0].cert
}

// pick returns the first certificate hello supports, preferring, when h2
// is set, one that goes with a suite HTTP/2 allows; nil when none.
func (st *site) pick(hello *tls.ClientHelloInfo, h2 bool) *tls.Certificate {
	var supported *tls.Certificate
	tls13 := st.profile.negotiatedVersion(hello.SupportedVersions) >= tls.VersionTLS13
	for _, c := range st.certs {
		if hello.SupportsCertificate(c.cert) != nil {
			continue
		}
		if !h2 || tls13 || st.offersH2SuiteFor(hello, c.ecdsa) {
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
func (st *site) offersH2SuiteFor(hello *tls.ClientHelloInfo, ecdsa bool) bool {
	return slices.ContainsFunc(hello.CipherSuites, func(id uint16) bool {
		return ecdsaSigned(id) == ecdsa && slices.Contains(st.h2Suites, id)
	})
}
