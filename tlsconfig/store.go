package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// App is the TLS side of one app, as New needs it.
type App struct {
	// Name names the app in AppForSNI, Profile and warnings; unique.
	Name string
	// Domains are "shop.example.com" or "*.example.com"; a wildcard
	// matches one or more labels in front of ".example.com". They are
	// unique across apps; case and one trailing dot do not matter.
	Domains []string
	// Features is the app's feature list. The TLS profile features choose
	// the profile (ProfileFor); the others are ignored here. An empty list
	// means the default profile: turning an omitted features key into
	// [spaces-tls-salesforce] is the config package's job.
	Features []string
	// Certs are the app's certificate chains, RSA and/or ECDSA. With none
	// (and no GetCertificate), a handshake for the app's domains is
	// refused like an unknown name.
	Certs []CertFiles
	// GetCertificate, when set, serves the app's certificates instead of
	// Certs (which must be empty): tls: auto, where the acme package holds
	// them (SPEC.md 12.1). It is called on every full handshake for the
	// app's domains, concurrently; it must not block. An error (or a nil
	// certificate) refuses the handshake with unrecognized_name, reported
	// to Options.OnHandshakeFailure as ReasonACMEPending. Its certificates
	// are taken to have ECDSA keys (certmagic's), for the choice of h2.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// DisableHTTP2 is the feature http-disable-http2: ALPN offers
	// http/1.1 only.
	DisableHTTP2 bool
	// RequestClientCert asks clients for a certificate (mtls optional or
	// require): the handshake completes whatever the client presents, and
	// the caller judges the certificate (SPEC.md 11.1). A certificate the
	// TLS stack cannot parse, or a bad CertificateVerify, still fails the
	// handshake.
	RequestClientCert bool
	// Allow lists the networks the app accepts clients from (ip_rules);
	// empty: every address. A handshake from elsewhere is refused with the
	// alert access_denied (SPEC.md 11.2), except an ACME TLS-ALPN-01
	// validation (ALPN acme-tls/1), which never reaches the app.
	Allow []netip.Prefix
}

// CertFiles names one certificate chain and its key.
type CertFiles struct {
	Cert string // PEM file: the leaf first, then the intermediates
	Key  string // PEM file with the private key
	// ServeFrom stages the chain (SPEC.md 12.3): from that time on (by
	// Options.Now, no rebuild needed) it is served instead of the app's
	// chains of the same key type, RSA or ECDSA, with no or an earlier
	// ServeFrom. Zero: served from the start. Checking that a staged chain
	// covers the app's domains is the config package's job.
	ServeFrom time.Time
}

// Options are the space-wide TLS settings.
type Options struct {
	// HTTP2 lets ALPN offer h2 to apps whose profile and features allow
	// it. False: every app gets http/1.1 only.
	HTTP2 bool
	// OnHandshakeFailure, when set, is called once for every ClientHello
	// refused by the SNI lookup, with a reason (ReasonNoSNI,
	// ReasonUnknownSNI, ReasonNoCertificate) and the normalized SNI name
	// ("" when none). It runs on the handshake's goroutine, concurrently
	// with other handshakes, so it must be safe for that and must not block.
	// The name is client input: log it, never use it as a metric label.
	OnHandshakeFailure func(reason, sni string)
	// Tickets seals the session tickets of every app and binds each to
	// its app and SNI name. Pass the same value to every Store of the
	// process (made once with NewTickets) so that tickets issued before a
	// reload still resume after it. Nil: New makes one, and the tickets of
	// this Store resume only on this Store.
	Tickets *Tickets
	// Now is the clock staged chains (CertFiles.ServeFrom) are served by;
	// nil means time.Now.
	Now func() time.Time
	// OnServed, when set, is told which chain each handshake served:
	// conn is the ClientHelloInfo's Conn (the net.Conn the TLS server was
	// made on), source SourceFile or SourceACME. It runs on the handshake's
	// goroutine, at most twice per handshake (the chain a resumed session
	// most likely carries when the config is chosen, then the chain a full
	// handshake serves, which wins), and must not block. A session ticket
	// resumes only under the generation of chains that issued it, so a
	// resumed connection never reports a chain it could not have seen
	// (tls: auto certificates excepted: a ticket from before a renewal
	// still resumes).
	OnServed func(conn net.Conn, cert *tls.Certificate, source string)
}

// Sources of a served chain, as Options.OnServed reports them.
const (
	SourceFile = "file" // a chain of App.Certs
	SourceACME = "acme" // a certificate from App.GetCertificate (tls: auto)
)

// Reasons a ClientHello is refused with the alert unrecognized_name (112),
// as passed to Options.OnHandshakeFailure. The set is fixed, so it may
// label a metric.
const (
	ReasonNoSNI         = "no_sni"         // the ClientHello has no server_name
	ReasonUnknownSNI    = "unknown_sni"    // the name is no app's domain
	ReasonNoCertificate = "no_certificate" // the name's app has no certificate
	ReasonIPRule        = "ip_rule"        // the client address matches none of the app's ip_rules
	ReasonACMEPending   = "acme_pending"   // App.GetCertificate has no certificate for the name yet
)

// ErrDuplicateDomain is returned by New when two apps, or one app twice,
// list the same domain.
var ErrDuplicateDomain = errors.New("domain listed twice")

// ErrDuplicateApp is returned by New when two apps have the same name.
var ErrDuplicateApp = errors.New("app listed twice")

// ErrCertsAndHook is returned by New for an app with both certificate
// files and GetCertificate.
var ErrCertsAndHook = errors.New("certificate files and GetCertificate both set")

// Store holds every app's *tls.Config, built once by New, and picks one per
// connection from the SNI name. It is read-only after New and safe for
// concurrent use.
type Store struct {
	sites     map[string]*site // by app name
	exact     map[string]*site // by exact domain
	wild      []wildDomain     // longest suffix first
	base      *tls.Config      // the listener's config (Config)
	reject    *tls.Config      // makes crypto/tls send unrecognized_name
	onFailure func(reason, sni string)
	warnings  []string
}

// wildDomain is one "*.example.com" domain: suffix is ".example.com".
type wildDomain struct {
	suffix string
	site   *site
}

// New builds, once, the *tls.Configs of each app: versions and suites from
// its profile, its certificates loaded (the whole chain is served), one
// generation per serve_from time, ALPN from opts, the app's features and
// its profile. It refuses a retired or broken profile, a certificate that
// does not load, an app with both Certs and GetCertificate, and a domain
// or app name listed twice. Warnings (a deprecated profile, a profile none
// of whose TLS 1.2 suites fits the app's certificates) are kept for
// Warnings.
func New(apps []App, opts Options) (*Store, error) {
	s := &Store{
		sites:     make(map[string]*site, len(apps)),
		exact:     make(map[string]*site),
		reject:    rejectConfig(),
		onFailure: opts.OnHandshakeFailure,
	}
	tickets := opts.Tickets
	if tickets == nil {
		tickets = NewTickets()
	}
	for i := range apps {
		app := &apps[i]
		if _, dup := s.sites[app.Name]; dup {
			return nil, fmt.Errorf("app %s: %w", app.Name, ErrDuplicateApp)
		}
		if app.GetCertificate != nil && len(app.Certs) > 0 {
			return nil, fmt.Errorf("app %s: %w", app.Name, ErrCertsAndHook)
		}
		st, warnings, err := newSite(app, &opts, tickets, s.refuseOnly)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		for _, w := range warnings {
			s.warnings = append(s.warnings, "app "+app.Name+": "+w)
		}
		s.sites[app.Name] = st
		if err := s.addDomains(st, app.Domains); err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
	}
	slices.SortStableFunc(s.wild, func(a, b wildDomain) int { return len(b.suffix) - len(a.suffix) })
	s.base = &tls.Config{GetConfigForClient: s.GetConfigForClient}
	return s, nil
}

// rejectConfig returns the config for a refused ClientHello: no
// certificates and a GetCertificate that finds none, so crypto/tls sends
// unrecognized_name (112). An error from GetConfigForClient would send
// internal_error (80) instead. TLS 1.0 is allowed so that every client gets
// 112 rather than protocol_version first.
func rejectConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS10,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil },
	}
}

// Config returns the listener's config: its GetConfigForClient picks the
// app's config from the SNI name. Its own session ticket keys are never
// used: the app's config seals and opens tickets (Options.Tickets). Do not
// modify it.
func (s *Store) Config() *tls.Config { return s.base }

// GetConfigForClient returns the config of the app whose domain is the
// ClientHello's SNI name (exact domain before wildcard, ASCII case folded),
// of the generation of chains in force now. A missing or unknown name, an
// app without certificates now, or a tls: auto domain whose certificate
// is pending gets a config that fails the handshake with unrecognized_name
// (112), reported to Options.OnHandshakeFailure. It returns no error
// (crypto/tls would answer one with internal_error) except for a client
// refused by ip_rules, which gets access_denied (ErrAccessDenied). A
// router that keeps its own listener config (to swap Stores on reload)
// calls it from its own GetConfigForClient.
func (s *Store) GetConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if hello.ServerName == "" {
		return s.refuse(ReasonNoSNI, ""), nil
	}
	name := normalizeSNI(hello.ServerName)
	st := s.lookup(name)
	if st == nil {
		return s.refuse(ReasonUnknownSNI, name), nil
	}
	g := st.current()
	if st.getCert == nil && len(g.certs) == 0 {
		return s.refuse(ReasonNoCertificate, name), nil
	}
	if !st.allows(hello) {
		s.refuse(ReasonIPRule, name)
		denyAccess(hello.Conn)
		return nil, ErrAccessDenied
	}
	if st.getCert != nil {
		c, err := st.getCert(hello)
		if err != nil || c == nil {
			return s.refuse(ReasonACMEPending, name), nil
		}
		if st.onServed != nil {
			st.onServed(hello.Conn, c, SourceACME)
		}
	} else if st.onServed != nil {
		st.onServed(hello.Conn, g.likely(hello), SourceFile)
	}
	return st.configFor(g, hello), nil
}

// ErrAccessDenied is the handshake error of a client refused by an app's
// ip_rules (its refusal was reported to OnHandshakeFailure already).
var ErrAccessDenied = errors.New("tlsconfig: client address matches none of the app's ip_rules")

// alertAccessDenied is a plaintext TLS record carrying the fatal alert
// access_denied (49, RFC 8446 section 6.2), as sent before any key is
// agreed.
var alertAccessDenied = []byte{21, 3, 3, 0, 2, 2, 49}

// denyAccess refuses a handshake with access_denied. crypto/tls answers a
// GetConfigForClient error with internal_error, so the alert is written
// here and the connection closed before crypto/tls can write its own.
func denyAccess(c net.Conn) {
	if c == nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(alertAccessDenied)
	c.Close()
}

// refuse reports a refused ClientHello and returns the reject config.
func (s *Store) refuse(reason, name string) *tls.Config {
	s.refuseOnly(reason, name)
	return s.reject
}

// refuseOnly reports a refused ClientHello.
func (s *Store) refuseOnly(reason, name string) {
	if s.onFailure != nil {
		s.onFailure(reason, name)
	}
}

// AppForSNI returns the name of the app that serves the SNI name, by the
// same lookup as the handshake, for the router's SNI ↔ Host check.
func (s *Store) AppForSNI(name string) (appName string, ok bool) {
	if st := s.lookup(normalizeSNI(name)); st != nil {
		return st.name, true
	}
	return "", false
}

// Profile returns the TLS profile of the named app, for metrics and logs.
func (s *Store) Profile(appName string) (Profile, bool) {
	st, ok := s.sites[appName]
	if !ok {
		return Profile{}, false
	}
	p := st.profile
	p.Names, p.Versions, p.Suites = slices.Clone(p.Names), slices.Clone(p.Versions), slices.Clone(p.Suites)
	return p, true
}

// Warnings returns the notes for the operational log found by New, each
// starting "app NAME: ": a deprecated profile, a profile none of whose TLS
// 1.2 suites fits the app's certificates. Expiry is the caller's to
// judge (Certificates).
func (s *Store) Warnings() []string { return slices.Clone(s.warnings) }

// Expiry returns when the first of the chains the named app serves now
// expires (SPEC.md 12.2, role server); ok is false for an app with none
// (a tls: auto app's certificates are the acme package's).
func (s *Store) Expiry(appName string) (notAfter time.Time, ok bool) {
	st := s.sites[appName]
	if st == nil {
		return time.Time{}, false
	}
	for _, c := range st.current().certs {
		if na := c.cert.Leaf.NotAfter; !ok || na.Before(notAfter) {
			notAfter, ok = na, true
		}
	}
	return notAfter, ok
}

// Certificates returns every certificate chain of the named app, staged
// ones included, ECDSA first, each marked whether it is served now;
// nil for an unknown app or one with GetCertificate.
func (s *Store) Certificates(appName string) []CertInfo {
	st := s.sites[appName]
	if st == nil || len(st.certs) == 0 {
		return nil
	}
	served := st.current().certs
	out := make([]CertInfo, 0, len(st.certs))
	for _, c := range st.certs {
		out = append(out, CertInfo{File: c.file, Leaf: c.cert.Leaf, ServeFrom: c.from,
			Served: slices.ContainsFunc(served, func(s servedCert) bool { return s.cert == c.cert })})
	}
	return out
}
