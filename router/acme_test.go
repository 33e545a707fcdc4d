package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/internal/pebbletest"
	"github.com/spacerouter/spacerouter/logging"
)

// The ACME tests order from a real Pebble (internal/pebbletest) through
// the router's own https listener: Pebble's TLS-ALPN-01 validations
// connect to it, the router answers them before any app is looked at, and
// clients then verify the issued chain with Pebble's root (verify-full).

// orderTimeout bounds one order from Pebble.
// An order takes about a second; the bound is generous so that on a
// loaded machine a validation that timed out can be retried after
// certmagic's first backoff, and a passing run is no slower for it.
const orderTimeout = 90 * time.Second

// acmeSeq numbers the domains of the ACME tests: certmagic keeps state by
// domain name for the whole process (its job queue, the backoff of failed
// orders), so a name is never reused, even by -count=N.
var acmeSeq atomic.Int64

// acmeName returns name with a label in front that no other test of the
// process uses.
func acmeName(name string) string {
	return fmt.Sprintf("r%d-%s", acmeSeq.Add(1), name)
}

// acmeRouter is a router under test with an acme section.
type acmeRouter struct {
	*mtlsRouter
	httpsAddr string
}

// acmeSection is the acme section for directory, trusting roots ("":
// the system's), with storage under a new directory of the test.
func acmeSection(t testing.TB, directory, roots string) string {
	s := fmt.Sprintf("acme:\n  directory: %q\n  agree_tos: true\n  storage: %q\n", directory, t.TempDir())
	if roots != "" {
		s += fmt.Sprintf("  trusted_roots: %q\n", roots)
	}
	return s
}

// startACMERouter starts a router on httpsAddr with the given acme
// section and apps YAML (the "apps:" list).
func startACMERouter(t testing.TB, pki *testPKI, httpsAddr, acmeYAML, apps string) *acmeRouter {
	t.Helper()
	y := fmt.Sprintf("space: acme-test\nlisten: {http: \"127.0.0.1:0\", https: %q}\n", httpsAddr) + acmeYAML + apps
	return &acmeRouter{mtlsRouter: startMTLSRouter(t, pki, y), httpsAddr: httpsAddr}
}

// reloadApps reloads the router with the same listeners and acme section
// and the apps YAML given.
func (ar *acmeRouter) reloadApps(t testing.TB, acmeYAML, apps string) {
	t.Helper()
	ar.reload(t, fmt.Sprintf("space: acme-test\nlisten: {http: \"127.0.0.1:0\", https: %q}\n", ar.httpsAddr)+acmeYAML+apps)
}

// autoApp is the YAML of an app with tls: auto on domains.
func autoApp(name, dyno string, domains ...string) string {
	return fmt.Sprintf("  - name: %s\n    domains: [%s]\n    tls: auto\n    dynos: [{name: web.1, address: %q}]\n",
		name, strings.Join(domains, ", "), dyno)
}

// waitACME waits until cond holds for the router's ACME status by domain.
func waitACME(t testing.TB, r *Router, what string, cond func(map[string]acme.DomainStatus) bool) map[string]acme.DomainStatus {
	t.Helper()
	deadline := time.Now().Add(orderTimeout)
	for {
		st := map[string]acme.DomainStatus{}
		for _, s := range r.ACMEStatus() {
			st[s.Domain] = s
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; the status is %+v", orderTimeout, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateIs is a waitACME condition: every one of names is in state.
func stateIs(state acme.State, names ...string) func(map[string]acme.DomainStatus) bool {
	return func(st map[string]acme.DomainStatus) bool {
		for _, n := range names {
			if st[n].State != state {
				return false
			}
		}
		return true
	}
}

// verifyFullGet sends GET / for name over a new TLS connection to addr,
// verifying the chain with roots and the name, and returns the status and
// the served leaf.
func verifyFullGet(t testing.TB, addr, name string, roots *x509.CertPool) (int, *x509.Certificate, error) {
	t.Helper()
	var leaf *x509.Certificate
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: name, RootCAs: roots},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := (&tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}}}).DialContext(ctx, "tcp", addr)
			if err == nil {
				leaf = c.(*tls.Conn).ConnectionState().PeerCertificates[0]
			}
			return c, err
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + name + "/")
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, leaf, nil
}

// handshakeFor makes a TLS handshake for name with addr, verifying
// nothing, and returns its error.
func handshakeFor(addr, name string) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err == nil {
		c.Close()
	}
	return err
}

// isUnrecognizedName reports whether err is a client's handshake error for
// the alert unrecognized_name. crypto/tls hands the client a received
// alert as an unexported type, so its text is all there is.
func isUnrecognizedName(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls: unrecognized name")
}

// TestACMEAuto: an app with tls: auto gets its certificate from Pebble
// through the router's own https listener (TLS-ALPN-01, answered before
// ip_rules), refusing the name with unrecognized_name until then (logged
// with why, counted as acme_pending); a verify-full client with Pebble's
// root then gets 200 and a router line, and the validations themselves
// are no client requests. A reload that adds a domain gets it issued and
// served; one that drops it refuses it. The expiry metric and the
// connection view name the ACME certificate.
func TestACMEAuto(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	httpsAddr := pebbletest.FreeAddr(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, httpsAddr)})
	dyno := okDyno(t, "auto")
	shop, added, locked := acmeName("shop.test"), acmeName("new.shop.test"), acmeName("locked.test")
	release := dns.Hold(shop)
	section := acmeSection(t, p.Directory, p.RootsFile)
	apps := "apps:\n" + autoApp("shop", dyno.addr(), shop)
	ar := startACMERouter(t, newTestPKI(t), httpsAddr, section, apps)

	// The validation waits for DNS: the order is in progress.
	waitACME(t, ar.Router, "the order in progress", stateIs(acme.StateInProgress, shop))
	err := handshakeFor(httpsAddr, shop)
	assert.True(t, isUnrecognizedName(err), "a handshake before the certificate: %v", err)
	assert.Equal(t, 1.0, ar.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "acme_pending"}))
	refused := ar.logs.FilterMessage("TLS handshake refused").FilterField(zap.String(logging.KeyReason, "acme_pending")).All()
	require.Len(t, refused, 1, "one log line per refusal")
	assert.Contains(t, refused[0].ContextMap()["error"], "no certificate yet", "the log says why")

	release()
	st := waitACME(t, ar.Router, "the certificate", stateIs(acme.StateOK, shop))
	status, leaf, err := verifyFullGet(t, httpsAddr, shop, p.Root)
	require.NoError(t, err, "a verify-full client with Pebble's root")
	assert.Equal(t, 200, status)
	assert.Equal(t, []string{shop}, leaf.DNSNames)
	assert.True(t, st[shop].NotAfter.Equal(leaf.NotAfter))
	line := ar.line(t, "/")
	assert.Contains(t, line, "host="+shop+" ")
	assert.Equal(t, 1, ar.lines.count(), "only the client's request has a router line: validations are no requests")
	assert.InDelta(t, float64(leaf.NotAfter.Unix()),
		ar.metric(t, "spacerouter_certificate_expiry_timestamp_seconds", map[string]string{"app": "shop", "role": "server"}), 1)

	t.Run("curl --cacert pebble-root.pem", func(t *testing.T) {
		curlVerifyFull(t, httpsAddr, shop, p.RootPEM, "auto")
	})

	t.Run("the connection view names the ACME certificate", func(t *testing.T) {
		ar.pki = &testPKI{pool: p.Root}
		c := ar.mustDialM(t, modeH1TLS, dialOpts{sni: shop})
		require.Equal(t, 200, c.mustGet(t, "/").status)
		conns := ar.TLSConnections(TLSFilter{App: "shop"})
		require.Len(t, conns, 1)
		assert.Equal(t, ServedCertificate{Serial: leaf.SerialNumber.Text(16), Subject: leaf.Subject.String(),
			NotAfter: leaf.NotAfter.UTC(), Source: "acme"}, conns[0].Served)
		c.nc.Close()
	})

	// A reload adds a domain, and an app whose ip_rules exclude every
	// client: the validations are exempt, the clients are not.
	apps2 := "apps:\n" + autoApp("shop", dyno.addr(), shop, added) + autoApp("locked", dyno.addr(), locked) +
		"    ip_rules: [{cidr: 203.0.113.0/24, description: elsewhere}]\n"
	ar.reloadApps(t, section, apps2)
	waitACME(t, ar.Router, "the added domains' certificates", stateIs(acme.StateOK, shop, added, locked))
	status, leaf, err = verifyFullGet(t, httpsAddr, added, p.Root)
	require.NoError(t, err, "the domain a reload added")
	assert.Equal(t, 200, status)
	assert.Equal(t, []string{added}, leaf.DNSNames)
	err = handshakeFor(httpsAddr, locked)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "access denied", "ip_rules refuse the client of the app whose validation passed")

	// A reload drops a domain: refused, no longer managed.
	ar.reloadApps(t, section, "apps:\n"+autoApp("shop", dyno.addr(), added))
	err = handshakeFor(httpsAddr, shop)
	assert.True(t, isUnrecognizedName(err), "a dropped domain: %v", err)
	_, still := waitACME(t, ar.Router, "the drop", func(st map[string]acme.DomainStatus) bool { return len(st) == 1 })[shop]
	assert.False(t, still)
	status, _, err = verifyFullGet(t, httpsAddr, added, p.Root)
	require.NoError(t, err)
	assert.Equal(t, 200, status, "the domain kept is still served")
}

// TestACMEDirectoryDown: an acme directory that refuses connections makes
// the domain failing (logged, retried with backoff); its handshakes are
// refused with unrecognized_name, and the other apps are served as ever.
func TestACMEDirectoryDown(t *testing.T) {
	pebbletest.Binary(t) // skipped under -short, with the Pebble tests
	pki := newTestPKI(t)
	dyno := okDyno(t, "ok")
	shop := acmeName("down.test")
	section := acmeSection(t, "https://"+pebbletest.FreeAddr(t)+"/dir", "")
	apps := "apps:\n" + autoApp("shop", dyno.addr(), shop) +
		"  - name: blog\n    domains: [blog.test]\n    " + pki.leaf(t, "blog.test") + "\n    dynos: [{name: web.1, address: \"" + dyno.addr() + "\"}]\n"
	ar := startACMERouter(t, pki, "127.0.0.1:0", section, apps)
	httpsAddr := ar.HTTPSAddr().String()

	st := waitACME(t, ar.Router, "the order to fail", stateIs(acme.StateFailing, shop))
	assert.Contains(t, st[shop].LastError, "connection refused")
	assert.NotEmpty(t, ar.logs.FilterMessage("ACME order failed; retrying with backoff").All())
	err := handshakeFor(httpsAddr, shop)
	assert.True(t, isUnrecognizedName(err), "a failing domain: %v", err)

	status, _, err := verifyFullGet(t, httpsAddr, "blog.test", pki.pool)
	require.NoError(t, err, "another app")
	assert.Equal(t, 200, status)
}

// TestACMEFailingDomain: against a real Pebble, a domain whose
// validation cannot connect (the in-test DNS sends it to 127.0.0.2, where
// nothing listens) is failing with Pebble's error, and its handshakes are
// refused with unrecognized_name; the app's other domain, another tls:
// auto app and an app with certificate files are served all along.
func TestACMEFailingDomain(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	httpsAddr := pebbletest.FreeAddr(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, httpsAddr)})
	pki := newTestPKI(t)
	dyno := okDyno(t, "ok")
	good, bad, other := acmeName("good.test"), acmeName("bad.test"), acmeName("other.test")
	dns.SetA(bad, netip.MustParseAddr("127.0.0.2"))
	apps := "apps:\n" + autoApp("shop", dyno.addr(), good, bad) + autoApp("other", dyno.addr(), other) +
		"  - name: blog\n    domains: [blog.test]\n    " + pki.leaf(t, "blog.test") + "\n    dynos: [{name: web.1, address: \"" + dyno.addr() + "\"}]\n"
	ar := startACMERouter(t, pki, httpsAddr, acmeSection(t, p.Directory, p.RootsFile), apps)

	st := waitACME(t, ar.Router, "good and other ok, bad failing", func(st map[string]acme.DomainStatus) bool {
		return st[good].State == acme.StateOK && st[other].State == acme.StateOK && st[bad].State == acme.StateFailing
	})
	assert.Equal(t, "shop", st[bad].App)
	assert.Contains(t, st[bad].LastError, "127.0.0.2", "Pebble's error says where it could not connect")
	assert.Zero(t, st[bad].NotAfter)
	err := handshakeFor(httpsAddr, bad)
	assert.True(t, isUnrecognizedName(err), "the failing domain: %v", err)
	for _, name := range []string{good, other} {
		status, _, err := verifyFullGet(t, httpsAddr, name, p.Root)
		require.NoError(t, err, "%s, verify-full with Pebble's root", name)
		assert.Equal(t, 200, status, name)
	}
	status, _, err := verifyFullGet(t, httpsAddr, "blog.test", pki.pool)
	require.NoError(t, err, "the app with certificate files")
	assert.Equal(t, 200, status)
}

// curlVerifyFull runs curl against the router at addr for name,
// verifying with rootPEM only (--cacert; --resolve sends name to addr),
// and checks it gets 200 and body.
func curlVerifyFull(t *testing.T, addr, name string, rootPEM []byte, body string) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	root := filepath.Join(t.TempDir(), "pebble-root.pem")
	require.NoError(t, os.WriteFile(root, rootPEM, 0o644))
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	url := "https://" + name + ":" + port + "/"
	out, err := exec.Command(curl, "--silent", "--show-error", "--max-time", "10", "--cacert", root,
		"--resolve", name+":"+port+":127.0.0.1", "--write-out", "\n%{http_code}", url).CombinedOutput()
	require.NoError(t, err, "curl --cacert %s %s:\n%s", root, url, out)
	assert.Equal(t, body+"\n200", string(out), "curl's body and status")
}

// TestACMESectionChange: a reload that changes the acme section makes a
// new Manager and stops the old one; a certificate the old one got is
// still served while the new one has none.
func TestACMESectionChange(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	httpsAddr := pebbletest.FreeAddr(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, httpsAddr)})
	dyno := okDyno(t, "auto")
	shop := acmeName("change.test")
	apps := "apps:\n" + autoApp("shop", dyno.addr(), shop)
	ar := startACMERouter(t, newTestPKI(t), httpsAddr, acmeSection(t, p.Directory, p.RootsFile), apps)
	waitACME(t, ar.Router, "the certificate", stateIs(acme.StateOK, shop))
	old := ar.acme.Load()

	// The same directory, a storage of its own and Pebble gone: the new
	// Manager cannot order, and the old certificate is served meanwhile.
	p.Stop()
	ar.reloadApps(t, acmeSection(t, p.Directory, p.RootsFile), apps)
	require.NotSame(t, old, ar.acme.Load(), "a new Manager")
	waitACME(t, ar.Router, "the new Manager to fail", stateIs(acme.StateFailing, shop))
	status, _, err := verifyFullGet(t, httpsAddr, shop, p.Root)
	require.NoError(t, err, "the old Manager's certificate")
	assert.Equal(t, 200, status)
}

// TestACMEWithoutListener: an acme section without listen.https starts no
// Manager (the config warns), and the router runs.
func TestACMEWithoutListener(t *testing.T) {
	y := "listen: {http: \"127.0.0.1:0\"}\n" + acmeSection(t, "https://127.0.0.1:1/dir", "") +
		"apps:\n" + autoApp("shop", "127.0.0.1:1", "nolistener.test")
	cfg, err := config.Parse("test.yaml", []byte(y))
	require.NoError(t, err)
	core, _ := observer.New(zap.DebugLevel)
	r, err := New(cfg, Options{Logger: zap.New(core), Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer r.Shutdown(context.Background())
	assert.Nil(t, r.ACMEStatus())
}

// TestACMEExpiryWarnings: an ACME certificate within 30 days of its end
// is warned about like a file's (SPEC.md 12.2): by a router loaded on
// acme.storage before its Manager runs (as -check reads it), and by the
// running router at a reload.
func TestACMEExpiryWarnings(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	httpsAddr := pebbletest.FreeAddr(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, httpsAddr), Validity: 20 * 24 * time.Hour})
	dyno := okDyno(t, "auto")
	shop := acmeName("expiring.test")
	section := acmeSection(t, p.Directory, p.RootsFile)
	apps := "apps:\n" + autoApp("shop", dyno.addr(), shop)
	ar := startACMERouter(t, newTestPKI(t), httpsAddr, section, apps)
	st := waitACME(t, ar.Router, "the certificate", stateIs(acme.StateOK, shop))
	want := "app shop: ACME certificate for " + shop + " expires " + st[shop].NotAfter.UTC().Format(time.DateOnly) + " (in 20 days)"
	ar.reloadApps(t, section, apps)
	waitLog(t, ar.logs, zapcore.WarnLevel, want)

	// Another router on the same storage, loaded and not started.
	cfg, err := config.Parse("test.yaml", []byte("space: acme-test\nlisten: {https: \"127.0.0.1:0\"}\n"+section+apps))
	require.NoError(t, err)
	core, logs := observer.New(zap.DebugLevel)
	_, err = New(cfg, Options{Logger: zap.New(core), Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	e := waitLog(t, logs, zapcore.WarnLevel, want)
	assert.Equal(t, "server", e.ContextMap()["role"])
}
