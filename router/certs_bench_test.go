package router

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The HTTPS benchmarks of issue 12: what recording the served certificate
// of each connection (the TLS connection view, SPEC.md 12.5) and the
// per-request count cost on the keep-alive path and per handshake.
//
//	go test -run '^$' -bench 'HTTPSKeepAlive|TLSHandshake' -benchmem ./router/

// benchReq is the request of the HTTPS benchmarks.
var benchReq = []byte("GET /search?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")

// BenchmarkHTTPSKeepAlive measures HTTP/1.1 over TLS on one keep-alive
// connection, one request at a time: the TLS counterpart of
// BenchmarkProxyHTTP1.
func BenchmarkHTTPSKeepAlive(b *testing.B) {
	addr, p := startBenchRouterTLS(b, fastDyno(b))
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
	require.NoError(b, err)
	defer c.Close()
	buf := make([]byte, 4096)
	_, err = c.Write(benchReq)
	require.NoError(b, err)
	keepAliveLoop(b, c, benchReq, readResponse(b, c, buf), buf)
}

// BenchmarkTLSHandshake measures one connection per op: a full TLS 1.3
// handshake (no session resumption; an ECDSA P-256 certificate), one
// HTTP/1.1 request and its response, then close. Client and router run in
// the same process, so the figure is both sides' CPU.
func BenchmarkTLSHandshake(b *testing.B) {
	addr, p := startBenchRouterTLS(b, fastDyno(b))
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c := tls.Client(raw, cfg)
		if _, err := c.Write(benchReq); err != nil {
			b.Fatal(err)
		}
		readResponse(b, c, buf)
		c.Close()
	}
}

// BenchmarkTLSViewRecord measures what the connection view records per
// connection (onServed during the handshake, handshook after it) and per
// request (counted), apart from the handshake around them.
func BenchmarkTLSViewRecord(b *testing.B) {
	p := newTestPKI(b)
	cert, key := tlsPaths(b, p.leaf(b, "shop.test"))
	kp, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(b, err)
	st := &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "shop.test", NegotiatedProtocol: "h2"}
	raw, _ := net.Pipe()
	defer raw.Close()
	b.Run("connection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tc := &tlsConn{Conn: raw}
			onServed(tc, &kp, "file")
			tc.handshook(st, "shop", nil, time.Time{})
		}
	})
	b.Run("request", func(b *testing.B) {
		tc := &tlsConn{Conn: raw}
		b.ReportAllocs()
		for b.Loop() {
			tc.counted()
		}
	})
}
