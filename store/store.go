package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/spacerouter/spacerouter/config"
)

// Applied says what a config handed to Options.OnSnapshot was built from.
type Applied struct {
	// Revision is the etcd revision the config reflects: every change up
	// to it is applied. From the cache file, the revision it was written
	// at.
	Revision int64
	// FromCache is true for the config of store.cache_file, served at a
	// start while etcd does not answer.
	FromCache bool
	// FullRead is true for a config built from a read of every key (at
	// start, after a compacted revision or an etcd reset), false for one
	// built from watched changes.
	FullRead bool
	// Changes is the number of watched key changes applied at once (0
	// for a full read or the cache file).
	Changes int
	// Refused are the keys not in force, sorted by key.
	Refused []config.Refusal
	// Clients are the values of the keys clients/<app>/<id>, by
	// "<app>/<id>" (package spaceca's format).
	Clients map[string]string
}

// Options are the store's collaborators and timings. The zero value of a
// timing takes its default.
type Options struct {
	// OnSnapshot receives each config to serve, from the Run goroutine,
	// one at a time; it should swap the router's config and return. The
	// config is read-only and complete (config.BuildShared's).
	OnSnapshot func(*config.Config, Applied)
	// Logger is the operational log; nil: none.
	Logger *zap.Logger
	// Registry gets the metrics of SPEC.md section 14; nil: not
	// registered.
	Registry prometheus.Registerer
	// Settle and Coalesce shape how watched changes are applied: once
	// no change came for Settle (default 10ms), but no later than
	// Coalesce (default 100ms) after the first change not applied yet,
	// and no sooner than Coalesce after the last apply. A lone change is
	// applied after Settle, a burst once, a stream of changes at most
	// once per Coalesce.
	Settle, Coalesce time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts to reach
	// etcd, doubling from min to max; defaults 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
	// HealthInterval is how often the connection to etcd is probed (a
	// count-only read), which is how a silent outage is seen; default 1s.
	HealthInterval time.Duration
	// LeaseTTL is the lease of routers/<id>: a router gone this long
	// drops out; default 10s, rounded up to whole seconds.
	LeaseTTL time.Duration
}

// Default timings.
const (
	defaultCoalesce       = 100 * time.Millisecond
	defaultSettle         = 10 * time.Millisecond
	defaultBackoffMin     = 100 * time.Millisecond
	defaultBackoffMax     = 5 * time.Second
	defaultHealthInterval = time.Second
	defaultLeaseTTL       = 10 * time.Second
)

// withDefaults fills the zero timings.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Coalesce, defaultCoalesce)
	def(&o.Settle, defaultSettle)
	o.Settle = min(o.Settle, o.Coalesce)
	def(&o.BackoffMin, defaultBackoffMin)
	def(&o.BackoffMax, defaultBackoffMax)
	def(&o.HealthInterval, defaultHealthInterval)
	def(&o.LeaseTTL, defaultLeaseTTL)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Store is one router's link to the space's keys in etcd. New makes it;
// Run applies the keys until its context ends; the helpers read and write
// shared state at any time.
type Store struct {
	local  *config.Config
	etcd   config.Etcd
	prefix string
	id     string
	cache  string
	opts   Options
	log    *zap.Logger
	cli    *clientv3.Client
	m      *metrics

	// Run's state, owned by its goroutine.
	kvs          map[string]config.KV // the config keys now, by name without prefix
	rev          int64                // the revision kvs reflect
	pending      int                  // watched changes in kvs not applied yet
	firstPending time.Time            // when the first pending change came
	lastApply    time.Time            // when a config was last handed over
	shared       *config.Shared       // the last build
	applied      int64                // the revision of the last config handed over
	status       []byte               // the status value written last
	statusSent   bool                 // status is under routers/<id> on a live lease
	lease        clientv3.LeaseID
	leaseLost    atomic.Bool // set by the keep-alive drain when the lease is gone
	up           bool        // etcd answered last
	downLogged   bool        // an outage was logged since etcd last answered

	runMu   sync.Mutex // serializes Run
	closeMu sync.Once

	acmeOnce sync.Once
	acme     *ACMEStorage // made by ACMEStorage
}

// New makes the store of local, a config with store (config.Load's). It
// does not contact etcd: Run and the helpers do, each call bounded by
// store.etcd.dial_timeout.
func New(local *config.Config, opts Options) (*Store, error) {
	if local.Store == nil {
		return nil, errors.New("the config has no store section: add store.etcd")
	}
	opts = opts.withDefaults()
	e := local.Store.Etcd
	cc, err := clientConfig(e, opts)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("making the etcd client for %s: %w", strings.Join(e.Endpoints, ", "), err)
	}
	s := &Store{
		local:  local,
		etcd:   e,
		prefix: e.Prefix,
		id:     local.Store.RouterID,
		cache:  local.Store.CacheFile,
		opts:   opts,
		log:    opts.Logger.Named("store"),
		cli:    cli,
		kvs:    map[string]config.KV{},
	}
	s.m = newMetrics(opts.Registry)
	return s, nil
}

// Close ends the connection to etcd. Run must have returned.
func (s *Store) Close() error {
	var err error
	s.closeMu.Do(func() {
		s.acmeOnce.Do(func() {}) // orders the read of s.acme after ACMEStorage's write
		if s.acme != nil {
			s.acme.close()
		}
		err = s.cli.Close()
	})
	return err
}

// RouterID is the id this router writes its status under.
func (s *Store) RouterID() string { return s.id }

// clientConfig is the etcd client's config for e: TLS when set or when an
// endpoint is https://, the password read from its file now.
func clientConfig(e config.Etcd, opts Options) (clientv3.Config, error) {
	log := opts.Logger
	cc := clientv3.Config{
		Endpoints:            e.Endpoints,
		DialTimeout:          e.DialTimeout,
		DialKeepAliveTime:    e.DialTimeout,
		DialKeepAliveTimeout: e.DialTimeout,
		// The client's own retries log at warn on every failed attempt;
		// the store logs the outage once itself.
		Logger: log.Named("etcd").WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel)),
	}
	// gRPC's own reconnect backoff grows to 2 minutes; the store's
	// bounds keep an outage's end seen within BackoffMax.
	cc.DialOptions = []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: opts.BackoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: opts.BackoffMax},
		MinConnectTimeout: e.DialTimeout,
	})}
	https := false
	for _, ep := range e.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if e.TLS != nil || https {
		t, err := tlsConfig(e.TLS)
		if err != nil {
			return cc, err
		}
		cc.TLS = t
	}
	if e.Username != "" {
		pw, err := config.ReadPassword(e.PasswordFile)
		if err != nil {
			return cc, fmt.Errorf("store.etcd.password_file: %w", err)
		}
		cc.Username, cc.Password = e.Username, pw
	}
	return cc, nil
}

// tlsConfig is the client TLS of store.etcd.tls (nil: the system's roots,
// no client certificate).
func tlsConfig(t *config.EtcdTLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return c, nil
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.etcd.tls.ca: no certificate in %q", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.cert: loading certificate and key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// timeout bounds one call to etcd by store.etcd.dial_timeout.
func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.etcd.DialTimeout,
		fmt.Errorf("etcd did not answer within store.etcd.dial_timeout (%s)", s.etcd.DialTimeout))
}
