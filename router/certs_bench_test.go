package router

import (
	"crypto/tls"
	"net"
	"testing"

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
	respLen := readResponse(b, c, buf)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(benchReq); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < respLen; {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
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
