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

// startBenchRouterApp is startBenchRouter with appExtra in the app.
func startBenchRouterApp(tb testing.TB, appExtra, dyno string) string {
	cfg, err := config.Parse("bench.yaml", []byte("listen: {http: \"127.0.0.1:0\"}\n"+oneApp(appExtra, dyno)))
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

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDynoTLS: one keep-alive client connection sends requests one
// at a time through the router to a dyno (a process of its own) answering
// 64 bytes. cpu-us/op is this process's CPU time per request: the
// router's and the client's (the same in every case), not the dyno's.
//
//   - keepalive/plain, keepalive/verify-full: on one pooled dyno
//     connection (the handshake is paid once): the cost per request of TLS
//     records both ways and of the check before reuse.
//   - newconn/...: http-disable-keepalive-to-dyno, a new dyno connection
//     per request: plain (connect), verify-full with session resumption
//     (the dyno sends tickets, as Go's servers do), verify-full-full (no
//     tickets: the dyno's certificate is sent and verified every time).
func BenchmarkDynoTLS(b *testing.B) {
	ca := newDynoCA(b, "dynos")
	trust := writeBundle(b, bundlePath(b, "dynos.pem"), []*dynoCA{ca})
	cert := ca.issue(b, dynoCert{names: []string{"localhost"}})
	verifyFull := dynoTLSYAML(config.DynoTLSVerifyFull, "", trust)
	noKeepAlive := "features: [http-disable-keepalive-to-dyno]\n"
	for _, bc := range []struct{ name, extra, dyno string }{
		{"keepalive/plain", "", "plain"},
		{"keepalive/verify-full", verifyFull, "tls"},
		{"newconn/plain", noKeepAlive, "plain"},
		{"newconn/verify-full", noKeepAlive + verifyFull, "tls"},
		{"newconn/verify-full-full", noKeepAlive + verifyFull, "tls-notickets"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := startBenchRouterApp(b, bc.extra, startDynoProcess(b, bc.dyno, cert))
			c, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			defer c.Close()
			req := []byte("GET /search?q=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 4096)
			_, err = c.Write(req)
			require.NoError(b, err)
			respLen := readResponse(b, c, buf)
			b.ReportAllocs()
			cpu0 := cpuTime(b)
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
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
		})
	}
}
