package router

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacerouter/spacerouter/router/h1"
)

// dynoConn is one connection to a dyno with its read buffer.
type dynoConn struct {
	c      net.Conn
	br     *h1.Reader
	pool   *pool
	idleAt time.Time // when it was put back in the pool
	reused bool      // it served a request before this one
	rdl    readDeadline
	rc     syscall.RawConn
	// peek results, written by peekFn (a method value made once, so the
	// liveness check does not allocate a closure per request).
	peekN   int
	peekErr error
	peekFn  func(fd uintptr)
	peekBuf [1]byte
}

// pool holds the idle connections to one dyno address. Connections are
// shared by every client connection and every app naming that address.
type pool struct {
	addr string
	// idleG and activeG count this router's dyno connections by state.
	idleG, activeG prometheus.Gauge
	// dialer connects to addr; nil means net.Dialer (the system resolver).
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
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

// get returns a live idle connection, or nil when there is none. Idle
// connections older than maxIdle, or found closed, are dropped in silence
// (SPEC.md 4.6: a dead pooled connection is replaced without a trace).
// With peek false the liveness probe (one syscall) is left to the caller's
// retry: a request that can be sent again on a fresh connection when the
// pooled one turns out dead before any response byte.
func (p *pool) get(now time.Time, maxIdle time.Duration, peek bool) *dynoConn {
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
		if now.Sub(dc.idleAt) < maxIdle && dc.br.Buffered() == 0 && (!peek || dc.alive()) {
			dc.reused = true
			p.activeG.Inc()
			return dc
		}
		dc.c.Close()
	}
}

// put returns dc, which served a request, to the pool.
func (p *pool) put(dc *dynoConn, now time.Time) {
	p.activeG.Dec()
	dc.idleAt = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerDyno {
		p.mu.Unlock()
		dc.c.Close()
		return
	}
	p.idle = append(p.idle, dc)
	p.mu.Unlock()
	p.idleG.Inc()
}

// discard closes dc, which served a request, instead of pooling it.
func (p *pool) discard(dc *dynoConn) {
	p.activeG.Dec()
	dc.c.Close()
}

// sweep closes the connections idle for maxIdle or longer.
func (p *pool) sweep(now time.Time, maxIdle time.Duration) {
	p.mu.Lock()
	keep := p.idle[:0]
	var drop []*dynoConn
	for _, dc := range p.idle {
		if now.Sub(dc.idleAt) >= maxIdle {
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
		dc.c.Close()
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
		dc.c.Close()
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
// not answer costs at most that (issue 4).
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
	dc := &dynoConn{c: c, pool: p, br: h1.NewReader(c, bufSize)}
	p.activeG.Inc()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		dc.rc, _ = tc.SyscallConn()
	}
	dc.peekFn = dc.peek
	return dc, nil
}

// alive reports whether an idle connection is still open and silent: a
// non-blocking MSG_PEEK finds EAGAIN. EOF, an error or unexpected bytes
// (a dyno must not talk between responses) mean it is not reusable.
func (dc *dynoConn) alive() bool {
	if dc.br.Buffered() > 0 {
		return false
	}
	if dc.rc == nil {
		return true
	}
	dc.peekN, dc.peekErr = 0, nil
	if err := dc.rc.Control(dc.peekFn); err != nil {
		return false
	}
	return dc.peekN < 0 && errors.Is(dc.peekErr, syscall.EAGAIN)
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
