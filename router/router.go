package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/resolver"
	"github.com/spacerouter/spacerouter/spaceca"
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
	// Now is the clock of staged certificates (serve_from), the expiry
	// and rotation warnings, client certificate verdicts (retire_at) and
	// the TLS connection view; nil means time.Now. Request timing uses the
	// real clock.
	Now func() time.Time
	// Waiting starts the router not ready: /healthz answers 503 until
	// SetReady(true) (a shared space before its first config, SPEC.md
	// section 14).
	Waiting bool
	// Maintenance keeps the admin API's maintenance switches where every
	// router of the space sees them (etcd); nil: under state_dir, else
	// in memory. See SetMaintenance.
	Maintenance MaintenanceKeeper
	// ACMEStorage, when set, holds the ACME accounts, certificates and
	// locks instead of acme.storage: the routers of a shared space order
	// a domain once (store.ACMEStorage, SPEC.md section 14).
	ACMEStorage acme.SharedStorage
}

// Router is one running space.
type Router struct {
	log   *zap.Logger
	now   func() time.Time // Options.Now
	lines atomic.Pointer[logging.RouterLog]
	sp    atomic.Pointer[space]
	m     *metrics
	// tlsStore is the current per-app TLS configs; tlsBase, made once, is
	// the listener's config and asks the current store for each
	// handshake, so session tickets outlive reloads. nil without
	// listen.https.
	tlsStore atomic.Pointer[tlsconfig.Store]
	tlsBase  *tls.Config
	// tickets encrypts session tickets for every store this router
	// builds, so a ticket still resumes after a reload, for the app and
	// name it was issued for only (RFC 6066 section 3).
	tickets *tlsconfig.Tickets
	// ca is the space CA (nil: the space has none), replaced by a reload
	// that names other CA files.
	ca atomic.Pointer[spaceca.CA]
	// maint holds the maintenance switches of the admin API, kept under
	// the space CA's state_dir when there is one.
	maint *overrides
	// keeper, when set, keeps the switches instead of maint (Options.Maintenance).
	keeper MaintenanceKeeper
	// waiting: /healthz answers 503 (Options.Waiting, SetReady).
	waiting atomic.Bool
	// acme is the certificate manager of the tls: auto apps (nil: no acme
	// section, or not started yet); acmePrev the one a change of the acme
	// section replaced, stopped, still serving from memory what the new
	// one has not got yet (see acmeCertificate).
	acme     atomic.Pointer[acme.Manager]
	acmePrev atomic.Pointer[acme.Manager]
	// reloadMu serializes reloads and guards acmeCfg, the acme section
	// the running Manager was made for.
	reloadMu sync.Mutex
	acmeCfg  *config.ACME
	// acmeShared is Options.ACMEStorage.
	acmeShared acme.SharedStorage
	// sharedRevoked and revUnion: see SetSharedRevocations.
	sharedRevoked atomic.Pointer[spaceca.Revocations]
	revUnion      atomic.Pointer[revocationSets]
	sharedClients atomic.Pointer[map[string]string] // see SetSharedClients

	// clockSet is true when Options.Now was given: client certificate
	// verdicts then ask it instead of using the request's start.
	clockSet bool
	// certPoke wakes certLoop after a reload; loadedAt is when New
	// logged the first certificate findings.
	certPoke chan struct{}
	loadedAt time.Time

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
	// adminWrap wraps the admin listener's handler (SetAdminHandler);
	// adminCert is admin.tls, read again by each reload.
	adminWrap func(http.Handler) http.Handler
	adminCert atomic.Pointer[tls.Certificate]
	gather    prometheus.Gatherer

	draining atomic.Bool
	// forced: the shutdown limit ran out; what is still in flight ends
	// with H24 (SPEC.md 6).
	forced atomic.Bool
	// connCount counts client connections (plain and TLS) against
	// limits.connections; perClient counts them by client address against
	// limits.connections_per_client.
	connCount atomic.Int64
	perClient *clientCounts
	// spare is a file descriptor kept in reserve for accept's EMFILE (see
	// shedOnFDExhaustion); guarded by mu.
	spare *os.File
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
		perClient:  newClientCounts(),
		pageClient: &http.Client{Timeout: 5 * time.Second},
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.now = opts.Now; r.now == nil {
		r.now = time.Now
	}
	r.clockSet = opts.Now != nil
	r.acmeShared = opts.ACMEStorage
	r.certPoke = make(chan struct{}, 1)
	r.lines.Store(opts.Lines)
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	var reg prometheus.Registerer
	if opts.Registry != nil {
		reg, r.gather = opts.Registry, opts.Registry
	}
	r.m = newMetrics(reg)
	if reg != nil {
		reg.MustRegister(newCACollector(r))
	}
	ca, err := openCA(cfg)
	if err != nil {
		return nil, err
	}
	if err := r.keepOverrides(cfg, opts); err != nil {
		return nil, err
	}
	if ca != nil {
		for _, w := range ca.Warnings() {
			r.log.Warn(w)
		}
		r.ca.Store(ca)
	}
	if cfg.Listen.HTTPS != "" {
		r.tickets = tlsconfig.NewTickets()
		st, err := r.buildTLS(cfg)
		if err != nil {
			return nil, err
		}
		r.tlsStore.Store(st)
		r.tlsBase = &tls.Config{GetConfigForClient: r.configForClient}
	}
	sp, err := buildSpace(cfg, r.backendFor, newPages, r.m, ca)
	if err != nil {
		return nil, err
	}
	r.fetchPages(sp)
	r.sp.Store(sp)
	r.loadedAt = r.now()
	r.logCertFindings(r.loadedAt)
	return r, nil
}

// buildTLS builds the TLS configs of cfg (reading its certificates) and
// logs their warnings; the caller makes them current.
func (r *Router) buildTLS(cfg *config.Config) (*tlsconfig.Store, error) {
	st, err := NewTLSStore(cfg, TLSStoreOptions{
		Tickets: r.tickets,
		Refused: func(reason, sni string) {
			r.m.hsFailures.WithLabelValues(reason).Inc()
			if reason != tlsconfig.ReasonACMEPending { // acmeCertificate logged it, with why
				r.log.Info("TLS handshake refused", zap.String(logging.KeyReason, reason), zap.String(logging.KeySNI, sni))
			}
		},
		Auto:     r.acmeCertificate,
		OnServed: onServed,
		Now:      r.now,
	})
	if err != nil {
		return nil, fmt.Errorf("building TLS configs: %w", err)
	}
	for _, w := range st.Warnings() {
		r.log.Warn(w)
	}
	return st, nil
}

// configForClient is the https listener's GetConfigForClient: an ACME
// TLS-ALPN-01 validation gets the Manager's challenge config before
// anything of an app is looked at (no SNI lookup, ip_rules or mtls);
// every other ClientHello gets the config of the app its SNI names.
func (r *Router) configForClient(h *tls.ClientHelloInfo) (*tls.Config, error) {
	if m := r.acme.Load(); m != nil {
		if cfg, ok := m.ChallengeConfig(h); ok {
			return cfg, nil
		}
	}
	return r.tlsStore.Load().GetConfigForClient(h)
}

// Reload makes cfg the config of new requests (SPEC.md section 1):
// requests in flight finish on the one they started with, client
// connections stay, dyno pools of addresses still named with the same
// settings stay (the others are closed), certificates and trust bundles
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
	ca := r.ca.Load()
	if !sameCA(cfg.SpaceCA, old.cfg.SpaceCA) {
		var err error
		if ca, err = openCA(cfg); err != nil {
			r.ReloadFailed(err)
			return err
		}
	}
	sp, err := buildSpace(cfg, r.backendFor, old.pagesFor, r.m, ca)
	if err != nil {
		r.ReloadFailed(err)
		return err
	}
	var adminCert *tls.Certificate // read again when the admin listener serves TLS
	if a := cfg.Admin; a != nil && a.TLS != nil && r.adminCert.Load() != nil {
		if adminCert, err = readAdminCert(a.TLS); err != nil {
			r.ReloadFailed(err)
			return err
		}
	}
	if r.tlsBase != nil {
		st, err := r.buildTLS(cfg)
		if err != nil {
			r.ReloadFailed(err)
			return err
		}
		// The Manager learns the new domains before the configs that
		// serve them are current.
		applyACME, err := r.acmeReload(cfg)
		if err != nil {
			r.ReloadFailed(err)
			return err
		}
		applyACME()
		r.tlsStore.Store(st)
	}
	if adminCert != nil {
		r.adminCert.Store(adminCert)
	}
	r.ca.Store(ca)
	r.fetchPages(sp)
	r.sp.Store(sp)
	r.closeUnnamed(sp)
	r.m.reloads.WithLabelValues("ok").Inc()
	r.log.Info("config reloaded", zap.String(logging.KeyFile, cfg.File), zap.Int("apps", len(cfg.Apps)))
	r.logCertFindings(r.now())
	r.pokeCertLoop()
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
// backend of its own: its host name may resolve elsewhere. So it is with
// dyno_tls settings (dt; nil: plain HTTP): an app's TLS connections are
// never another app's plain ones, nor verified against other trust, and
// a reload that changes an app's dyno_tls names a new backend, with new
// connections (closeUnnamed closes the old one's).
func (r *Router) backendFor(addr, extraResolver string, dt *dynoTLS) *backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := addr
	if extraResolver != "" {
		key = addr + " via " + extraResolver
	}
	if dt != nil {
		key += dt.key()
	}
	be := r.backends[key]
	if be == nil {
		be = &backend{pool: newPool(addr, r.m.idleDyno, r.m.activeDyno)}
		if dt != nil {
			be.pool.tlsConf = dt.clientConfig()
			be.pool.tlsResults = func(result string) { r.m.dynoHandshakes.WithLabelValues(result).Inc() }
		}
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

// closeUnnamed closes the pools of the backends sp names no more: a dyno
// address gone from the config, or one whose app's dyno_tls changed (its
// key changed). Their idle connections close now, so no dyno keeps one
// the router will never use again (docs/config.md, Reloading); requests
// still in flight on the old space finish on theirs, which close when
// they end (a closed pool keeps none).
func (r *Router) closeUnnamed(sp *space) {
	named := map[*pool]bool{}
	for _, a := range sp.apps {
		for _, d := range a.dynos {
			named[d.pool] = true
		}
	}
	var gone []*pool
	r.mu.Lock()
	for key, be := range r.backends {
		if !named[be.pool] {
			gone = append(gone, be.pool)
			delete(r.backends, key)
		}
	}
	r.mu.Unlock()
	for _, p := range gone {
		p.close()
	}
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
		// After the listener is bound: the Manager answers TLS-ALPN-01
		// there.
		r.reloadMu.Lock()
		err := r.startACME(r.sp.Load().cfg, r.HTTPSAddr())
		r.reloadMu.Unlock()
		if err != nil {
			return err
		}
	}
	if sp.cfg.Listen.Admin != "" {
		if err := r.startAdmin(sp.cfg.Listen.Admin, r.gather); err != nil {
			return err
		}
	}
	r.openSpare()
	r.bgWG.Add(4)
	go r.sweepLoop()
	go r.pageLoop()
	go r.caLoop()
	go r.certLoop()
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
