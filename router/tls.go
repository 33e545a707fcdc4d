package router

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/tlsconfig"
)

// handshakeTimeout bounds a TLS handshake.
const handshakeTimeout = 10 * time.Second

// TLSStoreOptions are what NewTLSStore needs besides the config; the zero
// value builds a Store for its warnings only.
type TLSStoreOptions struct {
	// Tickets encrypts session tickets; nil: the Store makes its own.
	Tickets *tlsconfig.Tickets
	// Refused, if not nil, is told of every handshake refused for its SNI
	// name (tlsconfig.Options.OnHandshakeFailure).
	Refused func(reason, sni string)
	// Auto serves the certificates of the tls: auto apps; nil: none, and
	// their handshakes are refused as acme_pending.
	Auto func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// OnServed is told which chain each handshake served
	// (tlsconfig.Options.OnServed).
	OnServed func(conn net.Conn, cert *tls.Certificate, source string)
	// Now is the clock of staged chains; nil: time.Now.
	Now func() time.Time
}

// NewTLSStore builds the per-app TLS configs of cfg (apps with
// certificates or tls: auto only: a name of an app with neither is unknown
// to TLS), as the router serves them; spacerouter -check builds the same
// to print its warnings.
func NewTLSStore(cfg *config.Config, o TLSStoreOptions) (*tlsconfig.Store, error) {
	auto := o.Auto
	if auto == nil {
		auto = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errNoACME }
	}
	var apps []tlsconfig.App
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if len(a.TLS) == 0 && !a.TLSAuto {
			continue
		}
		ta := tlsconfig.App{Name: a.Name, Domains: a.Domains, Features: a.Features, DisableHTTP2: a.Has(config.FeatureDisableHTTP2),
			RequestClientCert: a.MTLS.Mode == config.MTLSOptional || a.MTLS.Mode == config.MTLSRequire}
		for _, r := range a.IPRules {
			ta.Allow = append(ta.Allow, r.Prefix)
		}
		for _, c := range a.TLS {
			ta.Certs = append(ta.Certs, tlsconfig.CertFiles{Cert: c.Cert, Key: c.Key, ServeFrom: c.ServeFrom})
		}
		if a.TLSAuto {
			ta.GetCertificate = auto
		}
		apps = append(apps, ta)
	}
	return tlsconfig.New(apps, tlsconfig.Options{HTTP2: true, OnHandshakeFailure: o.Refused, Tickets: o.Tickets,
		OnServed: o.OnServed, Now: o.Now})
}

// ServeTLS accepts TLS connections from ln in the background until
// Shutdown: HTTP/1.1 or, by ALPN, HTTP/2.
func (r *Router) ServeTLS(ln net.Listener) {
	li := r.addListener(ln, "https")
	r.bgWG.Add(1)
	go func() {
		defer r.bgWG.Done()
		r.acceptLoop(ln, func(c net.Conn, slot *connSlot) { go r.serveTLSConn(c, li, slot) })
	}()
	r.log.Info("listening", zap.String(logging.KeyListener, "https"), zap.String(logging.KeyAddr, ln.Addr().String()))
}

// pendingConn is a connection still in its TLS handshake.
type pendingConn struct {
	c  net.Conn
	cs *connSlot
}

func (p *pendingConn) closeIfIdle()    { p.c.Close() }
func (p *pendingConn) idle() bool      { return true }
func (p *pendingConn) interrupt()      { p.c.Close() }
func (p *pendingConn) forceClose()     { p.c.Close() }
func (p *pendingConn) slot() *connSlot { return p.cs }

// serveTLSConn runs the handshake, then serves the connection by the
// protocol ALPN chose on a goroutine of its own: the handshake's
// cryptography grows its goroutine's stack to 16 KiB, which a goroutine
// keeps until a garbage collection shrinks it, while the connection's
// requests need a quarter of that. Ending that goroutine here returns its
// stack for the next handshake; an idle TLS connection then holds a small
// stack.
func (r *Router) serveTLSConn(c net.Conn, li *listenerInfo, slot *connSlot) {
	p := &pendingConn{c: c, cs: slot}
	if !r.track(p) {
		c.Close()
		slot.free()
		return
	}
	// crypto/tls reads and writes through tv, where the handshake records
	// which chain it served (onServed) for the connection view.
	tv := &tlsConn{Conn: c}
	tc := tls.Server(tv, r.tlsBase)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	err := tc.HandshakeContext(r.stopCtx)
	if err != nil {
		r.untrack(p)
		// Refusals by SNI and by ip_rules were counted with their reason
		// already.
		if !strings.Contains(err.Error(), "unrecognized name") && !errors.Is(err, tlsconfig.ErrAccessDenied) {
			r.m.hsFailures.WithLabelValues("error").Inc()
		}
		r.log.Debug("TLS handshake failed", zap.String(logging.KeyRemoteAddr, c.RemoteAddr().String()), zap.Error(err))
		c.Close()
		slot.free()
		return
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acme.ALPNProto {
		// An ACME server's TLS-ALPN-01 validation: the handshake was all
		// of it (RFC 8737 section 3). Never served, never a client's.
		r.untrack(p)
		tc.Close()
		slot.free()
		return
	}
	r.m.handshake(&st)
	sni := normalizeHost(nil, []byte(st.ServerName))
	// Tracked as served before it is no longer tracked as pending, so a
	// drain that begins meanwhile never misses it.
	app, _ := r.tlsStore.Load().AppForSNI(st.ServerName)
	var serve func()
	if st.NegotiatedProtocol == http2.NextProtoTLS {
		h := r.newH2conn(tc, li, &st, sni, slot)
		h.tv = tv
		tv.handshook(&st, app, h.pc, r.now())
		if r.track(h) {
			serve = h.serve
		}
	} else {
		cc := newConn(r, tc, c, li, slot)
		cc.tlsVer, cc.sniName, cc.pc, cc.tv = st.Version, sni, newPeerCert(&st), tv
		tv.handshook(&st, app, cc.pc, r.now())
		if r.track(cc) {
			serve = cc.serveTLS
		}
	}
	r.untrack(p)
	if serve == nil {
		tc.Close()
		slot.free()
		return
	}
	go serve()
}

// serveTLS serves an HTTP/1 connection over TLS once tracked.
func (c *conn) serveTLS() {
	g := c.rt.m.clientConns.WithLabelValues("https", "http1")
	g.Inc()
	c.gauge = g // decremented when the connection ends: it may hop goroutines
	c.serve()
}

// startTLS opens listen.https.
func (r *Router) startTLS(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.httpsAddr = ln.Addr()
	r.mu.Unlock()
	r.ServeTLS(ln)
	return nil
}

// HTTPSAddr returns the bound address of the TLS listener, or nil.
func (r *Router) HTTPSAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpsAddr
}
