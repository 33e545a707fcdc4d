package h2

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spacerouter/spacerouter/router/h1"
)

// benchBody is the response of the benchmark handlers.
var benchBody = []byte("hello, world\n")

// benchHandler answers like a small dyno response through the router:
// content-type, content-length, a short body.
func benchHandler(s *Stream) {
	defer s.Close()
	s.Send(&Head{Status: 200, Fields: benchFields, ContentLength: int64(len(benchBody))}, benchBody, true)
}

var benchFields = []h1.Field{
	{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")},
	{Name: []byte("Via"), Value: []byte("2.0 spacerouter")},
}

// xnetHandler is the same answer through net/http and x/net's server.
var xnetHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Via"] = []string{"2.0 spacerouter"}
	h["Content-Length"] = []string{"13"}
	w.Write(benchBody)
})

// benchServer serves one kind of server on loopback TLS and counts the
// server's TCP writes.
type benchServer struct {
	ln     net.Listener
	writes atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	closes []func()
}

func startBenchServer(b *testing.B, kind string) *benchServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(countingConn{nc, &s.writes}, serverTLSConfig())
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if tc.Handshake() != nil {
					return
				}
				switch kind {
				case "spacerouter":
					c := NewConn(tc, &Config{}, handlerFunc(benchHandler))
					s.mu.Lock()
					s.closes = append(s.closes, c.Close)
					s.mu.Unlock()
					c.Serve()
				case "xnet":
					s.mu.Lock()
					s.closes = append(s.closes, func() { tc.Close() })
					s.mu.Unlock()
					//lint:ignore SA1019 the comparison is with x/net's server itself.
					(&http2.Server{}).ServeConn(tc, &http2.ServeConnOpts{Handler: xnetHandler})
				}
			}()
		}
	}()
	return s
}

func (s *benchServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, f := range s.closes {
		f()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// benchClient is a minimal HTTP/2 client that allocates nothing per
// request, so the benchmark's allocations are the server's.
type benchClient struct {
	nc      net.Conn
	buf     []byte
	r, w    int
	out     []byte
	first   []byte // the request's header block on a fresh connection
	steady  []byte // the same fields once the client's table holds them
	next    uint32
	pending int
}

func dialBench(b testing.TB, addr string) *benchClient {
	nc, err := tls.Dial("tcp", addr, clientTLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	return newBenchClient(b, nc)
}

func newBenchClient(b testing.TB, nc net.Conn) *benchClient {
	c := &benchClient{nc: nc, buf: make([]byte, 64<<10), next: 1}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/"},
		{Name: ":authority", Value: "bench.example.test"}, {Name: "user-agent", Value: "bench/1.0"},
		{Name: "accept", Value: "*/*"},
	}
	for i := range 2 {
		hb.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		if i == 0 {
			c.first = append([]byte(nil), hb.Bytes()...)
		} else {
			c.steady = append([]byte(nil), hb.Bytes()...)
		}
	}
	c.out = append(c.out, http2.ClientPreface...)
	c.out = appendFrameHeader(c.out, 6, http2.FrameSettings, 0, 0)
	c.out = binary.BigEndian.AppendUint16(c.out, uint16(http2.SettingInitialWindowSize))
	c.out = binary.BigEndian.AppendUint32(c.out, 1<<30)
	c.out = appendFrameHeader(c.out, 4, http2.FrameWindowUpdate, 0, 0)
	c.out = binary.BigEndian.AppendUint32(c.out, 1<<30)
	c.flush(b)
	return c
}

func (c *benchClient) flush(b testing.TB) {
	if _, err := c.nc.Write(c.out); err != nil {
		b.Fatal(err)
	}
	c.out = c.out[:0]
}

// send queues n GET requests.
func (c *benchClient) send(n int) {
	for range n {
		block := c.steady
		if c.next == 1 {
			block = c.first
		}
		c.out = appendFrameHeader(c.out, len(block), http2.FrameHeaders,
			http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, c.next)
		c.out = append(c.out, block...)
		c.next += 2
		c.pending++
	}
}

// frame returns the next frame's header and payload.
func (c *benchClient) frame(b testing.TB) (http2.FrameType, http2.Flags, []byte) {
	for {
		if c.w-c.r >= 9 {
			n := int(c.buf[c.r])<<16 | int(c.buf[c.r+1])<<8 | int(c.buf[c.r+2])
			if c.w-c.r >= 9+n {
				t, f := http2.FrameType(c.buf[c.r+3]), http2.Flags(c.buf[c.r+4])
				p := c.buf[c.r+9 : c.r+9+n]
				c.r += 9 + n
				return t, f, p
			}
		}
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		m, err := c.nc.Read(c.buf[c.w:])
		if err != nil {
			b.Fatal(err)
		}
		c.w += m
	}
}

// wait reads until every pending request ended, acknowledging SETTINGS
// and returning connection window.
func (c *benchClient) wait(b testing.TB) {
	got := 0
	for c.pending > 0 {
		t, f, p := c.frame(b)
		switch {
		case t == http2.FrameSettings && !f.Has(http2.FlagSettingsAck):
			c.out = appendFrameHeader(c.out, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
			c.flush(b)
		case t == http2.FrameData:
			got += len(p)
			if f.Has(http2.FlagDataEndStream) {
				c.pending--
			}
		case t == http2.FrameHeaders && f.Has(http2.FlagHeadersEndStream),
			t == http2.FrameRSTStream:
			c.pending--
		case t == http2.FrameGoAway:
			b.Fatalf("GOAWAY %x", p)
		}
	}
	if got > 1<<20 {
		c.out = appendFrameHeader(c.out, 4, http2.FrameWindowUpdate, 0, 0)
		c.out = binary.BigEndian.AppendUint32(c.out, uint32(got))
	}
}

// BenchmarkServe: requests over one TLS connection on loopback, c streams
// in flight at once, through this package's Conn and through x/net's
// http2.Server with the same answer. One op is one request; cpu-ns/req is
// the process's CPU time per request (client included, the same client
// for both), writes/req the server's TCP writes.
//
//	go test -run=NONE -bench=Serve -benchmem ./router/h2/
func BenchmarkServe(b *testing.B) {
	for _, kind := range []string{"spacerouter", "xnet"} {
		for _, conc := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/c=%d", kind, conc), func(b *testing.B) {
				srv := startBenchServer(b, kind)
				defer srv.close()
				c := dialBench(b, srv.ln.Addr().String())
				defer c.nc.Close()
				c.send(1) // warm up: the first request fills the tables
				c.flush(b)
				c.wait(b)
				srv.writes.Store(0)
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				done := 0
				for done < b.N {
					n := min(conc, b.N-done)
					c.send(n)
					c.flush(b)
					c.wait(b)
					done += n
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/req")
				b.ReportMetric(float64(srv.writes.Load())/float64(b.N), "writes/req")
			})
		}
	}
}

// BenchmarkEncodeHead compares the two HPACK choices for response heads:
// no dynamic table with aliased strings (the package's), or the default
// 4096-byte table with the strings copied. bytes/head is the encoded size.
func BenchmarkEncodeHead(b *testing.B) {
	fields := []h1.Field{
		{Name: []byte("Content-Type"), Value: []byte("text/html; charset=utf-8")},
		{Name: []byte("Cache-Control"), Value: []byte("private, max-age=0")},
		{Name: []byte("Date"), Value: []byte("Mon, 23 Nov 2026 12:00:00 GMT")},
		{Name: []byte("Server"), Value: []byte("gunicorn")},
		{Name: []byte("Set-Cookie"), Value: []byte("session=0123456789abcdef; Path=/; HttpOnly; Secure")},
		{Name: []byte("Vary"), Value: []byte("Accept-Encoding")},
		{Name: []byte("Via"), Value: []byte("2.0 spacerouter")},
		{Name: []byte("X-Request-Id"), Value: []byte("9d1c3f0e-6c2b-4a57-9a3e-0d8f2c1b7e44")},
	}
	for _, table := range []bool{false, true} {
		b.Run(fmt.Sprintf("table=%v", table), func(b *testing.B) {
			saved := encodeWithTable
			encodeWithTable = table
			defer func() { encodeWithTable = saved }()
			c := NewConn(nil, &Config{}, nil)
			b.ReportAllocs()
			size := 0
			for b.Loop() {
				c.mu.Lock()
				c.appendHeadLocked(1, 200, fields, 1234, false)
				size = len(c.out.b)
				c.out.b = c.out.b[:0]
				c.mu.Unlock()
			}
			b.ReportMetric(float64(size-9), "bytes/head")
		})
	}
}

// cpuTime returns the CPU time (user and system) the process used, in
// nanoseconds: client and server run in it, the client being the same for
// both servers.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestAllocsPerRequest pins the steady path: a request costs at most two
// allocations in the whole process (the client allocates none): the
// handler goroutine's start, and the writer's when the connection idled.
func TestAllocsPerRequest(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("not under -short or -race")
	}
	srv := startServer(t, &Config{}, handlerFunc(benchHandler))
	nc, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newBenchClient(t, nc)
	for _, conc := range []int{1, 16} {
		round := func() {
			c.send(conc)
			c.flush(t)
			c.wait(t)
		}
		round()
		perReq := testing.AllocsPerRun(200, round) / float64(conc)
		t.Logf("%d streams at once: %.2f allocations per request", conc, perReq)
		if perReq > 2 {
			t.Errorf("%d streams at once: %.2f allocations per request, want <= 2", conc, perReq)
		}
	}
}
