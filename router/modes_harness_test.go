package router

// The mode harness of issue 10: the request-path suites run over plain
// HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS, in the manner of the
// standard library's net/http clientserver_test.go (run(t, f, modes)).
// Every client here is raw, so what a test sends goes out as given:
// HTTP/1 as bytes on a socket, HTTP/2 as frames from x/net's Framer with
// an HPACK encoder of the test's own.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// mode is the protocol a client speaks to the router.
type mode int

const (
	modeH1    mode = iota // HTTP/1.1 over plain TCP
	modeH1TLS             // HTTP/1.1 over TLS (ALPN http/1.1)
	modeH2                // HTTP/2 over TLS (ALPN h2)
)

// allModes are the modes runModes runs by default.
var allModes = []mode{modeH1, modeH1TLS, modeH2}

func (m mode) String() string {
	switch m {
	case modeH1:
		return "h1"
	case modeH1TLS:
		return "h1TLS"
	case modeH2:
		return "h2"
	}
	return "mode" + strconv.Itoa(int(m))
}

// tls reports whether the mode runs over the TLS listener.
func (m mode) tls() bool { return m != modeH1 }

// via is the router's Via entry for a client of this mode (SPEC.md 4.7).
func (m mode) via() string {
	if m == modeH2 {
		return "2.0 spacerouter"
	}
	return "1.1 spacerouter"
}

// lineTail is how a router line of this mode ends (SPEC.md 7): protocol,
// tls and, over TLS, tls_version (the test clients negotiate TLS 1.3).
func (m mode) lineTail() string {
	switch m {
	case modeH1TLS:
		return " protocol=http1.1 tls=true tls_version=tls1.3\n"
	case modeH2:
		return " protocol=http2.0 tls=true tls_version=tls1.3\n"
	}
	return " protocol=http1.1 tls=false\n"
}

// modesNotParallel is a runModes option: the subtests run one after the
// other (tests that measure time).
type modesNotParallel struct{}

// runModes runs f once per mode as subtests named after the mode. Options:
// a []mode restricts the modes; modesNotParallel{} runs them in sequence
// (by default the test and its subtests run in parallel).
func runModes(t *testing.T, f func(t *testing.T, m mode), opts ...any) {
	t.Helper()
	modes, parallel := allModes, true
	for _, o := range opts {
		switch o := o.(type) {
		case []mode:
			modes = o
		case modesNotParallel:
			parallel = false
		default:
			t.Fatalf("runModes: unknown option %T", o)
		}
	}
	if parallel {
		t.Parallel()
	}
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			f(t, m)
		})
	}
}

// modeRouter is a router under test with the client side of one mode.
type modeRouter struct {
	*testRouter
	m mode
	p *testPKI // nil in mode modeH1
}

// modesYAML returns a space for mode m: global (top-level YAML, may be "")
// and an app shop on shop.test and *.shop.test whose dynos are dynos
// (web.1, web.2, …; "crashed:ADDR" for a crashed one) and whose extra
// YAML lines are appExtra. TLS modes add certificates, an https listener
// and a second app, blog on blog.test (on the first dyno), for H31.
func modesYAML(t testing.TB, m mode, p *testPKI, global, appExtra string, dynos ...string) string {
	var b strings.Builder
	b.WriteString(global)
	if global != "" && !strings.HasSuffix(global, "\n") {
		b.WriteString("\n")
	}
	if m.tls() {
		b.WriteString("listen: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\"}\n")
	}
	b.WriteString("apps:\n  - name: shop\n    domains: [shop.test, \"*.shop.test\"]\n")
	var extra []string
	if m.tls() {
		extra = append(extra, p.leaf(t, "shop.test", "*.shop.test"))
	}
	if appExtra != "" {
		extra = append(extra, strings.Split(strings.TrimRight(appExtra, "\n"), "\n")...)
	}
	for _, ln := range extra {
		b.WriteString("    " + ln + "\n")
	}
	b.WriteString("    dynos:\n")
	if len(dynos) == 0 {
		b.WriteString("      []\n")
	}
	for i, d := range dynos {
		if addr, ok := strings.CutPrefix(d, "crashed:"); ok {
			fmt.Fprintf(&b, "      - {name: web.%d, address: %q, state: crashed}\n", i+1, addr)
			continue
		}
		fmt.Fprintf(&b, "      - {name: web.%d, address: %q}\n", i+1, d)
	}
	if m.tls() {
		blogDyno := "127.0.0.1:1"
		if len(dynos) > 0 {
			blogDyno = strings.TrimPrefix(dynos[0], "crashed:")
		}
		fmt.Fprintf(&b, "  - name: blog\n    domains: [blog.test]\n    %s\n    dynos: [{name: web.1, address: %q}]\n",
			p.leaf(t, "blog.test"), blogDyno)
	}
	return b.String()
}

// startModeRouter starts a router for mode m with modesYAML's space.
func startModeRouter(t testing.TB, m mode, global, appExtra string, dynos ...string) *modeRouter {
	t.Helper()
	var p *testPKI
	if m.tls() {
		p = newTestPKI(t)
	}
	return &modeRouter{testRouter: startRouter(t, modesYAML(t, m, p, global, appExtra, dynos...)), m: m, p: p}
}

// port returns the port of the listener the mode's clients use.
func (mr *modeRouter) port(t testing.TB) string {
	addr := mr.addr
	if mr.m.tls() {
		addr = mr.HTTPSAddr().String()
	}
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

// proto is X-Forwarded-Proto for the mode's listener.
func (mr *modeRouter) proto() string {
	if mr.m.tls() {
		return "https"
	}
	return "http"
}

// mreq is a request in any mode.
type mreq struct {
	method, path string
	host         string      // Host / :authority; "" is shop.test
	sni          string      // TLS server name; "" is shop.test
	header       [][2]string // fields in order, as given
	body         []byte
	// noLength sends a body of unknown length: chunked over HTTP/1.1,
	// DATA frames without content-length over HTTP/2. A header that
	// declares the framing (Content-Length, Transfer-Encoding) is sent
	// as the only framing.
	noLength bool
}

// framed reports a header that declares the body's framing.
func (r *mreq) framed() bool {
	for _, f := range r.header {
		if strings.EqualFold(f[0], "content-length") || strings.EqualFold(f[0], "transfer-encoding") {
			return true
		}
	}
	return false
}

func (r *mreq) hostOr() string {
	if r.host == "" {
		return "shop.test"
	}
	return r.host
}

func (r *mreq) sniOr() string {
	if r.sni == "" {
		return "shop.test"
	}
	return r.sni
}

// String describes the request for failure messages.
func (r *mreq) String() string {
	return fmt.Sprintf("%s %s host=%s fields=%q body=%d bytes", r.method, r.path, r.hostOr(), r.header, len(r.body))
}

// mresp is what came back for a request, in any mode.
type mresp struct {
	status  int
	header  http.Header   // canonical keys
	interim []http.Header // 1xx heads, in order, with ":status" in each
	body    []byte
	// end: how the response ended: "end" (whole), "reset <code>" (HTTP/2
	// RST_STREAM), "eof" (HTTP/1 connection closed mid-body, io.ErrUnexpectedEOF),
	// or "error: …".
	end     string
	chunked bool   // HTTP/1: Transfer-Encoding: chunked
	line    string // the router line with the request's path
}

// do sends r on a new connection of the router's mode, reads the whole
// response and waits for the router line whose path= is r.path.
func (mr *modeRouter) do(t testing.TB, r mreq) mresp {
	t.Helper()
	s := mr.open(t, r)
	defer s.close()
	resp := s.response(t)
	resp.line = rqLineWithPath(t, mr.testRouter, r.path)
	return resp
}

// mstream is one request in flight, read as its response arrives.
type mstream interface {
	// head waits for the final response head; 1xx heads are kept. It
	// returns status 0 when the stream or connection ended first (then
	// end() says how).
	head(t testing.TB) (int, http.Header)
	interims() []http.Header
	// waitInterim waits for the next 1xx head before a final one and
	// returns it (with ":status"), or nil.
	waitInterim(t testing.TB) http.Header
	// read reads up to n body bytes as they arrive, waiting at most d;
	// it returns what came (short on end or timeout) and when the last
	// byte came.
	read(t testing.TB, n int, d time.Duration) ([]byte, time.Time)
	// rest reads the body to its end and says how it ended; it returns
	// the bytes read would not have returned yet.
	rest(t testing.TB) ([]byte, string)
	// pieces returns the body as it arrived: one entry per arrival (an
	// HTTP/1 socket read, an HTTP/2 DATA frame), in order.
	pieces() []mpiece
	// cancel is the client going away: the connection closed (HTTP/1),
	// RST_STREAM(CANCEL) (HTTP/2).
	cancel()
	// sendBody sends more request body (for requests opened with a
	// partial body); end completes it.
	sendBody(t testing.TB, p []byte, end bool)
	close()
	response(t testing.TB) mresp
}

// mpiece is a body piece and when it arrived.
type mpiece struct {
	at time.Time
	n  int
}

// open sends r and returns the request in flight.
func (mr *modeRouter) open(t testing.TB, r mreq) mstream {
	t.Helper()
	if mr.m == modeH2 {
		c := mr.h2Dial(t, r.sniOr(), nil)
		return c.openStream(t, r, true)
	}
	c := mr.h1Dial(t, r.sniOr())
	return c.openStream(t, r, true)
}

// openPartial sends r's head and the body bytes given, and leaves the
// request open (sendBody goes on; the declared length is declLen, -1 for
// none).
func (mr *modeRouter) openPartial(t testing.TB, r mreq, declLen int) mstream {
	t.Helper()
	if declLen >= 0 {
		r.header = append(r.header, [2]string{"content-length", strconv.Itoa(declLen)})
	}
	r.noLength = true // the header above is the only framing
	if mr.m == modeH2 {
		c := mr.h2Dial(t, r.sniOr(), nil)
		return c.openStream(t, r, false)
	}
	c := mr.h1Dial(t, r.sniOr())
	if declLen < 0 {
		r.header = append(r.header, [2]string{"Transfer-Encoding", "chunked"})
	}
	return c.openStream(t, r, false)
}

// response reads a whole response from s.
func mresponse(t testing.TB, s mstream) mresp {
	t.Helper()
	st, h := s.head(t)
	resp := mresp{status: st, header: h, interim: s.interims()}
	if st == 0 {
		_, resp.end = s.rest(t)
		return resp
	}
	resp.body, resp.end = s.rest(t)
	return resp
}

// assertLine checks the router line's protocol, tls and tls_version for
// the mode (SPEC.md 7).
func (mr *modeRouter) assertLine(t testing.TB, line string) {
	t.Helper()
	assert.True(t, strings.HasSuffix(line, mr.m.lineTail()), "mode %s: the line must end %q; line %q", mr.m, mr.m.lineTail(), line)
}

// --- HTTP/1 ------------------------------------------------------------------

// mh1Conn is an HTTP/1.1 client connection, plain or TLS.
type mh1Conn struct {
	nc net.Conn
	tr *timedReader
	br *bufio.Reader
}

// timedReader records each Read of the connection that returned bytes.
type timedReader struct {
	r     io.Reader
	mu    sync.Mutex
	reads []mpiece
}

func (tr *timedReader) Read(p []byte) (int, error) {
	n, err := tr.r.Read(p)
	if n > 0 {
		tr.mu.Lock()
		tr.reads = append(tr.reads, mpiece{at: time.Now(), n: n})
		tr.mu.Unlock()
	}
	return n, err
}

func (mr *modeRouter) h1Dial(t testing.TB, sni string) *mh1Conn {
	t.Helper()
	var nc net.Conn
	var err error
	if mr.m == modeH1TLS {
		nc, err = tls.Dial("tcp", mr.HTTPSAddr().String(), &tls.Config{RootCAs: mr.p.pool, ServerName: sni, NextProtos: []string{"http/1.1"}})
	} else {
		nc, err = net.Dial("tcp", mr.addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(rqIOTimeout))
	tr := &timedReader{r: nc}
	return &mh1Conn{nc: nc, tr: tr, br: bufio.NewReaderSize(tr, 64<<10)}
}

// mh1Stream is one HTTP/1.1 request in flight.
type mh1Stream struct {
	c       *mh1Conn
	req     mreq
	chunked bool // the request body is sent chunked
	resp    *http.Response
	ints    []http.Header
	headErr error
	body    []byte
	readOff int // body bytes returned by read
	bodyEnd string
	reads   []mpiece // body reads
}

func (c *mh1Conn) openStream(t testing.TB, r mreq, whole bool) *mh1Stream {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.path, r.hostOr())
	for _, f := range r.header {
		fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
	}
	s := &mh1Stream{c: c, req: r}
	for _, f := range r.header {
		if strings.EqualFold(f[0], "transfer-encoding") {
			s.chunked = true
		}
	}
	if whole && !r.framed() {
		switch {
		case r.body != nil && r.noLength:
			b.WriteString("Transfer-Encoding: chunked\r\n")
			s.chunked = true
		case r.body != nil:
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
		}
	}
	b.WriteString("\r\n")
	_, err := c.nc.Write(b.Bytes())
	require.NoError(t, err, "writing the head of %s", &r)
	if r.body != nil {
		s.sendBody(t, r.body, whole)
	}
	return s
}

func (s *mh1Stream) sendBody(t testing.TB, p []byte, end bool) {
	t.Helper()
	if s.chunked {
		var b bytes.Buffer
		// In pieces, so the body really is of unknown length on the wire.
		for len(p) > 0 {
			n := min(len(p), 7000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, p[:n])
			p = p[n:]
		}
		if end {
			b.WriteString("0\r\n\r\n")
		}
		p = b.Bytes()
	}
	_, err := s.c.nc.Write(p)
	require.NoError(t, err, "writing %d request body bytes", len(p))
}

func (s *mh1Stream) head(t testing.TB) (int, http.Header) {
	t.Helper()
	if s.resp != nil {
		return s.resp.StatusCode, s.resp.Header
	}
	if s.headErr != nil {
		return 0, nil
	}
	for {
		resp, err := http.ReadResponse(s.c.br, &http.Request{Method: s.req.method})
		if err != nil {
			s.headErr = err
			s.bodyEnd = "error: " + err.Error()
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				s.bodyEnd = "eof"
			}
			return 0, nil
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			h := resp.Header.Clone()
			h.Set(":status", strconv.Itoa(resp.StatusCode))
			s.ints = append(s.ints, h)
			continue
		}
		s.resp = resp
		return resp.StatusCode, resp.Header
	}
}

func (s *mh1Stream) interims() []http.Header { return s.ints }

func (s *mh1Stream) waitInterim(t testing.TB) http.Header {
	t.Helper()
	n := len(s.ints)
	resp, err := http.ReadResponse(s.c.br, &http.Request{Method: s.req.method})
	if err != nil {
		s.headErr = err
		s.bodyEnd = "error: " + err.Error()
		return nil
	}
	if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
		h := resp.Header.Clone()
		h.Set(":status", strconv.Itoa(resp.StatusCode))
		s.ints = append(s.ints, h)
		return s.ints[n]
	}
	s.resp = resp
	return nil
}

func (s *mh1Stream) read(t testing.TB, n int, d time.Duration) ([]byte, time.Time) {
	t.Helper()
	if st, _ := s.head(t); st == 0 {
		return nil, time.Time{}
	}
	s.c.nc.SetReadDeadline(time.Now().Add(d))
	defer s.c.nc.SetReadDeadline(time.Now().Add(rqIOTimeout))
	var out []byte
	var at time.Time
	buf := make([]byte, 64<<10)
	for len(out) < n {
		k, err := s.resp.Body.Read(buf[:n-len(out)])
		if k > 0 {
			at = time.Now()
			s.reads = append(s.reads, mpiece{at: at, n: k})
			out = append(out, buf[:k]...)
		}
		if err != nil {
			if err == io.EOF {
				s.bodyEnd = "end"
			}
			break
		}
	}
	s.body = append(s.body, out...)
	s.readOff = len(s.body)
	return out, at
}

func (s *mh1Stream) rest(t testing.TB) ([]byte, string) {
	t.Helper()
	if st, _ := s.head(t); st == 0 {
		return nil, s.bodyEnd
	}
	defer func() { s.readOff = len(s.body) }()
	if s.bodyEnd == "" {
		buf := make([]byte, 64<<10)
		for {
			k, err := s.resp.Body.Read(buf)
			if k > 0 {
				s.reads = append(s.reads, mpiece{at: time.Now(), n: k})
				s.body = append(s.body, buf[:k]...)
			}
			if err == io.EOF {
				s.bodyEnd = "end"
				break
			}
			if err == io.ErrUnexpectedEOF {
				s.bodyEnd = "eof"
				break
			}
			if err != nil {
				s.bodyEnd = "error: " + err.Error()
				break
			}
		}
	}
	return s.body[s.readOff:], s.bodyEnd
}

func (s *mh1Stream) pieces() []mpiece { return s.reads }

func (s *mh1Stream) cancel() { s.c.nc.Close() }
func (s *mh1Stream) close()  { s.c.nc.Close() }

func (s *mh1Stream) response(t testing.TB) mresp {
	t.Helper()
	r := mresponse(t, s)
	if s.resp != nil {
		r.chunked = len(s.resp.TransferEncoding) > 0 && s.resp.TransferEncoding[0] == "chunked"
	}
	return r
}

// --- HTTP/2 ------------------------------------------------------------------

// mh2Client is a raw HTTP/2 client connection over TLS. A reader goroutine
// sorts the server's frames by stream, acknowledges SETTINGS and PING and
// gives back the window of DATA received (unless noWindowUpdates); every
// write goes through a bufio.Writer flushed once per call, so a batch is
// one write.
type mh2Client struct {
	t  testing.TB
	nc *tls.Conn

	// wmu guards the writing side: fr's writes, bw, enc and hb, next.
	wmu  sync.Mutex
	bw   *bufio.Writer
	fr   *http2.Framer
	enc  *hpack.Encoder
	hb   bytes.Buffer
	next uint32

	// mu guards the fields below; cond is signalled on every frame.
	mu              sync.Mutex
	cond            *sync.Cond
	streams         map[uint32]*mh2Stream
	settings        map[http2.SettingID]uint32
	goaway          *http2.GoAwayFrame // a copy (DebugData copied too)
	goawayAt        time.Time
	readErr         error
	closed          bool
	connWin         int64 // our send window, connection
	peerInit        int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	noWindowUpdates bool
	frames          int // frames read
}

// mh2Stream is one stream of an mh2Client.
type mh2Stream struct {
	c        *mh2Client
	id       uint32
	req      mreq
	heads    [][]hpack.HeaderField // every header block: 1xx, final, trailers
	body     []byte
	data     []mpiece
	readOff  int
	intSeen  int  // interim heads returned by waitInterim
	ended    bool // END_STREAM received
	rst      *http2.ErrCode
	rstAt    time.Time
	protoErr error // a stream error of the client's Framer
	sendWin  int64
}

// mh2Settings are the client's SETTINGS; nil values take the defaults
// (INITIAL_WINDOW_SIZE 16 MiB, so bodies never wait on the client).
type mh2Settings []http2.Setting

// h2Dial opens an HTTP/2 connection to the router with server name sni and
// sends the preface with settings (nil: the defaults) and a connection
// WINDOW_UPDATE of 1 GiB.
func (mr *modeRouter) h2Dial(t testing.TB, sni string, settings mh2Settings) *mh2Client {
	t.Helper()
	return dialMH2(t, mr.HTTPSAddr().String(), mr.p, sni, settings)
}

func dialMH2(t testing.TB, addr string, p *testPKI, sni string, settings mh2Settings) *mh2Client {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.pool, ServerName: sni, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	require.Equal(t, "h2", nc.ConnectionState().NegotiatedProtocol, "ALPN must choose h2")
	c := &mh2Client{t: t, nc: nc, next: 1, streams: map[uint32]*mh2Stream{}, settings: map[http2.SettingID]uint32{},
		connWin: 65535, peerInit: 65535}
	c.cond = sync.NewCond(&c.mu)
	c.bw = bufio.NewWriterSize(nc, 64<<10)
	c.fr = http2.NewFramer(c.bw, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	c.fr.MaxHeaderListSize = 16 << 20
	c.enc = hpack.NewEncoder(&c.hb)
	if settings == nil {
		settings = mh2Settings{{ID: http2.SettingInitialWindowSize, Val: 16 << 20}}
	}
	c.batch(func() {
		c.bw.WriteString(http2.ClientPreface)
		c.fr.WriteSettings(settings...)
		c.fr.WriteWindowUpdate(0, 1<<30-65535)
	})
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

// close closes the connection.
func (c *mh2Client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.nc.Close()
}

// batch runs f, which writes frames, and flushes them as one write.
func (c *mh2Client) batch(f func()) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(rqIOTimeout))
	f()
	return c.bw.Flush()
}

// readLoop reads the server's frames until the connection ends.
func (c *mh2Client) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if se, ok := err.(http2.StreamError); ok {
				c.mu.Lock()
				c.stream(se.StreamID).protoErr = se
				c.cond.Broadcast()
				c.mu.Unlock()
				continue
			}
			c.mu.Lock()
			c.readErr = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var reply []func()
		c.mu.Lock()
		c.frames++
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				f.ForeachSetting(func(s http2.Setting) error {
					c.settings[s.ID] = s.Val
					if s.ID == http2.SettingInitialWindowSize {
						delta := int64(s.Val) - c.peerInit
						c.peerInit = int64(s.Val)
						for _, st := range c.streams {
							st.sendWin += delta
						}
					}
					return nil
				})
				reply = append(reply, func() { c.fr.WriteSettingsAck() })
			}
		case *http2.MetaHeadersFrame:
			st := c.stream(f.StreamID)
			st.heads = append(st.heads, append([]hpack.HeaderField(nil), f.Fields...))
			if f.StreamEnded() {
				st.ended = true
			}
		case *http2.DataFrame:
			st := c.stream(f.StreamID)
			d := f.Data()
			if len(d) > 0 {
				st.body = append(st.body, d...)
				st.data = append(st.data, mpiece{at: time.Now(), n: len(d)})
			}
			if f.StreamEnded() {
				st.ended = true
			}
			if n := f.Length; n > 0 && !c.noWindowUpdates {
				id := f.StreamID
				reply = append(reply, func() {
					c.fr.WriteWindowUpdate(0, n)
					c.fr.WriteWindowUpdate(id, n)
				})
			}
		case *http2.RSTStreamFrame:
			st := c.stream(f.StreamID)
			code := f.ErrCode
			st.rst, st.rstAt = &code, time.Now()
		case *http2.GoAwayFrame:
			g := *f
			g.FrameHeader = http2.FrameHeader{}
			c.goaway, c.goawayAt = &g, time.Now()
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.connWin += int64(f.Increment)
			} else {
				c.stream(f.StreamID).sendWin += int64(f.Increment)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				reply = append(reply, func() { c.fr.WritePing(true, data) })
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if len(reply) > 0 {
			c.batch(func() {
				for _, r := range reply {
					r()
				}
			})
		}
	}
}

// stream returns the stream id, mapping it if new; c.mu is held.
func (c *mh2Client) stream(id uint32) *mh2Stream {
	st := c.streams[id]
	if st == nil {
		st = &mh2Stream{c: c, id: id, sendWin: c.peerInit}
		c.streams[id] = st
	}
	return st
}

// waitFor waits until cond (called with c.mu held) is true, or d passes;
// it reports cond's last value.
func (c *mh2Client) waitFor(d time.Duration, cond func() bool) bool {
	timer := time.AfterFunc(d, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		c.cond.Wait()
	}
	return true
}

// headerBlock encodes fields with the connection's encoder; wmu is held.
func (c *mh2Client) headerBlock(fields [][2]string) []byte {
	c.hb.Reset()
	for _, f := range fields {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), c.hb.Bytes()...)
}

// writeHeadersLocked writes a header block as HEADERS and CONTINUATION
// frames of at most 16384 bytes; wmu is held.
func (c *mh2Client) writeHeadersLocked(id uint32, block []byte, end bool) {
	first := block[:min(len(block), 16384)]
	block = block[len(first):]
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		frag := block[:min(len(block), 16384)]
		block = block[len(frag):]
		c.fr.WriteContinuation(id, len(block) == 0, frag)
	}
}

// requestFields are the pseudo-headers and fields of r.
func requestFields(r mreq, withLength bool) [][2]string {
	fields := [][2]string{{":method", r.method}, {":scheme", "https"}, {":authority", r.hostOr()}, {":path", r.path}}
	if r.method == "CONNECT" {
		fields = [][2]string{{":method", r.method}, {":authority", r.hostOr()}}
	}
	for _, f := range r.header {
		fields = append(fields, [2]string{strings.ToLower(f[0]), f[1]})
	}
	if withLength && r.body != nil && !r.noLength && !r.framed() {
		fields = append(fields, [2]string{"content-length", strconv.Itoa(len(r.body))})
	}
	return fields
}

// openStream sends r on a new stream: HEADERS (END_STREAM without a body),
// then the body as DATA. With whole false the stream stays open after
// r.body.
func (c *mh2Client) openStream(t testing.TB, r mreq, whole bool) *mh2Stream {
	t.Helper()
	return c.openRaw(t, r, requestFields(r, whole), whole)
}

// openRaw is openStream with the header block's fields given.
func (c *mh2Client) openRaw(t testing.TB, r mreq, fields [][2]string, whole bool) *mh2Stream {
	t.Helper()
	endHead := whole && r.body == nil
	var st *mh2Stream
	err := c.batch(func() {
		id := c.next
		c.next += 2
		c.mu.Lock()
		st = c.stream(id)
		st.req = r
		c.mu.Unlock()
		c.writeHeadersLocked(id, c.headerBlock(fields), endHead)
	})
	require.NoError(t, err, "writing the HEADERS of %s", &r)
	if r.body != nil || (whole && !endHead) {
		st.sendBody(t, r.body, whole)
	}
	return st
}

// sendBody sends p as DATA frames within the server's windows (waiting
// for them); end sets END_STREAM on the last one.
func (st *mh2Stream) sendBody(t testing.TB, p []byte, end bool) {
	t.Helper()
	require.NoError(t, st.trySendBody(p, end), "sending %d body bytes on stream %d", len(p), st.id)
}

// trySendBody is sendBody that returns what went wrong.
func (st *mh2Stream) trySendBody(p []byte, end bool) error {
	c := st.c
	if len(p) == 0 && end {
		return c.batch(func() { c.fr.WriteData(st.id, true, nil) })
	}
	// Several frames, so a body of unknown length comes in pieces.
	const maxFrame = 16384
	for len(p) > 0 {
		var n int64
		ok := c.waitFor(rqIOTimeout, func() bool {
			if st.rst != nil || c.readErr != nil || c.closed {
				return true
			}
			n = min(int64(len(p)), maxFrame, st.sendWin, c.connWin)
			return n > 0
		})
		c.mu.Lock()
		switch {
		case !ok:
			sw, cw := st.sendWin, c.connWin
			c.mu.Unlock()
			return fmt.Errorf("no flow-control window within %s (stream %d window, connection %d)", rqIOTimeout, sw, cw)
		case st.rst != nil:
			c.mu.Unlock()
			return fmt.Errorf("stream reset (%v)", *st.rst)
		case c.readErr != nil || c.closed:
			err := c.readErr
			c.mu.Unlock()
			return fmt.Errorf("connection ended: %v", err)
		}
		st.sendWin -= n
		c.connWin -= n
		c.mu.Unlock()
		chunk := p[:n]
		p = p[n:]
		last := len(p) == 0 && end
		if err := c.batch(func() { c.fr.WriteData(st.id, last, chunk) }); err != nil {
			return err
		}
	}
	return nil
}

// reset sends RST_STREAM(code) on the stream.
func (st *mh2Stream) reset(code http2.ErrCode) {
	st.c.batch(func() { st.c.fr.WriteRSTStream(st.id, code) })
}

// finished reports that the stream ended: END_STREAM, a reset, a stream
// error, or the connection's end; c.mu is held.
func (st *mh2Stream) finishedLocked() bool {
	return st.ended || st.rst != nil || st.protoErr != nil || st.c.readErr != nil
}

// finalLocked returns the index of the final (non-1xx) head, or -1.
func (st *mh2Stream) finalLocked() int {
	for i, h := range st.heads {
		if s := statusOf(h); s >= 200 {
			return i
		}
	}
	return -1
}

func statusOf(h []hpack.HeaderField) int {
	for _, f := range h {
		if f.Name == ":status" {
			n, _ := strconv.Atoi(f.Value)
			return n
		}
	}
	return 0
}

// headerOf makes an http.Header of a header block, ":status" included.
func headerOf(fields []hpack.HeaderField) http.Header {
	h := http.Header{}
	for _, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			h[f.Name] = append(h[f.Name], f.Value)
			continue
		}
		h.Add(f.Name, f.Value)
	}
	return h
}

func (st *mh2Stream) head(t testing.TB) (int, http.Header) {
	t.Helper()
	c := st.c
	c.waitFor(rqIOTimeout, func() bool { return st.finalLocked() >= 0 || st.finishedLocked() })
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := st.finalLocked(); i >= 0 {
		return statusOf(st.heads[i]), headerOf(st.heads[i])
	}
	return 0, nil
}

func (st *mh2Stream) interims() []http.Header {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	var out []http.Header
	for _, h := range st.heads {
		if s := statusOf(h); s >= 100 && s < 200 {
			out = append(out, headerOf(h))
		}
	}
	return out
}

func (st *mh2Stream) waitInterim(t testing.TB) http.Header {
	t.Helper()
	c := st.c
	var h http.Header
	c.waitFor(rqIOTimeout, func() bool {
		seen := 0
		for _, hd := range st.heads {
			if s := statusOf(hd); s >= 100 && s < 200 {
				if seen == st.intSeen {
					h = headerOf(hd)
					return true
				}
				seen++
			} else {
				return true
			}
		}
		return st.finishedLocked()
	})
	if h != nil {
		st.intSeen++
	}
	return h
}

func (st *mh2Stream) read(t testing.TB, n int, d time.Duration) ([]byte, time.Time) {
	t.Helper()
	c := st.c
	c.waitFor(d, func() bool { return len(st.body)-st.readOff >= n || st.finishedLocked() })
	c.mu.Lock()
	defer c.mu.Unlock()
	k := min(n, len(st.body)-st.readOff)
	out := append([]byte(nil), st.body[st.readOff:st.readOff+k]...)
	// When the last of these bytes came.
	var at time.Time
	off := 0
	for _, p := range st.data {
		off += p.n
		if off >= st.readOff+k {
			at = p.at
			break
		}
	}
	st.readOff += k
	return out, at
}

// endLocked says how a finished stream ended.
func (st *mh2Stream) endLocked() string {
	switch {
	case st.rst != nil:
		return "reset " + st.rst.String()
	case st.ended:
		return "end"
	case st.protoErr != nil:
		return "error: " + st.protoErr.Error()
	case st.c.readErr != nil:
		return "error: connection: " + st.c.readErr.Error()
	}
	return "error: the stream did not end within " + rqIOTimeout.String()
}

func (st *mh2Stream) rest(t testing.TB) ([]byte, string) {
	t.Helper()
	c := st.c
	c.waitFor(rqIOTimeout, st.finishedLocked)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]byte(nil), st.body[st.readOff:]...)
	st.readOff = len(st.body)
	return out, st.endLocked()
}

func (st *mh2Stream) pieces() []mpiece {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	return append([]mpiece(nil), st.data...)
}

func (st *mh2Stream) cancel() { st.reset(http2.ErrCodeCancel) }
func (st *mh2Stream) close()  {}

func (st *mh2Stream) response(t testing.TB) mresp {
	t.Helper()
	return mresponse(t, st)
}

// rstCode returns the code the server reset the stream with, or nil.
func (st *mh2Stream) rstCode() *http2.ErrCode {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	return st.rst
}

// goAway returns the GOAWAY the server sent, or nil.
func (c *mh2Client) goAway() *http2.GoAwayFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.goaway
}

// readError returns the error that ended the read loop, nil while it
// runs.
func (c *mh2Client) readError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}
