package router

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacerouter/spacerouter/router/h1"
)

// dynoConn is one connection to a dyno with its read buffer.
type dynoConn struct {
	// c is what requests and responses go through: raw, or tc over it.
	c net.Conn
	// raw is the TCP connection; tc is the TLS client over it (dyno_tls),
	// nil for a plain connection.
	raw net.Conn
	tc  *tls.Conn
	// tr is raw as tc reads it (checkTLS's probe).
	tr     *tlsRaw
	br     *h1.Reader
	pool   *pool
	idleAt time.Time // when it was put back in the pool
	reused bool      // it served a request before this one
	// keepFor is how long the dyno said it keeps the connection open when
	// idle (its Keep-Alive: timeout=N, less a margin); 0: not said.
	keepFor time.Duration
	rdl     readDeadline
	rc      syscall.RawConn
	// peek results, written by peekFn (a method value made once, so the
	// liveness check does not allocate a closure per request).
	peekN   int
	peekErr error
	peekFn  func(fd uintptr)
	peekBuf [1]byte
	// writeAwait's state, written by awaitFn (a method value made once).
	awaitBuf []byte
	awaitN   int
	awaitErr error
	awaitRan bool
	awaitFn  func(fd uintptr) bool
}

// pool holds the idle connections to one dyno address. Connections are
// shared by every client connection and every app naming that address
// with the same extra resolver and dyno_tls settings (the pool's key).
type pool struct {
	addr string
	// tlsConf makes its connections TLS (dyno_tls, SPEC.md 12.4); nil:
	// plain HTTP/1.1. tlsResults counts each handshake's result; nil: not
	// counted.
	tlsConf    *tls.Config
	tlsResults func(result string)
	// idleG and activeG count this router's dyno connections by state.
	idleG, activeG prometheus.Gauge
	// dialer connects to addr; nil means net.Dialer (the system resolver).
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// stray is told of connections closed because the dyno sent bytes
	// nobody asked for (after a response ended): the count since it was
	// last told, at most once per strayLogEvery; nil: not told.
	stray func(addr string, n int64)
	// strayN counts them; strayAt is when stray was last told (UnixNano).
	strayN, strayAt atomic.Int64
	// strayTotal counts every one (a metric); nil: not counted.
	strayTotal prometheus.Counter
	// mu guards idle and closed.
	mu     sync.Mutex
	idle   []*dynoConn // LIFO: the most recently used is reused first
	closed bool
}

// maxIdlePerDyno bounds the idle connections kept per dyno.
const maxIdlePerDyno = 1024

func newPool(addr string, idle, active prometheus.Gauge) *pool {
	return &pool{addr: addr, idleG: idle, activeG: active}
}

// get returns a live idle connection, or nil when there is none. Every
// connection is checked before reuse (SPEC.md 4.6): one idle past
// maxIdle or past the dyno's own keep-alive timeout, or on which anything
// arrived since its last response ended (bytes, EOF, a reset), is closed,
// never read as the next response. Stray bytes are reported: a dyno that
// sends them (a body longer than its Content-Length, a body after a 204 or
// a HEAD's head) would otherwise desync the connection for the next client.
func (p *pool) get(now time.Time, maxIdle time.Duration) *dynoConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		dc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.idleG.Dec()
		if idle := now.Sub(dc.idleAt); idle < maxIdle && (dc.keepFor == 0 || idle < dc.keepFor) {
			switch dc.check() {
			case connQuiet:
				dc.reused = true
				p.activeG.Inc()
				return dc
			case connStray:
				p.reportStray()
			}
			// The dyno closed it or sent what nobody asked for.
			dc.drop()
			continue
		}
		dc.closeIdle()
	}
}

// strayLogEvery bounds how often one dyno address's stray bytes are
// logged: a dyno that does it on every response must not flood the log.
const strayLogEvery = 10 * time.Second

func (p *pool) reportStray() {
	if p.strayTotal != nil {
		p.strayTotal.Inc()
	}
	n := p.strayN.Add(1)
	now := time.Now().UnixNano()
	last := p.strayAt.Load()
	if p.stray == nil || last != 0 && now-last < int64(strayLogEvery) || !p.strayAt.CompareAndSwap(last, now) {
		return
	}
	p.strayN.Add(-n)
	p.stray(p.addr, n)
}

// put returns dc, which served a request, to the pool. Bytes already read
// past the end of the response poison it: it is closed and reported.
func (p *pool) put(dc *dynoConn, now time.Time) {
	p.activeG.Dec()
	if dc.br.Buffered() > 0 {
		dc.drop()
		p.reportStray()
		return
	}
	dc.idleAt = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerDyno {
		p.mu.Unlock()
		dc.closeIdle()
		return
	}
	p.idle = append(p.idle, dc)
	p.mu.Unlock()
	p.idleG.Inc()
}

// discard closes dc, which served a request, instead of pooling it.
func (p *pool) discard(dc *dynoConn) {
	p.activeG.Dec()
	dc.drop()
}

// closeIdle closes an idle connection the router no longer wants (idle
// too long, a full or closed pool). Over TLS it sends close_notify first:
// the send buffer of an idle connection has room for it, so it cannot
// block.
func (dc *dynoConn) closeIdle() { dc.c.Close() }

// drop closes the socket at once, without close_notify over TLS: the
// connection broke, the dyno closed it or misbehaved, or it may hold
// request bytes the dyno never read, behind which tls.Conn.Close would
// wait up to 5 s to write its alert.
func (dc *dynoConn) drop() { dc.raw.Close() }

// sweep closes the connections idle for maxIdle or longer.
func (p *pool) sweep(now time.Time, maxIdle time.Duration) {
	p.mu.Lock()
	keep := p.idle[:0]
	var drop []*dynoConn
	for _, dc := range p.idle {
		if idle := now.Sub(dc.idleAt); idle >= maxIdle || dc.keepFor > 0 && idle >= dc.keepFor {
			drop = append(drop, dc)
		} else {
			keep = append(keep, dc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	p.idleG.Sub(float64(len(drop)))
	for _, dc := range drop {
		dc.closeIdle()
	}
}

// close closes every idle connection and refuses new ones.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	p.idleG.Sub(float64(len(idle)))
	for _, dc := range idle {
		dc.closeIdle()
	}
}

// idleCount returns the number of idle connections.
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// dialError is a failed connect, classified.
type dialError struct {
	timeout bool
	err     error
}

func (e *dialError) Error() string { return "connecting to dyno: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial opens a new connection to the dyno within timeout.
// The connect timeout covers name resolution too, so a resolver that does
// not answer costs at most that (issue 4), and the TLS handshake of a
// dyno_tls pool (SPEC.md 12.4).
func (p *pool) dial(ctx context.Context, timeout time.Duration, bufSize int) (*dynoConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var c net.Conn
	var err error
	if p.dialer != nil {
		c, err = p.dialer(ctx, "tcp", p.addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", p.addr)
	}
	if err != nil {
		var ne net.Error
		to := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		return nil, &dialError{timeout: to, err: err}
	}
	dc := &dynoConn{c: c, raw: c, pool: p}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		dc.rc, _ = tc.SyscallConn()
	}
	if p.tlsConf != nil {
		dc.tr = &tlsRaw{Conn: c}
		if dc.tc, err = p.handshake(ctx, dc.tr); err != nil {
			return nil, err
		}
		dc.c = dc.tc
	}
	dc.br = h1.NewReader(dc.c, bufSize)
	p.activeG.Inc()
	dc.peekFn = dc.peek
	dc.awaitFn = dc.awaitStep
	return dc, nil
}

// What check found on an idle connection.
const (
	connQuiet = iota // open, nothing arrived: reusable
	connEnded        // EOF, a reset or another error: the dyno closed it
	connStray        // bytes arrived that no request asked for
)

// check looks at an idle connection before reuse. A plain one gets one
// non-blocking MSG_PEEK (peekSocket): EAGAIN means open and silent. A TLS
// one is looked at through TLS (checkTLS): its socket's bytes may be TLS's
// own messages, and TLS may hold plaintext the socket no longer has.
func (dc *dynoConn) check() int {
	if dc.br.Buffered() > 0 {
		return connStray
	}
	if dc.tc != nil {
		return dc.checkTLS()
	}
	return dc.peekSocket()
}

// peekSocket tells with one non-blocking MSG_PEEK what waits on the
// socket: nothing (connQuiet), bytes (connStray), EOF or an error
// (connEnded).
func (dc *dynoConn) peekSocket() int {
	if dc.rc == nil {
		return connQuiet
	}
	dc.peekN, dc.peekErr = 0, nil
	if err := dc.rc.Control(dc.peekFn); err != nil {
		return connEnded
	}
	switch {
	case dc.peekN > 0:
		return connStray
	case dc.peekN < 0 && errors.Is(dc.peekErr, syscall.EAGAIN):
		return connQuiet
	}
	return connEnded
}

// hasInput reports whether bytes (or the close) from the dyno wait in the
// socket. A read deadline that fired while the goroutine was not running
// can race with arriving data; this tells a real idle dyno from that.
func (dc *dynoConn) hasInput() bool {
	if dc.rc == nil {
		return false
	}
	dc.peekN, dc.peekErr = 0, nil
	if err := dc.rc.Control(dc.peekFn); err != nil {
		return false
	}
	return dc.peekN >= 0
}

// peek is a non-blocking MSG_PEEK of one byte, run through RawConn.Control:
// unlike RawConn.Read, Control does not fail once the connection's read
// deadline has passed, which an idle pooled connection's always has.
func (dc *dynoConn) peek(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), dc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	dc.peekN, dc.peekErr = n, err
	if err != nil {
		dc.peekN = -1
	}
}

// writeAwait writes a whole request to the dyno and returns once the
// connection is readable (its answer began to arrive), its read deadline
// passed or it was closed: the write and the wait for the response in one
// RawConn.Read, so the response is not first read too early. A read right
// after the write would find nothing yet (EAGAIN) and cost a system call
// per request; it cannot simply be skipped, because RawConn.Read clears
// the connection's readiness before it calls its function, and a wake-up
// that came before that would be lost. Here the request is written inside
// the function, after the clear: the answer can only come after it, so its
// wake-up is never lost. A wake-up that came from something older only
// makes the next read find nothing and wait, as before.
//
// The read deadline must be set (the response's first one) before. What
// the raw write could not finish (a full socket buffer) is written with
// dc.c.Write, and its errors are net.Conn's. n counts the bytes written,
// as net.Conn.Write does; a wait cut short by the deadline or a close is
// no error here: the response read that follows meets it.
//
// Over TLS the request goes through tls.Conn.Write: a raw write would put
// plaintext on the socket. The wait is then the response read's own.
func (dc *dynoConn) writeAwait(b []byte) (n int, err error) {
	if dc.rc == nil || dc.tc != nil {
		return dc.c.Write(b)
	}
	dc.awaitBuf, dc.awaitN, dc.awaitErr, dc.awaitRan = b, 0, nil, false
	dc.rc.Read(dc.awaitFn)
	dc.awaitBuf = nil
	switch {
	case !dc.awaitRan:
		// Refused before the write (a past deadline, a closed
		// connection): the usual write meets the same and says so.
		return dc.c.Write(b)
	case dc.awaitErr == nil && dc.awaitN == len(b):
		return len(b), nil
	case dc.awaitErr == nil || dc.awaitErr == syscall.EAGAIN:
		// The socket buffer took part of it: the rest waits for room.
		m, err := dc.c.Write(b[dc.awaitN:])
		return dc.awaitN + m, err
	}
	return dc.awaitN, &net.OpError{Op: "write", Net: "tcp", Source: dc.c.LocalAddr(), Addr: dc.c.RemoteAddr(),
		Err: os.NewSyscallError("write", dc.awaitErr)}
}

// awaitStep is writeAwait's RawConn.Read function: the write on its first
// call (false: wait for the answer, unless the write fell short), then
// true when the connection became readable.
func (dc *dynoConn) awaitStep(fd uintptr) bool {
	if dc.awaitRan {
		return true
	}
	dc.awaitRan = true
	for len(dc.awaitBuf) > dc.awaitN {
		n, err := syscall.Write(int(fd), dc.awaitBuf[dc.awaitN:])
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			dc.awaitN += n
		}
		if err != nil || n <= 0 {
			dc.awaitErr = err
			return true
		}
	}
	return false
}
