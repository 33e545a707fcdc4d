package router

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// The idle wait of a TLS connection (issue 10: idle TLS memory). A
// goroutine parked inside tls.Conn.Read uses more than 1 KiB of stack, so
// the garbage collector never halves the 4 KiB stack the request path
// grew, and each idle connection keeps it. So an idle HTTP/1 TLS
// connection waits for the next request's first byte at a shallow depth
// instead: a probe read through crypto/tls that cannot touch the socket
// (tlsConn.Read refuses it with errNoWait), which returns what crypto/tls
// holds already (decrypted bytes, a complete record, an alert); if it
// holds none, the goroutine waits for the socket to be readable through
// the runtime poller (waitReadable), then reads through crypto/tls as
// before. Parked there, the goroutine uses under 1 KiB of stack, and the
// collector gives back half of it.

// errNoWait is what a probe read gets where it would read the socket.
// crypto/tls keeps an error for later reads unless it is a temporary
// net.Error, and leaves what it read of an incomplete record in place.
var errNoWait error = noWaitError{}

type noWaitError struct{}

func (noWaitError) Error() string   { return "router: probe read would wait" }
func (noWaitError) Timeout() bool   { return true }
func (noWaitError) Temporary() bool { return true }

// Read reads the TCP connection, or refuses with errNoWait during a probe.
// It follows the record framing of what it reads: crypto/tls reads the
// socket only when it holds no complete record (it takes records in
// order, and reads while the one it needs is incomplete), so when a read
// completes at most one record, crypto/tls holds no complete record once
// it took that one.
func (tc *tlsConn) Read(p []byte) (int, error) {
	if tc.probe {
		return 0, errNoWait
	}
	n, err := tc.Conn.Read(p)
	tc.extra = tc.frame(p[:n]) > 1
	return n, err
}

// frame follows the record framing over b, the next bytes read, and
// returns how many records they complete.
func (tc *tlsConn) frame(b []byte) (done int) {
	for len(b) > 0 {
		if tc.hlen < len(tc.hdr) {
			k := copy(tc.hdr[tc.hlen:], b)
			tc.hlen += k
			b = b[k:]
			if tc.hlen < len(tc.hdr) {
				break
			}
			tc.left = int(tc.hdr[3])<<8 | int(tc.hdr[4])
		}
		k := min(tc.left, len(b))
		tc.left -= k
		b = b[k:]
		if tc.left == 0 {
			tc.hlen = 0
			done++
		}
	}
	return done
}

// mustProbe reports whether crypto/tls may hold what the next read
// returns without reading the socket: decrypted bytes (the last read
// through it filled its buffer), or a complete record (its last socket
// read completed more than one). Else the idle wait goes to the socket
// at once, without the probe (which costs crypto/tls an allocation).
func (tc *tlsConn) mustProbe() bool {
	return !tc.drained || tc.extra
}

// setupWait readies waitReadable; without it (not a TCP connection)
// waitReadable returns at once.
func (tc *tlsConn) setupWait() {
	if sc, ok := tc.Conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			tc.rc, tc.readable = rc, tc.peek
			tc.drained = true // the handshake leaves no decrypted bytes
		}
	}
}

// waitReadable waits until the socket has a byte to read, an end or an
// error, or the read deadline passed: then a read of the socket does not
// wait (or only for the rest of a record already on its way). The error
// is the wait's (deadline, close); the next read reports it again.
func (tc *tlsConn) waitReadable() error {
	if tc.rc == nil {
		return nil
	}
	tc.woken = false
	return tc.rc.Read(tc.readable)
}

// peek is waitReadable's callback: false while the socket has nothing to
// read (the poller parks the goroutine), true once it has. Called again
// after the poller woke it, it returns true without a system call: a
// spurious wake only means the read that follows waits in crypto/tls.
func (tc *tlsConn) peek(fd uintptr) bool {
	if tc.woken {
		return true
	}
	tc.woken = true
	var b [1]byte
	_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e != syscall.EAGAIN && e != syscall.EWOULDBLOCK
}

var _ net.Error = noWaitError{}

// idleHopAfter is how long an idle TLS connection waits on the goroutine
// that served its last request before it hops to a fresh one.
//
// The collector halves a parked goroutine's stack only when it uses under
// a quarter of it counting the 800 bytes the runtime keeps for functions
// that do not check the stack (runtime.shrinkstack: the stack in use plus
// stackNosplit must be under a quarter), so a 4 KiB stack is never halved
// while its goroutine waits in the poller, however shallow the wait: the
// poller's own frames take more than the 224 bytes left. A goroutine
// started for the wait has a 2 KiB stack, and the wait fits in it. Hopping
// at every wait would cost a goroutine start and a stack growth on each
// request (about 15 % of the CPU of a keep-alive HTTPS request); after a
// quarter second of idleness it costs a few microseconds per idle spell,
// and traffic that keeps a connection busy never hops.
var idleHopAfter = 250 * time.Millisecond

// idleWindow is the first read deadline of an idle wait: the keep-alive
// window, or on a TLS connection that can wait on its socket, the
// shorter idleHopAfter, when hopIdle moves the wait to a fresh goroutine.
func (c *conn) idleWindow(keepalive time.Duration) time.Duration {
	if c.tv != nil && c.tv.rc != nil {
		return min(keepalive, idleHopAfter)
	}
	return keepalive
}

// hopIdle, when the wait's first window ran out, the keep-alive window has
// not and the drain has not closed the connection, sets the read deadline
// to the end of the keep-alive window and asks serve to go on on a fresh
// goroutine (hopNow), which waits with a 2 KiB stack (resume).
func (c *conn) hopIdle() bool {
	if c.state.Load() != connIdle || !time.Now().Before(c.idleUntil) {
		return false // the read that follows reports the deadline
	}
	c.rdl.set(c.c, c.idleUntil)
	if c.state.Load() != connIdle {
		// The drain came meanwhile (closeIfIdle sets the state, then the
		// deadline): its deadline may have come before this one.
		c.rdl.set(c.c, aLongTimeAgo)
		return false
	}
	c.hopNow = true
	return true
}

// resume goes on serving a connection that hopped (hopIdle): it waits for
// the next request at the shallowest depth, then serves as before.
func (c *conn) resume() {
	c.tv.waitReadable()
	c.resumed = true
	c.serve()
}
