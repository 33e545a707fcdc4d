package router

// The check of an idle TLS dyno connection before reuse (issue 12 with
// issue 9's stray-bytes guarantee), at the pool.

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// tlsPoolConn dials one TLS connection through a verify-full pool to a
// dyno whose handler is act, run once the handshake is done (it may keep
// the connection open by blocking).
func tlsPoolConn(t testing.TB, act func(c *tls.Conn)) *dynoConn {
	t.Helper()
	ca := newDynoCA(t, "dynos")
	trust, err := loadDynoTrust("shop", []string{writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca})})
	require.NoError(t, err)
	d := startTLSDyno(t, ca.issue(t, dynoCert{names: []string{"localhost"}}), func(c net.Conn) { act(c.(*tls.Conn)) })
	addr := "localhost:" + d.port()
	p := newPool(addr, prometheus.NewGauge(prometheus.GaugeOpts{Name: "i"}), prometheus.NewGauge(prometheus.GaugeOpts{Name: "a"}))
	p.tlsConf = dynoTLSFor(&config.DynoTLS{Mode: config.DynoTLSVerifyFull}, addr, trust).clientConfig()
	dc, err := p.dial(t.Context(), 2*time.Second, 4096)
	require.NoError(t, err)
	t.Cleanup(func() { dc.drop() })
	return dc
}

// waitInput waits up to 2 s until bytes (or the close) wait on dc's socket.
func waitInput(t testing.TB, dc *dynoConn) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !dc.hasInput() {
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived on the socket within 2s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDynoTLSCheck: the check before reuse tells, through TLS, what
// arrived on an idle connection: plaintext (in TLS's buffers or on the
// socket) is stray, close_notify or a close ends it, TLS's own messages
// (the session tickets a TLS 1.3 server sends after the handshake) leave
// it reusable.
func TestDynoTLSCheck(t *testing.T) {
	t.Parallel()
	block := func(c *tls.Conn) { c.Read(make([]byte, 1)) }
	t.Run("session tickets, then quiet", func(t *testing.T) {
		t.Parallel()
		dc := tlsPoolConn(t, block)
		assert.Equal(t, connQuiet, dc.check(), "session tickets are no stray bytes")
		assert.Equal(t, connQuiet, dc.check())
		assert.False(t, dc.hasInput(), "the tickets were read")
	})
	t.Run("application data on the socket", func(t *testing.T) {
		t.Parallel()
		dc := tlsPoolConn(t, func(c *tls.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\n"); block(c) })
		waitInput(t, dc)
		assert.Equal(t, connStray, dc.check())
	})
	t.Run("plaintext held by TLS", func(t *testing.T) {
		t.Parallel()
		// One record; the response read takes two bytes of it and leaves
		// the rest in tls.Conn, with nothing on the socket.
		dc := tlsPoolConn(t, func(c *tls.Conn) { io.WriteString(c, "okSTOLEN"); block(c) })
		dc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2)
		_, err := io.ReadFull(dc.c, buf)
		require.NoError(t, err)
		require.Equal(t, "ok", string(buf))
		assert.False(t, dc.hasInput(), "the record left the socket whole")
		assert.Equal(t, connStray, dc.check(), "bytes TLS holds past the response are stray")
	})
	t.Run("close_notify", func(t *testing.T) {
		t.Parallel()
		dc := tlsPoolConn(t, func(c *tls.Conn) { c.CloseWrite(); block(c) })
		waitInput(t, dc)
		assert.Equal(t, connEnded, dc.check(), "close_notify ends the connection, and is no stray")
	})
	t.Run("close without close_notify", func(t *testing.T) {
		t.Parallel()
		dc := tlsPoolConn(t, func(c *tls.Conn) { c.NetConn().Close() })
		waitInput(t, dc)
		assert.Equal(t, connEnded, dc.check())
	})
}

// TestDynoTLSWriteNotRaw: a request on a TLS dyno connection goes through
// TLS (writeAwait's raw write is for plain connections only): the dyno
// reads it as plaintext.
func TestDynoTLSWriteNotRaw(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	dc := tlsPoolConn(t, func(c *tls.Conn) {
		buf := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, buf, len("GET / HTTP/1.1\r\n\r\n"))
		got <- string(buf[:n])
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		block := make([]byte, 1)
		c.Read(block)
	})
	dc.rdl.set(dc.c, time.Now().Add(2*time.Second))
	n, err := dc.writeAwait([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	assert.Equal(t, len("GET / HTTP/1.1\r\n\r\n"), n)
	assert.Equal(t, "GET / HTTP/1.1\r\n\r\n", <-got)
}

// BenchmarkDynoCheckTLS is the check before reuse of an idle TLS dyno
// connection: one read through TLS with the socket out of reach (what TLS
// holds), then BenchmarkDynoCheck's MSG_PEEK.
func BenchmarkDynoCheckTLS(b *testing.B) {
	dc := tlsPoolConn(b, func(c *tls.Conn) { io.Copy(io.Discard, c) })
	require.Equal(b, connQuiet, dc.check()) // the session tickets
	b.ReportAllocs()
	for b.Loop() {
		if dc.check() != connQuiet {
			b.Fatal("an idle connection checked as not quiet")
		}
	}
}

// TestDynoTLSResumedVerify: a resumed session's certificate, verified when
// the session was made, is checked again against the clock only: within
// its chain's validity window it passes with no signature checked; past
// the leaf's end, or the end of the CA it chained to, it is H43 expired;
// a leaf not verified before is verified in full.
func TestDynoTLSResumedVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca := newDynoCA(t, "dynos")
	shortCA := newDynoCAUntil(t, "dynos ending", now.Add(48*time.Hour))
	other := newDynoCA(t, "someone else")
	trust, err := loadDynoTrust("shop", []string{writeBundle(t, bundlePath(t, "dynos.pem"), []*dynoCA{ca, shortCA})})
	require.NoError(t, err)
	otherTrust, err := loadDynoTrust("shop", []string{writeBundle(t, bundlePath(t, "other.pem"), []*dynoCA{other})})
	require.NoError(t, err)
	leaf := ca.issue(t, dynoCert{names: []string{"localhost"}}).Leaf // 30 days
	short := shortCA.issue(t, dynoCert{names: []string{"localhost"}}).Leaf
	stranger := other.issue(t, dynoCert{names: []string{"localhost"}}).Leaf

	clock := now
	dt := dynoTLSFor(&config.DynoTLS{Mode: config.DynoTLSVerifyFull}, "localhost:1", trust)
	dt.now = func() time.Time { return clock }
	cause := func(err error) string {
		t.Helper()
		var ce *dynoCertError
		require.ErrorAs(t, err, &ce)
		return ce.code.Entry().Cause
	}
	state := func(c *x509.Certificate, resumed bool) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, DidResume: resumed}
	}

	require.NoError(t, dt.verify(state(leaf, false)))
	require.NoError(t, dt.verify(state(short, false)))
	// The trust changed under the remembered leaf (it cannot in a pool:
	// trust is part of its key): a resumption is not verified again, a
	// new handshake is.
	dt.trust = otherTrust
	assert.NoError(t, dt.verify(state(leaf, true)), "a remembered leaf's resumption checks the clock only")
	assert.Equal(t, "unknown_ca", cause(dt.verify(state(leaf, false))), "a full handshake verifies in full")
	dt.trust = trust

	assert.Equal(t, "unknown_ca", cause(dt.verify(state(stranger, true))), "a resumed leaf never verified here is verified in full")

	clock = now.Add(72 * time.Hour) // past shortCA's end, within leaf's
	assert.NoError(t, dt.verify(state(leaf, true)))
	assert.Equal(t, "expired", cause(dt.verify(state(short, true))), "the CA the session's chain ended at expired")

	clock = now.Add(31 * 24 * time.Hour) // past leaf's end
	assert.Equal(t, "expired", cause(dt.verify(state(leaf, true))))
}
