package router

import (
	"crypto/x509"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router/h1"
	"github.com/spacerouter/spacerouter/spaceca"
)

// space is one loaded config turned into lookup tables. It is immutable
// once built; a reload builds a new one (issue 4) while requests in flight
// keep the one they started with.
type space struct {
	cfg     *config.Config
	exact   map[string]*app
	wild    []wildDomain // longest suffix first
	apps    []*app
	reqLim  h1.Limits
	respLim h1.Limits
	other   *appMetrics // requests no app took
	// minClient is the shortest client window of the space (global or an
	// app's): a request head is judged against it first (conn.headIdle).
	minClient time.Duration
}

// wildDomain is "*.example.com" stored as its suffix ".example.com".
type wildDomain struct {
	suffix string
	app    *app
}

// app is one app of a space.
type app struct {
	cfg   *config.App
	name  string
	dynos []*dyno // every dyno, in file order
	up    []*dyno // the dynos in state up
	// inflight counts the app's requests between admission and the end of
	// the response (SPEC.md 4.4).
	inflight *atomic.Int64
	limit    int64
	// clients counts the app's requests in flight by client address
	// (limits.requests_per_client).
	clients *clientCounts
	to      config.Timeouts
	pages   *pages
	m       *appMetrics

	keepaliveToDyno bool
	e2eContinue     bool

	// The app's ip_rules networks (none: every address), mtls policy and
	// the trust set of its mtls.trust (SPEC.md 11.1, 11.2). spaceCA and
	// spacePrev tell the space's current and previous CAs apart, for the
	// metrics.
	allow     []netip.Prefix
	mtls      config.MTLS
	trust     *spaceca.TrustSet
	spaceCA   *x509.Certificate
	spacePrev map[string]bool
}

// dyno is one backend of an app.
type dyno struct {
	name string
	addr string
	pool *pool
	// inflight is shared by every app and space naming the same address,
	// so least-loaded choice sees all of its load.
	inflight *atomic.Int64
	// skipUntil is when a failed connect stops excluding the dyno
	// (UnixNano; SPEC.md 4.6: skipped for 5 s).
	skipUntil *atomic.Int64
}

// dynoSkip is how long a dyno that failed to connect is passed over.
const dynoSkip = 5 * time.Second

// backend is the router-wide state of one dyno address, reached through
// one extra resolver (or none) with one set of dyno_tls settings: its pool
// and its counters, kept across reloads while a space names it.
type backend struct {
	pool      *pool
	inflight  atomic.Int64
	skipUntil atomic.Int64
}

// buildSpace makes the lookup tables of cfg. backendFor returns the shared
// state of a dyno address reached through an extra resolver (or none) with
// TLS settings (nil: plain); pagesFor the error pages of an app; ca is the
// space CA (nil: none), which apps' mtls.trust may name. An error is a
// trust bundle (mtls or dyno_tls) that cannot be read (the config package
// checked it; it changed since).
func buildSpace(cfg *config.Config, backendFor func(addr, extraResolver string, dt *dynoTLS) *backend, pagesFor func(a *config.App) *pages, m *metrics, ca *spaceca.CA) (*space, error) {
	sp := &space{cfg: cfg, exact: map[string]*app{}, other: m.forApp(otherApp)}
	sp.reqLim = limitsOf(&cfg.Limits)
	sp.minClient = cfg.Timeouts.Client
	for i := range cfg.Apps {
		sp.minClient = min(sp.minClient, cfg.Apps[i].Timeouts.Client)
	}
	sp.respLim = sp.reqLim
	for i := range cfg.Apps {
		ac := &cfg.Apps[i]
		a := &app{
			cfg:             ac,
			name:            ac.Name,
			inflight:        new(atomic.Int64),
			clients:         newClientCounts(),
			to:              ac.Timeouts,
			pages:           pagesFor(ac),
			m:               m.forApp(ac.Name),
			keepaliveToDyno: !ac.Has(config.FeatureDisableKeepaliveToDyno),
			e2eContinue:     ac.Has(config.FeatureEndToEndContinue),
			mtls:            ac.MTLS,
		}
		for _, r := range ac.IPRules {
			a.allow = append(a.allow, r.Prefix)
		}
		if ac.MTLS.Mode == config.MTLSOptional || ac.MTLS.Mode == config.MTLSRequire {
			t, err := trustFor(ac, ca)
			if err != nil {
				return nil, err
			}
			a.trust = t
			if ca != nil {
				a.spaceCA, a.spacePrev = ca.Certificate(), map[string]bool{}
				for _, an := range ca.Anchors()[1:] {
					a.spacePrev[string(an.Cert.Raw)] = true
				}
			}
		}
		extra := ""
		if ac.Has(config.FeatureExtraResolver) {
			extra = ac.ConfigVars["HEROKU_EXTRA_RESOLVER"]
		}
		var trust *dynoTrust
		if m := ac.DynoTLS.Mode; m == config.DynoTLSVerifyCA || m == config.DynoTLSVerifyFull {
			t, err := loadDynoTrust(ac.Name, ac.DynoTLS.Trust)
			if err != nil {
				return nil, err
			}
			trust = t
		}
		for _, dc := range ac.Dynos {
			be := backendFor(dc.Address, extra, dynoTLSFor(&ac.DynoTLS, dc.Address, trust))
			d := &dyno{name: dc.Name, addr: dc.Address, pool: be.pool, inflight: &be.inflight, skipUntil: &be.skipUntil}
			a.dynos = append(a.dynos, d)
			if dc.State == config.StateUp || dc.State == "" {
				a.up = append(a.up, d)
			}
		}
		a.limit = int64(cfg.Limits.ConcurrencyPerDyno) * int64(len(a.up))
		for _, dom := range ac.Domains {
			if s, ok := strings.CutPrefix(dom, "*"); ok {
				sp.wild = append(sp.wild, wildDomain{suffix: s, app: a})
			} else {
				sp.exact[dom] = a
			}
		}
		sp.apps = append(sp.apps, a)
	}
	sort.SliceStable(sp.wild, func(i, j int) bool { return len(sp.wild[i].suffix) > len(sp.wild[j].suffix) })
	return sp, nil
}

// limitsOf turns the config limits into parser limits.
func limitsOf(l *config.Limits) h1.Limits {
	return h1.Limits{
		StartLine:   l.RequestLineBytes,
		Method:      l.MethodBytes,
		FieldName:   l.HeaderNameBytes,
		Field:       l.HeaderBytes,
		Cookie:      l.CookieBytes,
		HeadersSize: l.HeadersTotalBytes,
		FieldCount:  l.HeaderCount,
	}
}

// lookup returns the app serving the normalized host, exact domains first
// (SPEC.md 4.3).
func (sp *space) lookup(host []byte) *app {
	if a, ok := sp.exact[string(host)]; ok {
		return a
	}
	for i := range sp.wild {
		w := &sp.wild[i]
		if len(host) > len(w.suffix) && string(host[len(host)-len(w.suffix):]) == w.suffix {
			return w.app
		}
	}
	return nil
}

// normalizeHost appends the routing form of a Host value to dst: port
// dropped, ASCII case folded, one trailing dot dropped. An IPv6 literal
// keeps its brackets.
func normalizeHost(dst, host []byte) []byte {
	h := host
	if len(h) > 0 && h[0] == '[' {
		if i := indexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := indexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	n := len(dst)
	dst = append(dst, h...)
	for i, c := range dst[n:] {
		if 'A' <= c && c <= 'Z' {
			dst[n+i] = c + 'a' - 'A'
		}
	}
	return dst
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// byName returns the app named name, nil when the space has none.
func (sp *space) byName(name string) *app {
	for _, a := range sp.apps {
		if a.name == name {
			return a
		}
	}
	return nil
}
