package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// defaultPort is the DNS port used when HEROKU_EXTRA_RESOLVER has none.
	defaultPort = 53
	// defaultMaxEntries bounds the cache when Options.MaxEntries is zero.
	defaultMaxEntries = 4096
	// maxExtraWait is the most the extra server gets per lookup; with a
	// deadline it gets at most half of the time left, so the fallback always
	// has a chance.
	maxExtraWait = time.Second
	// minTTL and maxTTL bound how long an answer of the extra server is kept:
	// a TTL of 0 would send a query per dial, a day-long one would hide a
	// moved dyno.
	minTTL = time.Second
	maxTTL = 5 * time.Minute
	// fallbackTTL is how long an answer of the system resolver is kept: it
	// does not tell the TTL, and without a cache every dial would wait for a
	// failing extra server again.
	fallbackTTL = 5 * time.Second
	// negativeTTL is how long a name that does not exist is remembered.
	negativeTTL = time.Second
)

var errEmptyName = errors.New("empty host name")

// Options tunes a Resolver. The zero value is ready to use.
type Options struct {
	// Fallback resolves names when the extra server fails. Nil means
	// net.DefaultResolver.
	Fallback *net.Resolver
	// Now returns the current time for cache expiry; tests inject a clock.
	// Nil means time.Now.
	Now func() time.Time
	// OnFailure, when set, is called each time the extra server fails for a
	// name and the fallback is asked instead, with the server (IP:port), the
	// name and why, for the operational log. It runs on the lookup's
	// goroutine and must not block. Nil means no report.
	OnFailure func(server, name string, err error)
	// MaxEntries bounds the number of names cached. Zero means 4096;
	// negative is an error.
	MaxEntries int
}

// Validate reports an option out of range, naming the field.
func (o Options) Validate() error {
	if o.MaxEntries < 0 {
		return fmt.Errorf("MaxEntries: must not be negative, got %d", o.MaxEntries)
	}
	return nil
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Fallback == nil {
		o.Fallback = net.DefaultResolver
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = defaultMaxEntries
	}
	return o
}

// Resolver resolves host names through one extra DNS server, falling back to
// the system resolver, and caches the answers. It is safe for concurrent
// use; make one per extra server and keep it for the life of the process so
// the cache is shared.
type Resolver struct {
	server    netip.AddrPort
	serverStr string // server.String(), for dialing and OnFailure
	opts      Options
	dialer    net.Dialer

	// mu guards entries and flights.
	mu      sync.Mutex
	entries map[string]entry   // cached answers by lower-case name
	flights map[string]*flight // lookups in progress by lower-case name
}

// New returns a Resolver that asks server first: an IP address ("10.1.2.3",
// "::1", port 53) or IP:port ("10.1.2.3:5353", "[::1]:53"), as
// HEROKU_EXTRA_RESOLVER holds it.
func New(server string, opts Options) (*Resolver, error) {
	addr, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Resolver{
		server:    addr,
		serverStr: addr.String(),
		opts:      opts.withDefaults(),
		entries:   make(map[string]entry),
		flights:   make(map[string]*flight),
	}, nil
}

// parseServer reads an extra resolver address: IP (port 53) or IP:port.
func parseServer(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if a, aerr := netip.ParseAddr(s); aerr == nil {
		ap, err = netip.AddrPortFrom(a, defaultPort), nil
	}
	if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("extra resolver %q: want IP or IP:port (a specified address, port 1-65535)", s)
	}
	return ap, nil
}

// LookupHost returns the addresses of host, IPv4 first. An IP literal is
// returned as it is, without a query. Otherwise the answer comes from the
// cache, else from the extra server, else from the fallback resolver. The
// whole lookup ends when ctx does; the returned slice is the caller's.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if maybeIP(host) {
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a}, nil
		}
	}
	if host == "" {
		return nil, fmt.Errorf("resolving %q: %w", host, errEmptyName)
	}
	name := strings.ToLower(host)
	r.mu.Lock()
	if e, ok := r.cachedLocked(name); ok {
		r.mu.Unlock()
		if e.err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, e.err)
		}
		return slices.Clone(e.addrs), nil
	}
	f := r.joinLocked(ctx, name)
	r.mu.Unlock()
	return r.wait(ctx, host, name, f)
}

// maybeIP reports whether host could be an IP literal: IPv6 has a colon,
// IPv4 ends in a digit. It spares host names the error ParseAddr allocates.
func maybeIP(host string) bool {
	if host == "" {
		return false
	}
	last := host[len(host)-1]
	return strings.IndexByte(host, ':') >= 0 || ('0' <= last && last <= '9')
}

// resolve asks the extra server, then the fallback. It returns how long the
// result may be cached (0: not at all).
func (r *Resolver) resolve(ctx context.Context, name string) (addrs []netip.Addr, ttl time.Duration, err error) {
	defer func() {
		// A panic here would kill the router from a background goroutine;
		// turn it into a failed lookup instead.
		if p := recover(); p != nil {
			addrs, ttl, err = nil, 0, fmt.Errorf("resolver panic: %v", p)
		}
	}()
	addrs, ttl, err = r.queryExtra(ctx, name)
	if err == nil {
		return addrs, ttl, nil
	}
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	if r.opts.OnFailure != nil {
		r.opts.OnFailure(r.serverStr, name, err)
	}
	return r.lookupFallback(ctx, name)
}

// lookupFallback asks the fallback resolver. A name it says does not exist
// is remembered briefly; other failures are not remembered.
func (r *Resolver) lookupFallback(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	addrs, err := r.opts.Fallback.LookupNetIP(ctx, "ip", name)
	if err != nil {
		if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
			return nil, negativeTTL, err
		}
		return nil, 0, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
		return a.BitLen() - b.BitLen() // IPv4 (32) before IPv6 (128)
	})
	return addrs, fallbackTTL, nil
}
