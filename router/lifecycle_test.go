package router

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/spaceca"
	"github.com/spacerouter/spacerouter/tlsconfig"
)

// The certificate lifecycle tests (SPEC.md 12.2, 12.3) run the router on
// an injected clock (Options.Now): the test moves it days ahead and wakes
// the certificate loop as a reload does, so nothing sleeps. Connections
// are real, on loopback, and stay open across the clock's moves.

// fakeClock is a clock the test sets.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

func (c *fakeClock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// waitLog waits up to 5 s for an entry of the operational log at level
// whose message contains want, and returns it.
func waitLog(t testing.TB, logs *observer.ObservedLogs, level zapcore.Level, want string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.All() {
			if e.Level == level && strings.Contains(e.Message, want) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var msgs []string
			for _, e := range logs.All() {
				msgs = append(msgs, e.Level.String()+": "+e.Message)
			}
			t.Fatalf("no %s log entry containing %q within 5s; the log:\n%s", level, want, strings.Join(msgs, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countLogs counts the entries whose message contains want.
func countLogs(logs *observer.ObservedLogs, want string) int {
	n := 0
	for _, e := range logs.All() {
		if strings.Contains(e.Message, want) {
			n++
		}
	}
	return n
}

// tlsPaths returns the cert and key paths of a testPKI tls entry.
func tlsPaths(t testing.TB, entry string) (cert, key string) {
	t.Helper()
	m := regexp.MustCompile(`cert: "([^"]+)", key: "([^"]+)"`).FindStringSubmatch(entry)
	require.NotNil(t, m, "a tls entry: %s", entry)
	return m[1], m[2]
}

// caFingerprint is the hex SHA-256 of the CA certificate in file.
func caFingerprint(t testing.TB, file string) string {
	t.Helper()
	as, err := spaceca.LoadBundle(file)
	require.NoError(t, err)
	sum := sha256.Sum256(as[0].Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TestRotationRetireAtClock: a previous space CA is warned about 14 days
// before its retire_at and retired at that time by the certificate loop,
// with no reload; connections opened before keep going: the next request
// of a connection with a certificate of the retired CA is refused with
// H41 retired_ca (and the one after it too: the connection is not
// dropped), a connection with a current CA's certificate is served on.
// The connection view names each connection's CA.
func TestRotationRetireAtClock(t *testing.T) {
	t0 := time.Now()
	clk := newFakeClock(t0)
	dir := t.TempDir()
	prev := newSpaceCAFiles(t, dir, "previous")
	s := newMTLSSpace(t, "mtls: {mode: require}")
	s.ca = newSpaceCAFiles(t, dir, "current")
	retireAt := t0.Add(20 * 24 * time.Hour).Truncate(time.Second)
	s.previous = []string{fmt.Sprintf("{cert: %q, retire_at: %s}", prev.cert, retireAt.UTC().Format(time.RFC3339))}
	old := issue(t, prev.open(t, nil), "shop", "old-laptop")
	fresh := issue(t, s.ca.open(t, nil), "shop", "new-laptop")
	mr := startMTLSRouterClock(t, s.pki, s.yaml(), clk.Now)
	retireTxt := retireAt.UTC().Format(time.RFC3339)

	type pair struct{ old, fresh *mclient }
	conns := map[mode]pair{}
	for _, m := range tlsModes {
		p := pair{mr.shop(t, m, old.cert), mr.shop(t, m, fresh.cert)}
		require.Equal(t, 200, p.old.mustGet(t, "/load-old-"+m.String()).status)
		require.Equal(t, 200, p.fresh.mustGet(t, "/load-fresh-"+m.String()).status)
		conns[m] = p
	}
	assert.Zero(t, countLogs(mr.logs, "is retired at"), "20 days ahead: no warning yet")

	// 13 days before retire_at: the 14-day warning came (the event), and
	// the hourly findings repeat it.
	clk.Set(retireAt.Add(-13 * 24 * time.Hour))
	mr.pokeCertLoop()
	waitLog(t, mr.logs, zapcore.WarnLevel, "previous space CA "+prev.cert+" is retired at "+retireTxt+" (in 14 days)")
	waitLog(t, mr.logs, zapcore.WarnLevel, "previous space CA "+prev.cert+" is retired at "+retireTxt+" (in 13 days)")
	for m, p := range conns {
		assert.Equal(t, 200, p.old.mustGet(t, "/warned-old-"+m.String()).status, "mode %s: still trusted", m)
	}
	// The loop's timer is set for retire_at, not only the next hour.
	hourly := clk.Now().Add(30 * 24 * time.Hour)
	next := mr.certStep(clk.Now(), clk.Now(), &hourly)
	assert.True(t, retireAt.Equal(next), "the next wake %v, want retire_at %v", next, retireAt)

	// At retire_at the CA is retired without a reload.
	clk.Set(retireAt.Add(time.Second))
	mr.pokeCertLoop()
	waitLog(t, mr.logs, zapcore.WarnLevel, "previous space CA "+prev.cert+" was retired at "+retireTxt)
	for _, m := range tlsModes {
		p := conns[m]
		for i := range 2 {
			path := fmt.Sprintf("/retired-old-%s-%d", m, i)
			checkRefused(t, mr, m, p.old.mustGet(t, path), path, "H41", "retired_ca")
		}
		assert.Equal(t, 200, p.fresh.mustGet(t, "/retired-fresh-"+m.String()).status, "mode %s: the current CA's client", m)
	}

	// The view: the old connections by their CA, refused as retired_ca.
	byOld := mr.TLSConnections(TLSFilter{CA: caFingerprint(t, prev.cert)[:16]})
	require.Len(t, byOld, len(tlsModes), "the connections with the retired CA's certificates")
	for _, c := range byOld {
		require.NotNil(t, c.Client)
		assert.Equal(t, "retired_ca", c.Client.Status)
		assert.Equal(t, old.leaf.SerialNumber.Text(16), c.Client.Serial)
	}
	byNew := mr.TLSConnections(TLSFilter{CA: caFingerprint(t, s.ca.cert)})
	require.Len(t, byNew, len(tlsModes))
	assert.Equal(t, "ok", byNew[0].Client.Status)
	sum := mr.TLSSummary()
	assert.Equal(t, 2*len(tlsModes), sum.Connections)
	require.Len(t, sum.ByClientCA, 2)
	assert.Equal(t, len(tlsModes), sum.ByClientCA[0].Connections)
}

// TestServeFromClock: a staged chain is served from its serve_from on,
// at the handshake's time on the router's clock and without a reload
// (the log says so when it comes); a connection opened before keeps its
// chain and is served on. The connection view and summary tell the two
// apart, and a serial filter finds each.
func TestServeFromClock(t *testing.T) {
	t0 := time.Now()
	clk := newFakeClock(t0)
	pki := newTestPKI(t)
	s := newMTLSSpace(t, "")
	s.pki = pki
	curCert, curKey := tlsPaths(t, pki.leaf(t, "shop.test"))
	nextCert, nextKey := tlsPaths(t, pki.leaf(t, "shop.test"))
	from := t0.Add(time.Hour).Truncate(time.Second)
	s.shopTLS = fmt.Sprintf("tls: [{cert: %q, key: %q}, {cert: %q, key: %q, serve_from: %s}]",
		curCert, curKey, nextCert, nextKey, from.UTC().Format(time.RFC3339))
	mr := startMTLSRouterClock(t, pki, s.yaml(), clk.Now)

	before := map[mode]*mclient{}
	for _, m := range tlsModes {
		c := mr.shop(t, m)
		require.Equal(t, 200, c.mustGet(t, "/before-"+m.String()).status)
		before[m] = c
	}
	curSerial := before[modeH2].tlsS.PeerCertificates[0].SerialNumber
	conns := mr.TLSConnections(TLSFilter{App: "shop"})
	require.Len(t, conns, len(tlsModes))
	for _, c := range conns {
		assert.Equal(t, curSerial.Text(16), c.Served.Serial)
		assert.Equal(t, tlsconfig.SourceFile, c.Served.Source)
		assert.EqualValues(t, 1, c.Requests)
	}

	clk.Set(from.Add(time.Second))
	mr.pokeCertLoop()
	waitLog(t, mr.logs, zapcore.InfoLevel, "app shop: certificate "+nextCert+" is served from now on")
	after := map[mode]*mclient{}
	for _, m := range tlsModes {
		c := mr.shop(t, m)
		assert.NotEqual(t, curSerial, c.tlsS.PeerCertificates[0].SerialNumber, "mode %s: the staged chain after serve_from", m)
		require.Equal(t, 200, c.mustGet(t, "/after-"+m.String()).status)
		after[m] = c
		assert.Equal(t, 200, before[m].mustGet(t, "/before-again-"+m.String()).status, "mode %s: the connection from before", m)
	}
	nextSerial := after[modeH2].tlsS.PeerCertificates[0].SerialNumber

	assert.Len(t, mr.TLSConnections(TLSFilter{Serial: curSerial.Text(16)}), len(tlsModes))
	got := mr.TLSConnections(TLSFilter{App: "shop", Serial: "0x" + strings.ToUpper(nextSerial.Text(16))})
	require.Len(t, got, len(tlsModes), "a serial filter in other case, with 0x")
	assert.Empty(t, mr.TLSConnections(TLSFilter{App: "blog"}))
	sum := mr.TLSSummary()
	require.Len(t, sum.ByServed, 2)
	assert.Equal(t, 2*len(tlsModes), sum.WithoutClientCert)
	for _, sc := range sum.ByServed {
		assert.Equal(t, "shop", sc.App)
		assert.Equal(t, len(tlsModes), sc.Connections)
	}
}

// TestExpiryWarningsClock: the served certificates' expiry is judged at
// load, at reload and hourly (SPEC.md 12.2): a warning within 30 days, an
// error within 7; the expiry metric carries each role.
func TestExpiryWarningsClock(t *testing.T) {
	t0 := time.Now()
	clk := newFakeClock(t0)
	s := newMTLSSpace(t, "mtls: {mode: require}")
	cert, _ := tlsPaths(t, s.shopTLS)
	laptop := issue(t, s.ca.open(t, nil), "shop", "laptop")
	mr := startMTLSRouterClock(t, s.pki, s.yaml(), clk.Now)
	leaf := certLeaf(t, cert)
	date := leaf.NotAfter.UTC().Format(time.DateOnly)
	assert.Zero(t, countLogs(mr.logs, "expires"), "200 days ahead: nothing at load")
	assert.InDelta(t, float64(leaf.NotAfter.Unix()), mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds",
		map[string]string{"app": "shop", "role": "server"}), 1)
	for _, role := range []string{"client_ca"} {
		assert.NotZero(t, mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds", map[string]string{"app": "shop", "role": role}), role)
	}
	assert.NotZero(t, mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds", map[string]string{"app": "_space", "role": "space_ca"}))
	assert.InDelta(t, float64(laptop.leaf.NotAfter.Unix()), mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds",
		map[string]string{"app": "shop", "role": "client"}), 1)

	// The hourly check, 25 days before.
	clk.Set(leaf.NotAfter.Add(-25*24*time.Hour + time.Minute))
	mr.pokeCertLoop()
	e := waitLog(t, mr.logs, zapcore.WarnLevel, "app shop: certificate "+cert+" expires "+date+" (in 25 days)")
	assert.Equal(t, "shop", e.ContextMap()["app"])
	assert.Equal(t, "server", e.ContextMap()["role"])

	// A reload at once logs them again.
	n := countLogs(mr.logs, e.Message)
	mr.reload(t, s.yaml())
	assert.Equal(t, n+1, countLogs(mr.logs, e.Message), "a reload judges expiry")

	// Within 7 days: an error, at the next hour.
	clk.Set(leaf.NotAfter.Add(-4*24*time.Hour + time.Minute))
	mr.pokeCertLoop()
	waitLog(t, mr.logs, zapcore.ErrorLevel, "app shop: certificate "+cert+" expires "+date+" (in 4 days)")
	clk.Set(leaf.NotAfter.Add(time.Hour))
	mr.pokeCertLoop()
	waitLog(t, mr.logs, zapcore.ErrorLevel, "app shop: certificate "+cert+" expired on "+date)

	// An issued client certificate, 20 days before its end.
	clk.Set(laptop.leaf.NotAfter.Add(-20 * 24 * time.Hour))
	mr.pokeCertLoop()
	e = waitLog(t, mr.logs, zapcore.WarnLevel, "app shop: client certificate "+laptop.id+" (laptop) expires "+
		laptop.leaf.NotAfter.UTC().Format(time.DateOnly)+" (in 20 days)")
	assert.Equal(t, "client", e.ContextMap()["role"])
}

// TestJudgeExpiry pins the wording and levels of the expiry findings.
func TestJudgeExpiry(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	list := []certExpiry{
		{app: "shop", role: roleServer, what: "certificate a.pem", end: now.Add(31 * 24 * time.Hour)},
		{app: "shop", role: roleServer, what: "certificate b.pem", end: now.Add(29 * 24 * time.Hour)},
		{app: "shop", role: roleClient, what: "client certificate 0123 (laptop)", end: now.Add(7*24*time.Hour - time.Minute)},
		{role: roleSpaceCA, what: "space CA certificate ca.pem", end: now.Add(time.Hour)},
		{app: "blog", role: roleClientCA, what: `client CA "CN=x" in b.pem`, end: now.Add(-time.Hour)},
	}
	assert.Equal(t, []CertFinding{
		{App: "shop", Role: "server", Msg: "app shop: certificate b.pem expires 2027-01-04 (in 29 days)"},
		{Error: true, App: "shop", Role: "client", Msg: "app shop: client certificate 0123 (laptop) expires 2026-12-13 (in 7 days)"},
		{Error: true, Role: "space_ca", Msg: "space CA certificate ca.pem expires 2026-12-06 (in 1 day)"},
		{Error: true, App: "blog", Role: "client_ca", Msg: `app blog: client CA "CN=x" in b.pem expired on 2026-12-06`},
	}, judgeExpiry(list, now))
}

// certLeaf parses the first certificate of a PEM file.
func certLeaf(t testing.TB, file string) *x509.Certificate {
	t.Helper()
	as, err := spaceca.LoadBundle(file)
	if err == nil && len(as) > 0 {
		return as[0].Cert
	}
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, "a PEM block in %s", file)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

// TestCertLoopTimer: the certificate loop's own timer (no poke, no
// injected clock: testing/synctest's fake time) wakes 14 days before a
// previous CA's retire_at and at retire_at, and hourly for the expiry
// findings.
func TestCertLoopTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		prev := newSpaceCAFiles(t, dir, "previous")
		cur := newSpaceCAFiles(t, dir, "current")
		retireAt := time.Now().Add(20 * 24 * time.Hour).Add(30 * time.Minute)
		y := "space: " + mtlsSpaceName + "\nlisten: {http: \"127.0.0.1:0\"}\n" +
			cur.yaml(fmt.Sprintf("{cert: %q, retire_at: %s}", prev.cert, retireAt.UTC().Format(time.RFC3339))) +
			"apps:\n  - name: shop\n    domains: [shop.test]\n    dynos: [{name: web.1, address: \"127.0.0.1:1\"}]\n"
		cfg, err := config.Parse("test.yaml", []byte(y))
		require.NoError(t, err)
		core, logs := observer.New(zap.DebugLevel)
		r, err := New(cfg, Options{Logger: zap.New(core)})
		require.NoError(t, err)
		r.bgWG.Add(1)
		go r.certLoop()
		defer func() {
			r.stop()
			r.bgWG.Wait()
		}()
		soon := "previous space CA " + prev.cert + " is retired at " + retireAt.UTC().Format(time.RFC3339) + " (in 14 days)"
		retired := "previous space CA " + prev.cert + " was retired at"

		time.Sleep(time.Until(retireAt.Add(-retireWarnAhead)) - time.Second)
		synctest.Wait()
		assert.Zero(t, countLogs(logs, soon), "a second before the 14 days")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, 1, countLogs(logs, soon), "at 14 days before retire_at, from the timer")
		hourly := countLogs(logs, "(in 14 days)") // the hourly findings' too, from then on

		time.Sleep(time.Until(retireAt) - time.Second)
		synctest.Wait()
		assert.Zero(t, countLogs(logs, retired))
		assert.Greater(t, countLogs(logs, "is retired at"), hourly, "the hourly findings repeat the warning")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, 1, countLogs(logs, retired), "at retire_at, from the timer")
	})
}
