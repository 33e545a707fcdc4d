package resolver

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// failure is one Options.OnFailure call.
type failure struct {
	server, name string
	err          error
}

// failures records OnFailure calls.
type failures struct {
	mu   sync.Mutex
	list []failure
}

func (f *failures) record(server, name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, failure{server, name, err})
}

func (f *failures) get() []failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]failure(nil), f.list...)
}

// fixture is a Resolver asking a test server first and falling back to a
// second one, with an injected clock and recorded failures.
type fixture struct {
	extra, fallback *dnsServer
	clock           *clock
	fails           *failures
	r               *Resolver
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{extra: newDNSServer(t), fallback: newDNSServer(t), clock: newClock(), fails: &failures{}}
	f.r = f.newResolver(t, f.extra.addr, 0)
	return f
}

// newResolver makes a Resolver for server with the fixture's fallback, clock
// and failure log.
func (f *fixture) newResolver(t testing.TB, server string, maxEntries int) *Resolver {
	r, err := New(server, Options{
		Fallback:   goResolver(f.fallback),
		Now:        f.clock.now,
		OnFailure:  f.fails.record,
		MaxEntries: maxEntries,
	})
	require.NoError(t, err, "New(%q)", server)
	return r
}

// waiting counts the callers waiting for the lookup of name.
func (r *Resolver) waiting(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.flights[name]; f != nil {
		return f.waiters
	}
	return 0
}

// cached counts the names in the cache.
func (r *Resolver) cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// ips parses addresses.
func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}
