package router

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
)

// Causes of router answers, for errors that carry no other.
var (
	errNoHost      = errors.New("HTTP/1.0 request without Host on plain HTTP")
	errClientShare = errors.New("the client address has limits.requests_per_client requests in flight")
	errClientGone  = errors.New("client went away")
	errSlowClient  = errors.New("client slower than limits.min_transfer_rate")
	// errStreamReset: the client reset its HTTP/2 stream; errBodyLength:
	// its DATA did not add up to its content-length.
	errStreamReset = errors.New("stream reset by the client")
	errBodyLength  = errors.New("request body length differs from content-length")
	// errEarlyReset ends an exchange with no line: an HTTP/2 stream reset
	// by the client before its request reached a dyno (SPEC.md 4).
	errEarlyReset = errors.New("stream reset before the request reached a dyno")
)

// finish ends the exchange, once: the router-made answer when nothing of a
// response was sent yet, the router line and the metrics (SPEC.md
// sections 6, 7 and 8), as Envoy writes its access log at stream end.
func (ex *exchange) finish(err error) {
	if errors.Is(err, errEarlyReset) {
		ex.rt.m.earlyResets.Inc()
		return
	}
	if err != nil {
		ex.fail(err)
	}
	ex.writeLine()
}

// fail records the outcome err carries and answers the client where it
// still can.
func (ex *exchange) fail(err error) {
	e := ex.classify(err)
	l := &ex.line
	l.Code = e.Code
	if isRequestError(e.Code) || e.Code == errcodes.ClientIdle || e.Code == errcodes.ForcedClose {
		ex.closeAfter = true // SPEC.md 4b: nothing after it is a request
	}
	switch {
	case e.Code == errcodes.ClientInterrupted:
		l.Status = 499
		ex.closeAfter = true
		if ex.sent {
			ex.cl.abort(ex)
		}
		return
	case e.Code == errcodes.ClientIdle:
		l.Status = 499
		if !ex.sent {
			ex.cl.answer(ex, 408, nil)
		} else {
			ex.cl.abort(ex)
		}
		l.Bytes = -1
		return
	case ex.sent:
		// Too late for an answer: the response is cut short. The line
		// keeps the status sent; H15 says 503 (SPEC.md 7).
		ex.closeAfter = true
		ex.cl.abort(ex)
		if e.Code == errcodes.IdleConnection {
			l.Status = 503
		}
		return
	case ex.cl.protocol() == logging.HTTP20 && (e.Code == errcodes.BadHeader || e.Code == errcodes.BadChunk):
		// A malformed HTTP/2 request is reset, with no status (SPEC.md 4).
		ex.cl.abort(ex)
		l.Status = 0
		return
	}
	status := e.StatusOf()
	l.Status = status
	l.Bytes = ex.cl.answer(ex, status, ex.pageFor(e.Code, status))
}

// pageFor returns the body of a router-made answer: the maintenance page
// for H80, the app's error page for other 5xx (SPEC.md 9), else nil (a
// one-line text).
func (ex *exchange) pageFor(c errcodes.Code, status int) *page {
	switch {
	case status < 500:
		return nil
	case ex.app == nil:
		return builtinErrorPage
	case c == errcodes.MaintenanceMode:
		return ex.app.pages.maintenancePage()
	}
	return ex.app.pages.errorPage()
}

// isRequestError reports the codes of a request the router refused for
// its form (H25 request side, H26): the connection ends after it.
func isRequestError(c errcodes.Code) bool {
	switch c {
	case errcodes.OversizedRequestCookies, errcodes.OversizedRequestHeader, errcodes.OversizedRequestLine,
		errcodes.UnsupportedExpect, errcodes.BadHeader, errcodes.BadChunk:
		return true
	}
	return false
}

// classify returns the outcome err carries. Steps decide it where the
// failure happens; this is the one fallback for anything else (a client
// that went away, a timeout, a panic's error). Once the shutdown limit ran
// out, whatever cut the request short is H24 (SPEC.md 6).
func (ex *exchange) classify(err error) *errcodes.Error {
	e, ok := errors.AsType[*errcodes.Error](err)
	if ex.rt.forced.Load() && (!ok || e.Code != errcodes.None && !isRequestError(e.Code)) {
		return errcodes.New(errcodes.ForcedClose, err)
	}
	if ok {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, errClientGone), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return errcodes.New(errcodes.ClientInterrupted, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errcodes.New(errcodes.ClientIdle, err)
	}
	return errcodes.New(errcodes.PlatformError, err)
}

// writeLine completes the router line and writes it, and counts the
// request in the metrics.
func (ex *exchange) writeLine() {
	l := &ex.line
	sc := ex.sc
	if l.Host == nil {
		l.Host = sc.host
	}
	if len(sc.rid) == 0 {
		ex.buildRequestID()
	}
	l.RequestID = sc.rid
	l.Fwd = sc.xff
	if len(sc.xff) == 0 {
		l.Fwd = ex.cl.ip()
	}
	v := ex.cl.tlsVersion()
	l.TLS, l.TLSVersion = v != 0, v
	l.Protocol = ex.cl.protocol()
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	am := ex.am
	if am == nil {
		am = ex.sp.other
	}
	l.Recent = am.recent
	ex.rt.lines.Load().Write(l)
	am.observe(l.Time, l.Status, l.Code, l.Connect, l.Service)
}
