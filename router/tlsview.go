package router

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"github.com/spacerouter/spacerouter/admin/view"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
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

	// The idle wait (tlswait.go), used by the connection's goroutine
	// only.
	probe    bool
	woken    bool
	drained  bool    // the last read through crypto/tls emptied its decrypted bytes
	extra    bool    // the last socket read completed more than one record
	hdr      [5]byte // the current record's header, hlen bytes of it so far
	hlen     int
	left     int // bytes of the current record's body still to come
	rc       syscall.RawConn
	readable func(fd uintptr) bool
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
	tc.setupWait()
}

// counted counts one request on the connection; tc may be nil (plain
// HTTP).
func (tc *tlsConn) counted() {
	if tc != nil {
		tc.requests.Add(1)
	}
}

// The connection view's types are the admin API's (GET /api/tls/connections
// and /api/tls/summary, SPEC.md 12.5), so their JSON field names are one
// contract: package admin/view defines them.
type (
	TLSConnection     = view.TLSConnection
	ServedCertificate = view.ServedCertificate
	ClientCertificate = view.ClientCertificate
	TLSFilter         = view.TLSFilter
	TLSSummary        = view.TLSSummary
)

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
		if filterMatches(&f, &v, serial) {
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

// filterMatches reports whether f selects v; serial is f.Serial parsed (nil:
// any).
func filterMatches(f *TLSFilter, v *TLSConnection, serial *big.Int) bool {
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

// TLSSummary returns the summary of the open client TLS connections.
func (r *Router) TLSSummary() TLSSummary {
	return view.Summarize(r.TLSConnections(TLSFilter{}))
}
