package router

// Issue 11, client certificates (SPEC.md 11.1, 11.3, H40/H41): a space CA
// made with package spaceca, its certificates presented by Go clients over
// HTTP/1.1 over TLS and HTTP/2, and what the client, the dyno and the
// router line see.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/spaceca"
)

// mtlsSpace is the space of the mtls tests: app shop (shop.test) with the
// mtls and ip_rules of the test, app blog (blog.test) with neither, each
// with a certificate and an echo dyno of its own. Its certificates are
// made once, so a reload serves the same ones.
type mtlsSpace struct {
	pki       *testPKI
	ca        spaceCAFiles
	previous  []string // space_ca.previous entries, YAML flow mappings
	shopExtra string   // YAML lines of app shop (mtls, ip_rules)
	blogExtra string   // YAML lines of app blog
	shopDyno  *rawDyno
	blogDyno  *rawDyno
	shopTLS   string
	blogTLS   string
}

// newMTLSSpace makes the space's server certificates, a space CA with
// spaceca.Init in a test directory and the dynos.
func newMTLSSpace(t testing.TB, shopExtra string) *mtlsSpace {
	t.Helper()
	pki := newTestPKI(t)
	s := &mtlsSpace{pki: pki, ca: newSpaceCAFiles(t, t.TempDir(), "space-ca"), shopExtra: shopExtra,
		shopDyno: echoHeadDyno(t), blogDyno: echoHeadDyno(t)}
	s.shopTLS = pki.leaf(t, "shop.test")
	s.blogTLS = pki.leaf(t, "blog.test")
	return s
}

// yaml is the config file of the space as it stands.
func (s *mtlsSpace) yaml() string {
	var b strings.Builder
	b.WriteString("space: " + mtlsSpaceName + "\nlisten: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\"}\n")
	b.WriteString(s.ca.yaml(s.previous...))
	b.WriteString("apps:\n")
	app := func(name, tlsLine, extra string, d *rawDyno) {
		fmt.Fprintf(&b, "  - name: %s\n    domains: [%s.test]\n    %s\n", name, name, tlsLine)
		for _, ln := range strings.Split(strings.TrimSpace(extra), "\n") {
			if ln != "" {
				b.WriteString("    " + ln + "\n")
			}
		}
		fmt.Fprintf(&b, "    dynos: [{name: web.1, address: %q}]\n", d.addr())
	}
	app("shop", s.shopTLS, s.shopExtra, s.shopDyno)
	app("blog", s.blogTLS, s.blogExtra, s.blogDyno)
	return b.String()
}

// start starts a router on the space.
func (s *mtlsSpace) start(t testing.TB) *mtlsRouter {
	t.Helper()
	return startMTLSRouter(t, s.pki, s.yaml())
}

// shop connects to app shop in mode m presenting certs.
func (mr *mtlsRouter) shop(t testing.TB, m mode, certs ...tls.Certificate) *mclient {
	t.Helper()
	return mr.mustDialM(t, m, dialOpts{sni: "shop.test", certs: certs})
}

// checkRefused checks a router-made 495/496 answer and its line.
func checkRefused(t testing.TB, mr *mtlsRouter, m mode, r mresult, path, code, cause string) {
	t.Helper()
	status := 495
	desc := "Client certificate rejected"
	if code == "H40" {
		status, desc = 496, "Client certificate required"
	}
	assert.Equal(t, status, r.status, "GET %s: %s%s", path, code, cause)
	line := mr.line(t, path)
	prefix := fmt.Sprintf(`at=warning code=%s desc=%q `, code, desc)
	if cause != "" {
		prefix += fmt.Sprintf("cause=%q ", cause)
	}
	assert.Contains(t, line, "heroku[router]: "+prefix+`method=GET path="`+path+`" host=shop.test `, "the %s line", code)
	assert.Contains(t, line, fmt.Sprintf(" dyno= connect= service= status=%d ", status), "no dyno was chosen: %s", line)
	assert.True(t, strings.HasSuffix(line, m.lineTail()), "a refused request has no client_cert=: %q", line)
}

// TestMTLSRequire: mtls require, over HTTP/1.1 over TLS and HTTP/2. No
// certificate: 496 and H40 with dyno= connect= service= empty; a good one:
// 200, the router's X-Forwarded-Client-Cert and X-SSL-Client-Verify
// SUCCESS for the dyno and client_cert= at the end of the line, on every
// request of the connection.
func TestMTLSRequire(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require, trust: [space]}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	good := issue(t, ca, "shop", "laptop")
	runModes(t, func(t *testing.T, m mode) {
		c := mr.shop(t, m)
		path := "/none-" + m.String()
		r := c.mustGet(t, path)
		checkRefused(t, mr, m, r, path, "H40", "")
		// The connection goes on: the next request is judged alike.
		r = c.mustGet(t, path+"-again")
		assert.Equal(t, 496, r.status, "a second request on the connection without a certificate")

		c = mr.shop(t, m, good.cert)
		for i := range 3 {
			path := fmt.Sprintf("/good-%s-%d", m, i)
			r := c.mustGet(t, path)
			require.Equal(t, 200, r.status, "GET %s with a certificate the space CA issued: %s", path, r.body)
			req := dynoHead(t, r.body)
			want := fmt.Sprintf(`Hash=%s;Subject="CN=laptop,OU=shop,O=%s";URI=%s`,
				fingerprintHex(good.leaf), mtlsSpaceName, spiffeOf("shop", good.id))
			assert.Equal(t, []string{want}, req.Header.Values("X-Forwarded-Client-Cert"), "XFCC of request %d", i)
			assert.Equal(t, []string{"SUCCESS"}, req.Header.Values("X-Ssl-Client-Verify"), "request %d", i)
			line := mr.line(t, path)
			assert.Contains(t, line, "at=info method=GET")
			assert.True(t, strings.HasSuffix(line, strings.TrimSuffix(m.lineTail(), "\n")+" client_cert="+good.short()+"\n"),
				"the line ends with client_cert=%s: %q", good.short(), line)
		}
	}, tlsModes)
}

// TestMTLSRejected: each H41 cause gets 495 and its line, over HTTP/1.1
// over TLS and HTTP/2, and never reaches the dyno.
func TestMTLSRejected(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t)
	// The current CA is a hand-made one valid for years, so a certificate
	// issued 14 months ago by the CA's own clock is expired, not unknown.
	cur := oldSpaceCAFiles(t, dir, "current", time.Now().AddDate(-3, 0, 0))
	retired := newSpaceCAFiles(t, dir, "retired")
	s := &mtlsSpace{pki: pki, ca: cur, shopExtra: "mtls: {mode: require}", shopDyno: echoHeadDyno(t), blogDyno: echoHeadDyno(t),
		previous: []string{fmt.Sprintf("{cert: %q, retire_at: %s}", retired.cert, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))}}
	s.shopTLS, s.blogTLS = pki.leaf(t, "shop.test"), pki.leaf(t, "blog.test")

	// Certificates made before the router starts.
	past := time.Now().AddDate(0, -14, 0)
	expired := issue(t, cur.open(t, func() time.Time { return past }), "shop", "old-laptop")
	require.True(t, expired.leaf.NotAfter.Before(time.Now()), "issued 14 months ago, valid 13: %v", expired.leaf.NotAfter)
	other := newSpaceCAFiles(t, t.TempDir(), "other")
	unknown := issue(t, other.open(t, nil), "shop", "stranger")
	fromRetired := issue(t, retired.open(t, nil), "shop", "before-rotation")
	u, _ := url.Parse(spiffeOf("shop", "0123456789abcdef"))
	badUsage := signByHand(t, cur, &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "server-only"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	noEKU := signByHand(t, cur, &x509.Certificate{SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: "no-eku"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature})
	mr := s.start(t)

	cases := []struct {
		name  string
		cert  issued
		cause string
	}{
		{"expired", expired, "expired"},
		{"unknown_ca", unknown, "unknown_ca"},
		{"bad_usage", badUsage, "bad_usage"},
		{"no_eku", noEKU, "bad_usage"},
		{"retired_ca", fromRetired, "retired_ca"},
	}
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := mr.shop(t, m, tc.cert.cert)
				for i := range 2 {
					path := fmt.Sprintf("/%s-%s-%d", tc.name, m, i)
					r := c.mustGet(t, path)
					checkRefused(t, mr, m, r, path, "H41", tc.cause)
					assert.NotContains(t, r.body, "GET "+path, "the dyno was not reached")
				}
			})
		}
	}, tlsModes)
	assert.Zero(t, s.shopDyno.accepted(), "no refused request reaches the dyno")
}

// waitStatus sends GET on c every 50 ms until the answer is want, and
// returns how long after from that took; it fails after limit.
func waitStatus(t testing.TB, c *mclient, from time.Time, limit time.Duration, want int, pathPrefix string) (time.Duration, string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		path := fmt.Sprintf("%s-%d", pathPrefix, i)
		r := c.mustGet(t, path)
		if r.status == want {
			return time.Since(from), path
		}
		require.Equal(t, 200, r.status, "GET %s before the change took effect", path)
		require.Less(t, time.Since(from), limit, "no %d within %v on the same connection", want, limit)
		<-tick.C
	}
}

// TestMTLSRevokedWithoutReload: spacerouter ca revoke (here ca.Revoke in
// the test, another CA handle on the same state directory) takes effect on
// the next request of an open connection within 2 s, without a reload
// (SPEC.md 11.3).
func TestMTLSRevokedWithoutReload(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	runModes(t, func(t *testing.T, m mode) {
		cert := issue(t, ca, "shop", "laptop-"+m.String())
		c := mr.shop(t, m, cert.cert)
		require.Equal(t, 200, c.mustGet(t, "/before-"+m.String()).status)
		_, changed, err := ca.Revoke(cert.id)
		require.NoError(t, err)
		require.True(t, changed)
		took, path := waitStatus(t, c, time.Now(), 3*time.Second, 495, "/after-"+m.String())
		assert.LessOrEqual(t, took, 2*time.Second, "revocation took effect after %v", took)
		checkRefused(t, mr, m, mresult{status: 495}, path, "H41", "revoked")
		// A new connection with it is refused too.
		r := mr.shop(t, m, cert.cert).mustGet(t, "/new-conn-"+m.String())
		checkRefused(t, mr, m, r, "/new-conn-"+m.String(), "H41", "revoked")
	}, tlsModes, modesNotParallel{})
}

// TestMTLSRetiredByReload: a reload that moves the space CA to previous
// with a retire_at already past refuses the next request of an open
// connection with H41 retired_ca; the connection is not reset.
func TestMTLSRetiredByReload(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	first := s.ca
	ca := first.open(t, nil)
	var conns []*mclient
	var certs []issued
	for _, m := range tlsModes {
		cert := issue(t, ca, "shop", "laptop-"+m.String())
		c := mr.shop(t, m, cert.cert)
		require.Equal(t, 200, c.mustGet(t, "/before-"+m.String()).status)
		conns, certs = append(conns, c), append(certs, cert)
	}
	// Rotate: a new CA, the old one retired an hour ago.
	s.ca = newSpaceCAFiles(t, t.TempDir(), "second")
	s.ca.state = first.state
	s.previous = []string{fmt.Sprintf("{cert: %q, retire_at: %s}", first.cert, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))}
	mr.reload(t, s.yaml())
	for i, c := range conns {
		path := "/after-reload-" + c.m.String()
		r := c.mustGet(t, path)
		checkRefused(t, mr, c.m, r, path, "H41", "retired_ca")
		_ = certs[i]
	}
	// A certificate of the new CA is good on a new connection.
	fresh := issue(t, s.ca.open(t, nil), "shop", "after-rotation")
	for _, m := range tlsModes {
		assert.Equal(t, 200, mr.shop(t, m, fresh.cert).mustGet(t, "/fresh-"+m.String()).status, "mode %s", m)
	}
}

// TestMTLSRetiredByClock: a previous CA whose retire_at comes while the
// router runs is retired at that time, without a reload: the next request
// of an open connection gets H41 retired_ca.
func TestMTLSRetiredByClock(t *testing.T) {
	dir := t.TempDir()
	prev := newSpaceCAFiles(t, dir, "previous")
	s := newMTLSSpace(t, "mtls: {mode: require}")
	s.ca = newSpaceCAFiles(t, dir, "current")
	retireAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	s.previous = []string{fmt.Sprintf("{cert: %q, retire_at: %s}", prev.cert, retireAt.UTC().Format(time.RFC3339))}
	cert := issue(t, prev.open(t, nil), "shop", "before-rotation")
	mr := s.start(t)
	// Both connections open before retire_at, in sequence (a parallel
	// test could be paused past it).
	conns := map[mode]*mclient{}
	for _, m := range tlsModes {
		c := mr.shop(t, m, cert.cert)
		require.Equal(t, 200, c.mustGet(t, "/before-"+m.String()).status, "before retire_at %v", retireAt)
		conns[m] = c
	}
	require.True(t, time.Now().Before(retireAt), "the connections opened before retire_at")
	for _, m := range tlsModes {
		took, path := waitStatus(t, conns[m], retireAt, 2*time.Second, 495, "/clock-"+m.String())
		assert.Less(t, took, 500*time.Millisecond, "mode %s: retired %v after retire_at", m, took)
		checkRefused(t, mr, m, mresult{status: 495}, path, "H41", "retired_ca")
	}
}

// TestMTLSOptional: under optional, no certificate or a refused one is
// forwarded with X-SSL-Client-Verify NONE or FAILED:<cause>, never 495 or
// 496, and nothing of a refused certificate reaches the dyno.
func TestMTLSOptional(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: optional}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	good := issue(t, ca, "shop", "laptop")
	other := newSpaceCAFiles(t, t.TempDir(), "other")
	stranger := issue(t, other.open(t, nil), "shop", "stranger")
	runModes(t, func(t *testing.T, m mode) {
		cases := []struct {
			name   string
			certs  []tls.Certificate
			verify string
		}{
			{"none", nil, "NONE"},
			{"unknown", []tls.Certificate{stranger.cert}, "FAILED:unknown_ca"},
			{"good", []tls.Certificate{good.cert}, "SUCCESS"},
		}
		for _, tc := range cases {
			path := "/optional-" + tc.name + "-" + m.String()
			r := mr.shop(t, m, tc.certs...).mustGet(t, path)
			require.Equal(t, 200, r.status, "%s under optional", tc.name)
			req := dynoHead(t, r.body)
			assert.Equal(t, []string{tc.verify}, req.Header.Values("X-Ssl-Client-Verify"), tc.name)
			line := mr.line(t, path)
			if tc.name == "good" {
				assert.Len(t, req.Header.Values("X-Forwarded-Client-Cert"), 1)
				assert.Contains(t, line, " client_cert="+good.short()+"\n")
				continue
			}
			assert.Empty(t, req.Header.Values("X-Forwarded-Client-Cert"), "%s: no XFCC", tc.name)
			assert.NotContains(t, r.body, "stranger", "nothing of the refused certificate")
			assert.NotContains(t, line, "client_cert=", tc.name)
			assert.Contains(t, line, "at=info ", tc.name)
		}
	}, tlsModes)
}

// TestMTLSForwardNone: forward none sends the dyno neither XFCC nor
// X-SSL-Client-Verify (and drops the client's), and the line still has
// client_cert=.
func TestMTLSForwardNone(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require, forward: none}")
	mr := s.start(t)
	good := issue(t, s.ca.open(t, nil), "shop", "laptop")
	runModes(t, func(t *testing.T, m mode) {
		path := "/forward-none-" + m.String()
		r := mr.shop(t, m, good.cert).mustGet(t, path, "X-SSL-Client-Verify", "SUCCESS", "X-Forwarded-Client-Cert", "Hash=forged")
		require.Equal(t, 200, r.status)
		assert.NotContains(t, strings.ToLower(r.body), "x-forwarded-client-cert")
		assert.NotContains(t, strings.ToLower(r.body), "x-ssl-client")
		assert.Contains(t, mr.line(t, path), " client_cert="+good.short()+"\n")
	}, tlsModes)
}

// TestMTLSClientSentFieldsDropped: X-Forwarded-Client-Cert and
// X-SSL-Client-* a client sends never reach a dyno, on an app with mtls
// or without, over HTTP/1 (plain and TLS) and HTTP/2; other fields that
// merely look alike pass.
func TestMTLSClientSentFieldsDropped(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: optional}")
	mr := s.start(t)
	good := issue(t, s.ca.open(t, nil), "shop", "laptop")
	forged := []string{
		"X-Forwarded-Client-Cert", `Hash=00;Subject="CN=admin";URI=spiffe://my-space/apps/shop/clients/x`,
		"X-SSL-Client-Verify", "SUCCESS",
		"X-Ssl-Client-Subject", "CN=admin",
		"x-ssl-client-dn", "CN=admin",
		"X-Forwarded-Client", "kept",
		"X-SSL-Clientele", "kept",
	}
	runModes(t, func(t *testing.T, m mode) {
		type target struct {
			sni   string
			certs []tls.Certificate
		}
		targets := []target{{"blog.test", nil}}
		if m.tls() {
			targets = append(targets, target{"shop.test", nil}, target{"shop.test", []tls.Certificate{good.cert}})
		} else {
			targets = append(targets, target{"shop.test", nil})
		}
		for i, tg := range targets {
			c := mr.mustDialM(t, m, dialOpts{sni: tg.sni, certs: tg.certs})
			path := fmt.Sprintf("/forged-%s-%d", m, i)
			r := c.mustGet(t, path, forged...)
			require.Equal(t, 200, r.status, "%s %s", tg.sni, path)
			req := dynoHead(t, r.body)
			for _, name := range []string{"X-Forwarded-Client-Cert", "X-Ssl-Client-Verify"} {
				for _, v := range req.Header.Values(name) {
					assert.NotContains(t, v, "admin", "%s: the client's %s reached the dyno", tg.sni, name)
				}
			}
			assert.Empty(t, req.Header.Values("X-Ssl-Client-Subject"), "%s %s", tg.sni, m)
			assert.Empty(t, req.Header.Values("X-Ssl-Client-Dn"), "%s %s", tg.sni, m)
			assert.Equal(t, "kept", req.Header.Get("X-Forwarded-Client"), "a field that only starts alike passes")
			assert.Equal(t, "kept", req.Header.Get("X-Ssl-Clientele"), "a field that only starts alike passes")
			switch {
			case tg.sni == "blog.test":
				// No mtls on blog: nothing is said of certificates.
				assert.Empty(t, req.Header.Values("X-Forwarded-Client-Cert"), "%s %s", tg.sni, m)
				assert.Empty(t, req.Header.Values("X-Ssl-Client-Verify"), "%s %s", tg.sni, m)
			case len(tg.certs) > 0:
				assert.Equal(t, []string{"SUCCESS"}, req.Header.Values("X-Ssl-Client-Verify"))
				assert.Len(t, req.Header.Values("X-Forwarded-Client-Cert"), 1, "the router's only")
			default:
				assert.Equal(t, []string{"NONE"}, req.Header.Values("X-Ssl-Client-Verify"))
				assert.Empty(t, req.Header.Values("X-Forwarded-Client-Cert"))
			}
		}
	})
}

// TestMTLSOnlyMTLSAppsAsk: only an app with mtls asks for a certificate in
// the handshake (the SNI name decides); a certificate sent to an app
// without mtls is never asked for.
func TestMTLSOnlyMTLSAppsAsk(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	good := issue(t, s.ca.open(t, nil), "shop", "laptop")
	for _, m := range tlsModes {
		for _, tc := range []struct {
			sni  string
			want bool
		}{{"blog.test", false}, {"shop.test", true}} {
			var asked bool
			c := mr.mustDialM(t, m, dialOpts{sni: tc.sni, certs: []tls.Certificate{good.cert}, asked: &asked})
			r := c.mustGet(t, "/ask-"+tc.sni+"-"+m.String())
			assert.Equal(t, 200, r.status)
			assert.Equal(t, tc.want, asked, "%s in mode %s: asked for a client certificate", tc.sni, m)
		}
	}
}

// TestMTLSBadHandshake: a certificate the TLS stack cannot parse, or a
// CertificateVerify made with another key, fails the handshake itself:
// the client gets an alert, no request is answered, no router line is
// written, the failure is counted; the router goes on serving.
func TestMTLSBadHandshake(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	good := issue(t, s.ca.open(t, nil), "shop", "laptop")
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	garbageKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cases := map[string]tls.Certificate{
		"malformed":     {Certificate: [][]byte{[]byte("not a certificate")}, PrivateKey: garbageKey},
		"wrong key":     {Certificate: good.cert.Certificate, PrivateKey: otherKey},
		"truncated DER": {Certificate: [][]byte{good.cert.Certificate[0][:len(good.cert.Certificate[0])/2]}, PrivateKey: good.cert.PrivateKey},
	}
	before := mr.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "error"})
	n := 0
	for name, cert := range cases {
		for _, m := range tlsModes {
			n++
			proto := "http/1.1"
			if m == modeH2 {
				proto = "h2"
			}
			tc, err := tls.Dial("tcp", mr.HTTPSAddr().String(), &tls.Config{RootCAs: mr.pki.pool, ServerName: "shop.test",
				NextProtos: []string{proto}, Certificates: []tls.Certificate{cert}})
			if err == nil {
				// TLS 1.3: the client's handshake ends before the server
				// reads its certificate; the alert comes on the first read.
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = tc.Read(make([]byte, 1))
				tc.Close()
			}
			require.Error(t, err, "%s in mode %s", name, m)
			assert.Contains(t, err.Error(), "remote error: tls:", "%s in mode %s: an alert", name, m)
		}
	}
	assert.Equal(t, 0, mr.lines.count(), "no router line for a failed handshake")
	require.Eventually(t, func() bool {
		return mr.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "error"}) == before+float64(n)
	}, 5*time.Second, 10*time.Millisecond, "each failed handshake counted once")
	assert.Equal(t, 200, mr.shop(t, modeH2, good.cert).mustGet(t, "/still-serving").status)
}

// TestMTLSExpiredIssuedByInit: spaceca.Init dates its CA from now, so a
// certificate issued by a clock set 14 months back is older than its CA;
// it is refused either way (expired or unknown_ca), never accepted.
func TestMTLSExpiredIssuedByInit(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	past := time.Now().AddDate(0, -14, 0)
	old := issue(t, s.ca.open(t, func() time.Time { return past }), "shop", "old")
	r := mr.shop(t, modeH1TLS, old.cert).mustGet(t, "/older-than-ca")
	assert.Equal(t, 495, r.status)
	cause := field(mr.line(t, "/older-than-ca"), "cause")
	assert.Contains(t, []string{string(spaceca.CauseExpired), string(spaceca.CauseUnknownCA)}, cause)
}

// TestMTLSRequirePlainHTTP: plain HTTP carries no certificate, so an app
// with mtls require answers it 496 with H40: http:// is no way around the
// requirement.
func TestMTLSRequirePlainHTTP(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	c := mr.mustDialM(t, modeH1, dialOpts{sni: "shop.test"})
	checkRefused(t, mr, modeH1, c.mustGet(t, "/plain"), "/plain", "H40", "")
	assert.Zero(t, s.shopDyno.accepted())
}

// TestMTLSResumedSession: a connection that resumes a TLS session carries
// the client certificate of the session it resumes (crypto/tls keeps it in
// the ticket), so it is judged as the first was: verified, and refused
// once revoked.
func TestMTLSResumedSession(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}")
	mr := s.start(t)
	ca := s.ca.open(t, nil)
	for _, m := range tlsModes {
		t.Run(m.String(), func(t *testing.T) {
			cert := issue(t, ca, "shop", "laptop-"+m.String())
			proto := "http/1.1"
			if m == modeH2 {
				proto = "h2"
			}
			cfg := &tls.Config{RootCAs: mr.pki.pool, ServerName: "shop.test", NextProtos: []string{proto},
				Certificates: []tls.Certificate{cert.cert}, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			get := func(path string) (bool, mresult) {
				tc, err := tls.Dial("tcp", mr.HTTPSAddr().String(), cfg)
				require.NoError(t, err)
				t.Cleanup(func() { tc.Close() })
				c := &mclient{m: m, sni: "shop.test", nc: tc, br: bufio.NewReader(tc), tlsS: tc.ConnectionState()}
				if m == modeH2 {
					c.h2, err = (&http2.Transport{}).NewClientConn(tc)
					require.NoError(t, err)
				}
				r := c.mustGet(t, path)
				return tc.ConnectionState().DidResume, r
			}
			resumed, r := get("/first-" + m.String())
			require.False(t, resumed)
			require.Equal(t, 200, r.status)
			// The ticket comes after the handshake (TLS 1.3): a second
			// connection resumes.
			resumed, r = get("/resumed-" + m.String())
			require.True(t, resumed, "the second connection resumes the session")
			assert.Equal(t, 200, r.status, "a resumed connection has the session's certificate: %s", r.body)
			assert.Contains(t, mr.line(t, "/resumed-"+m.String()), " client_cert="+cert.short()+"\n")
			_, _, err := ca.Revoke(cert.id)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				_, r := get("/revoked-" + m.String())
				return r.status == 495
			}, 3*time.Second, 100*time.Millisecond, "a resumed connection with a revoked certificate is refused")
		})
	}
}
