package router

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// The TLS connection view (SPEC.md 12.5): which open client connections
// use which served certificate, TLS version, suite, ALPN and client
// certificate, so an operator can see who still uses an old certificate
// or CA before retiring it. Go's connection state does not say which
// certificate the server sent, so the router records it: the TCP
// connection a TLS server reads and writes is wrapped in a tlsConn, which
// tlsconfig's OnServed hook finds as the ClientHelloInfo's Conn. That is
// one small struct per connection and one atomic add per request; no
// lock and no allocation on the request path.

// tlsConn is the TCP connection under a client's TLS connection, with
// what the connection view shows of it.
type tlsConn struct {
	net.Conn // the TCP connection

	// served and source are written by the handshake (onServed), before
	// the connection is tracked, and read-only once it is.
	served *x509.Certificate // the served chain's leaf
	source string            // tlsconfig.SourceFile or SourceACME

	// Set when the handshake completed, before the connection is
	// tracked; read-only after.
	app     string
	sni     string
	alpn    string
	resumed bool
	pc      *peerCert
	opened  time.Time
	version uint16
	suite   uint16 // named when the view is asked for: tls.CipherSuiteName allocates

	// requests counts the requests read on the connection.
	requests atomic.Uint64
}

// onServed is tlsconfig's OnServed: it records the served chain on the
// connection's tlsConn.
func onServed(conn net.Conn, cert *tls.Certificate, source string) {
	tc, ok := conn.(*tlsConn)
	if !ok || cert == nil {
		return
	}
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	tc.served, tc.source = leaf, source
}

// handshook records what the view shows of a completed handshake.
func (tc *tlsConn) handshook(st *tls.ConnectionState, app string, pc *peerCert, now time.Time) {
	tc.app, tc.sni, tc.pc, tc.opened = app, st.ServerName, pc, now
	tc.alpn, tc.resumed = st.NegotiatedProtocol, st.DidResume
	tc.version, tc.suite = st.Version, st.CipherSuite
}

// counted counts one request on the connection; tc may be nil (plain
// HTTP).
func (tc *tlsConn) counted() {
	if tc != nil {
		tc.requests.Add(1)
	}
}

// TLSConnection is one open client TLS connection as the admin API shows
// it (GET /api/tls/connections, SPEC.md 12.5). Its JSON field names are
// stable.
type TLSConnection struct {
	RemoteAddr string `json:"remote_addr"`
	// App is the app the SNI name chose at the handshake; a reload that
	// moves the name to another app does not change it.
	App         string `json:"app"`
	SNI         string `json:"sni"`
	TLSVersion  string `json:"tls_version"`  // tls1.2, tls1.3
	CipherSuite string `json:"cipher_suite"` // IANA name
	ALPN        string `json:"alpn"`         // h2, http/1.1, or "" when the client asked for none
	// Resumed is a session resumed from a ticket: its chain is the one
	// the ticket was issued under (tickets do not outlive a change of the
	// app's chains).
	Resumed bool `json:"resumed"`
	// Served is the certificate the router served on the connection.
	Served ServedCertificate `json:"served_certificate"`
	// Client is the client certificate; nil when none was presented.
	Client     *ClientCertificate `json:"client_certificate"`
	OpenedAt   time.Time          `json:"opened_at"`
	AgeSeconds int64              `json:"age_seconds"`
	// Requests counts the requests read on the connection (HTTP/2: its
	// streams).
	Requests uint64 `json:"requests"`
}

// ServedCertificate is a served chain's leaf as the view names it.
type ServedCertificate struct {
	Serial   string    `json:"serial"` // lower-case hex
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	Source   string    `json:"source"` // file, acme
}

// ClientCertificate is a client certificate as the view shows it.
type ClientCertificate struct {
	Subject string `json:"subject"` // RFC 4514
	Serial  string `json:"serial"`  // lower-case hex
	Issuer  string `json:"issuer"`  // the leaf's issuer, RFC 4514
	// CA is the trusted CA the chain ends in (RFC 4514) and CASHA256 its
	// fingerprint, from the verdict of the connection's last request ("":
	// no request judged it yet, or no trusted CA).
	CA       string `json:"ca"`
	CASHA256 string `json:"ca_sha256"`
	// Status is "ok", the cause of a refusal (unknown_ca, retired_ca,
	// revoked, expired, bad_usage) or "unchecked": the app asks for a
	// certificate, and no request was judged yet.
	Status string `json:"status"`
}

// TLSFilter selects connections of the view; an empty field selects all.
type TLSFilter struct {
	App string // the app's name
	// Serial is the served certificate's serial, or the client
	// certificate's, in hex (case and colons do not matter).
	Serial string
	// CA names the client certificate's CA: its SHA-256 fingerprint (hex,
	// at least 16 digits of it), its subject or its common name.
	CA string
}

// TLSConnections returns the open client TLS connections that f selects
// (HTTP/1 and HTTP/2 alike; those still in their handshake are not open
// yet), oldest first.
func (r *Router) TLSConnections(f TLSFilter) []TLSConnection {
	now := r.now()
	revoked := r.revocations()
	serial := parseSerial(f.Serial)
	var out []TLSConnection
	for _, tc := range r.tlsConns() {
		v := tc.view(now, revoked)
		if f.matches(&v, serial) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b TLSConnection) int {
		return cmp.Or(a.OpenedAt.Compare(b.OpenedAt), strings.Compare(a.RemoteAddr, b.RemoteAddr))
	})
	return out
}

// tlsConns returns the tracked TLS connections.
func (r *Router) tlsConns() []*tlsConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*tlsConn, 0, len(r.conns))
	for t := range r.conns {
		switch c := t.(type) {
		case *conn:
			if c.tv != nil {
				out = append(out, c.tv)
			}
		case *h2conn:
			out = append(out, c.tv)
		}
	}
	return out
}

// view is the connection as TLSConnections shows it at now.
func (tc *tlsConn) view(now time.Time, revoked *spaceca.Revocations) TLSConnection {
	v := TLSConnection{
		RemoteAddr:  tc.RemoteAddr().String(),
		App:         tc.app,
		SNI:         tc.sni,
		TLSVersion:  logging.TLSVersionName(tc.version),
		CipherSuite: tls.CipherSuiteName(tc.suite),
		ALPN:        tc.alpn,
		Resumed:     tc.resumed,
		OpenedAt:    tc.opened.UTC(),
		AgeSeconds:  int64(now.Sub(tc.opened) / time.Second),
		Requests:    tc.requests.Load(),
	}
	if tc.served != nil {
		v.Served = ServedCertificate{Serial: tc.served.SerialNumber.Text(16), Subject: tc.served.Subject.String(),
			NotAfter: tc.served.NotAfter.UTC(), Source: tc.source}
	}
	if tc.pc != nil {
		v.Client = tc.pc.view(now, revoked)
	}
	return v
}

// view is the client certificate as the connection view shows it at now:
// its last verdict, rechecked against the clock and revocations as the
// connection's next request will be (a CA retired since is retired_ca).
func (p *peerCert) view(now time.Time, revoked *spaceca.Revocations) *ClientCertificate {
	c := &ClientCertificate{Subject: p.leaf.Subject.String(), Serial: p.leaf.SerialNumber.Text(16),
		Issuer: p.leaf.Issuer.String(), Status: "unchecked"}
	p.mu.Lock()
	judged, verdict := p.trust != nil, p.verdict
	cause := spaceca.Cause("")
	if judged {
		cause = p.verdict.Recheck(now, revoked)
	}
	p.mu.Unlock()
	if !judged {
		return c
	}
	c.Status = "ok"
	if cause != "" {
		c.Status = string(cause)
	}
	if verdict.CA != nil {
		sum := sha256.Sum256(verdict.CA.Raw)
		c.CA, c.CASHA256 = verdict.CA.Subject.String(), hex.EncodeToString(sum[:])
	}
	return c
}

// matches reports whether f selects v; serial is f.Serial parsed (nil:
// any).
func (f *TLSFilter) matches(v *TLSConnection, serial *big.Int) bool {
	if f.App != "" && v.App != f.App {
		return false
	}
	if f.Serial != "" {
		if serial == nil {
			return false
		}
		s := serial.Text(16)
		if v.Served.Serial != s && (v.Client == nil || v.Client.Serial != s) {
			return false
		}
	}
	if f.CA != "" && (v.Client == nil || !caMatches(v.Client, f.CA)) {
		return false
	}
	return true
}

// caMatches reports whether want names the CA of c: its fingerprint or at
// least 16 hex digits from its start, its subject, or its common name.
func caMatches(c *ClientCertificate, want string) bool {
	if c.CA == "" {
		return false
	}
	w := strings.ToLower(strings.ReplaceAll(want, ":", ""))
	if len(w) >= 16 && strings.HasPrefix(c.CASHA256, w) {
		return true
	}
	return c.CA == want || strings.EqualFold(commonName(c.CA), want)
}

// commonName returns the CN of an RFC 4514 name as Name.String writes it.
func commonName(dn string) string {
	for _, rdn := range strings.Split(dn, ",") {
		if v, ok := strings.CutPrefix(rdn, "CN="); ok {
			return v
		}
	}
	return ""
}

// parseSerial parses a serial in hex, with or without colons; nil when
// s is not one.
func parseSerial(s string) *big.Int {
	s = strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	if s == "" {
		return nil
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return nil
	}
	return n
}

// TLSSummary counts the open client TLS connections by served certificate
// and by client certificate CA (GET /api/tls/summary, SPEC.md 12.5). Its
// JSON field names are stable.
type TLSSummary struct {
	Connections int `json:"connections"`
	// ByServed counts by served certificate (app, serial), most used
	// first.
	ByServed []ServedCount `json:"by_served_certificate"`
	// ByClientCA counts the connections with a client certificate by the
	// CA its chain ends in (unchecked ones by their issuer, CA ""), most
	// used first.
	ByClientCA []CACount `json:"by_client_ca"`
	// WithoutClientCert counts the connections that presented none.
	WithoutClientCert int `json:"without_client_certificate"`
}

// ServedCount is the number of connections of one served certificate.
type ServedCount struct {
	App string `json:"app"`
	ServedCertificate
	Connections int `json:"connections"`
}

// CACount is the number of connections whose client certificate chains to
// one CA.
type CACount struct {
	CA       string `json:"ca"`
	CASHA256 string `json:"ca_sha256"`
	// Issuer is the client certificates' issuer when no request judged
	// them yet (CA ""), else the CA.
	Issuer      string `json:"issuer"`
	Connections int    `json:"connections"`
}

// TLSSummary returns the summary of the open client TLS connections.
func (r *Router) TLSSummary() TLSSummary {
	return summarize(r.TLSConnections(TLSFilter{}))
}

// summarize counts conns for TLSSummary.
func summarize(conns []TLSConnection) TLSSummary {
	s := TLSSummary{Connections: len(conns), ByServed: []ServedCount{}, ByClientCA: []CACount{}}
	served := map[[2]string]int{} // index in s.ByServed by app and serial
	cas := map[[2]string]int{}    // index in s.ByClientCA by fingerprint and issuer
	for i := range conns {
		c := &conns[i]
		k := [2]string{c.App, c.Served.Serial}
		if j, ok := served[k]; ok {
			s.ByServed[j].Connections++
		} else {
			served[k] = len(s.ByServed)
			s.ByServed = append(s.ByServed, ServedCount{App: c.App, ServedCertificate: c.Served, Connections: 1})
		}
		if c.Client == nil {
			s.WithoutClientCert++
			continue
		}
		issuer := c.Client.Issuer
		if c.Client.CA != "" {
			issuer = c.Client.CA
		}
		k = [2]string{c.Client.CASHA256, issuer}
		if j, ok := cas[k]; ok {
			s.ByClientCA[j].Connections++
		} else {
			cas[k] = len(s.ByClientCA)
			s.ByClientCA = append(s.ByClientCA, CACount{CA: c.Client.CA, CASHA256: c.Client.CASHA256, Issuer: issuer, Connections: 1})
		}
	}
	slices.SortStableFunc(s.ByServed, func(a, b ServedCount) int {
		return cmp.Or(b.Connections-a.Connections, strings.Compare(a.App, b.App), strings.Compare(a.Serial, b.Serial))
	})
	slices.SortStableFunc(s.ByClientCA, func(a, b CACount) int {
		return cmp.Or(b.Connections-a.Connections, strings.Compare(a.Issuer, b.Issuer), strings.Compare(a.CASHA256, b.CASHA256))
	})
	return s
}
