package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func TestNew(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"10.1.2.3":      "10.1.2.3:53",
		"10.1.2.3:5353": "10.1.2.3:5353",
		"[::1]:53":      "[::1]:53",
		"::1":           "[::1]:53",
		"fd00::53":      "[fd00::53]:53",
	}
	for in, want := range good {
		t.Run(in, func(t *testing.T) {
			r, err := New(in, Options{})
			require.NoError(t, err, "New(%q)", in)
			assert.Equal(t, want, r.serverStr, "server for %q", in)
		})
	}
	bad := []string{"", "dns.example.com", "dns.example.com:53", "10.1.2.3:0", "10.1.2.3:99999",
		"10.1.2.3:", "10.1.2.3:domain", "0.0.0.0", "[::]:53", "[::1]", "10.1.2", " 10.1.2.3"}
	for _, in := range bad {
		t.Run(fmt.Sprintf("bad %q", in), func(t *testing.T) {
			_, err := New(in, Options{})
			// The one place an error's text is checked: it must name the
			// bad value for the operator.
			assert.ErrorContains(t, err, strconv.Quote(in), "New(%q)", in)
		})
	}
	t.Run("negative MaxEntries", func(t *testing.T) {
		_, err := New("10.1.2.3", Options{MaxEntries: -1})
		assert.ErrorContains(t, err, "MaxEntries", "New with MaxEntries -1")
	})
}

func TestLookupHost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		host string
		rule rule
		want []netip.Addr
		tcp  bool // the A query must have gone over TCP too
	}{
		{name: "A and AAAA, IPv4 first", host: "dyno.test",
			rule: rule{addrs: ips("fd00::1", "10.0.0.1", "10.0.0.2"), ttl: 60},
			want: ips("10.0.0.1", "10.0.0.2", "fd00::1")},
		{name: "only AAAA", host: "dyno.test",
			rule: rule{addrs: ips("fd00::2"), ttl: 60}, want: ips("fd00::2")},
		{name: "CNAME chain", host: "dyno.test",
			rule: rule{cname: "real.test", addrs: ips("10.0.0.4"), ttl: 60}, want: ips("10.0.0.4")},
		{name: "truncated UDP answer asked again over TCP", host: "dyno.test",
			rule: rule{mode: modeTruncate, addrs: ips("10.0.0.5", "fd00::5"), ttl: 60},
			want: ips("10.0.0.5", "fd00::5"), tcp: true},
		{name: "answer with a wrong ID ignored", host: "dyno.test",
			rule: rule{mode: modeWrongIDFirst, addrs: ips("10.0.0.6"), ttl: 60}, want: ips("10.0.0.6")},
		{name: "case and trailing dot", host: "Dyno.TEST.",
			rule: rule{addrs: ips("10.0.0.7"), ttl: 60}, want: ips("10.0.0.7")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.extra.set("dyno.test", tc.rule)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			got, err := f.r.LookupHost(ctx, tc.host)
			require.NoError(t, err, "LookupHost(%q) with rule %+v", tc.host, tc.rule)
			assert.Equal(t, tc.want, got, "LookupHost(%q)", tc.host)
			assert.Equal(t, 1, f.extra.queries("dyno.test", dnsmessage.TypeA, false), "A queries over UDP")
			assert.Equal(t, tc.tcp, f.extra.queries("dyno.test", dnsmessage.TypeA, true) == 1, "A query over TCP")
			assert.Empty(t, f.fails.get(), "OnFailure calls")
			assert.Zero(t, f.fallback.total(), "queries at the fallback")
		})
	}
}

func TestLookupHostIPLiteral(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, host := range []string{"127.0.0.1", "10.9.8.7", "::1", "fd00::9", "fe80::1%lo", "::ffff:10.0.0.1"} {
		got, err := f.r.LookupHost(t.Context(), host)
		require.NoError(t, err, "LookupHost(%q)", host)
		assert.Equal(t, []netip.Addr{netip.MustParseAddr(host)}, got, "LookupHost(%q)", host)
	}
	assert.Zero(t, f.extra.total()+f.fallback.total(), "queries for IP literals")
}

func TestLookupHostEmpty(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.r.LookupHost(t.Context(), "")
	assert.ErrorIs(t, err, errEmptyName, `LookupHost("")`)
}

// closedUDPAddr returns a 127.0.0.1 address no UDP socket listens on, so a
// query there is refused (ICMP port unreachable).
func closedUDPAddr(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	return addr
}

func TestLookupHostFallback(t *testing.T) {
	t.Parallel()
	isRcode := func(want dnsmessage.RCode) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			re, ok := errors.AsType[*rcodeError](err)
			if assert.True(t, ok, "OnFailure error %v is not an rcodeError", err) {
				assert.Equal(t, want, re.rcode, "response code in %v", err)
			}
		}
	}
	isErr := func(want error) func(*testing.T, error) {
		return func(t *testing.T, err error) { assert.ErrorIs(t, err, want, "OnFailure error") }
	}
	cases := []struct {
		name   string
		rule   rule
		closed bool // the extra server's port is closed
		check  func(*testing.T, error)
	}{
		{name: "SERVFAIL", rule: rule{mode: modeServFail}, check: isRcode(dnsmessage.RCodeServerFailure)},
		{name: "NXDOMAIN", rule: rule{mode: modeNXDomain}, check: isRcode(dnsmessage.RCodeNameError)},
		{name: "no A or AAAA records", rule: rule{ttl: 60}, check: isErr(errNoRecords)},
		{name: "silent", rule: rule{mode: modeSilent}, check: isErr(errExtraBudget)},
		{name: "only a wrong ID", rule: rule{mode: modeWrongIDOnly, addrs: ips("10.0.0.1"), ttl: 60}, check: isErr(errExtraBudget)},
		{name: "refused", closed: true, check: isErr(syscall.ECONNREFUSED)},
	}
	const timeout = time.Second // the connect timeout the router would pass
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tc.closed {
				f.r = f.newResolver(t, closedUDPAddr(t), 0)
			}
			f.extra.set("dyno.test", tc.rule)
			f.fallback.set("dyno.test", rule{addrs: ips("fd00::8", "10.0.0.8"), ttl: 60})
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			start := time.Now()
			got, err := f.r.LookupHost(ctx, "dyno.test")
			require.NoError(t, err, "LookupHost after %v with the extra server %s", time.Since(start), tc.name)
			assert.Less(t, time.Since(start), timeout, "time to the fallback's answer")
			assert.Equal(t, ips("10.0.0.8", "fd00::8"), got, "addresses from the fallback")
			fails := f.fails.get()
			require.Len(t, fails, 1, "OnFailure calls")
			assert.Equal(t, f.r.serverStr, fails[0].server, "OnFailure server")
			assert.Equal(t, "dyno.test", fails[0].name, "OnFailure name")
			tc.check(t, fails[0].err)
		})
	}
}

// TestLookupHostSilentBudget checks that a silent extra server gets at most
// half of the caller's time, and the fallback answers within the rest.
func TestLookupHostSilentBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.extra.set("dyno.test", rule{mode: modeSilent})
	f.fallback.set("dyno.test", rule{addrs: ips("10.0.0.9"), ttl: 60})
	const timeout = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	got, err := f.r.LookupHost(ctx, "dyno.test")
	elapsed := time.Since(start)
	require.NoError(t, err, "LookupHost with a silent extra server, after %v", elapsed)
	assert.Equal(t, ips("10.0.0.9"), got, "addresses from the fallback")
	assert.GreaterOrEqual(t, elapsed, timeout/2-50*time.Millisecond, "time given to the extra server")
	assert.Less(t, elapsed, timeout, "whole lookup")
	assert.Len(t, f.fails.get(), 1, "OnFailure calls")
}

func TestLookupHostCache(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		extra    rule
		fallback *rule // nil: the fallback has no such name either
		within   time.Duration
		past     time.Duration
	}{
		{name: "TTL 30s", extra: rule{addrs: ips("10.0.0.1"), ttl: 30}, within: 29 * time.Second, past: 30 * time.Second},
		{name: "TTL 0 kept 1s", extra: rule{addrs: ips("10.0.0.1"), ttl: 0}, within: 999 * time.Millisecond, past: time.Second},
		{name: "TTL of a day kept 5m", extra: rule{addrs: ips("10.0.0.1"), ttl: 86400}, within: maxTTL - time.Second, past: maxTTL},
		{name: "smallest TTL of the answer", extra: rule{addrs: ips("10.0.0.1"), cname: "real.test", ttl: 20}, within: 19 * time.Second, past: 20 * time.Second},
		{name: "fallback answer kept 5s", extra: rule{mode: modeServFail},
			fallback: &rule{addrs: ips("10.0.0.2"), ttl: 60}, within: fallbackTTL - time.Second, past: fallbackTTL},
		{name: "name that does not exist kept 1s", extra: rule{mode: modeNXDomain}, within: 999 * time.Millisecond, past: negativeTTL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.extra.set("dyno.test", tc.extra)
			if tc.fallback != nil {
				f.fallback.set("dyno.test", *tc.fallback)
			}
			lookup := func(step string, wantQueries int) {
				t.Helper()
				_, err := f.r.LookupHost(t.Context(), "dyno.test")
				assert.Equal(t, tc.fallback == nil && tc.extra.mode != modeAnswer, err != nil, "%s: error %v", step, err)
				assert.Equal(t, wantQueries, f.extra.queries("dyno.test", dnsmessage.TypeA, false), "%s: A queries", step)
			}
			lookup("first lookup", 1)
			f.clock.advance(tc.within)
			lookup("within the TTL", 1)
			f.clock.advance(tc.past - tc.within)
			lookup("past the TTL", 2)
		})
	}
}

func TestLookupHostNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.r.LookupHost(t.Context(), "nowhere.test")
	dnsErr, ok := errors.AsType[*net.DNSError](err)
	require.True(t, ok, "LookupHost of a name neither server has: error %v is not a *net.DNSError", err)
	assert.True(t, dnsErr.IsNotFound, "IsNotFound of %v", err)
}

func TestLookupHostCoalesces(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hold := make(chan struct{})
	f.extra.set("dyno.test", rule{addrs: ips("10.0.0.1", "fd00::1"), ttl: 60, hold: hold})
	const n = 50
	var wg sync.WaitGroup
	results := make([][]netip.Addr, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = f.r.LookupHost(t.Context(), "dyno.test") })
	}
	require.Eventually(t, func() bool { return f.r.waiting("dyno.test") == n },
		5*time.Second, time.Millisecond, "%d callers waiting for one lookup", n)
	close(hold)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "lookup %d", i)
		assert.Equal(t, ips("10.0.0.1", "fd00::1"), results[i], "lookup %d", i)
	}
	assert.Equal(t, 1, f.extra.queries("dyno.test", dnsmessage.TypeA, false), "A queries for %d lookups", n)
	assert.Equal(t, 1, f.extra.queries("dyno.test", dnsmessage.TypeAAAA, false), "AAAA queries for %d lookups", n)
}

func TestLookupHostCallerLeaves(t *testing.T) {
	t.Parallel()
	t.Run("others still get the answer", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		hold := make(chan struct{})
		f.extra.set("dyno.test", rule{addrs: ips("10.0.0.1"), ttl: 60, hold: hold})
		ctx, cancel := context.WithCancel(t.Context())
		firstErr := make(chan error, 1)
		go func() { _, err := f.r.LookupHost(ctx, "dyno.test"); firstErr <- err }()
		second := make(chan []netip.Addr, 1)
		go func() { addrs, _ := f.r.LookupHost(t.Context(), "dyno.test"); second <- addrs }()
		require.Eventually(t, func() bool { return f.r.waiting("dyno.test") == 2 }, 5*time.Second, time.Millisecond)
		cancel()
		assert.ErrorIs(t, <-firstErr, context.Canceled, "the caller that left")
		close(hold)
		assert.Equal(t, ips("10.0.0.1"), <-second, "the caller that stayed")
	})
	t.Run("the last one stops the lookup", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.extra.set("dyno.test", rule{mode: modeSilent})
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { _, err := f.r.LookupHost(ctx, "dyno.test"); errc <- err }()
		require.Eventually(t, func() bool { return f.r.waiting("dyno.test") == 1 }, 5*time.Second, time.Millisecond)
		cancel()
		assert.ErrorIs(t, <-errc, context.Canceled, "LookupHost after cancel")
		assert.Zero(t, f.r.waiting("dyno.test"), "lookups left in flight")
	})
}

func TestLookupHostCacheBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const maxEntries = 3
	f.r = f.newResolver(t, f.extra.addr, maxEntries)
	for i := range 5 {
		name := fmt.Sprintf("dyno%d.test", i)
		f.extra.set(name, rule{addrs: ips(fmt.Sprintf("10.0.0.%d", i+1)), ttl: uint32(60 + i)})
		_, err := f.r.LookupHost(t.Context(), name)
		require.NoError(t, err, "LookupHost(%q)", name)
		assert.LessOrEqual(t, f.r.cached(), maxEntries, "cached names after %d lookups", i+1)
	}
	_, err := f.r.LookupHost(t.Context(), "dyno4.test")
	require.NoError(t, err)
	assert.Equal(t, 1, f.extra.queries("dyno4.test", dnsmessage.TypeA, false), "A queries for the newest name, asked twice")
}

func TestLookupHostCachedAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a full, race-free run")
	}
	f := newFixture(t)
	f.extra.set("dyno.test", rule{addrs: ips("10.0.0.1"), ttl: 60})
	ctx := t.Context()
	_, err := f.r.LookupHost(ctx, "dyno.test")
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() { _, _ = f.r.LookupHost(ctx, "dyno.test") })
	assert.LessOrEqual(t, allocs, 1.0, "allocations of a cached lookup (the copy returned)")
}

func BenchmarkLookupHostCached(b *testing.B) {
	f := newFixture(b)
	f.extra.set("dyno.test", rule{addrs: ips("10.0.0.1", "fd00::1"), ttl: 60})
	ctx := b.Context()
	_, err := f.r.LookupHost(ctx, "dyno.test")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.r.LookupHost(ctx, "dyno.test"); err != nil {
			b.Fatal(err)
		}
	}
}
