package router

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/tlsconfig"
)

// handshakeTimeout bounds a TLS handshake.
const handshakeTimeout = 10 * time.Second

// NewTLSStore builds the per-app TLS configs of cfg (apps with
// certificates only: a name of an app without one is unknown to TLS), as
// the router serves them; spacerouter -check builds the same to print its
// warnings. tickets encrypts session tickets (nil: the store makes its
// own); refused, if not nil, is told of every handshake refused for its SNI
// name.
func NewTLSStore(cfg *config.Config, tickets *tlsconfig.Tickets, refused func(reason, sni string)) (*tlsconfig.Store, error) {
	var apps []tlsconfig.App
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if len(a.TLS) == 0 {
			continue
		}
		ta := tlsconfig.App{Name: a.Name, Domains: a.Domains, Features: a.Features, DisableHTTP2: a.Has(config.FeatureDisableHTTP2),
			RequestClientCert: a.MTLS.Mode == config.MTLSOptional || a.MTLS.Mode == config.MTLSRequire}
		for _, r := range a.IPRules {
			ta.Allow = append(ta.Allow, r.Prefix)
		}
		for _, c := range a.TLS {
			ta.Certs = append(ta.Certs, tlsconfig.CertFiles{Cert: c.Cert, Key: c.Key})
		}
		apps = append(apps, ta)
	}
	return tlsconfig.New(apps, tlsconfig.Options{HTTP2: true, OnHandshakeFailure: refused, Tickets: tickets})
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
	tc := tls.Server(c, r.tlsBase)
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
	r.m.handshake(&st)
	sni := normalizeHost(nil, []byte(st.ServerName))
	// Tracked as served before it is no longer tracked as pending, so a
	// drain that begins meanwhile never misses it.
	var serve func()
	if st.NegotiatedProtocol == http2.NextProtoTLS {
		if h := r.newH2conn(tc, li, &st, sni, slot); r.track(h) {
			serve = h.serve
		}
	} else {
		cc := newConn(r, tc, c, li, slot)
		cc.tlsVer, cc.sniName, cc.pc = st.Version, sni, newPeerCert(&st)
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
	defer g.Dec()
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
