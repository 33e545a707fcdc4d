package router

// TLS to dynos (issue 12, SPEC.md 12.4): real TLS dynos with certificates
// made here, from an old and a new CA.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// TestDynoTLSRotation: under verify-full, a trust bundle that holds the old
// and the new CA side by side verifies dynos with certificates from
// either; the router sends the dyno's host name as SNI and offers
// http/1.1 only. Both ways of listing them: one bundle with both, or one
// bundle each.
func TestDynoTLSRotation(t *testing.T) {
	oldCA, newCA := newDynoCA(t, "dynos 2025"), newDynoCA(t, "dynos 2026")
	oneFile := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{oldCA, newCA})
	oldFile := writeBundle(t, bundlePath(t, "dynos-2025.pem"), []*dynoCA{oldCA})
	newFile := writeBundle(t, bundlePath(t, "dynos-2026.pem"), []*dynoCA{newCA})
	runModes(t, func(t *testing.T, m mode) {
		for _, trust := range [][]string{{oneFile}, {newFile, oldFile}} {
			t.Run(fmt.Sprintf("%d bundles", len(trust)), func(t *testing.T) {
				dOld := startTLSDyno(t, oldCA.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("old"))
				dNew := startTLSDyno(t, newCA.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("new"))
				mr := startModeRouter(t, m, "", dynoTLSYAML(config.DynoTLSVerifyFull, "", trust...),
					"localhost:"+dOld.port(), "localhost:"+dNew.port())
				seen := map[string]int{}
				for i := 0; i < 60 && (seen["old"] == 0 || seen["new"] == 0 || i < 10); i++ {
					r := mr.do(t, mreq{method: "GET", path: fmt.Sprintf("/r%d", i)})
					require.Equal(t, 200, r.status, "request %d: line %q", i, r.line)
					seen[string(r.body)]++
					assert.NotContains(t, r.line, "code=", "request %d", i)
					mr.assertLine(t, r.line)
				}
				assert.Positive(t, seen["old"], "the dyno with the old CA's certificate served no request: %v", seen)
				assert.Positive(t, seen["new"], "the dyno with the new CA's certificate served no request: %v", seen)
				for _, d := range []*tlsDyno{dOld, dNew} {
					snis, alpns := d.hellos()
					require.NotEmpty(t, snis)
					for i := range snis {
						assert.Equal(t, "localhost", snis[i], "SNI is the host of the dyno's address")
						assert.Equal(t, []string{"http/1.1"}, alpns[i], "ALPN offers HTTP/1.1 only")
					}
				}
			})
		}
	})
}

// TestDynoTLSRejected: a dyno whose certificate fails verification gets
// 503 with an H43 line naming the cause, the dyno and the connect time,
// no service time (SPEC.md 6, 7, 12.4), over HTTP/1 and HTTP/2 clients.
func TestDynoTLSRejected(t *testing.T) {
	ca, other := newDynoCA(t, "dynos"), newDynoCA(t, "someone else")
	// An old CA that expired, still listed: a certificate it signed is
	// refused as expired (crypto/x509 names the CA's validity).
	gone := newDynoCAUntil(t, "dynos 2024", time.Now().Add(-time.Hour))
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca, gone})
	cases := []struct {
		name, cause string
		issuer      *dynoCA
		cert        dynoCert
	}{
		{"expired", "expired", ca, dynoCert{names: []string{"localhost"}, expired: true}},
		{"unknown CA", "unknown_ca", other, dynoCert{names: []string{"localhost"}}},
		{"self-signed", "unknown_ca", nil, dynoCert{names: []string{"localhost"}}},
		{"expired CA", "expired", gone, dynoCert{names: []string{"localhost"}}},
		{"wrong name", "name_mismatch", ca, dynoCert{names: []string{"web.elsewhere.internal"}}},
		{"client certificate", "bad_usage", ca, dynoCert{names: []string{"localhost"}, eku: x509.ExtKeyUsageClientAuth}},
	}
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				d := startTLSDyno(t, tc.issuer.issue(t, tc.cert), okHandler("never"))
				mr := startModeRouter(t, m, "", dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+d.port())
				r := mr.do(t, mreq{method: "GET", path: "/x"})
				assert.Equal(t, 503, r.status)
				want := `at=error code=H43 desc="Backend certificate rejected" cause="` + tc.cause + `" `
				assert.Contains(t, r.line, want)
				assert.Contains(t, r.line, " dyno=web.1 connect=")
				assert.Contains(t, r.line, "ms service= status=503 ")
				mr.assertLine(t, r.line)
				assert.Equal(t, 1.0, mr.dynoHandshakes(t, tc.cause), "spacerouter_dyno_tls_handshakes_total{result=%q}", tc.cause)
				all, _ := d.handshakeCount()
				assert.Zero(t, all, "no handshake completes at the dyno")
			})
		}
	})
}

// TestDynoTLSNotRetried: H43 is answered at once, not tried on another
// dyno (SPEC.md 12.4), unlike a refused connect; and the dyno is then
// passed over for 5 s while another is fine, like one that refuses
// connections (SPEC.md 4.5): a rejected certificate fails every request
// until it is fixed.
func TestDynoTLSNotRetried(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	bad := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}, expired: true}), okHandler("bad"))
	good := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("good"))
	tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+bad.port(), "localhost:"+good.port()))
	h43 := -1
	for i := 0; i < 60; i++ {
		resp, body := tr.roundTrip(t, fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i), "GET")
		line := tr.lines.wait(t, i)
		if resp.StatusCode == 503 {
			require.Equal(t, -1, h43, "a second H43 at request %d: the bad dyno must be passed over for 5 s; line %q", i, line)
			h43 = i
			assert.Contains(t, line, `code=H43 desc="Backend certificate rejected" cause="expired" `)
			assert.Contains(t, line, " dyno=web.1 ", "the line names the dyno whose certificate was rejected")
			// The request went nowhere else: the good dyno has seen only
			// the requests answered 200 so far (one pooled connection).
			continue
		}
		require.Equal(t, 200, resp.StatusCode, "request %d: %q", i, line)
		assert.Equal(t, "good", body)
		if h43 >= 0 && i > h43+20 {
			break
		}
	}
	require.GreaterOrEqual(t, h43, 0, "the random pick never chose the dyno with the expired certificate")
	assert.Equal(t, 1, bad.accepted(), "one connect to the bad dyno: no retry of the request, then passed over")
	assert.Equal(t, 1, good.accepted(), "the good dyno's pooled connection served every other request")
}

// TestDynoTLSVerifyCA: verify-ca checks the chain and not the name, and
// sends no SNI to a dyno at an IP address (server_name is verify-full's).
func TestDynoTLSVerifyCA(t *testing.T) {
	t.Parallel()
	ca, other := newDynoCA(t, "dynos"), newDynoCA(t, "someone else")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	wrongName := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"web.elsewhere.internal"}}), okHandler("ok"))
	unknown := startTLSDyno(t, other.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("never"))
	tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyCA, "", trust), wrongName.addr()))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 200, resp.StatusCode, "verify-ca does not check the name: %q", tr.lines.wait(t, 0))
	assert.Equal(t, "ok", body)
	snis, _ := wrongName.hellos()
	assert.Equal(t, []string{""}, snis, "no SNI for an IP address under verify-ca")

	tr = startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyCA, "", trust), "localhost:"+unknown.port()))
	resp, _ = tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, tr.lines.wait(t, 0), `code=H43 desc="Backend certificate rejected" cause="unknown_ca" `)
	snis, _ = unknown.hellos()
	assert.Equal(t, []string{"localhost"}, snis, "SNI is the host name of the address")
}

// TestDynoTLSRequire: require speaks TLS and verifies nothing: expired,
// unknown-CA, wrong-name and self-signed certificates all serve.
func TestDynoTLSRequire(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "anyone")
	for _, tc := range []struct {
		name   string
		issuer *dynoCA
		cert   dynoCert
	}{
		{"expired", ca, dynoCert{names: []string{"localhost"}, expired: true}},
		{"wrong name", ca, dynoCert{names: []string{"web.elsewhere.internal"}}},
		{"self-signed", nil, dynoCert{names: []string{"localhost"}}},
		{"client certificate", ca, dynoCert{names: []string{"localhost"}, eku: x509.ExtKeyUsageClientAuth}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startTLSDyno(t, tc.issuer.issue(t, tc.cert), okHandler("tls"))
			tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSRequire, ""), d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 200, resp.StatusCode, "line %q", tr.lines.wait(t, 0))
			assert.Equal(t, "tls", body)
			all, _ := d.handshakeCount()
			assert.Equal(t, 1, all)
			snis, _ := d.hellos()
			assert.Equal(t, []string{""}, snis, "no SNI for an IP address under require")
		})
	}
}

// TestDynoTLSServerNameForIP: under verify-full a dyno at an IP address is
// checked against dyno_tls.server_name, which is also its SNI.
func TestDynoTLSServerNameForIP(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	right := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"web.shop.internal"}}), okHandler("right"))
	// A certificate for the IP address itself is no certificate for the
	// name verify-full checks.
	ipOnly := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"127.0.0.1"}}), okHandler("never"))
	tlsLine := dynoTLSYAML(config.DynoTLSVerifyFull, "web.shop.internal", trust)

	tr := startRouter(t, oneApp(tlsLine, right.addr()))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 200, resp.StatusCode, "line %q", tr.lines.wait(t, 0))
	assert.Equal(t, "right", body)
	snis, _ := right.hellos()
	assert.Equal(t, []string{"web.shop.internal"}, snis, "SNI is server_name for an IP address")

	tr = startRouter(t, oneApp(tlsLine, ipOnly.addr()))
	resp, _ = tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, tr.lines.wait(t, 0), `code=H43 desc="Backend certificate rejected" cause="name_mismatch" `)
}

// TestDynoTLSPooled: TLS dyno connections are pooled like plain ones: many
// requests from many client connections, one connection and one
// handshake at the dyno (SPEC.md 12.4), over HTTP/1 and HTTP/2 clients.
func TestDynoTLSPooled(t *testing.T) {
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	runModes(t, func(t *testing.T, m mode) {
		d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("pooled"))
		mr := startModeRouter(t, m, "", dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+d.port())
		addr := "localhost:" + d.port()
		for i := range 40 {
			r := mr.do(t, mreq{method: "GET", path: fmt.Sprintf("/p%d", i)})
			require.Equal(t, 200, r.status, "request %d: %q", i, r.line)
			require.Equal(t, "pooled", string(r.body))
			mr.waitTLSIdle(t, addr, 1)
		}
		assert.Equal(t, 1, d.accepted(), "40 sequential requests share one TLS dyno connection")
		all, _ := d.handshakeCount()
		assert.Equal(t, 1, all, "handshakes at the dyno")
		assert.Equal(t, 1.0, mr.dynoHandshakes(t, "ok"))
		assert.Zero(t, mr.strayCount(t), "a pooled TLS connection is no stray")
	})
}

// TestDynoTLSResumed: a new connection to a dyno resumes the session of an
// earlier one (no certificate sent, no signature), and the certificate of
// the session is verified again.
func TestDynoTLSResumed(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("ok"))
	tr := startRouter(t, oneApp("features: [http-disable-keepalive-to-dyno]\n"+dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+d.port()))
	for i := range 4 {
		resp, _ := tr.roundTrip(t, dyGetShop, "GET")
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
		tr.lines.wait(t, i)
	}
	all, resumed := d.handshakeCount()
	assert.Equal(t, 4, all, "one connection per request (disable-keepalive-to-dyno)")
	assert.Equal(t, 3, resumed, "every connection after the first resumes")
	assert.Equal(t, 1.0, tr.dynoHandshakes(t, "ok"))
	assert.Equal(t, 3.0, tr.dynoHandshakes(t, "resumed"))
}

// TestDynoTLSStrayBytes is issue 9 item 1 over TLS: application data a
// dyno sends after a response ended poisons its connection, whether it
// came in the response's record or later; the next request gets its own
// response on a fresh connection, and the stray bytes are counted.
func TestDynoTLSStrayBytes(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	cert := ca.issue(t, dynoCert{names: []string{"localhost"}})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/late"},
		{"GET", "/204"},
		{"GET", "/204-2"},
		{"HEAD", "/head"},
		{"HEAD", "/head-2"},
		{"GET", "/extra"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			t.Parallel()
			d := newStrayDyno()
			td := startTLSDyno(t, cert, func(c net.Conn) { d.serve(t, c) })
			d.rawDyno = td.rawDyno
			tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+td.port()))
			d.misbehave(t, tr, tc.method, "shop.test", tc.path)
			tr.lines.wait(t, 0)
			for i := range 3 {
				resp, body := tr.roundTrip(t, fmt.Sprintf("GET /victim%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i), "GET")
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, fmt.Sprintf("fresh-/victim%d", i), body,
					"after %s %s the TLS dyno sent stray bytes; another client's GET /victim%d must not read them", tc.method, tc.path, i)
				assert.Empty(t, resp.Header.Get("Set-Cookie"), "another user's cookie leaked")
			}
			assert.Equal(t, int64(4), d.requests.Load(), "requests at the dyno")
			assert.GreaterOrEqual(t, td.accepted(), 2, "the poisoned connection is not reused")
			assert.Equal(t, 1.0, tr.strayCount(t), "spacerouter_dyno_stray_bytes_total")
		})
	}
}

// TestDynoTLSCloseNotify: a dyno that ends an idle connection with
// close_notify (as Go's and nginx's servers do at their idle timeout),
// with or without closing the socket, is no stray: the connection is
// closed quietly and the next request goes out on a fresh one, with no
// error.
func TestDynoTLSCloseNotify(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	cert := ca.issue(t, dynoCert{names: []string{"localhost"}})
	for _, tc := range []struct {
		name string
		end  func(c *tls.Conn)
	}{
		// close_notify without a FIN: only TLS can tell it from data.
		{"close_notify only", func(c *tls.Conn) { c.CloseWrite() }},
		// close_notify and the FIN, as a server's idle timeout does.
		{"close_notify and close", func(c *tls.Conn) { c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			closeNow := make(chan struct{})
			sent := make(chan struct{}, 1)
			var served atomic.Int32
			d := startTLSDyno(t, cert, func(c net.Conn) {
				n := served.Add(1)
				okOnce(c, "first")
				if n > 1 {
					okHandler("fresh")(c)
					return
				}
				<-closeNow
				tc.end(c.(*tls.Conn)) // the alert is written when it returns
				sent <- struct{}{}
				c.Read(make([]byte, 1)) // until the router closes
			})
			tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), "localhost:"+d.port()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "first", body)
			tr.waitTLSIdle(t, "localhost:"+d.port(), 1)
			pools := tr.tlsPools("localhost:" + d.port())
			require.Len(t, pools, 1)
			pools[0].mu.Lock()
			idle := pools[0].idle[0]
			pools[0].mu.Unlock()
			close(closeNow)
			<-sent
			waitInput(t, idle) // the alert reached the router's socket
			resp, body = tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 200, resp.StatusCode, "line %q", tr.lines.wait(t, 1))
			assert.Equal(t, "first", body, "a fresh connection's first answer")
			assert.NotContains(t, tr.lines.wait(t, 1), "code=")
			assert.Equal(t, 2, d.accepted(), "the closed connection was not reused")
			assert.Zero(t, tr.strayCount(t), "close_notify is no stray byte")
		})
	}
}

// okOnce reads one request head from c and answers 200 with body.
func okOnce(c net.Conn, body string) {
	buf := make([]byte, 4096)
	var head []byte
	for !strings.Contains(string(head), "\r\n\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		head = append(head, buf[:n]...)
	}
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestDynoTLSReload: a reload that changes an app's dyno_tls (the
// contents of a trust bundle, its list, the mode) closes the idle pooled
// connections made under the old settings; the dyno sees them closed. A
// reload that changes nothing keeps them. A dyno named no more has its
// connections closed too, plain or TLS.
func TestDynoTLSReload(t *testing.T) {
	t.Parallel()
	oldCA, newCA, nextCA := newDynoCA(t, "dynos 2025"), newDynoCA(t, "dynos 2026"), newDynoCA(t, "dynos 2027")
	bundle := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{oldCA})
	// The same certificates in another order at another path are the same
	// trust: only what verifies counts.
	same := writeBundle(t, bundlePath(t, "same.pem"), []*dynoCA{newCA, oldCA})
	other := writeBundle(t, bundlePath(t, "other.pem"), []*dynoCA{oldCA, newCA, nextCA})
	d := startTLSDyno(t, oldCA.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("ok"))
	plain := startTLSDyno(t, oldCA.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("plain"))
	addr := "localhost:" + d.port()
	space := func(tlsLine string, withPlain bool) string {
		s := oneApp(tlsLine, addr)
		if withPlain {
			s += "  - name: blog\n    domains: [blog.test]\n    dyno_tls: {mode: require}\n    dynos: [{name: web.1, address: \"" + plain.addr() + "\"}]\n"
		}
		return "listen: {http: \"127.0.0.1:0\"}\n" + s
	}
	mr := startMTLSRouter(t, nil, space(dynoTLSYAML(config.DynoTLSVerifyFull, "", bundle), true))
	get := func(host string) {
		t.Helper()
		n := mr.lines.count()
		resp, _ := mr.roundTrip(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
		require.Equal(t, 200, resp.StatusCode, "line %q", mr.lines.wait(t, n))
	}
	get("shop.test")
	get("blog.test")
	mr.waitTLSIdle(t, addr, 1)

	mr.reload(t, space(dynoTLSYAML(config.DynoTLSVerifyFull, "", bundle), true))
	get("shop.test")
	assert.Equal(t, 1, d.accepted(), "a reload that changes nothing keeps the pooled connection")
	d.noneEnded(t, "the reload changed nothing")

	steps := []struct{ why, yaml string }{
		{"the bundle's contents changed", ""},
		{"trust lists another bundle", space(dynoTLSYAML(config.DynoTLSVerifyFull, "", other), true)},
		{"the mode changed", space(dynoTLSYAML(config.DynoTLSVerifyCA, "", other), true)},
	}
	accepted := 1
	for _, st := range steps {
		mr.waitTLSIdle(t, addr, 1)
		yaml := st.yaml
		if yaml == "" {
			writeBundle(t, bundle, []*dynoCA{oldCA, newCA}) // in place
			yaml = space(dynoTLSYAML(config.DynoTLSVerifyFull, "", bundle), true)
		}
		mr.reload(t, yaml)
		d.waitEnded(t, st.why)
		get("shop.test")
		accepted++
		assert.Equal(t, accepted, d.accepted(), "%s: a new connection, made with the new settings", st.why)
		if st.yaml == "" {
			// The same certificates listed otherwise: nothing changed.
			mr.waitTLSIdle(t, addr, 1)
			mr.reload(t, space(dynoTLSYAML(config.DynoTLSVerifyFull, "", same), true))
			get("shop.test")
			assert.Equal(t, accepted, d.accepted(), "the same trust anchors from another bundle keep the connection")
			d.noneEnded(t, "the same trust anchors from another bundle")
		}
	}

	plain.noneEnded(t, "blog's dyno_tls never changed")
	mr.reload(t, space(dynoTLSYAML(config.DynoTLSVerifyCA, "", other), false))
	plain.waitEnded(t, "app blog and its dyno are gone from the config")
	assert.Empty(t, mr.tlsPools(plain.addr()), "the pool of a dyno named no more is dropped")
}

// TestDynoTLSSeparatePools: two apps name the same dyno address with other
// dyno_tls settings: each gets its own connections, never the other's.
func TestDynoTLSSeparatePools(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	trust := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("ok"))
	addr := "localhost:" + d.port()
	tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", trust), addr)+
		"  - name: blog\n    domains: [blog.test]\n    dyno_tls: {mode: require}\n    dynos: [{name: web.1, address: \""+addr+"\"}]\n")
	for i := range 6 {
		host := "shop.test"
		if i%2 == 1 {
			host = "blog.test"
		}
		resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
		require.Equal(t, 200, resp.StatusCode)
		tr.lines.wait(t, i)
		tr.waitTLSIdle(t, addr, min(i+1, 2))
	}
	assert.Equal(t, 2, d.accepted(), "one connection per app's settings, each reused")
	assert.Len(t, tr.tlsPools(addr), 2)
}

// TestDynoTLSHandshakeFailures: a failure that is not the certificate's
// is a failed connect: a dyno that speaks plain HTTP under require is H21
// (and the request is tried on another dyno, as for a refused connect);
// a dyno that never answers the ClientHello is H19 after
// timeouts.connect.
func TestDynoTLSHandshakeFailures(t *testing.T) {
	t.Parallel()
	t.Run("plain dyno", func(t *testing.T) {
		t.Parallel()
		d := startRawDyno(t, badRequestHandler)
		tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSRequire, ""), d.addr()))
		resp, _ := tr.roundTrip(t, dyGetShop, "GET")
		assert.Equal(t, 503, resp.StatusCode)
		line := tr.lines.wait(t, 0)
		assert.Contains(t, line, `code=H21 desc="Backend connection refused" `)
		assert.Equal(t, 1.0, tr.dynoHandshakes(t, "error"))
	})
	t.Run("plain dyno then a TLS one", func(t *testing.T) {
		t.Parallel()
		plain := startRawDyno(t, badRequestHandler)
		d := startTLSDyno(t, newDynoCA(t, "x").issue(t, dynoCert{names: []string{"localhost"}}), okHandler("tls"))
		tr := startRouter(t, oneApp(dynoTLSYAML(config.DynoTLSRequire, ""), plain.addr(), d.addr()))
		for i := range 6 {
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 200, resp.StatusCode, "request %d: tried on the TLS dyno: %q", i, tr.lines.wait(t, i))
			assert.Equal(t, "tls", body)
		}
	})
	t.Run("silent dyno", func(t *testing.T) {
		t.Parallel()
		d := startRawDyno(t, func(c net.Conn) { c.Read(make([]byte, 1<<16)); c.Read(make([]byte, 1)) })
		tr := startRouter(t, "timeouts: {connect: 150ms}\n"+oneApp(dynoTLSYAML(config.DynoTLSRequire, ""), d.addr()))
		start := time.Now()
		resp, _ := tr.roundTrip(t, dyGetShop, "GET")
		took := time.Since(start)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Contains(t, tr.lines.wait(t, 0), `code=H19 desc="Backend connection timeout" `)
		assert.True(t, took >= 140*time.Millisecond && took < 2*time.Second, "503 after %v; want about connect: 150ms", took)
		assert.Equal(t, 1.0, tr.dynoHandshakes(t, "timeout"))
	})
}

// badRequestHandler is a plain HTTP server's answer to a ClientHello: a
// 400 and the close.
func badRequestHandler(c net.Conn) {
	c.Read(make([]byte, 4096))
	io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// TestDynoTLSBundleGone: a reload whose trust bundle cannot be read any
// more is refused and the running config stays.
func TestDynoTLSBundleGone(t *testing.T) {
	t.Parallel()
	ca := newDynoCA(t, "dynos")
	bundle := writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})
	d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), okHandler("ok"))
	yaml := "listen: {http: \"127.0.0.1:0\"}\n" + oneApp(dynoTLSYAML(config.DynoTLSVerifyFull, "", bundle), "localhost:"+d.port())
	mr := startMTLSRouter(t, nil, yaml)
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	require.NoError(t, os.Remove(bundle))
	assert.Error(t, mr.Reload(cfg), "a trust bundle that is gone")
	resp, _ := mr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 200, resp.StatusCode)
}
