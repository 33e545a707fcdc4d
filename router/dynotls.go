package router

// TLS to dynos: dyno_tls (SPEC.md section 12.4, issue 12).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/errcodes"
)

// dynoTLS is how the router speaks TLS to one dyno address, made from its
// app's dyno_tls. Pools are keyed by it (key): apps with other settings
// never share a connection, and a reload that changes them names new pools
// while the old ones, named by no app any more, are closed.
type dynoTLS struct {
	mode string // config.DynoTLSRequire, DynoTLSVerifyCA or DynoTLSVerifyFull
	// name is the SNI sent and, under verify-full, the name the dyno's
	// certificate must hold: the host of the dyno's address when it is a
	// name, else server_name under verify-full; "" sends no SNI (an IP
	// address under require and verify-ca).
	name string
	// trust is the app's trust bundles loaded (verify-ca and verify-full;
	// nil under require).
	trust *dynoTrust
	// now is the clock of verification; nil: time.Now.
	now func() time.Time

	// verified remembers, by the SHA-256 of a leaf, the validity window
	// of the chain it was verified with (see verify), for resumed
	// sessions. mu guards it.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]window
}

// window is when a verified chain is valid: the latest NotBefore and the
// earliest NotAfter of its certificates.
type window struct{ from, until time.Time }

// maxVerified bounds dynoTLS.verified: when full it is emptied, and the
// next resumptions verify in full (as correct, only slower).
const maxVerified = 4 * dynoSessionCache

// dynoTrust is an app's dyno_tls.trust loaded: the anchors and an id of
// their contents.
type dynoTrust struct {
	roots *x509.CertPool
	// id is the hex SHA-256 over the SHA-256 of each anchor's DER, in
	// sorted order: what verifies, not where it is written. A bundle
	// whose certificates changed is other settings, so a reload that
	// changes a bundle in place closes the idle connections it verified;
	// the same certificates in other files, or in another order, are the
	// same trust, and connections stay.
	id string
}

// loadDynoTrust reads the PEM bundles of an app's dyno_tls.trust. Every
// certificate is an anchor, a CA or a dyno's self-signed certificate, as
// the config package checked; an error is a bundle that changed since.
func loadDynoTrust(app string, paths []string) (*dynoTrust, error) {
	t := &dynoTrust{roots: x509.NewCertPool()}
	var sums [][sha256.Size]byte
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("app %s: dyno_tls.trust: %w", app, err)
		}
		n := 0
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("app %s: dyno_tls.trust: parsing certificate %d of %q: %w", app, n+1, path, err)
			}
			t.roots.AddCert(cert)
			sums = append(sums, sha256.Sum256(cert.Raw))
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("app %s: dyno_tls.trust: no certificate in %q", app, path)
		}
	}
	slices.SortFunc(sums, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	for _, s := range slices.Compact(sums) {
		h.Write(s[:])
	}
	t.id = hex.EncodeToString(h.Sum(nil))
	return t, nil
}

// dynoTLSFor returns the TLS settings of the dyno at addr for an app whose
// dyno_tls is t and whose trust bundles are trust; nil for mode off.
func dynoTLSFor(t *config.DynoTLS, addr string, trust *dynoTrust) *dynoTLS {
	if t.Mode == "" || t.Mode == config.DynoTLSOff {
		return nil
	}
	dt := &dynoTLS{mode: t.Mode}
	if t.Mode != config.DynoTLSRequire {
		dt.trust = trust
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.TrimSuffix(host, ".")
	if _, err := netip.ParseAddr(host); err != nil {
		dt.name = host
	} else if t.Mode == config.DynoTLSVerifyFull {
		dt.name = t.ServerName
	}
	return dt
}

// key names the settings in a pool key: two dyno addresses with equal keys
// may share connections.
func (t *dynoTLS) key() string {
	k := " tls " + t.mode + " name=" + t.name
	if t.trust != nil {
		k += " trust=" + t.trust.id
	}
	return k
}

// dynoSessionCache is the TLS sessions kept per pool, so connections
// opened after the first resume (no certificate sent, no signature made
// or verified) where the dyno allows it.
const dynoSessionCache = 64

// clientConfig returns the TLS config of a pool, made once per pool.
// Verification is the router's own (VerifyConnection), so that verify-ca
// can check the chain without the name and every failure names its cause
// (H43); Go's verification is off, not skipped: require verifies nothing,
// as SPEC.md 12.4 says. VerifyConnection runs on resumed sessions too, with
// the certificates of the session, so an expired certificate is refused
// on resumption as well.
func (t *dynoTLS) clientConfig() *tls.Config {
	c := &tls.Config{
		ServerName:         t.name,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true, // verification below, or none under require
		ClientSessionCache: tls.NewLRUClientSessionCache(dynoSessionCache),
	}
	if t.mode != config.DynoTLSRequire {
		c.VerifyConnection = t.verify
	}
	return c
}

// errNoDynoCert: the dyno sent no certificate (it cannot happen with a TLS
// server: kept for a broken one).
var errNoDynoCert = errors.New("the dyno sent no certificate")

// verify checks the dyno's certificate: a chain to one of the trust
// anchors (verify-ca), and the name (verify-full). The chain comes first,
// so a certificate from an unknown CA says unknown_ca whatever names it
// holds.
//
// A resumed session carries the certificates of the handshake that made
// it, which passed here (a session is kept only after a handshake that
// did): under the same trust and name (a pool's, fixed), only the clock
// can change the answer. So a resumption whose leaf verified before is
// checked against its chain's validity window alone, with no signature
// checked; outside the window, or for a leaf not remembered, the whole
// verification runs again, and names the cause (expired).
func (t *dynoTLS) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return &dynoCertError{code: errcodes.DynoCertBadUsage, err: errNoDynoCert}
	}
	now := time.Now()
	if t.now != nil {
		now = t.now()
	}
	var sum [sha256.Size]byte
	if cs.DidResume {
		sum = sha256.Sum256(certs[0].Raw)
		t.mu.Lock()
		w, ok := t.verified[sum]
		t.mu.Unlock()
		if ok && !now.Before(w.from) && !now.After(w.until) {
			return nil
		}
	}
	opts := x509.VerifyOptions{Roots: t.trust.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return &dynoCertError{code: certCause(err), err: err}
	}
	if t.mode == config.DynoTLSVerifyFull {
		if err := certs[0].VerifyHostname(t.name); err != nil {
			return &dynoCertError{code: certCause(err), err: err}
		}
	}
	t.remember(certs[0], chains[0], cs.DidResume, sum)
	return nil
}

// remember keeps the validity window of chain, verified for leaf, for its
// resumptions. sum is the leaf's SHA-256 when resumed says it was made.
func (t *dynoTLS) remember(leaf *x509.Certificate, chain []*x509.Certificate, resumed bool, sum [sha256.Size]byte) {
	if !resumed {
		sum = sha256.Sum256(leaf.Raw)
	}
	w := window{from: chain[0].NotBefore, until: chain[0].NotAfter}
	for _, c := range chain[1:] {
		if c.NotBefore.After(w.from) {
			w.from = c.NotBefore
		}
		if c.NotAfter.Before(w.until) {
			w.until = c.NotAfter
		}
	}
	t.mu.Lock()
	if t.verified == nil || len(t.verified) >= maxVerified {
		t.verified = make(map[[sha256.Size]byte]window)
	}
	t.verified[sum] = w
	t.mu.Unlock()
}

// dynoCertError is a dyno certificate that failed verification: H43 with
// the cause in code.
type dynoCertError struct {
	code errcodes.Code
	err  error
}

func (e *dynoCertError) Error() string {
	return "dyno certificate rejected (" + e.code.Entry().Cause + "): " + e.err.Error()
}
func (e *dynoCertError) Unwrap() error { return e.err }

// certCause maps a verification error of crypto/x509 to its H43 row: a
// certificate outside its validity (the dyno's, or the anchor's it chains
// to; Go says Expired for not yet valid too), no chain to the trust
// anchors, a name it does not hold; anything else (a usage it lacks, a CA
// that may not sign, a name constraint) is bad_usage.
func certCause(err error) errcodes.Code {
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok && e.Reason == x509.Expired {
		return errcodes.DynoCertExpired
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return errcodes.DynoCertUnknownCA
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return errcodes.DynoCertNameMismatch
	}
	return errcodes.DynoCertBadUsage
}

// handshake runs the TLS handshake on the new connection c within ctx (the
// connect timeout: a handshake that takes longer is H19). A certificate
// that fails verification is a *dynoCertError (H43, not retried); any
// other failure (a dyno that does not speak TLS, an alert, a close) is a
// failed connect (H21, tried on another dyno).
func (p *pool) handshake(ctx context.Context, c net.Conn) (*tls.Conn, error) {
	tc := tls.Client(c, p.tlsConf)
	err := tc.HandshakeContext(ctx)
	if err == nil {
		p.tlsResult(handshakeResult(tc))
		return tc, nil
	}
	c.Close()
	var ne net.Error
	de := &dialError{err: fmt.Errorf("TLS handshake: %w", err),
		timeout: errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()}
	switch ce, ok := errors.AsType[*dynoCertError](err); {
	case ok:
		de.timeout = false
		p.tlsResult(ce.code.Entry().Cause)
	case de.timeout:
		p.tlsResult("timeout")
	default:
		p.tlsResult("error")
	}
	return nil, de
}

// handshakeResult is the metric label of a handshake that succeeded.
func handshakeResult(tc *tls.Conn) string {
	if tc.ConnectionState().DidResume {
		return "resumed"
	}
	return "ok"
}

// tlsResult counts a dyno handshake's result, when counted.
func (p *pool) tlsResult(result string) {
	if p.tlsResults != nil {
		p.tlsResults(result)
	}
}

// tlsProbeWait bounds the read that tells what arrived on an idle TLS
// connection: the record is in the socket already, so reading it takes
// microseconds; the wait is whole only when what came was TLS's own
// messages and nothing else (the connection is then reused).
const tlsProbeWait = time.Millisecond

// checkTLS looks at an idle TLS connection through TLS. The socket alone
// cannot tell: a tls.Conn may hold in its own buffers what the socket no
// longer has (the rest of the record a response came in, records read
// along with it), and bytes on the socket may be TLS's own: close_notify
// (the dyno closing an idle connection), a session ticket, a key update,
// none of them stray. So:
//
//  1. one read through TLS with the socket out of reach (tlsRaw's probe):
//     only what TLS holds is read, with no system call, no deadline to
//     set and nothing allocated;
//  2. if nothing there, a MSG_PEEK says whether bytes wait on the socket
//     (only whether: what they are is TLS's to say);
//  3. if some do, one read through TLS, tlsProbeWait long, reads and
//     decrypts them.
//
// Plaintext is stray (issue 9: application data after a response poisons
// the connection); EOF (close_notify, a FIN) or an error is the end,
// closed quietly and not counted; a timeout with nothing left on the
// socket leaves the connection quiet, reusable. A timeout is no error for
// tls.Conn: it reads on afterwards.
func (dc *dynoConn) checkTLS() int {
	dc.tr.probing = true
	r := dc.readTLS()
	dc.tr.probing = false
	if r != connQuiet {
		return r
	}
	switch dc.peekSocket() {
	case connQuiet:
		return connQuiet
	case connEnded:
		return connEnded // a FIN or a reset, and nothing before it
	}
	dc.rdl.set(dc.c, time.Now().Add(tlsProbeWait))
	if r := dc.readTLS(); r != connQuiet {
		return r
	}
	if dc.peekSocket() != connQuiet {
		// Part of a record still on its way, or the close: whatever it
		// is, the connection is closed rather than waited for.
		return connEnded
	}
	return connQuiet
}

// readTLS reads through TLS: plaintext is connStray, an error that is not
// a timeout connEnded, nothing connQuiet.
func (dc *dynoConn) readTLS() int {
	n, err := dc.tc.Read(dc.peekBuf[:])
	switch {
	case n > 0:
		return connStray
	case err != nil && err != errProbe && !isTimeout(err):
		return connEnded
	}
	return connQuiet
}

// tlsRaw is the TCP connection under a dyno's tls.Conn. While probing,
// its Read reads nothing and fails at once with errProbe, a temporary
// error, which tls.Conn passes on without breaking the connection.
type tlsRaw struct {
	net.Conn
	probing bool
}

func (r *tlsRaw) Read(b []byte) (int, error) {
	if r.probing {
		return 0, errProbe
	}
	return r.Conn.Read(b)
}

// probeError is errProbe's type: a temporary timeout.
type probeError struct{}

func (probeError) Error() string   { return "dyno connection check: nothing read" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }

// errProbe is what tlsRaw.Read answers while probing.
var errProbe net.Error = probeError{}
