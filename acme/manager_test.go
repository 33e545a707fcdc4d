package acme

import (
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// orderTimeout bounds one order from Pebble (a few hundred milliseconds
// when all goes well, more under -race on two cores; generous, so that
// on a loaded machine a validation that timed out can be retried after
// certmagic's first backoff).
const orderTimeout = 90 * time.Second

// TestObtain: a real order from Pebble for two domains of an app through
// the router's listener (TLS-ALPN-01), served to a verify-full client;
// then a restart on the same storage with the directory down: the
// certificates are served from storage without a new order, while a new
// domain fails, is refused with unrecognized_name and retried with backoff.
func TestObtain(t *testing.T) {
	t.Parallel()
	dns := pebbletest.StartDNS(t)
	r := newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r.addr)})
	storage := t.TempDir()
	opts := testOptions(p, r, storage)
	m, logs := startManager(t, opts, r)
	names := []string{uniq("shop.test"), uniq("www.shop.test")}
	newName := uniq("new.shop.test")
	require.NoError(t, m.SetDomains(map[string][]string{"shop": names}))

	start := time.Now()
	st := waitStatus(t, m, orderTimeout, "both certificates", allState(StateOK, names...))
	t.Logf("two certificates obtained in %s", time.Since(start).Round(time.Millisecond))
	for _, name := range names {
		leaf, err := r.dial(name, p.Root)
		require.NoError(t, err, "a verify-full handshake for %s with Pebble's root", name)
		assert.Equal(t, []string{name}, leaf.DNSNames)
		s := st[name]
		assert.Equal(t, "shop", s.App)
		assert.Equal(t, leaf.NotAfter, s.NotAfter, "%s: not_after is the served certificate's", name)
		assert.WithinDuration(t, time.Now().Add(90*24*time.Hour), s.NotAfter, time.Hour, "%s: Pebble's 90 days", name)
		assert.True(t, strings.HasPrefix(s.Issuer, "Pebble Intermediate CA"), "%s: issuer %q", name, s.Issuer)
		assert.True(t, s.VerifyFull, "%s: verify-full: %s", name, s.VerifyError)
		assert.Empty(t, s.LastError)
		assert.Equal(t, 1, ordersFor(logs, name), "%s: one order", name)
	}

	t.Run("a client without Pebble's root refuses the chain", func(t *testing.T) {
		_, err := r.dial(names[0], x509.NewCertPool())
		var unknown x509.UnknownAuthorityError
		assert.ErrorAs(t, err, &unknown)
	})
	t.Run("a name not managed is refused with unrecognized_name", func(t *testing.T) {
		_, err := r.dial("other.test", p.Root)
		assert.True(t, isUnrecognizedName(err), "handshake for other.test: %v", err)
		_, err = m.GetCertificate(hello("other.test"))
		assert.ErrorIs(t, err, ErrNotManaged)
	})
	t.Run("StatusFromStorage reads the same without starting anything", func(t *testing.T) {
		// The status file is written by the Manager's loop just after the
		// change.
		var got []DomainStatus
		waitFor(t, 5*time.Second, "the status file", func() bool {
			var err error
			got, err = StatusFromStorage(opts, map[string][]string{"shop": names}, time.Now())
			require.NoError(t, err)
			return allState(StateOK, names...)(byDomain(got))
		})
		require.Len(t, got, 2)
		for _, g := range got {
			want := st[g.Domain]
			assert.Equal(t, StateOK, g.State, g.Domain)
			assert.Equal(t, want.NotAfter, g.NotAfter, g.Domain)
			assert.Equal(t, want.Issuer, g.Issuer, g.Domain)
			assert.True(t, g.VerifyFull, "%s: %s", g.Domain, g.VerifyError)
		}
		noRoots := opts
		noRoots.TrustedRootsFile = ""
		got, err := StatusFromStorage(noRoots, map[string][]string{"shop": names}, time.Now())
		require.NoError(t, err)
		assert.False(t, got[0].VerifyFull, "Pebble's root is in no system pool")
		assert.Contains(t, got[0].VerifyError, "unknown authority")
	})

	// Restart on the same storage while the directory is down.
	m.Stop()
	p.Stop()
	m2, logs2 := startManager(t, opts, r)
	require.NoError(t, m2.SetDomains(map[string][]string{"shop": append(names, newName)}))
	st = waitStatus(t, m2, orderTimeout, "the stored certificates served and the new domain failing", func(s map[string]DomainStatus) bool {
		return allState(StateOK, names...)(s) && s[newName].State == StateFailing
	})
	for _, name := range names {
		assert.Zero(t, ordersFor(logs2, name), "%s: no new order after a restart", name)
		_, err := r.dial(name, p.Root)
		assert.NoError(t, err, "%s is served while the directory is down", name)
	}
	failing := st[newName]
	assert.Contains(t, failing.LastError, "connection refused")
	assert.Zero(t, failing.NotAfter)

	_, err := r.dial(newName, p.Root)
	assert.True(t, isUnrecognizedName(err), "a pending domain's handshake: %v", err)
	refused := r.refusals()
	require.NotEmpty(t, refused)
	last := refused[len(refused)-1]
	assert.ErrorIs(t, last, ErrPending)
	assert.Contains(t, last.Error(), "new.shop.test (failing; last error: ")

	assert.Equal(t, 1, logs2.FilterMessage("ACME order failed; retrying with backoff").FilterField(zap.String("domain", newName)).Len())
	retry := logs2.FilterMessage("will retry").All()
	require.NotEmpty(t, retry, "certmagic schedules the next try")
	assert.Equal(t, time.Minute, retry[0].ContextMap()["retrying_in"], "certmagic's first backoff")
}

// TestSetDomains: a reload adds a domain (ordered), moves one to another
// app (kept), drops one (no longer served, gone from the status) and adds
// it back (from storage, no new order).
func TestSetDomains(t *testing.T) {
	t.Parallel()
	dns := pebbletest.StartDNS(t)
	r := newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r.addr)})
	m, logs := startManager(t, testOptions(p, r, t.TempDir()), r)
	a, b := uniq("a.test"), uniq("b.test")

	require.NoError(t, m.SetDomains(map[string][]string{"shop": {a}}))
	waitStatus(t, m, orderTimeout, "a", allState(StateOK, a))
	first, err := r.dial(a, p.Root)
	require.NoError(t, err)

	t.Run("adding a domain orders it and leaves the others", func(t *testing.T) {
		require.NoError(t, m.SetDomains(map[string][]string{"shop": {a}, "blog": {b}}))
		st := waitStatus(t, m, orderTimeout, "b", allState(StateOK, a, b))
		assert.Equal(t, "blog", st[b].App)
		_, err := r.dial(b, p.Root)
		assert.NoError(t, err)
		leaf, err := r.dial(a, p.Root)
		require.NoError(t, err)
		assert.Equal(t, first.SerialNumber, leaf.SerialNumber, "a keeps its certificate")
	})
	t.Run("a domain moving to another app keeps its certificate", func(t *testing.T) {
		require.NoError(t, m.SetDomains(map[string][]string{"blog": {a, b}}))
		st := waitStatus(t, m, time.Second, "a in blog", func(s map[string]DomainStatus) bool { return s[a].App == "blog" })
		assert.Equal(t, StateOK, st[a].State)
		leaf, err := r.dial(a, p.Root)
		require.NoError(t, err)
		assert.Equal(t, first.SerialNumber, leaf.SerialNumber)
	})
	t.Run("a dropped domain is no longer served", func(t *testing.T) {
		require.NoError(t, m.SetDomains(map[string][]string{"blog": {b}}))
		st := m.Status()
		require.Len(t, st, 1)
		assert.Equal(t, b, st[0].Domain)
		_, err := m.GetCertificate(hello(a))
		assert.ErrorIs(t, err, ErrNotManaged)
		_, err = r.dial(a, p.Root)
		assert.True(t, isUnrecognizedName(err), "a dropped domain's handshake: %v", err)
		_, ok := m.current(a)
		assert.False(t, ok, "the certificate is out of the cache, so never renewed")
		_, err = r.dial(b, p.Root)
		assert.NoError(t, err)
	})
	t.Run("a domain added back comes from storage", func(t *testing.T) {
		require.NoError(t, m.SetDomains(map[string][]string{"blog": {a, b}}))
		waitStatus(t, m, orderTimeout, "a back", allState(StateOK, a))
		leaf, err := r.dial(a, p.Root)
		require.NoError(t, err)
		assert.Equal(t, first.SerialNumber, leaf.SerialNumber)
		assert.Equal(t, 1, ordersFor(logs, a), "no second order for a")
	})
}

// TestFailingDomain: a domain whose validation cannot succeed (its name
// resolves to 127.0.0.2, where nothing listens) is failing with Pebble's
// error, refused, and retried with backoff; the app's other domain is
// obtained and served as if nothing happened.
func TestFailingDomain(t *testing.T) {
	t.Parallel()
	dns := pebbletest.StartDNS(t)
	good, bad := uniq("good.test"), uniq("bad.test")
	dns.SetA(bad, netip.MustParseAddr("127.0.0.2"))
	r := newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r.addr)})
	m, logs := startManager(t, testOptions(p, r, t.TempDir()), r)

	require.NoError(t, m.SetDomains(map[string][]string{"shop": {good, bad}}))
	st := waitStatus(t, m, orderTimeout, "good ok, bad failing", func(s map[string]DomainStatus) bool {
		return s[good].State == StateOK && s[bad].State == StateFailing
	})
	failing := st[bad]
	assert.Contains(t, failing.LastError, bad)
	assert.Contains(t, failing.LastError, "127.0.0.2", "Pebble says where it could not connect")
	assert.Zero(t, failing.NotAfter)
	assert.False(t, failing.VerifyFull)

	_, err := m.GetCertificate(hello(bad))
	assert.ErrorIs(t, err, ErrPending)
	_, err = r.dial(bad, p.Root)
	assert.True(t, isUnrecognizedName(err), "bad's handshake: %v", err)
	_, err = r.dial(good, p.Root)
	assert.NoError(t, err)

	failed := logs.FilterMessage("ACME order failed; retrying with backoff").FilterField(zap.String("domain", bad)).All()
	require.Len(t, failed, 1)
	assert.Equal(t, zap.WarnLevel, failed[0].Level)
	assert.Zero(t, logs.FilterMessage("ACME order failed; retrying with backoff").FilterField(zap.String("domain", good)).Len())
}

// TestRenewal: a short-lived certificate (12 s from Pebble) is renewed
// and the new one served: halfway through its life at the latest
// (renew_before is longer than the life), earlier when the time Pebble's
// renewal information (ARI) draws comes first. With the directory down,
// the next renewal fails, the status says failing, and the current
// certificate is still served.
func TestRenewal(t *testing.T) {
	t.Parallel()
	dns := pebbletest.StartDNS(t)
	short := uniq("short.test")
	r := newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r.addr), Validity: 12 * time.Second})
	opts := testOptions(p, r, t.TempDir())
	opts.RenewBefore = time.Hour
	opts.RenewCheck = time.Second
	m, _ := startManager(t, opts, r)
	require.NoError(t, m.SetDomains(map[string][]string{"shop": {short}}))

	st := waitStatus(t, m, orderTimeout, "the first certificate", allState(StateOK, short))
	first := st[short].NotAfter
	assert.WithinDuration(t, time.Now().Add(12*time.Second), first, 5*time.Second)

	st = waitStatus(t, m, orderTimeout, "a renewal", func(s map[string]DomainStatus) bool {
		return s[short].State == StateOK && s[short].NotAfter.After(first)
	})
	renewed := st[short].NotAfter
	leaf, err := r.dialServed(short)
	require.NoError(t, err)
	assert.Equal(t, renewed, leaf.NotAfter, "the renewed certificate is served")

	p.Stop()
	st = waitStatus(t, m, orderTimeout, "the renewal failing", allState(StateFailing, short))
	s := st[short]
	assert.Contains(t, s.LastError, "connection refused")
	assert.Equal(t, renewed, s.NotAfter, "the status shows the certificate still served")
	leaf, err = r.dialServed(short)
	require.NoError(t, err)
	assert.Equal(t, renewed, leaf.NotAfter, "a failed renewal keeps the current certificate")
	c, err := m.GetCertificate(hello(short))
	require.NoError(t, err)
	assert.Equal(t, renewed, c.Leaf.NotAfter)
}

// TestPending: right after SetDomains, before any order ends, a domain's
// handshake is refused with ErrPending naming its state.
func TestPending(t *testing.T) {
	t.Parallel()
	m, _ := startManager(t, downOptions(t, "https://"+pebbletest.FreeAddr(t)+"/dir"), nil)
	pending := uniq("pending.test")
	require.NoError(t, m.SetDomains(map[string][]string{"shop": {pending}}))
	_, err := m.GetCertificate(hello(pending))
	require.ErrorIs(t, err, ErrPending)
	assert.Contains(t, err.Error(), pending+" (")
	assert.False(t, errors.Is(err, ErrNotManaged))
}

// TestSharedStorage: with Options.Shared (the storage the routers of a
// shared space have in common, etcd in production; a directory here) and
// no Storage, one router orders a domain and another, on the same
// shared storage, serves it with no order of its own; the status is
// read from the shared storage.
func TestSharedStorage(t *testing.T) {
	t.Parallel()
	dns := pebbletest.StartDNS(t)
	r1, r2 := newTestRouter(t), newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r1.addr)})
	shared := &certmagic.FileStorage{Path: t.TempDir()}
	opts1 := testOptions(p, r1, "")
	opts1.Shared = shared
	m1, logs1 := startManager(t, opts1, r1)
	name := uniq("shared.shop.test")
	require.NoError(t, m1.SetDomains(map[string][]string{"shop": {name}}))
	waitStatus(t, m1, orderTimeout, "the certificate", allState(StateOK, name))
	assert.Equal(t, 1, ordersFor(logs1, name), "one order")

	opts2 := testOptions(p, r2, "")
	opts2.Shared = shared
	m2, logs2 := startManager(t, opts2, r2)
	require.NoError(t, m2.SetDomains(map[string][]string{"shop": {name}}))
	waitStatus(t, m2, orderTimeout, "the certificate from the shared storage", allState(StateOK, name))
	assert.Zero(t, ordersFor(logs2, name), "the second router orders nothing")
	leaf, err := r2.dial(name, p.Root)
	require.NoError(t, err, "the second router serves the certificate")
	assert.Equal(t, []string{name}, leaf.DNSNames)

	got, err := StatusFromStorage(opts2, map[string][]string{"shop": {name}}, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, StateOK, got[0].State)
	assert.True(t, got[0].VerifyFull, got[0].VerifyError)

	none := opts2
	none.Shared = nil
	assert.EqualError(t, none.Validate(), "acme.storage: required", "without Shared, Storage is required")
}
