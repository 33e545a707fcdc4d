package router

// Issue 11, metrics and the space CA's background work (SPEC.md 11.3,
// 12.2): verifications once per connection, issued certificates by status,
// expiry timestamps, successors issued 75 days ahead.

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/spaceca"
)

// verifications reads spacerouter_client_cert_verifications_total of app
// shop for result and ca.
func (mr *mtlsRouter) verifications(t testing.TB, result, ca string) float64 {
	t.Helper()
	return mr.metric(t, "spacerouter_client_cert_verifications_total", map[string]string{"app": "shop", "result": result, "ca": ca})
}

// TestMTLSVerificationPerConnection: a client certificate is verified once
// per connection (and trust set), not per request: HTTP/1 keep-alive
// requests and concurrent HTTP/2 streams share the verdict; a reload
// (a new trust set) verifies the connection's certificate once more.
func TestMTLSVerificationPerConnection(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	good := issue(t, ca, "shop", "laptop")
	stranger := issue(t, newSpaceCAFiles(t, t.TempDir(), "other").open(t, nil), "shop", "stranger")

	h1 := mr.shop(t, modeH1TLS, good.cert)
	for i := range 5 {
		require.Equal(t, 200, h1.mustGet(t, fmt.Sprintf("/h1-%d", i)).status)
	}
	assert.Equal(t, float64(1), mr.verifications(t, "ok", "space"), "5 requests on one HTTP/1 connection")

	h2 := mr.shop(t, modeH2, good.cert)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r, err := h2.get(t, fmt.Sprintf("/h2-%d", i))
			assert.NoError(t, err)
			assert.Equal(t, 200, r.status)
		})
	}
	wg.Wait()
	assert.Equal(t, float64(2), mr.verifications(t, "ok", "space"), "8 concurrent streams on one HTTP/2 connection add one")

	bad := mr.shop(t, modeH1TLS, stranger.cert)
	for i := range 3 {
		assert.Equal(t, 495, bad.mustGet(t, fmt.Sprintf("/bad-%d", i)).status)
	}
	assert.Equal(t, float64(1), mr.verifications(t, "unknown_ca", "none"), "3 refused requests on one connection")

	// No certificate: nothing to verify.
	none := mr.shop(t, modeH1TLS)
	assert.Equal(t, 496, none.mustGet(t, "/none").status)
	assert.Equal(t, float64(2), mr.verifications(t, "ok", "space"))

	// A reload makes new trust sets: the next request of each connection
	// is judged again, once.
	mr.reload(t, s.yaml())
	for i := range 3 {
		require.Equal(t, 200, h1.mustGet(t, fmt.Sprintf("/h1-reloaded-%d", i)).status)
		require.Equal(t, 200, h2.mustGet(t, fmt.Sprintf("/h2-reloaded-%d", i)).status)
	}
	assert.Equal(t, float64(4), mr.verifications(t, "ok", "space"), "one more per connection after the reload")
}

// TestMTLSVerificationPreviousCA: a certificate of a previous CA not yet
// retired is good, and counted with ca="space_previous".
func TestMTLSVerificationPreviousCA(t *testing.T) {
	dir := t.TempDir()
	prev := newSpaceCAFiles(t, dir, "previous")
	s := newMTLSSpace(t, "mtls: {mode: require}")
	s.ca = newSpaceCAFiles(t, dir, "current")
	s.previous = []string{fmt.Sprintf("{cert: %q, retire_at: %s}", prev.cert, time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339))}
	old := issue(t, prev.open(t, nil), "shop", "before-rotation")
	mr := s.start(t)
	r := mr.shop(t, modeH2, old.cert).mustGet(t, "/previous")
	assert.Equal(t, 200, r.status)
	assert.Equal(t, float64(1), mr.verifications(t, "ok", "space_previous"))
	assert.Contains(t, mr.line(t, "/previous"), " client_cert="+old.short()+"\n")
}

// TestMTLSCertificateMetrics: spacerouter_client_certificates{app,status}
// follows what spacerouter ca does in the state directory, without a
// reload, and spacerouter_certificate_expiry_timestamp_seconds has the
// space CA (app _space), the CAs an app trusts and its earliest client
// certificate.
func TestMTLSCertificateMetrics(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	counts := func(status string) float64 {
		return mr.metric(t, "spacerouter_client_certificates", map[string]string{"app": "shop", "status": status})
	}
	a := issue(t, ca, "shop", "laptop")
	b := issue(t, ca, "shop", "phone")
	issue(t, ca, "blog", "not-an-mtls-app")
	require.Eventually(t, func() bool { return counts("ready") == 2 }, 3*time.Second, 20*time.Millisecond,
		"two certificates issued for shop, seen within 2 s; have %v", counts("ready"))
	_, _, err := ca.Revoke(b.id)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counts("revoked") == 1 && counts("ready") == 1 }, 3*time.Second, 20*time.Millisecond,
		"one revoked, seen within 2 s; have ready %v revoked %v", counts("ready"), counts("revoked"))
	assert.Equal(t, float64(1), mr.metric(t, "spacerouter_client_certificates", map[string]string{"app": "blog", "status": "ready"}))

	expiry := func(app, role string) float64 {
		return mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds", map[string]string{"app": app, "role": role})
	}
	caNotAfter := float64(ca.Certificate().NotAfter.Unix())
	assert.Equal(t, caNotAfter, expiry("_space", "space_ca"))
	assert.Equal(t, caNotAfter, expiry("shop", "client_ca"))
	assert.Equal(t, float64(a.leaf.NotAfter.Unix()), expiry("shop", "client"), "the earliest valid client certificate of shop")
	assert.Zero(t, expiry("blog", "client_ca"), "blog trusts no CA")
	// role server: the first served certificate of each app to expire
	// (the test PKI's leaves are valid 200 days).
	for _, app := range []string{"shop", "blog"} {
		assert.InDelta(t, float64(time.Now().Add(200*24*time.Hour).Unix()), expiry(app, "server"), 3600, "app %s, role server", app)
	}
}

// TestMTLSSuccessorIssued: a certificate within 75 days of its end gets a
// successor from the router itself (same app and name, a new id), logged
// with both ids and counted; the old one keeps working.
func TestMTLSSuccessorIssued(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t)
	cur := oldSpaceCAFiles(t, dir, "ca", time.Now().AddDate(-2, 0, 0))
	s := &mtlsSpace{pki: pki, ca: cur, shopExtra: "mtls: {mode: require}", shopDyno: echoHeadDyno(t), blogDyno: echoHeadDyno(t)}
	s.shopTLS, s.blogTLS = pki.leaf(t, "shop.test"), pki.leaf(t, "blog.test")
	// Issued 12 months ago: 1 month left of 13.
	created := time.Now().AddDate(0, -12, 0)
	old := issue(t, cur.open(t, func() time.Time { return created }), "shop", "laptop")
	mr := s.start(t)

	ca := cur.open(t, nil)
	require.Eventually(t, func() bool {
		_, _ = ca.Refresh()
		return ca.Successor(old.id) != ""
	}, 5*time.Second, 20*time.Millisecond, "the router issues the successor at start")
	succ, err := ca.Get(ca.Successor(old.id))
	require.NoError(t, err)
	assert.Equal(t, "shop", succ.App)
	assert.Equal(t, "laptop", succ.Name)
	assert.Equal(t, old.id, succ.SuccessorOf)
	assert.Equal(t, spaceca.StatusReady, succ.Status)
	// The router counts and logs the successor once it is on disk.
	const warning = "client certificate expires within 75 days: its successor was issued"
	require.Eventually(t, func() bool { return mr.logs.FilterMessage(warning).Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, float64(1), mr.metric(t, "spacerouter_client_cert_successors_total", nil))
	logged := mr.logs.FilterMessage(warning).All()
	require.Len(t, logged, 1)
	assert.Equal(t, old.id, logged[0].ContextMap()["old_id"])
	assert.Equal(t, succ.ID, logged[0].ContextMap()["new_id"])
	assert.Equal(t, float64(1), mr.metric(t, "spacerouter_client_certificates", map[string]string{"app": "shop", "status": "expiring"}))

	// Both work.
	r := mr.shop(t, modeH1TLS, old.cert).mustGet(t, "/old")
	assert.Equal(t, 200, r.status, "the expiring certificate keeps working")
	succCert, err := tls.LoadX509KeyPair(filepath.Join(ca.StateDir(), "clients", succ.ID, spaceca.FileCert),
		filepath.Join(ca.StateDir(), "clients", succ.ID, spaceca.FileKey))
	require.NoError(t, err)
	assert.Equal(t, 200, mr.shop(t, modeH2, succCert).mustGet(t, "/successor").status)
}

// TestMTLSTrustBundle: an app whose mtls.trust is a PEM bundle accepts the
// bundle's clients (ca="bundle") and refuses the space CA's, which it does
// not list, as unknown_ca.
func TestMTLSTrustBundle(t *testing.T) {
	partner := newSpaceCAFiles(t, t.TempDir(), "partner")
	s := newMTLSSpace(t, fmt.Sprintf("mtls: {mode: require, trust: [%q]}", partner.cert))
	mr := s.start(t)
	theirs := issue(t, partner.open(t, nil), "shop", "partner-host")
	ours := issue(t, s.ca.open(t, nil), "shop", "laptop")
	assert.Equal(t, 200, mr.shop(t, modeH1TLS, theirs.cert).mustGet(t, "/partner").status)
	assert.Equal(t, float64(1), mr.verifications(t, "ok", "bundle"))
	r := mr.shop(t, modeH2, ours.cert).mustGet(t, "/space-ca")
	checkRefused(t, mr, modeH2, r, "/space-ca", "H41", "unknown_ca")
	assert.Equal(t, float64(partner.open(t, nil).Certificate().NotAfter.Unix()),
		mr.metric(t, "spacerouter_certificate_expiry_timestamp_seconds", map[string]string{"app": "shop", "role": "client_ca"}))
}
