package router

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
)

// exchange is one request from its head to its router line (SPEC.md
// section 4): route, read the start of the body, admit, pick a dyno,
// forward, relay, finish. It starts from its zero value for every request;
// the buffers it writes into belong to its connection (scratch). Each step
// returns an error that carries its outcome (*errcodes.Error), decided
// where it happened; finish turns it into the answer, the line and the
// metrics, once.
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
	// wrote: a byte of the request reached a dyno; sent: a byte of the
	// response reached the client (its status is line.Status).
	wrote, sent bool
	// closeAfter: the client connection ends after this exchange.
	closeAfter bool
	// kind is the dyno response's body framing (bodyNone…); relayed the
	// body bytes the client was sent.
	kind    int
	relayed int64

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

// route finds the app of the request (SPEC.md 4.3) and answers what needs
// no dyno: CONNECT, an unknown host, a misdirected request, maintenance,
// a crashed app.
func (ex *exchange) route() error {
	req, sc := ex.req, ex.sc
	l := &ex.line
	l.Method, l.Path = req.Method, req.Target
	ex.closeAfter = ex.closeAfter || req.Close
	host, hasHost := req.Host, req.HasHost
	ex.target = req.Target
	if auth, path, ok := absoluteForm(req.Target, req.Method); ok {
		// RFC 9112 section 3.2.2: the target's authority wins over Host.
		host, hasHost, ex.hostAuth, ex.target = auth, true, auth, path
	}
	if hasHost {
		sc.host = normalizeHost(sc.host[:0], host)
	}
	ex.buildXFF()
	if h := ex.rt.hookHandle; h != nil {
		h()
	}
	if string(req.Method) == "CONNECT" {
		return &errcodes.Error{Status: 405}
	}
	sni := ex.cl.sni()
	if !hasHost {
		if len(sni) == 0 {
			// HTTP/1.0 without Host on plain HTTP: nothing to route by.
			return errcodes.New(errcodes.BadHeader, errNoHost)
		}
		sc.host = append(sc.host[:0], sni...)
	}
	a := ex.sp.lookup(sc.host)
	if len(sni) > 0 && (a == nil || ex.sp.lookup(sni) != a) {
		// On TLS the Host must be a domain of the SNI name's app.
		return errcodes.New(errcodes.MisdirectedRequest, nil)
	}
	if a == nil {
		return &errcodes.Error{Status: 404}
	}
	ex.app, ex.am = a, a.m
	ex.buildRequestID()
	if a.cfg.Maintenance {
		return errcodes.New(errcodes.MaintenanceMode, nil)
	}
	if len(a.up) == 0 {
		return errcodes.New(errcodes.AppCrashed, nil)
	}
	return nil
}

// admit counts the request in flight for its app and for its client
// address, or refuses it when either has too many (SPEC.md 4.4 and
// limits.requests_per_client): H11 at once, no queue.
func (ex *exchange) admit() error {
	a := ex.app
	if n := a.inflight.Add(1); n > a.limit {
		a.inflight.Add(-1)
		return errcodes.New(errcodes.BacklogTooDeep, nil)
	}
	if !a.clients.add(ex.peer, ex.sp.cfg.Limits.RequestsPerClient) {
		a.inflight.Add(-1)
		return errcodes.New(errcodes.BacklogTooDeep, errClientShare)
	}
	a.m.inFlight.Inc()
	return nil
}

// release undoes admit.
func (ex *exchange) release() {
	a := ex.app
	a.inflight.Add(-1)
	a.clients.done(ex.peer)
	a.m.inFlight.Dec()
}

// absoluteForm splits an absolute-form target (http://host/path) into its
// authority and the origin form the dyno is sent (RFC 9112 sections 3.2.2
// and 3.2.4: an empty path is "/", or "*" for OPTIONS).
func absoluteForm(target, method []byte) (auth, path []byte, ok bool) {
	rest, ok := cutSchemeFold(target)
	if !ok {
		return nil, nil, false
	}
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	auth, path = rest[:end], rest[end:]
	if i := bytes.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:] // userinfo is not part of the host (RFC 9110 section 4.2.4)
	}
	switch {
	case len(path) == 0 && string(method) == "OPTIONS":
		path = asterisk
	case len(path) == 0 || path[0] != '/':
		// "http://h?q": the origin form needs its slash.
		path = append(append(make([]byte, 0, len(path)+1), '/'), path...)
	}
	return auth, path, len(auth) > 0
}

var asterisk = []byte("*")

// cutSchemeFold returns what follows "http://" or "https://" (any case).
func cutSchemeFold(t []byte) ([]byte, bool) {
	switch {
	case len(t) > 7 && h1.HasPrefixFold(t, "http://"):
		return t[7:], true
	case len(t) > 8 && h1.HasPrefixFold(t, "https://"):
		return t[8:], true
	}
	return nil, false
}

// buildXFF sets sc.xff: the client's X-Forwarded-For values, then the
// client IP, joined with ", " (SPEC.md 4.7).
func (ex *exchange) buildXFF() {
	x := ex.sc.xff[:0]
	for i := range ex.req.Fields {
		f := &ex.req.Fields[i]
		if len(f.Value) > 0 && f.Known == h1.KnownXForwardedFor {
			x = append(x, f.Value...)
			x = append(x, ", "...)
		}
	}
	ex.sc.xff = append(x, ex.cl.ip()...)
}

// buildRequestID sets sc.rid: the client's X-Request-Id when it is 20–200
// bytes of A-Z a-z 0-9 + = / -, else a new UUID v4.
func (ex *exchange) buildRequestID() {
	sc := ex.sc
	for i := range ex.req.Fields {
		f := &ex.req.Fields[i]
		if f.Known == h1.KnownXRequestID {
			if validRequestID(f.Value) {
				sc.rid = append(sc.rid[:0], f.Value...)
				return
			}
			break
		}
	}
	sc.rid = appendUUID(sc.rid[:0], sc.rng.Uint64(), sc.rng.Uint64())
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
