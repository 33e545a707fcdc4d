package router

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/logging"
)

// Serve accepts plain HTTP connections from ln in the background until
// Shutdown.
func (r *Router) Serve(ln net.Listener) {
	li := r.addListener(ln, "http")
	r.bgWG.Add(1)
	go func() {
		defer r.bgWG.Done()
		r.acceptLoop(ln, func(c net.Conn, slot *connSlot) {
			cc := newConn(r, c, c, li, slot)
			if !r.track(cc) {
				slot.free()
				c.Close()
				return
			}
			go func() {
				g := r.m.clientConns.WithLabelValues("http", "http1")
				g.Inc()
				defer g.Dec()
				cc.serve()
			}()
		})
	}()
	r.log.Info("listening", zap.String(logging.KeyListener, "http"), zap.String(logging.KeyAddr, ln.Addr().String()))
}

// addListener registers ln for Shutdown and returns what its requests tell
// the dyno: X-Forwarded-Proto proto and the port ln is bound to.
func (r *Router) addListener(ln net.Listener, proto string) *listenerInfo {
	r.mu.Lock()
	r.listeners = append(r.listeners, ln)
	r.mu.Unlock()
	var port []byte
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.AppendInt(nil, int64(ta.Port), 10)
	}
	return newListenerInfo(proto, port)
}

// listenerInfo describes what a listener tells the dyno about itself.
type listenerInfo struct {
	// fwd is the part of every dyno request head from the line end of
	// X-Forwarded-For up to the value of X-Request-Start: the listener's
	// X-Forwarded-Proto and X-Forwarded-Port, made once.
	fwd []byte
}

func newListenerInfo(proto string, port []byte) *listenerInfo {
	fwd := append([]byte("\r\nX-Forwarded-Proto: "), proto...)
	fwd = append(fwd, "\r\nX-Forwarded-Port: "...)
	fwd = append(fwd, port...)
	fwd = append(fwd, "\r\nX-Request-Start: "...)
	return &listenerInfo{fwd: fwd}
}

// acceptLoop accepts from ln until it is closed and hands each connection
// the limits admit to serve (limits.connections and
// connections_per_client). It never stalls: out of file descriptors, it
// closes an idle connection or the new one (the spare descriptor trick)
// and goes on.
func (r *Router) acceptLoop(ln net.Listener, serve func(c net.Conn, slot *connSlot)) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if r.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				r.shedOnFDExhaustion(ln)
				continue
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.log.Error("accepting connection", zap.Error(err), zap.Duration(logging.KeyDuration, backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		peer := addrPort(c.RemoteAddr()).Addr()
		if reason := r.admitConn(peer); reason != "" {
			r.m.connRefused.WithLabelValues(reason).Inc()
			fastClose(c)
			continue
		}
		serve(c, &connSlot{r: r, peer: peer})
	}
}

// addrPort returns the address of a TCP peer (zero for others).
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// fastClose closes a refused connection with a reset, so it holds no
// socket in TIME_WAIT.
func fastClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Reasons a connection is refused at accept (the metric's label).
const (
	refusedLimit     = "connections"
	refusedPerClient = "connections_per_client"
	refusedNoFD      = "file_descriptors"
)

// admitConn counts a new client connection, or returns why it is refused:
// past limits.connections or limits.connections_per_client, once closing
// an idle keep-alive connection (of that client, for the latter) could not
// make room.
func (r *Router) admitConn(peer netip.Addr) string {
	lim := &r.sp.Load().cfg.Limits
	if !r.perClient.add(peer, lim.ConnectionsPerClient) {
		if !r.closeIdle(func(t tracked) bool { return t.slot().peer == peer }) || !r.perClient.add(peer, lim.ConnectionsPerClient) {
			return refusedPerClient
		}
	}
	if n := r.connCount.Add(1); n > int64(lim.Connections) {
		r.connCount.Add(-1)
		if !r.closeIdle(nil) {
			r.perClient.done(peer)
			return refusedLimit
		}
		r.connCount.Add(1)
	}
	return ""
}

// connSlot is one client connection's place under limits.connections and
// connections_per_client, given back once: when the connection ends, or
// earlier when closeIdle closes it to make room.
type connSlot struct {
	r     *Router
	peer  netip.Addr
	freed atomic.Bool
}

func (s *connSlot) free() {
	if s.freed.CompareAndSwap(false, true) {
		s.r.connCount.Add(-1)
		s.r.perClient.done(s.peer)
	}
}

// closeIdle closes one idle keep-alive connection that match accepts (nil:
// any), to make room for a new one; false when there is none.
func (r *Router) closeIdle(match func(t tracked) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.conns {
		if t.idle() && (match == nil || match(t)) {
			t.closeIfIdle()
			// Its slot is free once its goroutine ends; count it free now
			// so the new connection is not refused for a closing one.
			t.slot().free()
			return true
		}
	}
	return false
}

// shedOnFDExhaustion handles accept's EMFILE: close an idle connection if
// there is one; else take the pending connection with the spare
// descriptor and close it at once, so the listener does not spin or stall.
func (r *Router) shedOnFDExhaustion(ln net.Listener) {
	r.m.connRefused.WithLabelValues(refusedNoFD).Inc()
	if r.closeIdle(nil) {
		return
	}
	r.mu.Lock()
	spare := r.spare
	r.spare = nil
	r.mu.Unlock()
	if spare == nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	spare.Close()
	if c, err := ln.Accept(); err == nil {
		fastClose(c)
	}
	r.openSpare()
	r.log.Warn("out of file descriptors: a new connection was closed; raise the descriptor limit or lower limits.connections")
}

// openSpare keeps one file descriptor in reserve for shedOnFDExhaustion.
func (r *Router) openSpare() {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.spare = f
	r.mu.Unlock()
}

// tracked is a client connection the drain can close: when it waits
// between requests, or at once when the shutdown limit passes.
type tracked interface {
	closeIfIdle()
	idle() bool
	// interrupt wakes what the connection waits on once the shutdown
	// limit ran out: its exchanges end with H24.
	interrupt()
	forceClose()
	// slot is the connection's place under the connection limits.
	slot() *connSlot
}

// track registers a connection; false when the router is draining.
func (r *Router) track(t tracked) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining.Load() {
		return false
	}
	r.conns[t] = struct{}{}
	r.connWG.Add(1)
	return true
}

// untrack forgets a connection that ended.
func (r *Router) untrack(t tracked) {
	r.mu.Lock()
	delete(r.conns, t)
	r.mu.Unlock()
	r.connWG.Done()
}

// sweepLoop closes idle dyno connections past dyno_keepalive.
func (r *Router) sweepLoop() {
	defer r.bgWG.Done()
	for {
		sp := r.sp.Load()
		every := max(sp.cfg.Timeouts.DynoKeepalive/4, 5*time.Millisecond)
		every = min(every, time.Second)
		t := time.NewTimer(every)
		select {
		case <-r.stopCtx.Done():
			t.Stop()
			return
		case now := <-t.C:
			r.mu.Lock()
			pools := make([]*pool, 0, len(r.backends))
			for _, be := range r.backends {
				pools = append(pools, be.pool)
			}
			r.mu.Unlock()
			for _, p := range pools {
				p.sweep(now, sp.cfg.Timeouts.DynoKeepalive)
			}
		}
	}
}

// HTTPAddr returns the bound address of the plain HTTP listener, or nil.
func (r *Router) HTTPAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.httpAddr
}

// Draining reports whether Shutdown has begun.
func (r *Router) Draining() bool { return r.draining.Load() }

// forcedGrace is how long exchanges cut by the shutdown limit have to
// answer 503 and write their H24 line before their connections are
// closed.
const forcedGrace = time.Second

// Shutdown drains (SPEC.md 1): it stops accepting, closes idle client
// connections (HTTP/2 ones get GOAWAY), lets requests in flight finish
// until ctx is done; then every exchange still running ends with H24
// (SPEC.md 6) and the connections are closed.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.draining.Store(true)
	lns := r.listeners
	r.listeners = nil
	r.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	done := make(chan struct{})
	go func() {
		r.connWG.Wait()
		close(done)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		r.closeIdleConns()
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			err = ctx.Err()
			r.forced.Store(true)
			r.eachConn(tracked.interrupt)
			select {
			case <-done:
			case <-time.After(forcedGrace):
				r.stop() // cancels dials in progress too
				r.eachConn(tracked.forceClose)
				<-done
			}
			break wait
		case <-tick.C:
		}
	}
	r.stop()
	r.stopACME()
	r.stopAdmin()
	r.bgWG.Wait()
	r.mu.Lock()
	for _, be := range r.backends {
		be.pool.close()
	}
	spare := r.spare
	r.spare = nil
	r.mu.Unlock()
	if spare != nil {
		spare.Close()
	}
	return err
}

func (r *Router) closeIdleConns() { r.eachConn(tracked.closeIfIdle) }

// eachConn calls f on every tracked connection.
func (r *Router) eachConn(f func(tracked)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.conns {
		f(t)
	}
}

// bufPool holds the stream and copy buffers (*[]byte) between requests.
var bufPool sync.Pool

// getBuf returns a pooled buffer of at least n bytes (length n).
func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, max(n, copyBufSize))
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
