package router

// The cost of dyno_tls (issue 12): keep-alive requests through the router
// to a plain dyno and to a TLS dyno under verify-full, on a pooled dyno
// connection and on a new one per request. The dyno runs in a process of
// its own (this test binary again, TestBenchDynoProcess), so the CPU time
// the benchmark reports (cpu-us/op: getrusage of this process) is the
// router's and the client's, not the dyno's side of TLS.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// Environment of TestBenchDynoProcess: the dyno's kind ("plain", "tls",
// "tls-notickets") and, over TLS, its certificate and key files.
const (
	envBenchDyno     = "SPACEROUTER_BENCH_DYNO"
	envBenchDynoCert = "SPACEROUTER_BENCH_DYNO_CERT"
	envBenchDynoKey  = "SPACEROUTER_BENCH_DYNO_KEY"
)

// TestBenchDynoProcess is no test: it is the dyno of BenchmarkDynoTLS when
// the benchmark starts this binary again with envBenchDyno set (and does
// nothing otherwise). It prints its address and serves fastDyno's fixed
// response, plain or over TLS, until its stdin closes.
func TestBenchDynoProcess(t *testing.T) {
	kind := os.Getenv(envBenchDyno)
	if kind == "" {
		return
	}
	var addr string
	if kind == "plain" {
		addr = fastDyno(t)
	} else {
		cert, err := tls.LoadX509KeyPair(os.Getenv(envBenchDynoCert), os.Getenv(envBenchDynoKey))
		require.NoError(t, err)
		addr = fastTLSDyno(t, cert, kind == "tls")
	}
	os.Stdout.WriteString(addr + "\n")
	io.Copy(io.Discard, os.Stdin)
}

// fastTLSDyno is fastDyno over TLS with cert; tickets false disables
// session tickets, so every connection makes a full handshake.
func fastTLSDyno(tb testing.TB, cert tls.Certificate, tickets bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, SessionTicketsDisabled: !tickets}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"), benchBody...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFixed(tls.Server(c, cfg), resp)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "localhost:" + port
}

// startDynoProcess starts TestBenchDynoProcess of kind in a process of its
// own and returns its address; it ends with tb.
func startDynoProcess(tb testing.TB, kind string, cert tls.Certificate) string {
	tb.Helper()
	dir := tb.TempDir()
	certFile, keyFile := filepath.Join(dir, "dyno.pem"), filepath.Join(dir, "dyno-key.pem")
	require.NoError(tb, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600))
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchDynoProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envBenchDyno+"="+kind, envBenchDynoCert+"="+certFile, envBenchDynoKey+"="+keyFile)
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	cmd.Stderr = os.Stderr
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(tb, err, "the dyno process printed no address")
	return strings.TrimSpace(line)
}

// benchClient is one keep-alive client connection of BenchmarkDynoTLS,
// sending one request at a time for host and reading its fixed-size
// response; cpu and wall add up the time of its requests.
type benchClient struct {
	c       net.Conn
	req     []byte
	buf     []byte
	respLen int
	n       int
	cpu     time.Duration
	wall    time.Duration
}

func newBenchClient(tb testing.TB, addr, host string) *benchClient {
	c, err := net.Dial("tcp", addr)
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	bc := &benchClient{c: c, buf: make([]byte, 4096),
		req: []byte("GET /search?q=1 HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
	_, err = c.Write(bc.req)
	require.NoError(tb, err)
	bc.respLen = readResponse(tb, c, bc.buf)
	return bc
}

// run sends n requests, adding their CPU time (this process's) and wall
// time to the client's.
func (bc *benchClient) run(b *testing.B, n int) {
	cpu0, wall0 := cpuTime(b), time.Now()
	for range n {
		if _, err := bc.c.Write(bc.req); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < bc.respLen; {
			k, err := bc.c.Read(bc.buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
	}
	bc.cpu += cpuTime(b) - cpu0
	bc.wall += time.Since(wall0)
	bc.n += n
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDynoTLS: the cost of dyno_tls verify-full against a plain dyno.
// One router has two apps: shop.test on a plain dyno, tls.test on a TLS
// dyno under verify-full, each dyno a process of its own (so the CPU time
// measured is the router's and the client's, not the dyno's) answering 64
// bytes. Two keep-alive client connections, one per app, send requests one
// at a time, alternating in blocks (so the load of other processes on the
// machine falls on both alike); b.N requests go to each app. Reported, per
// request: this process's CPU time (router and client; the client's part
// is the same for both apps) and wall time for each app, and the
// difference, tls-extra-cpu-us/req.
//
//   - keepalive: one pooled dyno connection per app (the handshake is paid
//     once): TLS records both ways and the check before reuse.
//   - newconn: http-disable-keepalive-to-dyno, a new dyno connection per
//     request; the TLS dyno sends session tickets (as Go's servers do), so
//     connections resume: the key exchange, no certificate.
//   - newconn-noresume: the same, the TLS dyno without tickets: a full
//     handshake per request, the dyno's certificate sent and verified.
func BenchmarkDynoTLS(b *testing.B) {
	ca := newDynoCA(b, "dynos")
	trust := writeBundle(b, bundlePath(b, "dynos.pem"), []*dynoCA{ca})
	cert := ca.issue(b, dynoCert{names: []string{"localhost"}})
	for _, bc := range []struct {
		name, features, tlsDyno string
		block                   int
	}{
		{"keepalive", "", "tls", 200},
		{"newconn", "features: [http-disable-keepalive-to-dyno]\n", "tls", 20},
		{"newconn-noresume", "features: [http-disable-keepalive-to-dyno]\n", "tls-notickets", 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plainDyno, tlsDyno := startDynoProcess(b, "plain", cert), startDynoProcess(b, bc.tlsDyno, cert)
			apps := oneApp(bc.features, plainDyno) + "  - name: tls\n    domains: [tls.test]\n"
			if bc.features != "" {
				apps += "    " + bc.features
			}
			apps += "    " + dynoTLSYAML(config.DynoTLSVerifyFull, "", trust) + "\n    dynos: [{name: web.1, address: \"" + tlsDyno + "\"}]\n"
			addr := startBenchRouterApps(b, apps)
			plain, tls := newBenchClient(b, addr, "shop.test"), newBenchClient(b, addr, "tls.test")
			b.ReportAllocs()
			b.ResetTimer()
			for left := b.N; left > 0; left -= bc.block {
				n := min(left, bc.block)
				plain.run(b, n)
				tls.run(b, n)
			}
			b.StopTimer()
			us := func(d time.Duration, n int) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
			b.ReportMetric(us(plain.cpu, plain.n), "plain-cpu-us/req")
			b.ReportMetric(us(tls.cpu, tls.n), "tls-cpu-us/req")
			b.ReportMetric(us(tls.cpu-plain.cpu, b.N), "tls-extra-cpu-us/req")
			b.ReportMetric(us(plain.wall, plain.n), "plain-us/req")
			b.ReportMetric(us(tls.wall, tls.n), "tls-us/req")
		})
	}
}

// startBenchRouterApps starts a router with the apps list apps (its lines
// to io.Discard) and returns its address.
func startBenchRouterApps(tb testing.TB, apps string) string {
	cfg, err := config.Parse("bench.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\n"+apps))
	require.NoError(tb, err)
	r, err := New(cfg, Options{Lines: logging.NewRouterLog(io.Discard, "heroku[router]", nil)})
	require.NoError(tb, err)
	require.NoError(tb, r.Start())
	tb.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2e9)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r.HTTPAddr().String()
}
