package router

import (
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
)

// Client connection states, for drain (SPEC.md section 1).
const (
	connIdle    int32 = iota // waiting for the first byte of a request
	connActive               // a request is being served
	connClosing              // closed by Shutdown while idle
)

// Read modes of a client connection's reader.
const (
	readIdle   uint8 = iota // keep-alive wait: the deadline was set once
	readActive              // mid-request: each read renews the client window
	readWatch               // background watch for a client close: no deadline
)

// clientConn serves one client connection: requests one at a time,
// pipelined ones in order (SPEC.md 4b).
type clientConn struct {
	rt    *Router
	c     net.Conn
	li    listenerInfo
	ip    []byte // the client IP, for X-Forwarded-For
	state atomic.Int32

	cr   connReader
	rdl  readDeadline // the client read deadline, set by this goroutine only
	br   *h1.Reader
	req  h1.Request
	resp h1.Response
	line logging.Line
	rng  *rand.ChaCha8

	// Per-request scratch, reused.
	host      []byte // normalized Host
	rid       []byte // X-Request-Id sent to the dyno
	xff       []byte // X-Forwarded-For sent to the dyno
	out       []byte // bytes on their way to the client or the dyno
	lenr      h1.LengthReader
	chunk     h1.ChunkedReader
	dynoLen   h1.LengthReader
	dynoChunk h1.ChunkedReader

	// startSec is the X-Request-Start value of the last request in whole
	// seconds, and startSecText its digits (see appendStartMillis).
	startSec     int64
	startSecText []byte

	// respStarted: some of the response reached the client.
	respStarted bool
	// closeAfter: the connection ends after this response.
	closeAfter bool
	// linger: the connection ends after a router-made answer while unread
	// client bytes may remain; see close.
	linger bool
	// protoKnown: line.Protocol was set from a salvaged request line.
	protoKnown bool

	// The client side's transport: TLS version (0 on plain HTTP), the
	// normalized SNI name, HTTP/2 (a stream presented as HTTP/1.1), and
	// the Via entry that goes with it.
	tlsVersion uint16
	sni        []byte
	h2         bool
	via        string

	// am counts the request: its app's metrics (the space's _other set
	// until the request is routed).
	am *appMetrics
}

// connReader sets the client deadlines around each read.
type connReader struct {
	cc      *clientConn
	mode    uint8
	timeout time.Duration // the client window in readActive
	got     bool          // a byte of the current request arrived
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.mode == readActive {
		r.cc.rdl.extend(r.cc.c, time.Now(), r.timeout)
	}
	n, err := r.cc.c.Read(p)
	if n > 0 && r.mode == readIdle {
		r.mode = readActive
		r.got = true
		r.cc.state.CompareAndSwap(connIdle, connActive)
	}
	return n, err
}

// readDeadline remembers the read deadline a connection's owner last set,
// so a deadline that would barely move is left in place: each set is a
// runtime timer update, about 650 instructions, a large part of a small
// request's CPU (golang/go#25729). Other goroutines may only set an
// earlier deadline (to wake a read): then the remembered one is later than
// the real one, which can only make a read end early, never late.
type readDeadline struct {
	at time.Time // zero: none
}

// maxDeadlineSlack bounds how late a reused deadline lets a timeout fire.
// A few milliseconds on the router's second-scale timeouts are within the
// scheduling noise of a loaded process; a deadline is never early.
const maxDeadlineSlack = 4 * time.Millisecond

// set sets the read deadline of c to t (zero: none).
func (d *readDeadline) set(c net.Conn, t time.Time) {
	d.at = t
	c.SetReadDeadline(t)
}

// extend makes the read deadline of c timeout after now, or up to a slack
// (at most maxDeadlineSlack and an eighth of timeout) later when the
// current deadline is already there.
func (d *readDeadline) extend(c net.Conn, now time.Time, timeout time.Duration) {
	slack := min(maxDeadlineSlack, timeout/8)
	if left := d.at.Sub(now); left >= timeout && left <= timeout+slack {
		return // zero (no deadline) is long before now
	}
	d.set(c, now.Add(timeout+slack))
}

// Buffer sizes.
const (
	// clientReadBuf is the first size of a client's read buffer: enough
	// for most request heads, small for an idle connection; a larger
	// head grows it.
	clientReadBuf = 1024
	dynoReadBuf   = 32 * 1024
	copyBufSize   = 32 * 1024
)

func newClientConn(rt *Router, c net.Conn, li listenerInfo) *clientConn {
	cc := &clientConn{rt: rt, c: c, li: li, via: via11}
	cc.cr.cc = cc
	cc.br = h1.NewReader(&cc.cr, clientReadBuf)
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		cc.ip = []byte(ta.IP.String())
	} else if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		cc.ip = []byte(h)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	var seed [32]byte
	crand.Read(seed[:])
	cc.rng = rand.NewChaCha8(seed)
	cc.line.Reset()
	return cc
}

// closeIfIdle closes the connection when it waits between requests.
func (cc *clientConn) closeIfIdle() {
	if cc.state.CompareAndSwap(connIdle, connClosing) {
		// Not through cc.rdl: this runs on another goroutine, and the
		// connection ends once it is closing.
		cc.c.SetReadDeadline(aLongTimeAgo)
	}
}

// forceClose closes the connection now (the shutdown limit passed).
func (cc *clientConn) forceClose() { cc.c.Close() }

var aLongTimeAgo = time.Unix(1, 0)

// Lingering close bounds (as net/http's): closing a socket with unread
// input makes the kernel send a reset, which can destroy the answer the
// client has not read yet.
const (
	lingerTimeout  = 500 * time.Millisecond
	maxLingerBytes = 256 << 10
)

// close closes the connection, after a half-close and a bounded drain of
// what the client still sends when an answer might otherwise be lost.
func (cc *clientConn) close() {
	if tc, ok := cc.c.(*net.TCPConn); ok && cc.linger {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, tc, maxLingerBytes)
	}
	cc.c.Close()
}

func (cc *clientConn) serve() {
	defer cc.rt.untrack(cc)
	defer cc.close()
	for {
		if !cc.serveOne() {
			return
		}
	}
}

// serveOne reads and answers one request; false ends the connection.
func (cc *clientConn) serveOne() (keep bool) {
	sp := cc.rt.sp.Load()
	to := &sp.cfg.Timeouts
	cc.cr.got = cc.br.Buffered() > 0
	if cc.cr.got {
		cc.cr.mode = readActive
	} else {
		cc.cr.mode = readIdle
		cc.rdl.extend(cc.c, time.Now(), to.Keepalive)
	}
	cc.cr.timeout = to.Client
	if cc.state.Load() == connClosing {
		return false
	}
	err := cc.br.ReadRequest(&cc.req, &sp.reqLim)
	start := time.Now()
	// The request is served by the config current when it arrived, not
	// the one its connection waited under (a reload may have come).
	sp = cc.rt.sp.Load()
	cc.resetRequest()
	if err != nil {
		return cc.headError(sp, err, start)
	}
	cc.state.CompareAndSwap(connIdle, connActive)
	defer func() {
		if p := recover(); p != nil {
			cc.platformError(p, start)
			keep = false
		}
	}()
	cc.br.Pin()
	keep = cc.handle(sp, start)
	cc.br.Unpin()
	if cc.rt.draining.Load() {
		keep = false
	}
	if keep {
		cc.state.CompareAndSwap(connActive, connIdle)
	}
	if cap(cc.out) > maxIdleOut {
		cc.out = nil // an idle connection does not keep a big response's buffer
	}
	return keep
}

// resetRequest clears the per-request state.
func (cc *clientConn) resetRequest() {
	cc.line.Reset()
	cc.respStarted = false
	cc.closeAfter = false
	cc.protoKnown = false
	cc.am = nil
	cc.host = cc.host[:0]
	cc.rid = cc.rid[:0]
	cc.xff = cc.xff[:0]
	cc.lenr.Reset(nil, 0)
}

// headError answers a request whose head could not be read. It returns
// false: the connection always ends (SPEC.md 4b).
func (cc *clientConn) headError(sp *space, err error, start time.Time) bool {
	switch {
	case errors.Is(err, h1.ErrEmpty):
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !cc.cr.got || cc.state.Load() == connClosing {
			return false // keep-alive idle close, or drain: quiet (SPEC.md 2)
		}
		cc.salvageRequestLine()
		cc.line.Status = 499
		cc.line.Code = errcodes.ClientIdle
		cc.writeSimple(408, nil, true)
		cc.line.Bytes = -1 // 499 is the line's status: no response body
		cc.finishLine(start)
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), isConnError(err):
		cc.salvageRequestLine()
		cc.line.Status = 499
		cc.line.Code = errcodes.ClientInterrupted
		cc.finishLine(start)
		return false
	}
	code, status := errcodes.BadHeader, 400
	switch {
	case errors.Is(err, h1.ErrLineTooLong):
		code, status = errcodes.OversizedRequestLine, 414
	case errors.Is(err, h1.ErrMethodTooLong):
		code, status = errcodes.OversizedRequestLine, 400
	case errors.Is(err, h1.ErrHeaderTooLong):
		code = errcodes.OversizedRequestHeader
	case errors.Is(err, h1.ErrCookieTooLong):
		code = errcodes.OversizedRequestCookies
	case errors.Is(err, h1.ErrUnsupportedExpect):
		code, status = errcodes.UnsupportedExpect, 417
	}
	cc.salvageRequestLine()
	if cc.req.HasHost {
		cc.host = normalizeHost(cc.host[:0], cc.req.Host)
	}
	cc.line.Code = code
	cc.writeSimple(status, nil, true)
	cc.line.Status = status
	cc.finishLine(start)
	return false
}

// salvageRequestLine fills the line's method and path from whatever of the
// request line was read, for the line of a request that was refused.
func (cc *clientConn) salvageRequestLine() {
	if len(cc.req.Method) > 0 {
		cc.line.Method, cc.line.Path = cc.req.Method, cc.req.Target
		return
	}
	b := cc.br.Bytes()
	if i := indexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	const most = 1024
	if len(b) > most {
		b = b[:most]
	}
	sp := indexByte(b, ' ')
	if sp < 0 {
		return
	}
	cc.line.Method = b[:sp]
	rest := b[sp+1:]
	if sp2 := indexByte(rest, ' '); sp2 >= 0 {
		if v := rest[sp2+1:]; len(v) >= 8 && string(v[:8]) == "HTTP/1.0" {
			cc.line.Protocol, cc.protoKnown = logging.HTTP10, true
		}
		rest = rest[:sp2]
	}
	cc.line.Path = rest
}

// platformError answers a recovered panic with H99 (SPEC.md section 6).
func (cc *clientConn) platformError(p any, start time.Time) {
	cc.rt.log.Error("recovered panic in request", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
	cc.line.Code = errcodes.PlatformError
	cc.line.Status = 503
	if !cc.respStarted {
		cc.writeSimple(503, builtinErrorPage, true)
	}
	cc.finishLine(start)
}

// finishLine completes the router line and writes it.
func (cc *clientConn) finishLine(start time.Time) {
	l := &cc.line
	if l.Host == nil {
		l.Host = cc.host
	}
	if len(cc.rid) == 0 {
		cc.buildRequestID(&cc.req)
	}
	if l.RequestID == nil {
		l.RequestID = cc.rid
	}
	if l.Fwd == nil {
		l.Fwd = cc.xff
	}
	if len(cc.xff) == 0 {
		l.Fwd = cc.ip
	}
	l.TLS, l.TLSVersion = cc.tlsVersion != 0, cc.tlsVersion
	switch {
	case cc.h2:
		l.Protocol = logging.HTTP20
	case cc.protoKnown:
	case cc.req.Minor == 0 && len(cc.req.Method) > 0:
		l.Protocol = logging.HTTP10
	default:
		l.Protocol = logging.HTTP11
	}
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	cc.rt.lines.Load().Write(l)
	am := cc.am
	if am == nil {
		am = cc.rt.sp.Load().other
	}
	am.observe(l.Status, l.Code, l.Connect, l.Service)
}

// isConnError reports a connection reset or broken pipe.
func isConnError(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// bufPool holds the stream and copy buffers (*[]byte) between requests.
var bufPool sync.Pool

// getBuf returns a pooled buffer of at least n bytes (length n).
func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// putBuf returns p to the pool unless it grew past maxPooledBuf, so one
// large response does not pin memory.
func putBuf(p *[]byte) {
	if cap(*p) <= maxPooledBuf {
		bufPool.Put(p)
	}
}

const maxPooledBuf = 256 << 10

// maxIdleOut bounds the output buffer a connection keeps between requests.
const maxIdleOut = 4096
