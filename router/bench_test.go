package router

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// benchBody is the 64-byte response body of the benchmark dyno.
var benchBody = bytes.Repeat([]byte("x"), 64)

// fastDyno answers every request on each connection with a fixed 64-byte
// response, without allocating per request: a request ends at the first
// blank line (the benchmark sends no bodies).
func fastDyno(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"), benchBody...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFixed(c, resp)
		}
	}()
	return ln.Addr().String()
}

// serveFixed answers each request head read from c with resp.
func serveFixed(c net.Conn, resp []byte) {
	defer c.Close()
	buf := make([]byte, 16384)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		for {
			i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			copy(buf, buf[i+4:have])
			have -= i + 4
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}
}

// BenchmarkProxyHTTP1 measures the whole HTTP/1 path: a keep-alive client
// connection → router → pooled dyno connection → 64-byte response, with
// router lines written to a discarded writer.
func BenchmarkProxyHTTP1(b *testing.B) {
	benchRoundTrips(b, startBenchRouter(b, fastDyno(b)))
}

// startBenchRouter starts a router for one app on dyno whose router lines
// go to io.Discard (BENCH_LOG_STDOUT=1: to stdout), and returns its address.
func startBenchRouter(tb testing.TB, dyno string) string {
	cfg, err := config.Parse("bench.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\n"+oneApp("", dyno)))
	require.NoError(tb, err)
	rl := logging.NewRouterLog(io.Discard, "heroku[router]", nil)
	if os.Getenv("BENCH_LOG_STDOUT") != "" {
		rl = logging.NewRouterLog(os.Stdout, "heroku[router]", nil)
	}
	r, err := New(cfg, Options{Lines: rl})
	require.NoError(tb, err)
	require.NoError(tb, r.Start())
	tb.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2e9)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r.HTTPAddr().String()
}

// benchRoundTrips sends b.N keep-alive requests to addr, one at a time,
// each followed by reading its fixed-size response.
func benchRoundTrips(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	require.NoError(b, err)
	defer c.Close()
	req := []byte("GET /search?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	// The response is fixed in size; learn it from the first one.
	_, err = c.Write(req)
	require.NoError(b, err)
	keepAliveLoop(b, c, req, readResponse(b, c, buf), buf)
}

// keepAliveLoop times b.N keep-alive exchanges of req on c, each reading
// a response of respLen bytes into buf.
func keepAliveLoop(b *testing.B, c net.Conn, req []byte, respLen int, buf []byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
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

// readResponse reads one whole response with a Content-Length of 64 and
// returns its length on the wire.
func readResponse(tb testing.TB, c net.Conn, buf []byte) int {
	have := 0
	for {
		n, err := c.Read(buf[have:])
		require.NoError(tb, err)
		have += n
		if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+64 {
			return have
		}
	}
}

// BenchmarkDirectHTTP1 is the same client loop straight to the dyno: the
// baseline for BenchmarkProxyHTTP1.
func BenchmarkDirectHTTP1(b *testing.B) {
	benchRoundTrips(b, fastDyno(b))
}

// TestProxyAllocs pins the hot path's allocation budget: at most one
// allocation per proxied keep-alive request in steady state (issue 2).
func TestProxyAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a plain, full run")
	}
	c, err := net.Dial("tcp", startBenchRouter(t, fastDyno(t)))
	require.NoError(t, err)
	defer c.Close()
	req := []byte("GET /search?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\n\r\n")
	buf := make([]byte, 4096)
	_, err = c.Write(req)
	require.NoError(t, err)
	respLen := readResponse(t, c, buf)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < respLen; {
			n, err := c.Read(buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	require.LessOrEqual(t, allocs, 1.0, "allocations per proxied request (router, dyno and client together)")
}
