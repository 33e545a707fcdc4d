package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/logging"
)

// Defaults of Options.
const (
	// DefaultRenewBefore is renew_before's default: renewal starts 30 days
	// before expiry, a third of a 90-day certificate's life.
	DefaultRenewBefore = 720 * time.Hour
	// DefaultRenewCheck is how often the certificates are checked for
	// renewal unless Options.RenewCheck says otherwise (certmagic's).
	DefaultRenewCheck = certmagic.DefaultRenewCheckInterval
)

// typicalLifetime is the lifetime the renewal window of a certificate not
// obtained yet is computed for (Let's Encrypt's 90 days); once a
// certificate is cached, its own lifetime is used (Manager.configFor).
const typicalLifetime = 90 * 24 * time.Hour

// maxRenewalRatio caps the renewal window at half a certificate's life, so
// a renew_before longer than the certificates live (a short-lived profile)
// renews halfway instead of on every check.
const maxRenewalRatio = 0.5

// Options configures a Manager: the config's acme section (SPEC.md section
// 2) and the router's https listener.
type Options struct {
	// Directory is the ACME directory URL: https, or http for a loopback
	// or internal host only. Required.
	Directory string
	// Email is the ACME account's contact; "" registers the account
	// without one.
	Email string
	// AgreeTOS must be true: the operator agrees to the CA's terms.
	AgreeTOS bool
	// TrustedRootsFile is a PEM file of root certificates trusted, instead
	// of the system's, for the ACME server's own TLS certificate and for
	// the verify-full status of the issued certificates. "" means the
	// system's roots.
	TrustedRootsFile string
	// Storage is the directory of the ACME account, the certificates and
	// keys, certmagic's locks and the status file, kept across restarts;
	// made (mode 0700) when missing. Required unless Shared is set.
	Storage string
	// Shared, when set, holds all that instead of Storage: the storage
	// the routers of a shared space have in common (etcd, SPEC.md
	// section 14), whose locks make one router order a domain while the
	// others wait and then load what it stored.
	Shared SharedStorage
	// RenewBefore is how long before expiry renewal starts at the latest;
	// 0 means DefaultRenewBefore (720h). A certificate that lives less
	// than twice RenewBefore is renewed halfway through its life. The CA's
	// renewal information (ARI, RFC 9773), which certmagic follows, may
	// start it earlier (Let's Encrypt does so for a revocation).
	RenewBefore time.Duration
	// ListenAddr is the router's https listener (host:port), where the ACME
	// server's TLS-ALPN-01 validation connects (through a port forward
	// from 443 if the listener is elsewhere). certmagic binds a challenge
	// listener of its own on this address when nothing listens there, so
	// the router listens before it calls SetDomains. Required by New;
	// StatusFromStorage ignores it.
	ListenAddr string
	// RenewCheck is how often the certificates are checked for renewal
	// (and a failed renewal tried again, within certmagic's backoff);
	// 0 means DefaultRenewCheck (10 min).
	RenewCheck time.Duration
	// Now is the clock of the status: its times and the verify-full check.
	// Nil means time.Now. certmagic's timers use the real clock.
	Now func() time.Time
}

// withDefaults returns o with every zero field that has a default set.
func (o Options) withDefaults() Options {
	if o.RenewBefore == 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.RenewCheck == 0 {
		o.RenewCheck = DefaultRenewCheck
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// storage is Shared, else the file storage of Storage.
func (o Options) storage() SharedStorage {
	if o.Shared != nil {
		return o.Shared
	}
	return &certmagic.FileStorage{Path: o.Storage}
}

// Validate checks the fields both New and StatusFromStorage need, naming
// the config key of a wrong one. ListenAddr is New's to check.
func (o Options) Validate() error {
	u, err := url.Parse(o.Directory)
	switch {
	case o.Directory == "":
		return errors.New("acme.directory: required")
	case err != nil:
		return fmt.Errorf("acme.directory: %w", err)
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("acme.directory: %q is not an http(s) URL", o.Directory)
	case u.Scheme == "http" && !certmagic.SubjectIsInternal(u.Hostname()):
		return fmt.Errorf("acme.directory: %q: plain http only for a loopback or internal host", o.Directory)
	case !o.AgreeTOS:
		return errors.New("acme.agree_tos: must be true: certificates are ordered only under the CA's terms")
	case o.Storage == "" && o.Shared == nil:
		return errors.New("acme.storage: required")
	case o.RenewBefore < 0:
		return fmt.Errorf("acme.renew_before: %s is negative", o.RenewBefore)
	case o.RenewCheck < 0:
		return fmt.Errorf("acme: renewal check interval %s is negative", o.RenewCheck)
	}
	return nil
}

// Errors of GetCertificate and SetDomains.
var (
	// ErrPending is returned by GetCertificate for a managed domain that
	// has no certificate yet: the router refuses the handshake with
	// unrecognized_name. The error wrapping it names the domain, its
	// state and the last error.
	ErrPending = errors.New("acme: no certificate yet")
	// ErrNotManaged is returned by GetCertificate for a name the Manager
	// does not manage.
	ErrNotManaged = errors.New("acme: domain not managed")
	// ErrStopped is returned by SetDomains after Stop.
	ErrStopped = errors.New("acme: manager stopped")
)

// Manager obtains, renews and serves the certificates of the tls: auto
// domains. Make one with New per acme section, set its domains with
// SetDomains (again on each reload), and Stop it when the router stops or
// a reload changes the acme section (after the new Manager took over). Its
// methods are safe for concurrent use.
type Manager struct {
	opts      Options
	log       *zap.Logger
	roots     *x509.CertPool // the verify-full pool; nil: the system's
	storage   SharedStorage  // the status file's
	gate      *gatedStorage  // certmagic's
	cache     *certmagic.Cache
	magic     *certmagic.Config
	challenge *tls.Config // answers TLS-ALPN-01 validation handshakes

	dirty    chan struct{} // a state changed: write the status file
	sweepNow chan struct{} // certificates of dropped domains to remove
	stopCh   chan struct{}
	done     chan struct{} // closed when loop has returned
	stopOnce sync.Once

	// stopped is set by Stop; events after it are ignored.
	stopped atomic.Bool

	// mu guards domains and, with stopped, the end of their orders: Stop
	// cancels them under mu, SetDomains starts them under mu unless
	// stopped.
	mu      sync.RWMutex
	domains map[string]*domain // by domain name

	// sweepMu guards sweepNames.
	sweepMu    sync.Mutex
	sweepNames []string

	verify verifyCache
}

// domain is the state of one managed domain.
type domain struct {
	app       string
	state     State
	lastErr   string
	updatedAt time.Time
	cancel    context.CancelFunc // ends the domain's orders when it is dropped
}

// New makes a Manager for opts without touching the network: it checks
// opts, reads the trusted roots, makes the storage directory and starts
// certmagic's maintenance (renewals) and the Manager's own loop. It manages
// no domain until SetDomains. log is the operational log (nil: none);
// certmagic's own lines go to log.Named("certmagic"), info demoted to
// debug.
func New(opts Options, log *zap.Logger) (*Manager, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, port, err := splitListenAddr(opts.ListenAddr)
	if err != nil {
		return nil, err
	}
	roots, err := loadRoots(opts.TrustedRootsFile)
	if err != nil {
		return nil, err
	}
	storage := opts.storage()
	if opts.Shared == nil {
		if err := os.MkdirAll(opts.Storage, 0o700); err != nil {
			return nil, fmt.Errorf("acme.storage: %w", err)
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	m := &Manager{
		opts:     opts,
		log:      log,
		roots:    roots,
		storage:  storage,
		dirty:    make(chan struct{}, 1),
		sweepNow: make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
		done:     make(chan struct{}),
		domains:  make(map[string]*domain),
	}
	m.gate = newGatedStorage(m.storage)
	m.gate.noEmail = opts.Email == ""
	cmLog := quiet(log.Named("certmagic"))
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configFor,
		RenewCheckInterval: opts.RenewCheck,
		Logger:             cmLog,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: renewalRatio(opts.RenewBefore, typicalLifetime),
		OnEvent:            m.onEvent,
		Storage:            m.gate,
		Logger:             cmLog,
	})
	m.magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA:     opts.Directory,
		Email:  opts.Email,
		Agreed: opts.AgreeTOS,
		Logger: cmLog,
		// TLS-ALPN-01 only: the router has no port 80 handler for HTTP-01,
		// and DNS-01 is not configured (no wildcard with tls: auto).
		DisableHTTPChallenge: true,
		// Where the validation arrives: certmagic finds the router
		// listening there and binds nothing of its own.
		ListenHost:     host,
		AltTLSALPNPort: port,
		TrustedRoots:   roots,
	})}
	m.challenge = &tls.Config{
		// RFC 8737 section 4: TLS 1.2 or later, ALPN acme-tls/1 only.
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{ALPNProto},
		GetCertificate: m.magic.GetCertificate,
	}
	go m.loop()
	return m, nil
}

// splitListenAddr returns the host and port of the https listener address.
func splitListenAddr(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, errors.New("acme: the https listener address is required (listen.https): TLS-ALPN-01 is answered there")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("acme: https listener address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("acme: https listener address %q: want a port from 1 to 65535", addr)
	}
	return host, p, nil
}

// loadRoots reads a PEM file of root certificates; "" means nil, the
// system's roots.
func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acme.trusted_roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("acme.trusted_roots: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// renewalRatio is certmagic's renewal window (the part of a certificate's
// life, at its end, in which it is renewed) for renewing before ahead of
// expiry a certificate that lives life.
func renewalRatio(before, life time.Duration) float64 {
	if life <= 0 {
		life = typicalLifetime
	}
	return min(float64(before)/float64(life), maxRenewalRatio)
}

// configFor is certmagic's GetConfigForCert: the config that renews cert,
// with the renewal window of its own lifetime. A certificate of a domain
// no longer managed (a dropped domain whose order ended after the drop)
// gets none and is removed from the cache.
func (m *Manager) configFor(cert certmagic.Certificate) (*certmagic.Config, error) {
	if !m.managesAny(cert.Names) {
		m.queueSweep(cert.Names)
		return nil, fmt.Errorf("%w: %s", ErrNotManaged, strings.Join(cert.Names, ", "))
	}
	c := *m.magic
	c.RenewalWindowRatio = renewalRatio(m.opts.RenewBefore, cert.Lifetime())
	return &c, nil
}

// SetDomains makes the Manager manage exactly the domains of byApp (app
// name -> its tls: auto domains), as a reload does: a new domain is loaded
// from storage or ordered in the background, with certmagic's retries; a
// domain that moved to another app keeps its certificate; a dropped domain
// is no longer ordered, renewed or served (its files stay in storage, so
// adding it back needs no order while its certificate is valid). A
// wildcard, an IP address, a name twice or an empty name is an error and
// changes nothing.
func (m *Manager) SetDomains(byApp map[string][]string) error {
	want, err := domainSet(byApp)
	if err != nil {
		return err
	}
	now := m.opts.Now()
	type start struct {
		name string
		ctx  context.Context
	}
	var added []start
	var dropped []string
	m.mu.Lock()
	if m.stopped.Load() {
		m.mu.Unlock()
		return ErrStopped
	}
	for name, app := range want {
		if d, ok := m.domains[name]; ok {
			d.app = app
			continue
		}
		// Each domain's orders end with its context: on its drop or Stop.
		ctx, cancel := context.WithCancel(context.Background())
		m.domains[name] = &domain{app: app, state: StateWaiting, updatedAt: now, cancel: cancel}
		added = append(added, start{name, ctx})
	}
	for name, d := range m.domains {
		if _, ok := want[name]; !ok {
			d.cancel()
			delete(m.domains, name)
			dropped = append(dropped, name)
		}
	}
	m.mu.Unlock()

	if len(dropped) > 0 {
		m.removeFromCache(dropped)
	}
	slices.SortFunc(added, func(a, b start) int { return strings.Compare(a.name, b.name) })
	names := make([]string, 0, len(added))
	for _, a := range added {
		names = append(names, a.name)
		// Async: the order runs in the background, retried with
		// certmagic's backoff until a.ctx ends (drop or Stop).
		if err := m.magic.ManageAsync(a.ctx, []string{a.name}); err != nil {
			m.transition(a.name, StateFailing, err.Error(), false)
		}
	}
	if len(added)+len(dropped) > 0 {
		slices.Sort(dropped)
		m.log.Info("ACME domains changed", zap.Strings(logging.KeyAdded, names), zap.Strings(logging.KeyDropped, dropped))
	}
	m.markDirty()
	return nil
}

// domainSet checks byApp and returns its domains with their app.
func domainSet(byApp map[string][]string) (map[string]string, error) {
	want := make(map[string]string)
	for app, names := range byApp {
		for _, name := range names {
			n := normalizeName(name)
			switch {
			case n == "":
				return nil, fmt.Errorf("acme: app %s: empty domain", app)
			case strings.Contains(n, "*"):
				return nil, fmt.Errorf("acme: app %s: %s: a wildcard needs DNS-01, which tls: auto does not do", app, name)
			case net.ParseIP(n) != nil:
				return nil, fmt.Errorf("acme: app %s: %s: an IP address has no SNI name to serve it by", app, name)
			case !certmagic.SubjectQualifiesForCert(n):
				return nil, fmt.Errorf("acme: app %s: %q is not a domain name", app, name)
			}
			if other, dup := want[n]; dup {
				return nil, fmt.Errorf("acme: domain %s listed twice (apps %s and %s)", n, other, app)
			}
			want[n] = app
		}
	}
	return want, nil
}

// normalizeName lower-cases a domain or SNI name and drops a trailing dot.
func normalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// managesAny reports whether any of names is a managed domain.
func (m *Manager) managesAny(names []string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, n := range names {
		if _, ok := m.domains[n]; ok {
			return true
		}
	}
	return false
}

// removeFromCache takes the certificates of names out of certmagic's
// cache, so they are neither served nor renewed.
func (m *Manager) removeFromCache(names []string) {
	subjects := make([]certmagic.SubjectIssuer, 0, len(names))
	for _, n := range names {
		subjects = append(subjects, certmagic.SubjectIssuer{Subject: n})
	}
	m.cache.RemoveManaged(subjects)
}

// queueSweep asks the loop to remove the certificates of names from the
// cache if they are still not managed then. It does not block: it is
// called under certmagic's cache lock.
func (m *Manager) queueSweep(names []string) {
	m.sweepMu.Lock()
	m.sweepNames = append(m.sweepNames, names...)
	m.sweepMu.Unlock()
	select {
	case m.sweepNow <- struct{}{}:
	default:
	}
}

// sweep removes from the cache the queued certificates of names not
// managed.
func (m *Manager) sweep() {
	m.sweepMu.Lock()
	names := m.sweepNames
	m.sweepNames = nil
	m.sweepMu.Unlock()
	m.mu.RLock()
	names = slices.DeleteFunc(names, func(n string) bool { _, ok := m.domains[n]; return ok })
	m.mu.RUnlock()
	if len(names) > 0 {
		m.removeFromCache(names)
	}
}

// markDirty asks the loop to write the status file.
func (m *Manager) markDirty() {
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

// loop writes the status file after changes and removes the certificates
// of dropped domains, until Stop.
func (m *Manager) loop() {
	defer close(m.done)
	for !m.loopOnce() {
	}
}

// loopOnce waits for one thing to do and does it; it returns true at Stop.
// A panic is logged and the loop goes on.
func (m *Manager) loopOnce() (stop bool) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("ACME manager loop panicked", zap.Any(logging.KeyPanic, p))
		}
	}()
	select {
	case <-m.dirty:
		m.saveStatus()
	case <-m.sweepNow:
		m.sweep()
	case <-m.stopCh:
		m.saveStatus()
		return true
	}
	return false
}

// Stop ends every order and retry and certmagic's maintenance, waits
// (up to 10 s) until their goroutines let go of the storage, then writes
// the status file once more and ends the Manager's loop. Nothing of the
// Manager writes to the storage after Stop; the certificates stay there
// for the next start. GetCertificate still answers from memory after Stop.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.stopped.Store(true)
		for _, d := range m.domains {
			d.cancel()
		}
		m.mu.Unlock()
		m.cache.Stop()
		if !m.gate.closeAndWait(stopDrainTimeout) {
			m.log.Warn("ACME orders still held the storage when the manager stopped", zap.Duration(logging.KeyDuration, stopDrainTimeout))
		}
		close(m.stopCh)
		<-m.done
	})
}
