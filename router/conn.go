package router

import (
	crand "crypto/rand"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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
	readActive              // mid-request head: each read renews the client window from the last byte
	readFixed               // a request body: the exchange sets the deadline
	readWatch               // background watch for a client close: no deadline
)

// conn serves one HTTP/1 client connection: its requests one at a time,
// pipelined ones in order (SPEC.md 4b). It owns the socket, keep-alive and
// the deadlines; each request is an exchange, which sees the connection as
// its client.
type conn struct {
	rt    *Router
	c     net.Conn // the client connection (TLS or not)
	raw   net.Conn // the TCP connection under it
	li    *listenerInfo
	peer  netip.Addr
	cs    *connSlot
	ipTxt []byte // the client IP as text
	state atomic.Int32

	cr  connReader
	rdl readDeadline // the client read deadline, set by this goroutine only
	wdl readDeadline // the client write deadline, likewise
	br  *h1.Reader
	// The request, its scratch buffers and its exchange, taken from a
	// pool when a request arrives and given back when the connection
	// waits idle (nil then): an idle connection holds none of them.
	*h1state
	// first is where an idle TLS connection reads the first byte of its
	// next request, with no read buffer of its own (see waitRequest).
	first [1]byte
	// The idle hop (tlswait.go): idleUntil is when the idle wait ends;
	// hopNow asks serve to go on on a fresh goroutine, which sets resumed.
	idleUntil       time.Time
	hopNow, resumed bool
	gauge           prometheus.Gauge // decremented when the connection ends; nil: none

	// minor is the HTTP/1 minor version answers use: the request's, or
	// what a refused request line showed (1 unless it said HTTP/1.0).
	minor int
	// outChunked: the response being sent is chunked on the wire.
	outChunked bool
	// linger: the connection ends after a router-made answer while unread
	// client bytes may remain; see close.
	linger bool

	// The client side's TLS version (0 on plain HTTP) and normalized SNI
	// name.
	tlsVer  uint16
	sniName []byte
	pc      *peerCert // the client certificate; nil: none
	tv      *tlsConn  // what the TLS connection view shows; nil on plain HTTP

	// dyno is the dyno connection of the exchange in progress, for the
	// shutdown limit to interrupt (SPEC.md 6, H24).
	dyno atomic.Pointer[dynoConn]
	// The client watch (see watch): done when its read ended, wentAway
	// when it saw the client go.
	watchDone chan struct{}
	wentAway  atomic.Bool
}

// connReader sets the client deadlines around each read.
type connReader struct {
	c       *conn
	mode    uint8
	timeout time.Duration // the client window in readActive
	got     bool          // a byte of the current request arrived
	last    time.Time     // when the last byte arrived (readActive)
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.mode == readActive {
		r.c.rdl.extend(r.c.c, r.last, r.timeout)
	}
	n, err := r.c.c.Read(p)
	if tv := r.c.tv; tv != nil {
		tv.drained = n < len(p)
	}
	if n > 0 && r.mode <= readActive {
		r.last = time.Now()
		if r.mode == readIdle {
			r.mode = readActive
			r.got = true
			r.c.state.CompareAndSwap(connIdle, connActive)
		}
	}
	return n, err
}

// readDeadline remembers the deadline a connection's owner last set, so a
// deadline that would barely move is left in place: each set is a runtime
// timer update, about 650 instructions, a large part of a small request's
// CPU (golang/go#25729). Other goroutines may only set an earlier deadline
// (to wake a read): then the remembered one is later than the real one,
// which can only make a read end early, never late.
type readDeadline struct {
	at    time.Time // zero: none
	write bool      // a write deadline
}

// maxDeadlineSlack bounds how late a reused read deadline lets a timeout
// fire. A few milliseconds on the router's second-scale timeouts are within
// the scheduling noise of a loaded process; a deadline is never early.
// A write deadline only bounds a client that takes too long, so its slack
// may be larger (an eighth of its timeout, up to a second).
const (
	maxDeadlineSlack      = 4 * time.Millisecond
	maxWriteDeadlineSlack = time.Second
)

// set sets the deadline of c to t (zero: none).
func (d *readDeadline) set(c net.Conn, t time.Time) {
	d.at = t
	if d.write {
		c.SetWriteDeadline(t)
	} else {
		c.SetReadDeadline(t)
	}
}

// extend makes the deadline of c timeout after now, or up to a slack (an
// eighth of timeout, bounded) later when the current deadline is already
// there.
func (d *readDeadline) extend(c net.Conn, now time.Time, timeout time.Duration) {
	slack := min(maxDeadlineSlack, timeout/8)
	if d.write {
		slack = min(maxWriteDeadlineSlack, timeout/8)
	}
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

// emptyLine is a router line with no field filled: every exchange starts
// from it.
var emptyLine = logging.Line{Connect: -1, Service: -1, Bytes: -1}

func newConn(rt *Router, c, raw net.Conn, li *listenerInfo, slot *connSlot) *conn {
	cc := &conn{rt: rt, c: c, raw: raw, li: li, peer: slot.peer, cs: slot, minor: 1}
	cc.cr.c = cc
	cc.wdl.write = true
	cc.br = h1.NewReader(&cc.cr, clientReadBuf)
	if c != raw {
		// A TLS connection reads the first byte of each request without
		// a buffer (waitRequest): it gets one when that byte came.
		headBufPool.Put((*[clientReadBuf]byte)(cc.br.Detach()))
	}
	cc.ipTxt = peerText(slot.peer, c.RemoteAddr())
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return cc
}

// h1state is what an HTTP/1 connection holds only while it serves a
// request.
type h1state struct {
	req h1.Request
	sc  scratch
	ex  exchange
}

var h1statePool = sync.Pool{New: func() any {
	st := &h1state{}
	st.sc.rng = newRNG()
	return st
}}

// headBufPool holds the read buffers of idle TLS connections' next
// requests (clientReadBuf bytes; a buffer a large head grew is dropped).
var headBufPool = sync.Pool{New: func() any { return new([clientReadBuf]byte) }}

// waitRequest waits for the first bytes of the next request, when none is
// buffered, before the connection takes its request state: the wait of an
// idle connection. Its result is left in the reader (bytes, sticky error)
// for ReadRequest, which goes on as if it had read them itself. A TLS
// connection waits with no read buffer: a one-byte read takes the first
// byte from the first record, and the rest of the record, already
// decrypted, is read into the buffer it takes then, with no more system
// calls. A plain connection keeps its buffer: reading one byte first would
// cost a system call per request.
func (c *conn) waitRequest() {
	if c.br.Attached() {
		if c.br.Buffered() == 0 && c.br.Err() == nil {
			c.br.Fill(clientReadBuf)
		}
		return
	}
	var n int
	var err error
	if tv := c.tv; tv != nil {
		// Parked at a shallow depth (tlswait.go).
		err = errNoWait
		if tv.mustProbe() {
			tv.probe = true
			n, err = c.cr.Read(c.first[:])
			tv.probe = false
		}
		if err == errNoWait {
			if werr := tv.waitReadable(); !c.resumed && errors.Is(werr, os.ErrDeadlineExceeded) && c.hopIdle() {
				return
			}
			n, err = c.cr.Read(c.first[:])
		}
		c.resumed = false
	} else {
		n, err = c.cr.Read(c.first[:])
	}
	c.br.Attach(headBufPool.Get().(*[clientReadBuf]byte)[:], c.first[:n], err)
}

// takeState gives the connection its request state.
func (c *conn) takeState() {
	if c.h1state == nil {
		c.h1state = h1statePool.Get().(*h1state)
	}
}

// idleBuffers gives back the request state and, on TLS, the read buffer,
// once nothing of a next request is buffered.
func (c *conn) idleBuffers() {
	if c.br.Buffered() > 0 || c.br.Err() != nil {
		return
	}
	if c.c != c.raw && c.br.Attached() {
		if buf := c.br.Detach(); len(buf) == clientReadBuf {
			headBufPool.Put((*[clientReadBuf]byte)(buf))
		}
	}
	c.releaseState()
}

// releaseState returns the request state to the pool, cleared of what
// points elsewhere (the connection's buffers, the dyno's, the config).
func (c *conn) releaseState() {
	st := c.h1state
	if st == nil {
		return
	}
	c.h1state = nil
	clear(st.req.Fields[:cap(st.req.Fields)])
	st.req = h1.Request{Fields: st.req.Fields[:0]}
	clear(st.sc.resp.Fields[:cap(st.sc.resp.Fields)])
	st.sc.resp = h1.Response{Fields: st.sc.resp.Fields[:0]}
	clear(st.sc.fields[:cap(st.sc.fields)])
	st.sc.fields = st.sc.fields[:0]
	st.sc.reqLen, st.sc.reqChunk, st.sc.dynoLen, st.sc.dynoChunk = h1.LengthReader{}, h1.ChunkedReader{}, h1.LengthReader{}, h1.ChunkedReader{}
	if cap(st.sc.out) > maxIdleOut {
		st.sc.out = nil
	}
	st.ex = exchange{}
	if cap(st.req.Fields) > maxKeptFields || cap(st.sc.resp.Fields) > maxKeptFields {
		return // a large head's field storage is not kept
	}
	h1statePool.Put(st)
}

// maxKeptFields bounds the field storage a pooled request state keeps.
const maxKeptFields = 256

// newRNG returns a random source seeded from the system's, for request ids
// and dyno choice.
func newRNG() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// peerText is the client IP as X-Forwarded-For and router lines write it.
func peerText(peer netip.Addr, ra net.Addr) []byte {
	if peer.IsValid() {
		return []byte(peer.Unmap().String())
	}
	if ra == nil {
		return nil
	}
	if h, _, err := net.SplitHostPort(ra.String()); err == nil {
		return []byte(h)
	}
	return nil
}

// closeIfIdle closes the connection when it waits between requests. A
// request whose bytes arrived meanwhile is still served (see serveOne).
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(connIdle, connClosing) {
		// Not through c.rdl: this runs on another goroutine, and the
		// connection ends once it is closing.
		c.c.SetReadDeadline(aLongTimeAgo)
	}
}

// idle reports whether the connection waits between requests.
func (c *conn) idle() bool { return c.state.Load() == connIdle }

// interrupt wakes whatever the connection waits on, once the shutdown
// limit ran out: the exchange in progress ends with H24 and answers what
// it still can (SPEC.md 6).
func (c *conn) interrupt() {
	if dc := c.dyno.Load(); dc != nil {
		dc.c.SetDeadline(aLongTimeAgo)
	}
	c.c.SetReadDeadline(aLongTimeAgo)
}

// forceClose closes the connection now.
func (c *conn) forceClose() { c.c.Close() }

func (c *conn) slot() *connSlot { return c.cs }

var aLongTimeAgo = time.Unix(1, 0)

// Lingering close bounds (as net/http's): closing a socket with unread
// input makes the kernel send a reset, which can destroy the answer the
// client has not read yet.
const (
	lingerTimeout  = 500 * time.Millisecond
	maxLingerBytes = 256 << 10
)

// close closes the connection, after a half-close and a bounded drain of
// what the client still sends when an answer might otherwise be lost, or
// when the drain closes it (a request that crosses the close gets a FIN,
// not a reset).
func (c *conn) close() {
	linger := c.linger || c.rt.draining.Load() && c.pendingInput()
	if tc, ok := c.raw.(*net.TCPConn); ok && linger && c.raw == c.c {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, tc, maxLingerBytes)
	}
	c.c.Close()
	c.cs.free()
	c.releaseState()
}

func (c *conn) serve() {
	hopped := false
	defer func() {
		if hopped {
			return
		}
		c.rt.untrack(c)
		c.close()
		if c.gauge != nil {
			c.gauge.Dec()
		}
	}()
	for c.serveOne() {
		if c.hopNow {
			c.hopNow, hopped = false, true
			go c.resume()
			return
		}
	}
}

// serveOne reads and answers one request; false ends the connection.
func (c *conn) serveOne() (keep bool) {
	sp := c.rt.sp.Load()
	to := &sp.cfg.Timeouts
	c.cr.got = c.br.Buffered() > 0
	now := time.Now()
	if c.cr.got {
		c.cr.mode, c.cr.last = readActive, now
	} else {
		c.cr.mode = readIdle
		if !c.resumed { // a resumed connection keeps its idle deadline
			c.idleUntil = now.Add(to.Keepalive)
			c.rdl.extend(c.c, now, c.idleWindow(to.Keepalive))
		}
	}
	// The shortest client window of the space: once Host names an app,
	// that app's window applies (see headIdle).
	c.cr.timeout = sp.minClient
	c.waitRequest()
	if c.hopNow {
		return true
	}
	c.takeState()
	err := c.br.ReadRequest(&c.req, &sp.reqLim)
	for err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.state.Load() == connClosing && c.pendingInput() {
			// The drain came as a request arrived: it is served, and the
			// connection ends after it (issue 9: no request is dropped
			// unanswered because it came while the router closed idle
			// connections).
			c.state.Store(connActive)
			c.cr.mode, c.cr.got, c.cr.last = readActive, true, time.Now()
		} else if !c.cr.got || !c.headIdle(sp) {
			break
		}
		c.br.ClearErr()
		err = c.br.ReadRequest(&c.req, &sp.reqLim)
	}
	start := time.Now()
	// The request is served by the config current when it arrived, not
	// the one its connection waited under (a reload may have come).
	sp = c.rt.sp.Load()
	c.ex.reset(c.rt, sp, c, &c.req, &c.sc, c.peer, start)
	c.wentAway.Store(false)
	ex := &c.ex
	if err != nil {
		return c.headError(err)
	}
	c.minor = c.req.Minor
	c.tv.counted()
	c.state.CompareAndSwap(connIdle, connActive)
	defer func() {
		if p := recover(); p != nil {
			c.platformError(p)
			keep = false
		}
	}()
	if c.req.Chunked {
		c.sc.reqChunk.Reset(c.br)
	} else {
		c.sc.reqLen.Reset(c.br, c.req.ContentLength)
	}
	c.br.Pin()
	ex.run()
	c.br.Unpin()
	// A drain that began after the response was sent as keep-alive does
	// not close the connection here: it goes back to idle, where the drain
	// closes it unless a request already came, which is then served with
	// Connection: close (bytes the client sent are never met with a
	// reset).
	keep = !ex.closeAfter
	if keep {
		c.state.CompareAndSwap(connActive, connIdle)
		c.idleBuffers()
	}
	return keep
}

// headIdle is called when a request head stalled for the shortest client
// window of the space. It returns true, with the reader's window set to
// what is left, when the window that applies is longer: the app's that the
// Host field read so far names, else the global one (SPEC.md 4.10).
func (c *conn) headIdle(sp *space) bool {
	window := sp.cfg.Timeouts.Client
	if host, ok := h1.PeekHost(c.br.Bytes()); ok {
		c.sc.host = normalizeHost(c.sc.host[:0], host)
		if a := sp.lookup(c.sc.host); a != nil {
			window = a.to.Client
		}
	}
	if time.Since(c.cr.last) >= window {
		return false
	}
	c.cr.timeout = window
	return true
}

// pendingInput reports bytes of a request buffered or waiting in the
// socket.
func (c *conn) pendingInput() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	n := -1
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

// headError answers a request whose head could not be read. It returns
// false: the connection always ends (SPEC.md 4b).
func (c *conn) headError(err error) bool {
	ex := &c.ex
	switch {
	case errors.Is(err, h1.ErrEmpty):
		return false
	case !c.cr.got && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || isConnError(err)):
		// No byte of a request: a keep-alive connection closed or idle
		// between requests, or the drain. Quiet (SPEC.md 6, H27).
		return false
	case c.state.Load() == connClosing && errors.Is(err, os.ErrDeadlineExceeded):
		return false
	}
	c.salvageRequestLine()
	code, status := errcodes.BadHeader, 0
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		code = errcodes.ClientIdle
	case errors.Is(err, io.ErrUnexpectedEOF), isConnError(err):
		code = errcodes.ClientInterrupted
	case errors.Is(err, h1.ErrLineTooLong):
		code = errcodes.OversizedRequestLine
	case errors.Is(err, h1.ErrMethodTooLong):
		code, status = errcodes.OversizedRequestLine, 400
	case errors.Is(err, h1.ErrHeaderTooLong):
		code = errcodes.OversizedRequestHeader
	case errors.Is(err, h1.ErrCookieTooLong):
		code = errcodes.OversizedRequestCookies
	case errors.Is(err, h1.ErrUnsupportedExpect):
		code = errcodes.UnsupportedExpect
	}
	if c.req.HasHost {
		c.sc.host = normalizeHost(c.sc.host[:0], c.req.Host)
	}
	ex.closeAfter = true
	ex.finish(&errcodes.Error{Code: code, Status: status, Err: err})
	return false
}

// salvageRequestLine fills the line's method and path from whatever of the
// request line was read, for the line of a request that was refused, and
// the HTTP version answers use: 1 unless the line ends in HTTP/1.0.
func (c *conn) salvageRequestLine() {
	l := &c.ex.line
	c.minor = 1
	b := c.req.Line // the whole head was read: its request line
	if b == nil {
		// Refused while the head was read: the start of the buffer.
		b = c.br.Bytes()
		if i := indexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = trimCRByte(b)
	}
	const most = 1024
	if len(b) > most {
		b = b[:most]
	}
	sp := indexByte(b, ' ')
	if sp < 0 {
		return
	}
	rest := b[sp+1:]
	if sp2 := lastIndexByte(rest, ' '); sp2 >= 0 {
		if string(rest[sp2+1:]) == "HTTP/1.0" {
			c.minor = 0
		}
		rest = rest[:sp2]
	}
	l.Method, l.Path = b[:sp], rest
}

func trimCRByte(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// platformError answers a recovered panic with H99 (SPEC.md section 6).
func (c *conn) platformError(p any) {
	c.rt.log.Error("recovered panic in request", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
	ex := &c.ex
	ex.closeAfter = true
	ex.finish(errcodes.New(errcodes.PlatformError, nil))
}

// isConnError reports a connection reset or broken pipe.
func isConnError(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// maxIdleOut bounds the output buffer a connection keeps between requests.
const maxIdleOut = 4096

// The client side of the exchanges of an HTTP/1 connection.

func (c *conn) protocol() logging.Protocol {
	if c.minor == 0 {
		return logging.HTTP10
	}
	return logging.HTTP11
}

func (c *conn) sni() []byte             { return c.sniName }
func (c *conn) ip() []byte              { return c.ipTxt }
func (c *conn) tlsVersion() uint16      { return c.tlsVer }
func (c *conn) listener() *listenerInfo { return c.li }
func (c *conn) setDyno(dc *dynoConn)    { c.dyno.Store(dc) }
func (c *conn) peerCert() *peerCert     { return c.pc }
func (c *conn) gone() bool              { return c.wentAway.Load() }
func (c *conn) abort(*exchange)         {} // the connection ends after the exchange
func (c *conn) readBody(ex *exchange, p []byte, deadline time.Time) (int, error) {
	c.cr.mode = readFixed
	if !c.rdl.at.Equal(deadline) {
		c.rdl.set(c.c, deadline)
	}
	var n int
	var err error
	if c.req.Chunked {
		n, err = c.sc.reqChunk.Read(p)
	} else {
		n, err = c.sc.reqLen.Read(p)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.br.ClearErr() // the body may go on: the caller decides
	}
	return n, err
}

// continueLine is the interim response the router sends for
// Expect: 100-continue (SPEC.md 4.2).
const continueLine = "HTTP/1.1 100 Continue\r\n\r\n"

func (c *conn) continue100(ex *exchange, fromDyno bool) error {
	if c.minor == 0 || c.br.Buffered() > 0 {
		return nil // HTTP/1.0 gets no 1xx; a client sending its body waits for none
	}
	if fromDyno {
		return c.interim(ex)
	}
	_, err := c.c.Write([]byte(continueLine))
	return err
}

func (c *conn) interim(ex *exchange) error {
	resp := &c.sc.resp
	b := h1.AppendStatusLine(c.sc.out[:0], 1, resp.Status, resp.Reason)
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if !f.Hop {
			b = h1.AppendField(b, f.Name, f.Value)
		}
	}
	b = append(b, '\r', '\n')
	c.sc.out = b
	_, err := c.c.Write(b)
	return err
}

// send writes the response head (when head), then body bytes, with the
// framing the client needs: chunked for a body of unknown length to an
// HTTP/1.1 client, until close for an HTTP/1.0 one (SPEC.md 4.8).
func (c *conn) send(ex *exchange, head bool, body []byte, end bool) error {
	b := c.sc.out[:0]
	if head {
		c.outChunked = false
		if ex.kind == bodyChunked || ex.kind == bodyEOF {
			if c.minor == 1 {
				c.outChunked = true
			} else {
				ex.closeAfter = true // an HTTP/1.0 body ends at close
			}
		}
		b = c.appendRespHead(ex, b, body)
	}
	if c.outChunked && len(body) > 0 {
		b = appendChunk(b, body)
	} else {
		b = append(b, body...)
	}
	if end && c.outChunked {
		b = append(b, h1.LastChunk...)
	}
	c.sc.out = b
	if len(b) == 0 {
		return nil
	}
	c.wdl.extend(c.c, time.Now(), ex.writeTimeout(len(b)))
	_, err := c.c.Write(b)
	return err
}

// appendRespHead appends the response head for the client: the dyno's
// fields less hop-by-hop ones, Via appended, the router's framing, and a
// sniffed Content-Type when a body comes without one (SPEC.md 4.8).
func (c *conn) appendRespHead(ex *exchange, b, body []byte) []byte {
	resp := &c.sc.resp
	b = h1.AppendStatusLine(b, c.minor, resp.Status, resp.Reason)
	b = appendForwardFields(b, resp.Fields, 0, ex.via())
	if ex.kind != bodyNone && !resp.HasContentType && len(body) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, sniff(body)...)
		b = append(b, '\r', '\n')
	}
	switch {
	case ex.kind == bodyLength || (ex.kind == bodyNone && resp.ContentLength >= 0 && resp.Status != 204 && resp.Status >= 200):
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, max(resp.ContentLength, 0), 10)
		b = append(b, '\r', '\n')
	case c.outChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = appendConnection(b, c.minor, ex.closeAfter)
	return append(b, '\r', '\n')
}

// answer writes a complete router-made response: pg as the body, or a
// one-line text body when pg is nil. HEAD gets the head only.
func (c *conn) answer(ex *exchange, status int, pg *page) int64 {
	closeConn := ex.closeAfter || !ex.preDone && c.req.HasBody() || len(c.req.Method) == 0
	ex.closeAfter = closeConn
	c.linger = c.linger || closeConn
	ctype, body := "text/plain; charset=utf-8", []byte(nil)
	if pg != nil {
		ctype, body = pg.contentType, pg.body
	}
	text := h1.StatusText(status)
	b := h1.AppendStatusLine(c.sc.out[:0], c.minor, status, nil)
	b = append(b, "Content-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	if pg == nil {
		b = strconv.AppendInt(b, int64(len(text)+1), 10)
	} else {
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n"...)
	b = appendConnection(b, c.minor, closeConn)
	b = append(b, "\r\n"...)
	n := int64(0)
	if string(c.req.Method) != "HEAD" {
		if pg == nil {
			b = append(b, text...)
			b = append(b, '\n')
			n = int64(len(text) + 1)
		} else {
			b = append(b, body...)
			n = int64(len(body))
		}
	}
	c.sc.out = b
	ex.sent = true
	c.wdl.set(c.c, time.Now().Add(writeTimeout))
	if _, err := c.c.Write(b); err != nil {
		return -1
	}
	return n
}

// writeTimeout bounds one write of a router-made response.
const writeTimeout = 10 * time.Second

// appendConnection appends the Connection field the client needs: close
// for an HTTP/1.1 connection that ends, keep-alive for an HTTP/1.0 one that
// stays.
func appendConnection(b []byte, minor int, closeConn bool) []byte {
	switch {
	case closeConn && minor == 1:
		return append(b, "Connection: close\r\n"...)
	case !closeConn && minor == 0:
		return append(b, "Connection: keep-alive\r\n"...)
	}
	return b
}

// watch reads the client connection while the exchange waits for a slow
// dyno, so a client that goes away cancels the dyno request (H27) instead
// of being noticed only when the response is written. Bytes that arrive (a
// pipelined request) stay in the buffer.
func (c *conn) watch(dc *dynoConn) {
	c.cr.mode = readWatch
	c.rdl.set(c.c, time.Time{})
	done := make(chan struct{})
	c.watchDone = done
	go func() {
		defer close(done)
		n, err := c.br.Fill(c.br.Buffered() + clientReadBuf)
		if n == 0 && err != nil && !isTimeout(err) {
			c.wentAway.Store(true)
			dc.c.SetReadDeadline(aLongTimeAgo) // wake the dyno read
		}
	}()
}

// unwatch ends the watch and waits for its goroutine.
func (c *conn) unwatch() {
	if c.watchDone == nil {
		return
	}
	c.rdl.set(c.c, aLongTimeAgo)
	<-c.watchDone
	c.watchDone = nil
	if err := c.br.Err(); err != nil && isTimeout(err) {
		c.br.ClearErr()
	}
	c.cr.mode = readActive
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
