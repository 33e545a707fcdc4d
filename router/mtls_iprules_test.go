package router

// Issue 11, ip_rules (SPEC.md 11.2, H42): the TCP peer address decides;
// plain HTTP gets 403 and an H42 line, TLS the handshake refused with
// access_denied; a reload applies to the next request of an open
// connection.

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/logging"
)

// checkH42 checks a 403 answer and its H42 line.
func checkH42(t testing.TB, mr *mtlsRouter, m mode, r mresult, path string) {
	t.Helper()
	assert.Equal(t, 403, r.status, "GET %s from outside the rules", path)
	line := mr.line(t, path)
	assert.Contains(t, line, `heroku[router]: at=warning code=H42 desc="Forbidden by IP rule" method=GET path="`+path+`" host=shop.test `)
	assert.Contains(t, line, " dyno= connect= service= status=403 ", "no dyno was chosen: %s", line)
	assert.True(t, strings.HasSuffix(line, m.lineTail()), "the line of mode %s: %q", m, line)
}

// TestIPRulesPlainHTTP: over plain HTTP an address outside the rules gets
// 403 and H42, whatever X-Forwarded-For says; an address inside them, and
// every address on an app without rules, is served.
func TestIPRulesPlainHTTP(t *testing.T) {
	s := newMTLSSpace(t, "ip_rules: [{cidr: 127.0.0.1/32, description: office}]")
	mr := s.start(t)
	from := func(local, sni string) *mclient { return mr.mustDialM(t, modeH1, dialOpts{sni: sni, local: local}) }

	c := from("127.0.0.2", "shop.test")
	checkH42(t, mr, modeH1, c.mustGet(t, "/outside"), "/outside")
	checkH42(t, mr, modeH1, c.mustGet(t, "/outside-xff", "X-Forwarded-For", "127.0.0.1"), "/outside-xff")
	assert.Equal(t, `127.0.0.1, 127.0.0.2`, field(mr.line(t, "/outside-xff"), "fwd"), "the line's fwd is what the dyno would get")
	assert.Equal(t, float64(2), mr.metric(t, "spacerouter_ip_rule_denials_total", map[string]string{"app": "shop"}))
	assert.Equal(t, 200, from("127.0.0.2", "blog.test").mustGet(t, "/blog").status, "an app without ip_rules takes every address")
	r := from("127.0.0.1", "shop.test").mustGet(t, "/inside", "X-Forwarded-For", "203.0.113.9")
	assert.Equal(t, 200, r.status, "from 127.0.0.1, inside the rules (X-Forwarded-For does not count)")
	assert.Zero(t, s.shopDyno.accepted()-1, "only the allowed request reached shop's dyno")
	assert.Equal(t, float64(2), mr.metric(t, "spacerouter_ip_rule_denials_total", map[string]string{"app": "shop"}))
}

// TestIPRulesTLS: over TLS an address outside the rules gets the handshake
// refused with access_denied, counted with reason ip_rule and logged with
// the SNI name; no router line; other apps and allowed addresses are
// served.
func TestIPRulesTLS(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: optional}\nip_rules: [{cidr: 127.0.0.1/32, description: office}]")
	mr := s.start(t)
	good := issue(t, s.ca.open(t, nil), "shop", "laptop")
	for _, m := range tlsModes {
		_, err := mr.dialM(t, m, dialOpts{sni: "shop.test", local: "127.0.0.2", certs: nil})
		require.Error(t, err, "mode %s from 127.0.0.2", m)
		assert.Contains(t, err.Error(), "remote error: tls: access denied", "mode %s: alert access_denied", m)
		_, err = mr.dialM(t, m, dialOpts{sni: "shop.test", local: "127.0.0.2", certs: []tls.Certificate{good.cert}})
		require.Error(t, err, "a good client certificate does not open the door")
		assert.Contains(t, err.Error(), "remote error: tls: access denied", "mode %s with a certificate", m)
		assert.Equal(t, 200, mr.mustDialM(t, m, dialOpts{sni: "blog.test", local: "127.0.0.2"}).mustGet(t, "/blog-"+m.String()).status)
		c := mr.mustDialM(t, m, dialOpts{sni: "shop.test", local: "127.0.0.1"})
		assert.Equal(t, 200, c.mustGet(t, "/inside-"+m.String()).status)
	}
	assert.Equal(t, float64(4), mr.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "ip_rule"}))
	assert.Equal(t, 4, mr.logs.FilterMessage("TLS handshake refused").FilterField(zap.String(logging.KeyReason, "ip_rule")).FilterField(zap.String(logging.KeySNI, "shop.test")).Len(),
		"the operational log records each refusal with the SNI name")
	assert.Zero(t, mr.metric(t, "spacerouter_ip_rule_denials_total", map[string]string{"app": "shop"}), "no request was refused: no handshake finished")
	mr.lines.wait(t, 3) // the 4 requests' lines are written after their responses
	assert.Equal(t, 4, mr.lines.count(), "a refused handshake writes no router line: only the 4 requests served have one")
}

// TestIPRulesTLSFailureCountedOnce: a handshake refused by ip_rules is one
// handshake failure, of reason ip_rule, not also one of reason error.
func TestIPRulesTLSFailureCountedOnce(t *testing.T) {
	s := newMTLSSpace(t, "ip_rules: [{cidr: 127.0.0.1/32, description: office}]")
	mr := s.start(t)
	_, err := mr.dialM(t, modeH1TLS, dialOpts{sni: "shop.test", local: "127.0.0.2"})
	require.Error(t, err)
	require.Eventually(t, func() bool {
		return mr.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "ip_rule"}) == 1
	}, 5*time.Second, 10*time.Millisecond)
	// The connection's goroutine logs the failed handshake after counting
	// it.
	require.Eventually(t, func() bool { return mr.logs.FilterMessage("TLS handshake failed").Len() == 1 },
		5*time.Second, 10*time.Millisecond)
	assert.Zero(t, mr.metric(t, "spacerouter_tls_handshake_failures_total", map[string]string{"reason": "error"}),
		"the ip_rule refusal is counted again as reason error")
}

// TestIPRulesReload: a reload that removes an address from the rules
// answers the next request of an open connection from it 403 with H42,
// over plain HTTP/1, HTTP/1 over TLS and HTTP/2; the connection is not
// reset.
func TestIPRulesReload(t *testing.T) {
	s := newMTLSSpace(t, "ip_rules: [{cidr: 127.0.0.1/32, description: office}, {cidr: 127.0.0.3/32, description: vpn}]")
	mr := s.start(t)
	conns := map[mode]*mclient{}
	for _, m := range allModes {
		c := mr.mustDialM(t, m, dialOpts{sni: "shop.test", local: "127.0.0.1"})
		require.Equal(t, 200, c.mustGet(t, "/before-"+m.String()).status, "mode %s", m)
		conns[m] = c
	}
	s.shopExtra = "ip_rules: [{cidr: 127.0.0.3/32, description: vpn}]"
	mr.reload(t, s.yaml())
	for _, m := range allModes {
		path := "/after-" + m.String()
		checkH42(t, mr, m, conns[m].mustGet(t, path), path)
		// And the next one too: the connection stays, refused.
		path = "/after-again-" + m.String()
		checkH42(t, mr, m, conns[m].mustGet(t, path), path)
	}
	assert.Equal(t, float64(6), mr.metric(t, "spacerouter_ip_rule_denials_total", map[string]string{"app": "shop"}))
	// From the address still allowed, all is well.
	for _, m := range allModes {
		r := mr.mustDialM(t, m, dialOpts{sni: "shop.test", local: "127.0.0.3"}).mustGet(t, "/vpn-"+m.String())
		assert.Equal(t, 200, r.status, "mode %s from 127.0.0.3", m)
	}
	// A new TLS connection from 127.0.0.1 is refused in the handshake now.
	_, err := mr.dialM(t, modeH1TLS, dialOpts{sni: "shop.test", local: "127.0.0.1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "access denied")
}

// TestIPRulesWithMTLSRequire: the address is judged before the
// certificate, so a connection from outside the rules is refused for its
// address even over plain HTTP without a certificate (H42, not H40).
func TestIPRulesWithMTLSRequire(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}\nip_rules: [{cidr: 127.0.0.1/32, description: office}]")
	mr := s.start(t)
	c := mr.mustDialM(t, modeH1, dialOpts{sni: "shop.test", local: "127.0.0.2"})
	checkH42(t, mr, modeH1, c.mustGet(t, "/plain-outside"), "/plain-outside")
	c = mr.mustDialM(t, modeH1, dialOpts{sni: "shop.test", local: "127.0.0.1"})
	r := c.mustGet(t, "/plain-inside")
	checkRefused(t, mr, modeH1, r, "/plain-inside", "H40", "")
}

// TestClientRefusalText: the router's 495, 496 and 403 say what is wrong
// in their reason phrase and one-line body, as its other answers do ("421
// Misdirected Request"), rather than the placeholder "Status".
func TestClientRefusalText(t *testing.T) {
	s := newMTLSSpace(t, "mtls: {mode: require}\nip_rules: [{cidr: 127.0.0.1/32, description: office}]")
	mr := s.start(t)
	stranger := issue(t, newSpaceCAFiles(t, t.TempDir(), "other").open(t, nil), "shop", "stranger")
	cases := []struct {
		name string
		c    *mclient
		want int
	}{
		{"no certificate", mr.mustDialM(t, modeH1TLS, dialOpts{sni: "shop.test", local: "127.0.0.1"}), 496},
		{"unknown CA", mr.mustDialM(t, modeH1TLS, dialOpts{sni: "shop.test", local: "127.0.0.1", certs: []tls.Certificate{stranger.cert}}), 495},
		{"outside ip_rules", mr.mustDialM(t, modeH1, dialOpts{sni: "shop.test", local: "127.0.0.2"}), 403},
	}
	for _, tc := range cases {
		r := tc.c.mustGet(t, "/text")
		require.Equal(t, tc.want, r.status, tc.name)
		assert.NotEqual(t, "Status", r.reason, "%s: the reason phrase of %d", tc.name, r.status)
		assert.NotEqual(t, "Status\n", r.body, "%s: the body of %d", tc.name, r.status)
	}
}
