package router

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"time"

	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
	"github.com/spacerouter/spacerouter/spaceca"
)

// exchange is one request from its head to its router line (SPEC.md
// section 4): route, read the start of the body, admit, pick a dyno,
// forward, relay, finish. It starts from its zero value for every request;
// the buffers it writes into belong to its connection (scratch). Each step
// returns an error that carries its outcome (*errcodes.Error), decided
// where it happened; finish turns it into the answer, the line and the
// metrics, once.
//
// The steps, in the order a request takes them, each in its file:
// route.go (route), body.go (readPrefix), admit.go (admit), dial.go (pick
// a dyno, connect or reuse), forward.go (the request to the dyno, the
// response head back), relay.go (the response to the client), finish.go.
// The client side is conn.go (HTTP/1) or h2conn.go (HTTP/2); connections
// are accepted in server.go.
type exchange struct {
	rt    *Router
	sp    *space
	cl    client
	req   *h1.Request
	sc    *scratch
	peer  netip.Addr // the client address (TCP peer)
	start time.Time  // when the head had arrived

	app *app
	d   *dyno
	// target is what the dyno is sent as the request target: the target as
	// received, or the origin form of an absolute-form one (RFC 9112
	// section 3.2.2), whose authority is then the Host.
	target   []byte
	hostAuth []byte // the absolute-form target's authority, or nil

	// pre is the start of the request body, read before admission
	// (SPEC.md 4.7); preDone: it is the whole body.
	pre     *[]byte
	preDone bool
	rate    rateCount

	sendStart time.Time
	// respFrom is when the wait for the response head began, if the
	// request's write began it (forward); zero otherwise.
	respFrom time.Time
	// wrote: a byte of the request reached a dyno; sent: a byte of the
	// response reached the client (its status is line.Status).
	wrote, sent bool
	// closeAfter: the client connection ends after this exchange.
	closeAfter bool
	// kind is the dyno response's body framing (bodyNone…); relayed the
	// body bytes the client was sent.
	kind    int
	relayed int64

	// What the dyno is told of the client certificate (certUnasked…),
	// the cause of a refusal under mtls optional, the verified
	// certificate (SPEC.md 11.1).
	certVerify int
	certCause  spaceca.Cause
	cert       *peerCert

	line logging.Line
	am   *appMetrics
}

// scratch holds the buffers exchanges write into, owned by one connection
// (or a pooled HTTP/2 stream) and reused request after request, so a
// request allocates nothing.
type scratch struct {
	host []byte // the normalized Host
	rid  []byte // X-Request-Id sent to the dyno
	xff  []byte // X-Forwarded-For sent to the dyno
	out  []byte // bytes on their way to the client or the dyno
	resp h1.Response
	// Request body readers (HTTP/1) and response body readers.
	reqLen    h1.LengthReader
	reqChunk  h1.ChunkedReader
	dynoLen   h1.LengthReader
	dynoChunk h1.ChunkedReader
	// fields and vals build an HTTP/2 response head.
	fields []h1.Field
	vals   []byte
	rng    *rand.ChaCha8
	// startSec is the X-Request-Start value of the last request in whole
	// seconds, and startSecText its digits (see appendStartMillis).
	startSec     int64
	startSecText []byte
}

// client is the side of an exchange that faces the client: an HTTP/1
// connection (conn) or an HTTP/2 stream.
type client interface {
	// protocol is the line's protocol= value.
	protocol() logging.Protocol
	// readBody reads request body bytes, framing removed, waiting until
	// deadline at most (os.ErrDeadlineExceeded then; a later call may
	// read on). io.EOF ends the body.
	readBody(ex *exchange, p []byte, deadline time.Time) (int, error)
	// continue100 sends 100 Continue if the client still waits for it
	// (no body byte arrived yet): the dyno's own (sc.resp) when fromDyno,
	// else the router's.
	continue100(ex *exchange, fromDyno bool) error
	// interim passes the dyno's 1xx response (sc.resp) on.
	interim(ex *exchange) error
	// send sends the response head (head: the first call), then body
	// bytes; end completes the response.
	send(ex *exchange, head bool, body []byte, end bool) error
	// answer sends a whole router-made response and returns the body
	// bytes sent (-1: none).
	answer(ex *exchange, status int, pg *page) int64
	// abort ends a response that cannot be completed, so the client does
	// not take it for whole (a reset stream, a closed connection).
	abort(ex *exchange)
	// setDyno records the dyno connection the exchange uses (nil: none),
	// so the shutdown limit can interrupt it.
	setDyno(dc *dynoConn)
	// listener describes the listener the request came on.
	listener() *listenerInfo
	// sni is the normalized SNI name (nil on plain HTTP), ip the client
	// IP as text, tlsVersion the TLS version (0 on plain HTTP).
	sni() []byte
	ip() []byte
	tlsVersion() uint16
	// peerCert is the connection's client certificate, nil when it sent
	// none (or is no TLS connection).
	peerCert() *peerCert
	// tunnel relays an upgraded connection both ways (HTTP/1 only).
	tunnel(ex *exchange, dc *dynoConn) error
	// watch watches for the client going away while the exchange waits
	// for the dyno, and then wakes the dyno read on dc; unwatch stops
	// that. gone reports whether the client went away.
	watch(dc *dynoConn)
	unwatch()
	gone() bool
}

// Body framings of a dyno response.
const (
	bodyNone    = iota // no body
	bodyLength         // Content-Length
	bodyChunked        // chunked
	bodyEOF            // until the dyno closes
)

// reset starts the exchange of a new request. It is filled in place: a
// composite literal assigned to it would be built in a temporary on the
// caller's stack first (the exchange is 544 bytes), and the connection's
// goroutine, which keeps the deepest stack it ever needed, would hold that
// while idle.
func (ex *exchange) reset(rt *Router, sp *space, cl client, req *h1.Request, sc *scratch, peer netip.Addr, start time.Time) {
	*ex = exchange{}
	ex.rt, ex.sp, ex.cl, ex.req, ex.sc, ex.peer, ex.start = rt, sp, cl, req, sc, peer, start
	ex.line = emptyLine
}

// run serves the exchange and finishes it.
func (ex *exchange) run() {
	ex.finish(ex.serve())
}

// serve takes the request from routing to the end of its response. A nil
// error is a response relayed whole.
func (ex *exchange) serve() error {
	if err := ex.route(); err != nil {
		return err
	}
	if err := ex.readPrefix(); err != nil {
		return err
	}
	defer ex.releasePrefix()
	if err := ex.admit(); err != nil {
		return err
	}
	defer ex.release()
	return ex.proxy()
}

// writeTimeout bounds a write of n bytes to the client: at
// limits.min_transfer_rate it must be done within max(rateWindow, n/rate)
// (SPEC.md 2); with the rate off, within the client window.
func (ex *exchange) writeTimeout(n int) time.Duration {
	to := ex.sp.cfg.Timeouts.Client
	if ex.app != nil {
		to = ex.app.to.Client
	}
	rate := ex.sp.cfg.Limits.MinTransferRate
	if rate <= 0 {
		return to
	}
	return max(rateWindow, time.Duration(n)*time.Second/time.Duration(rate))
}

// sniff returns the Content-Type of a body that came without one, by the
// WHATWG rules (SPEC.md 4.8).
func sniff(body []byte) string { return http.DetectContentType(body) }
