package h2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spacerouter/spacerouter/router/h1"
)

// testCert is a self-signed certificate for 127.0.0.1, made once.
var testCert = sync.OnceValue(func() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h2 test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
})

func serverTLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testCert()}, NextProtos: []string{"h2"}}
}

func clientTLSConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(*Stream)

func (f handlerFunc) ServeStream(s *Stream) { f(s) }

// testServer serves Conns on a loopback listener.
type testServer struct {
	t        testing.TB
	ln       net.Listener
	addr     string
	tls      bool
	cfg      *Config
	h        Handler
	wrap     func(net.Conn) net.Conn
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []*Conn
	errs     chan error // Serve results
	accepted chan *Conn
}

type serverOpt func(*testServer)

func withTLS(s *testServer)                        { s.tls = true }
func withWrap(f func(net.Conn) net.Conn) serverOpt { return func(s *testServer) { s.wrap = f } }

// startServer serves h with cfg on 127.0.0.1:0 (h2c prior knowledge unless
// withTLS); the cleanup closes everything and checks that every Serve
// returned.
func startServer(t testing.TB, cfg *Config, h Handler, opts ...serverOpt) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &testServer{t: t, ln: ln, addr: ln.Addr().String(), cfg: cfg, h: h, errs: make(chan error, 10000), accepted: make(chan *Conn, 10000)}
	for _, o := range opts {
		o(s)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.wrap != nil {
				nc = s.wrap(nc)
			}
			if s.tls {
				tc := tls.Server(nc, serverTLSConfig())
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					nc.Close()
					return
				}
				nc = tc
			}
			c := NewConn(nc, s.cfg, s.h)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.accepted <- c
			s.errs <- c.Serve()
		}()
	}
}

func (s *testServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// nextConn returns the next accepted connection.
func (s *testServer) nextConn() *Conn {
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(10 * time.Second):
		s.t.Fatal("no connection accepted")
		return nil
	}
}

// serveErr waits for one Serve to return.
func (s *testServer) serveErr(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// transport returns an HTTP/2 client for s: net/http's (the x/net code,
// bundled), over TLS or h2c with prior knowledge.
func (s *testServer) transport() *http.Transport {
	var p http.Protocols
	tr := &http.Transport{TLSClientConfig: clientTLSConfig(), Protocols: &p, ForceAttemptHTTP2: true}
	if s.tls {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return tr
}

func (s *testServer) url(path string) string {
	if s.tls {
		return "https://" + s.addr + path
	}
	return "http://" + s.addr + path
}

// echo answers like a dyno: it reads the body and answers 200 with the
// method, the path and the body; refused heads get what the router sends.
func echo(s *Stream) {
	defer s.Close()
	if answerRefused(s) {
		return
	}
	req := s.Request()
	body, err := io.ReadAll(s)
	if err != nil {
		return
	}
	out := fmt.Appendf(nil, "%s %s\n", req.Method, req.Target)
	out = append(out, body...)
	s.Send(&Head{Status: 200, Fields: []h1.Field{{Name: []byte("Content-Type"), Value: []byte("text/plain")}}, ContentLength: int64(len(out))}, out, true)
}

// answerRefused answers a refused head as the router will: a reset for a
// malformed request, 417 for an unsupported Expect, 400 for a limit.
func answerRefused(s *Stream) bool {
	switch err := s.HeadErr(); {
	case err == nil:
		return false
	case errors.Is(err, h1.ErrMalformed):
		s.Reset(http2.ErrCodeProtocol)
	case errors.Is(err, h1.ErrUnsupportedExpect):
		s.Send(&Head{Status: 417, ContentLength: 0}, nil, true)
	case errors.Is(err, h1.ErrLineTooLong):
		s.Send(&Head{Status: 414, ContentLength: 0}, nil, true)
	default:
		s.Send(&Head{Status: 400, ContentLength: 0}, nil, true)
	}
	return true
}

// get does one request with the x/net client.
func get(t testing.TB, c *http.Client, method, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	return resp, b
}

// rawClient speaks HTTP/2 frame by frame.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	dec  *hpack.Decoder
	wbuf bytes.Buffer // frames written with the Framer, flushed by flush
	next uint32       // next stream id
}

func dialRaw(t testing.TB, s *testServer) *rawClient {
	t.Helper()
	var nc net.Conn
	var err error
	if s.tls {
		nc, err = tls.Dial("tcp", s.addr, clientTLSConfig())
	} else {
		nc, err = net.Dial("tcp", s.addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, next: 1}
	c.fr = http2.NewFramer(&c.wbuf, nc)
	c.fr.AllowIllegalWrites = true
	c.fr.AllowIllegalReads = true
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.dec = hpack.NewDecoder(4096, nil)
	return c
}

// handshake sends the preface and SETTINGS and reads the server's
// SETTINGS and ACK.
func (c *rawClient) handshake(settings ...http2.Setting) []http2.Setting {
	c.t.Helper()
	c.wbuf.WriteString(http2.ClientPreface)
	require.NoError(c.t, c.fr.WriteSettings(settings...))
	c.flush()
	var got []http2.Setting
	sawSettings, sawAck := false, false
	for !sawSettings || !sawAck {
		f := c.read()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				sawAck = true
				continue
			}
			sawSettings = true
			f.ForeachSetting(func(s http2.Setting) error { got = append(got, s); return nil })
			require.NoError(c.t, c.fr.WriteSettingsAck())
			c.flush()
		case *http2.WindowUpdateFrame:
		default:
			c.t.Fatalf("handshake: unexpected %v", f)
		}
	}
	return got
}

// flush writes the buffered frames in one write.
func (c *rawClient) flush() {
	c.t.Helper()
	_, err := c.nc.Write(c.wbuf.Bytes())
	c.wbuf.Reset()
	require.NoError(c.t, err)
}

// block encodes fields as a header block.
func (c *rawClient) block(kv ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), c.hbuf.Bytes()...)
}

// reqFields is a GET for path.
func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "https", ":path", path, ":authority", "example.test"}, extra...)
}

// headers queues a HEADERS frame opening a new stream and returns its id.
func (c *rawClient) headers(end bool, kv ...string) uint32 {
	id := c.next
	c.next += 2
	c.headersOn(id, end, kv...)
	return id
}

func (c *rawClient) headersOn(id uint32, end bool, kv ...string) {
	require.NoError(c.t, c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.block(kv...), EndStream: end, EndHeaders: true,
	}))
}

// read reads one frame within 5 s.
func (c *rawClient) read() http2.Frame {
	c.t.Helper()
	f, err := c.readErr(5 * time.Second)
	require.NoError(c.t, err)
	return f
}

func (c *rawClient) readErr(d time.Duration) (http2.Frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	return c.fr.ReadFrame()
}

// response is what a stream got back.
type response struct {
	status  int
	fields  map[string]string
	body    []byte
	ended   bool
	rst     http2.ErrCode
	reset   bool
	interim []int
}

// until reads frames until stop says so, collecting responses by stream;
// it answers PINGs and returns the GOAWAY if one came.
func (c *rawClient) until(stop func(map[uint32]*response, *http2.GoAwayFrame) bool) (map[uint32]*response, *http2.GoAwayFrame) {
	c.t.Helper()
	rs := map[uint32]*response{}
	var ga *http2.GoAwayFrame
	get := func(id uint32) *response {
		if rs[id] == nil {
			rs[id] = &response{fields: map[string]string{}}
		}
		return rs[id]
	}
	for !stop(rs, ga) {
		f, err := c.readErr(5 * time.Second)
		if err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				if ga == nil {
					c.t.Fatalf("connection closed (%v) without GOAWAY, with %d responses", err, len(rs))
				}
				return rs, ga
			}
			c.t.Fatalf("reading: %v (have %d responses)", err, len(rs))
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			r := get(f.StreamID)
			status := 0
			c.dec.SetEmitFunc(func(hf hpack.HeaderField) {
				if hf.Name == ":status" {
					status, _ = strconv.Atoi(hf.Value)
				} else {
					r.fields[hf.Name] = hf.Value
				}
			})
			_, err := c.dec.Write(f.HeaderBlockFragment())
			require.NoError(c.t, err)
			for !f.HeadersEnded() {
				cf := c.read().(*http2.ContinuationFrame)
				_, err := c.dec.Write(cf.HeaderBlockFragment())
				require.NoError(c.t, err)
				if cf.HeadersEnded() {
					break
				}
			}
			require.NoError(c.t, c.dec.Close())
			if status < 200 {
				r.interim = append(r.interim, status)
			} else {
				r.status = status
			}
			r.ended = r.ended || f.StreamEnded()
		case *http2.DataFrame:
			r := get(f.StreamID)
			r.body = append(r.body, f.Data()...)
			r.ended = r.ended || f.StreamEnded()
			if n := len(f.Data()); n > 0 {
				c.fr.WriteWindowUpdate(0, uint32(n))
				c.fr.WriteWindowUpdate(f.StreamID, uint32(n))
				c.flush()
			}
		case *http2.RSTStreamFrame:
			r := get(f.StreamID)
			r.reset, r.rst = true, f.ErrCode
		case *http2.GoAwayFrame:
			ga = f
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
				c.flush()
			}
		}
	}
	return rs, ga
}

// done reports whether every stream of ids ended or was reset.
func done(ids ...uint32) func(map[uint32]*response, *http2.GoAwayFrame) bool {
	return func(rs map[uint32]*response, _ *http2.GoAwayFrame) bool {
		for _, id := range ids {
			if r := rs[id]; r == nil || !r.ended && !r.reset {
				return false
			}
		}
		return true
	}
}

// gotGoAway stops at a GOAWAY.
func gotGoAway(_ map[uint32]*response, ga *http2.GoAwayFrame) bool { return ga != nil }

// expectGoAway reads until a GOAWAY and the connection's end.
func (c *rawClient) expectGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	c.t.Helper()
	_, ga := c.until(gotGoAway)
	require.NotNil(c.t, ga, "no GOAWAY before the connection closed")
	require.Equal(c.t, code, ga.ErrCode, "GOAWAY code (debug %q)", ga.DebugData())
	c.expectClosed()
	return ga
}

// expectClosed reads until the connection ends.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	for {
		_, err := c.readErr(5 * time.Second)
		if err != nil {
			require.True(c.t, errors.Is(err, io.EOF) || isReset(err), "want the connection closed, got %v", err)
			c.nc.Close()
			return
		}
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// counter counts calls of a hook.
type counter struct{ n atomic.Int64 }

func (c *counter) inc() { c.n.Add(1) }

// reasons collects OnAbuse reasons.
type reasons struct {
	mu sync.Mutex
	r  []string
}

func (r *reasons) add(s string) { r.mu.Lock(); r.r = append(r.r, s); r.mu.Unlock() }
func (r *reasons) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.r...)
}

// waitGoroutines waits (yielding, no sleep) until at most n goroutines
// run, and fails with a dump otherwise.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
