package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strayDyno is one dyno process that misbehaves by request path, as real
// ones do (issue 9 item 1): bytes it sends past the end of a response must
// never be read as another request's response.
//
//	/late   200 "ok" (Content-Length: 2), then, when the test says so, a
//	        whole second response ("STOLEN") on the same connection
//	/204    204 with a body in the same write
//	/204-2  204, then a body in a second write
//	/head   for HEAD: the head with Content-Length: 6 and the body anyway
//	        (Python's BaseHTTPRequestHandler with do_HEAD = do_GET)
//	/head-2 the same, the body in a second write
//	/extra  Content-Length: 2 and four bytes in one write
//	other   200 "fresh-<path>"
//
// wrote receives the path of each misbehaviour once its stray bytes were
// written; late lets a /late connection send its second response.
type strayDyno struct {
	*rawDyno
	late     chan struct{}
	wrote    chan string
	requests atomic.Int64
}

func startStrayDyno(t *testing.T) *strayDyno {
	d := newStrayDyno()
	d.rawDyno = startRawDyno(t, func(c net.Conn) { d.serve(t, c) })
	return d
}

// newStrayDyno returns a strayDyno not listening yet: serve is its
// connection handler, on a plain or a TLS listener.
func newStrayDyno() *strayDyno {
	return &strayDyno{late: make(chan struct{}, 8), wrote: make(chan string, 32)}
}

// serve answers the requests of one connection.
func (d *strayDyno) serve(t *testing.T, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		head := readRequestHead(br)
		if head == "" {
			return
		}
		d.requests.Add(1)
		method, path, _ := strings.Cut(head, " ")
		path, _, _ = strings.Cut(path, " ")
		switch path {
		case "/late":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			<-d.late
			io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: session=victim\r\nContent-Length: 6\r\n\r\nSTOLEN")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\nSTOLEN")
		case "/204-2":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			<-d.late
			io.WriteString(c, "STOLEN")
		case "/head", "/head-2":
			require.Equal(t, "HEAD", method)
			if path == "/head" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN")
			} else {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
				<-d.late
				io.WriteString(c, "STOLEN")
			}
		case "/extra":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP")
		default:
			body := "fresh-" + path
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			continue
		}
		d.wrote <- path
	}
}

// misbehave sends the request for path (method GET or HEAD) to host,
// waits until its stray bytes are on the wire, and returns its response.
func (d *strayDyno) misbehave(t *testing.T, tr *testRouter, method, host, path string) *http.Response {
	t.Helper()
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	require.NoError(t, err, "%s %s", method, path)
	io.Copy(io.Discard, resp.Body)
	if strings.HasSuffix(path, "-2") || path == "/late" {
		d.late <- struct{}{}
	}
	select {
	case p := <-d.wrote:
		require.Equal(t, path, p)
	case <-time.After(5 * time.Second):
		t.Fatalf("the dyno did not send its stray bytes for %s", path)
	}
	return resp
}

// TestDynoStrayBytesNeverAnswerAnotherRequest is issue 9 item 1: bytes a
// dyno sends after a response ended poison its connection; the next
// request, from another client, goes out on a fresh connection and gets
// its own response.
func TestDynoStrayBytesNeverAnswerAnotherRequest(t *testing.T) {
	t.Parallel()
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
			d := startStrayDyno(t)
			tr := startRouter(t, oneApp("", d.addr()))
			d.misbehave(t, tr, tc.method, "shop.test", tc.path)
			tr.lines.wait(t, 0)
			for i := range 3 {
				resp, body := tr.roundTrip(t, fmt.Sprintf("GET /victim%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i), "GET")
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, fmt.Sprintf("fresh-/victim%d", i), body,
					"after %s %s the dyno sent stray bytes on its connection; another client's GET /victim%d must not read them", tc.method, tc.path, i)
				assert.Empty(t, resp.Header.Get("Set-Cookie"), "another user's cookie leaked")
			}
			assert.Equal(t, int64(4), d.requests.Load(), "requests at the dyno")
			// The poisoned connection is closed: a fresh one serves the rest
			// (two fresh ones when a victim's request overtakes the router
			// putting the first back in the pool).
			assert.GreaterOrEqual(t, d.accepted(), 2, "the poisoned connection is not reused")
			var m dto.Metric
			require.NoError(t, tr.m.strayBytes.Write(&m))
			assert.Equal(t, 1.0, m.GetCounter().GetValue(), "spacerouter_dyno_stray_bytes_total")
		})
	}
}

// TestDynoStrayBytesAcrossApps: two apps share one dyno address (one
// pool); stray bytes after app a's response never reach app b's client.
func TestDynoStrayBytesAcrossApps(t *testing.T) {
	t.Parallel()
	d := startStrayDyno(t)
	tr := startRouter(t, oneApp("", d.addr())+
		"  - name: blog\n    domains: [blog.test]\n    dynos: [{name: web.1, address: \""+d.addr()+"\"}]\n")
	d.misbehave(t, tr, "GET", "shop.test", "/late")
	resp, body := tr.roundTrip(t, "GET /blog HTTP/1.1\r\nHost: blog.test\r\n\r\n", "GET")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "fresh-/blog", body, "app blog's client got bytes the dyno sent after app shop's response")
	assert.Empty(t, resp.Header.Get("Set-Cookie"))
}

// TestDynoStrayBytesHTTP2Victim: the stray bytes come after an HTTP/1
// request; the next request arrives over HTTP/2 and still gets its own
// response.
func TestDynoStrayBytesHTTP2Victim(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	d := startStrayDyno(t)
	blog := okDyno(t, "blog")
	tr := startRouter(t, tlsSpace(t, p, d.addr(), blog.addr(), ""))
	d.misbehave(t, tr, "GET", "shop.test", "/late")
	c := tr.tlsClient(p, "shop.test", true)
	for i := range 3 {
		resp, err := c.Get(fmt.Sprintf("https://shop.test/h2victim%d", i))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "HTTP/2.0", resp.Proto)
		assert.Equal(t, fmt.Sprintf("fresh-/h2victim%d", i), string(body))
		assert.Empty(t, resp.Header.Get("Set-Cookie"))
	}
}

// TestDynoWrittenRequestNeverResent is issue 9 item 1b (SPEC.md 4.6): a
// reused connection that the dyno closes (or resets) after reading the
// request is H13, logged; the request is not sent again, GET or not.
func TestDynoWrittenRequestNeverResent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reset bool
		req   string
	}{
		{"GET closed", false, "GET /b HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
		{"GET reset", true, "GET /b HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
		{"HEAD closed", false, "HEAD /b HTTP/1.1\r\nHost: shop.test\r\n\r\n"},
		{"POST closed", false, "POST /b HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nhi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var seen []string
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					head := readRequestHead(br)
					if head == "" {
						return
					}
					mu.Lock()
					seen = append(seen, strings.SplitN(head, "\r\n", 2)[0])
					n := len(seen)
					mu.Unlock()
					if n == 2 {
						// Read the request, then go away without a byte.
						if tc.reset {
							c.(*net.TCPConn).SetLinger(0)
						}
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
				}
			})
			tr := startRouter(t, oneApp("", d.addr()))
			resp, _ := tr.roundTrip(t, "GET /a HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
			require.Equal(t, 200, resp.StatusCode)
			tr.lines.wait(t, 0)
			method, _, _ := strings.Cut(tc.req, " ")
			resp, _ = tr.roundTrip(t, tc.req, method)
			line := tr.lines.wait(t, 1)
			assert.Equal(t, 503, resp.StatusCode, "the dyno read %q on a reused connection and closed it", tc.req)
			assert.Contains(t, line, "code=H13 ")
			assert.Contains(t, line, " dyno=web.1 ")
			mu.Lock()
			defer mu.Unlock()
			assert.Len(t, seen, 2, "requests at the dyno: %q", seen)
		})
	}
}

// TestDynoFailingDynoPassedOver is issue 9 item 1e (SPEC.md 4.5): a dyno
// that closes every connection at once answers H13 and is then passed
// over while another up dyno is fine, instead of attracting the traffic
// by having fewer requests in flight.
func TestDynoFailingDynoPassedOver(t *testing.T) {
	t.Parallel()
	bad := startRawDyno(t, func(c net.Conn) {
		readRequestHead(bufio.NewReader(c))
	})
	good := okDyno(t, "good")
	tr := startRouter(t, oneApp("", bad.addr(), good.addr()))
	h13 := 0
	for i := range 40 {
		resp, _ := tr.roundTrip(t, dyGetShop, "GET")
		if resp.StatusCode == 503 {
			h13++
		}
		tr.lines.wait(t, i)
	}
	assert.LessOrEqual(t, h13, 1, "after its first H13 the failing dyno is skipped for 5 s")
	assert.LessOrEqual(t, bad.accepted(), 1, "connections to the failing dyno")
}

// TestDynoKeepAliveTimeoutHonoured: a dyno that says Keep-Alive:
// timeout=N closes idle connections after N seconds; the router does not
// reuse one that close to it (issue 9 item 1e).
func TestDynoKeepAliveTimeoutHonoured(t *testing.T) {
	t.Parallel()
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for readRequestHead(br) != "" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2, max=100\r\nContent-Length: 1\r\n\r\nA")
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))
	resp, _ := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode)
	tr.dyWaitIdleConns(t, d.addr(), 1)
	p := tr.backendFor(d.addr(), "", nil).pool
	p.mu.Lock()
	dc := p.idle[0]
	p.mu.Unlock()
	assert.Equal(t, 1500*time.Millisecond, dc.keepFor, "timeout=2 less a quarter")
	// The clock is the caller's: a get 1.6 s after the connection went
	// idle finds none to reuse, and closes it.
	assert.Nil(t, p.get(dc.idleAt.Add(1600*time.Millisecond), time.Hour))
	assert.Zero(t, p.idleCount())
}

// BenchmarkDynoCheck is the cost of the check a pooled dyno connection
// gets before reuse (issue 9 item 1): one non-blocking MSG_PEEK through
// RawConn.Control on an idle loopback connection.
func BenchmarkDynoCheck(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	p := newPool(ln.Addr().String(), prometheus.NewGauge(prometheus.GaugeOpts{Name: "i"}), prometheus.NewGauge(prometheus.GaugeOpts{Name: "a"}))
	dc, err := p.dial(b.Context(), time.Second, 4096)
	require.NoError(b, err)
	defer dc.c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if dc.check() != connQuiet {
			b.Fatal("an idle connection checked as not quiet")
		}
	}
}
