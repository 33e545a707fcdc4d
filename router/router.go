package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/resolver"
	"github.com/spacerouter/spacerouter/tlsconfig"
)

// Options are the router's collaborators, made by the caller.
type Options struct {
	// Logger is the operational log; nil means no operational log.
	Logger *zap.Logger
	// Lines receives the router lines; nil means they are discarded.
	Lines *logging.RouterLog
	// Registry receives the router's metrics; nil means none are kept.
	Registry *prometheus.Registry
}

// Router is one running space.
type Router struct {
	log   *zap.Logger
	lines atomic.Pointer[logging.RouterLog]
	sp    atomic.Pointer[space]
	m     *metrics
	// tlsStore is the current per-app TLS configs; tlsBase, made once, is
	// the listener's config and asks the current store for each
	// handshake, so session tickets outlive reloads. nil without
	// listen.https.
	tlsStore atomic.Pointer[tlsconfig.Store]
	tlsBase  *tls.Config
	// reloadMu serializes reloads.
	reloadMu sync.Mutex
	h2srv    *http2.Server

	pageClient *http.Client
	stop       context.CancelFunc
	stopCtx    context.Context

	// mu guards backends, listeners, conns and httpAddr.
	mu        sync.Mutex
	backends  map[string]*backend
	resolvers map[string]*resolver.Resolver
	listeners []net.Listener
	conns     map[tracked]struct{}
	httpAddr  net.Addr
	httpsAddr net.Addr
	admin     *http.Server
	adminAddr net.Addr
	gather    prometheus.Gatherer

	draining atomic.Bool
	// hookHandle, when set (by tests only), runs before each request is
	// routed; it lets a test make the request path panic (H99).
	hookHandle func()
	connWG     sync.WaitGroup // one per client connection goroutine
	bgWG       sync.WaitGroup // background loops
}

// New builds a router for cfg. It fetches error pages; it does not listen
// yet.
func New(cfg *config.Config, opts Options) (*Router, error) {
	if cfg == nil {
		return nil, errors.New("router: nil config")
	}
	r := &Router{
		log:        opts.Logger,
		backends:   map[string]*backend{},
		resolvers:  map[string]*resolver.Resolver{},
		conns:      map[tracked]struct{}{},
		pageClient: &http.Client{Timeout: 5 * time.Second},
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.lines.Store(opts.Lines)
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	var reg prometheus.Registerer
	if opts.Registry != nil {
		reg, r.gather = opts.Registry, opts.Registry
	}
	r.m = newMetrics(reg)
	if cfg.Listen.HTTPS != "" {
		if err := r.loadTLS(cfg); err != nil {
			return nil, err
		}
		r.tlsBase = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			return r.tlsStore.Load().GetConfigForClient(h)
		}}
		r.h2srv = newH2Server(cfg)
	}
	sp := buildSpace(cfg, r.backendFor, newPages, r.m)
	r.fetchPages(sp)
	r.sp.Store(sp)
	return r, nil
}

// loadTLS builds the TLS configs of cfg (reading its certificates) and
// makes them current.
func (r *Router) loadTLS(cfg *config.Config) error {
	st, err := newTLSStore(cfg, func(reason, sni string) {
		r.m.hsFailures.WithLabelValues(reason).Inc()
		r.log.Info("TLS handshake refused", zap.String(logging.KeyReason, reason), zap.String(logging.KeySNI, sni))
	})
	if err != nil {
		return fmt.Errorf("building TLS configs: %w", err)
	}
	for _, w := range st.Warnings() {
		r.log.Warn(w)
	}
	r.tlsStore.Store(st)
	return nil
}

// Reload makes cfg the config of new requests (SPEC.md section 1):
// requests in flight finish on the one they started with, client
// connections stay, dyno pools of addresses still named stay, certificates
// are read again. An error leaves the running config as it was. Listener
// addresses cannot change without a restart: that is logged.
func (r *Router) Reload(cfg *config.Config) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.sp.Load()
	if cfg.Listen != old.cfg.Listen {
		r.log.Warn("listen addresses changed in the config: they take effect at the next restart",
			zap.String(logging.KeyFile, cfg.File))
	}
	if r.tlsBase != nil {
		if err := r.loadTLS(cfg); err != nil {
			r.ReloadFailed(err)
			return err
		}
	}
	sp := buildSpace(cfg, r.backendFor, newPages, r.m)
	r.fetchPages(sp)
	r.sp.Store(sp)
	r.m.reloads.WithLabelValues("ok").Inc()
	r.log.Info("config reloaded", zap.String(logging.KeyFile, cfg.File), zap.Int("apps", len(cfg.Apps)))
	return nil
}

// ReloadFailed records a reload that did not happen (an invalid file, say):
// the operational log names the problem and the running config stays.
func (r *Router) ReloadFailed(err error) {
	r.m.reloads.WithLabelValues("error").Inc()
	r.log.Error("config reload refused; the running config stays", zap.Error(err))
}

// SetLines makes lw receive the router lines from now on (a reload that
// names another log.router target).
func (r *Router) SetLines(lw *logging.RouterLog) { r.lines.Store(lw) }

// backendFor returns the router-wide state of a dyno address.
// With an extra resolver (spaces-extra-resolver) the address is a
// backend of its own: its host name may resolve elsewhere.
func (r *Router) backendFor(addr, extraResolver string) *backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := addr
	if extraResolver != "" {
		key = addr + " via " + extraResolver
	}
	be := r.backends[key]
	if be == nil {
		be = &backend{pool: newPool(addr, r.m.idleDyno, r.m.activeDyno)}
		be.pool.strayTotal = r.m.strayBytes
		be.pool.stray = func(addr string, n int64) {
			r.log.Warn("dyno sent bytes after a response ended; its connection was closed, not reused",
				zap.String(logging.KeyAddr, addr), zap.Int64("connections", n))
		}
		if res := r.resolverLocked(extraResolver); res != nil {
			be.pool.dialer = res.DialContext
		}
		r.backends[key] = be
	}
	return be
}

// resolverLocked returns the resolver of an extra DNS server, made once and
// kept across reloads so its cache is shared; nil for none (or an unusable
// one: the system resolver serves then). r.mu must be held.
func (r *Router) resolverLocked(server string) *resolver.Resolver {
	if server == "" {
		return nil
	}
	if res := r.resolvers[server]; res != nil {
		return res
	}
	res, err := resolver.New(server, resolver.Options{OnFailure: func(server, name string, err error) {
		r.log.Warn("extra resolver failed; using the system resolver",
			zap.String("resolver", server), zap.String("name", name), zap.Error(err))
	}})
	if err != nil {
		// The config package validated the value; keep a clear trace anyway.
		r.log.Error("extra resolver unusable; using the system resolver", zap.String("resolver", server), zap.Error(err))
		return nil
	}
	r.resolvers[server] = res
	return res
}

// fetchPages fetches every app's pages once, with a bound on the whole.
func (r *Router) fetchPages(sp *space) {
	ctx, cancel := context.WithTimeout(r.stopCtx, 10*time.Second)
	defer cancel()
	for _, a := range sp.apps {
		a.pages.fetchAll(ctx, r.pageClient, r.log, a.name)
	}
}

// Start opens the listeners named in the config and serves them in the
// background. The bound addresses are given by HTTPAddr.
func (r *Router) Start() error {
	sp := r.sp.Load()
	if sp.cfg.Listen.HTTP != "" {
		ln, err := net.Listen("tcp", sp.cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listening on listen.http %s: %w", sp.cfg.Listen.HTTP, err)
		}
		r.mu.Lock()
		r.httpAddr = ln.Addr()
		r.mu.Unlock()
		r.Serve(ln)
	}
	if sp.cfg.Listen.HTTPS != "" {
		if err := r.startTLS(sp.cfg.Listen.HTTPS); err != nil {
			return fmt.Errorf("listening on listen.https %s: %w", sp.cfg.Listen.HTTPS, err)
		}
	}
	if sp.cfg.Listen.Admin != "" {
		if err := r.startAdmin(sp.cfg.Listen.Admin, r.gather); err != nil {
			return err
		}
	}
	r.bgWG.Add(2)
	go r.sweepLoop()
	go r.pageLoop()
	return nil
}

// pageLoop fetches the error and maintenance pages again every
// pageRefresh (SPEC.md section 9: refreshed in the background).
func (r *Router) pageLoop() {
	defer r.bgWG.Done()
	t := time.NewTicker(pageRefresh)
	defer t.Stop()
	for {
		select {
		case <-r.stopCtx.Done():
			return
		case <-t.C:
			r.fetchPages(r.sp.Load())
		}
	}
}

// Serve accepts plain HTTP connections from ln in the background until
// Shutdown.
func (r *Router) Serve(ln net.Listener) {
	li := r.addListener(ln, "http")
	r.bgWG.Add(1)
	go func() {
		defer r.bgWG.Done()
		r.acceptLoop(ln, func(c net.Conn) {
			cc := newClientConn(r, c, li)
			if !r.track(cc) {
				c.Close()
				return
			}
			go func() {
				g := r.m.clientConns.WithLabelValues("http", "http1")
				g.Inc()
				defer g.Dec()
				cc.serve()
			}()
		})
	}()
	r.log.Info("listening", zap.String(logging.KeyListener, "http"), zap.String(logging.KeyAddr, ln.Addr().String()))
}

// addListener registers ln for Shutdown and returns what its requests tell
// the dyno: X-Forwarded-Proto proto and the port ln is bound to.
func (r *Router) addListener(ln net.Listener, proto string) listenerInfo {
	r.mu.Lock()
	r.listeners = append(r.listeners, ln)
	r.mu.Unlock()
	var port []byte
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.AppendInt(nil, int64(ta.Port), 10)
	}
	return newListenerInfo(proto, port)
}

// listenerInfo describes what a listener tells the dyno about itself.
type listenerInfo struct {
	// fwd is the part of every dyno request head from the line end of
	// X-Forwarded-For up to the value of X-Request-Start: the listener's
	// X-Forwarded-Proto and X-Forwarded-Port, made once.
	fwd []byte
}

func newListenerInfo(proto string, port []byte) listenerInfo {
	fwd := append([]byte("\r\nX-Forwarded-Proto: "), proto...)
	fwd = append(fwd, "\r\nX-Forwarded-Port: "...)
	fwd = append(fwd, port...)
	fwd = append(fwd, "\r\nX-Request-Start: "...)
	return listenerInfo{fwd: fwd}
}

// acceptLoop accepts from ln until it is closed and hands each connection
// to serve.
func (r *Router) acceptLoop(ln net.Listener, serve func(c net.Conn)) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if r.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Error("accepting connection", zap.Error(err), zap.Duration(logging.KeyDuration, backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		serve(c)
	}
}

// tracked is a client connection the drain can close: when it waits
// between requests, or at once when the shutdown limit passes.
type tracked interface {
	closeIfIdle()
	forceClose()
}

// track registers a connection; false when the router is draining.
func (r *Router) track(t tracked) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining.Load() {
		return false
	}
	r.conns[t] = struct{}{}
	r.connWG.Add(1)
	return true
}

func (r *Router) untrack(t tracked) {
	r.mu.Lock()
	delete(r.conns, t)
	r.mu.Unlock()
	r.connWG.Done()
}

// sweepLoop closes idle dyno connections past dyno_keepalive.
func (r *Router) sweepLoop() {
	defer r.bgWG.Done()
	for {
		sp := r.sp.Load()
		every := max(sp.cfg.Timeouts.DynoKeepalive/4, 5*time.Millisecond)
		every = min(every, time.Second)
		t := time.NewTimer(every)
		select {
		case <-r.stopCtx.Done():
			t.Stop()
			return
		case now := <-t.C:
			r.mu.Lock()
			pools := make([]*pool, 0, len(r.backends))
			for _, be := range r.backends {
				pools = append(pools, be.pool)
			}
			r.mu.Unlock()
			for _, p := range pools {
				p.sweep(now, sp.cfg.Timeouts.DynoKeepalive)
			}
		}
	}
}

// HTTPAddr returns the bound address of the plain HTTP listener, or nil.
func (r *Router) HTTPAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpAddr
}

// Draining reports whether Shutdown has begun.
func (r *Router) Draining() bool { return r.draining.Load() }

// Shutdown stops accepting, closes idle client connections, lets requests
// in flight finish until ctx is done, then closes every connection.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.draining.Store(true)
	lns := r.listeners
	r.listeners = nil
	r.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	done := make(chan struct{})
	go func() {
		r.connWG.Wait()
		close(done)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		r.closeIdleConns()
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			err = ctx.Err()
			r.stop() // cancels dials in progress too
			r.closeAllConns()
			<-done
			break wait
		case <-tick.C:
		}
	}
	r.stop()
	r.stopAdmin()
	r.bgWG.Wait()
	r.mu.Lock()
	for _, be := range r.backends {
		be.pool.close()
	}
	r.mu.Unlock()
	return err
}

func (r *Router) closeIdleConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.conns {
		t.closeIfIdle()
	}
}

func (r *Router) closeAllConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.conns {
		t.forceClose()
	}
}
