package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/bench"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
)

// BenchmarkProxyHTTP1Viewers is the router's HTTP/1.1 proxy benchmark
// (router.BenchmarkProxyHTTP1: one keep-alive client connection, one
// request at a time, a pooled dyno connection, a 64-byte answer) on a real
// router whose admin API, signed in through mockoidc, serves 0 or 10
// dashboard viewers of the app: each loaded the page and its assets, reloads
// its data every second (the page does every 10 s: this puts reloads inside
// every run), and streams the app's live router
// lines over server-sent events, reading them as they come (issue 13: the
// lines fan out without blocking the request path). Besides ns/op it
// reports cpu-µs/op, the user and system CPU of the whole process (client,
// dyno, router and viewers) per request, and lines/op, the line events the
// viewers read per request. Run the two alternately in separate processes
// for a comparison on a shared machine (BENCHMARKS.md, issue 13).
func BenchmarkProxyHTTP1Viewers(b *testing.B) {
	for _, viewers := range []int{0, 10} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			proxy, adminURL, tok := startViewersRouter(b)
			var v *bench.Viewers
			if viewers > 0 {
				var err error
				v, err = bench.StartViewers(context.Background(), bench.ViewersConfig{
					Admin: adminURL, Token: tok, App: "shop", N: viewers, Poll: time.Second})
				require.NoError(b, err)
				b.Cleanup(v.Close)
			}
			c, err := net.Dial("tcp", proxy)
			require.NoError(b, err)
			defer c.Close()
			req := []byte("GET /search?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 4096)
			_, err = c.Write(req)
			require.NoError(b, err)
			respLen := readFixedResponse(b, c, buf)
			var events int64
			if v != nil {
				// The first line reaches every viewer within the stream's pace.
				require.Eventually(b, func() bool { return v.Events() >= int64(viewers) }, 5*time.Second, 10*time.Millisecond)
				events = v.Events()
			}
			cpu0 := cpuTime()
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
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			if v != nil {
				require.NoError(b, v.Err())
				b.ReportMetric(float64(v.Events()-events)/float64(b.N), "lines/op")
			}
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startViewersRouter starts a fixed-answer dyno, an identity provider and
// a router for app shop (domain shop.test) on it, with the admin API on
// its admin listener, its router lines discarded like the proxy
// benchmark's; it returns the proxy's address, the admin API's base URL
// and a bearer ID token of an admin.
func startViewersRouter(tb testing.TB) (proxy, adminURL, token string) {
	tb.Helper()
	dyno := startFixedDyno(tb)
	p := startIDP(tb, nil)
	secretFile := filepath.Join(tb.TempDir(), "secret")
	require.NoError(tb, os.WriteFile(secretFile, []byte(p.ClientSecret), 0o600))
	yamlText := fmt.Sprintf(`listen: {http: "127.0.0.1:0", admin: "127.0.0.1:0"}
admin:
  auth:
    issuer: %q
    client_id: %q
    client_secret_file: %q
    redirect_url: "http://127.0.0.1/auth/callback"
    roles: [{group: ops, role: admin}]
apps:
  - name: shop
    domains: [shop.test]
    dynos: [{name: web.1, address: %q}]
`, p.Issuer(), p.ClientID, secretFile, dyno)
	cfg, err := config.Parse("bench.yaml", []byte(yamlText))
	require.NoError(tb, err, yamlText)
	r, err := router.New(cfg, router.Options{Lines: logging.NewRouterLog(io.Discard, "heroku[router]", nil)})
	require.NoError(tb, err)
	srv, err := New(Options{Auth: cfg.Admin.Auth, Backend: r.AdminBackend()})
	require.NoError(tb, err)
	r.SetAdminHandler(srv.Handler)
	require.NoError(tb, r.Start())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r.HTTPAddr().String(), "http://" + r.AdminAddr().String(), p.sign(tb, p.claims(time.Now(), "bench", "ops"))
}

// startFixedDyno starts the bench package's synthetic dyno: 200 and a
// 64-byte body for every request, as the router's own benchmarks use.
func startFixedDyno(tb testing.TB) string {
	d, err := bench.StartDyno(bench.DynoConfig{BodySize: 64})
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close() })
	return d.Addr()
}

// readFixedResponse reads one whole response with a Content-Length of 64
// and returns its length on the wire.
func readFixedResponse(tb testing.TB, c net.Conn, buf []byte) int {
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
