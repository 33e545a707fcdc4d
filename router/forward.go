package router

import (
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
)

// forward sends the request on dc and relays the response. retry reports
// a pooled connection found dead before any byte of the request was
// written: nothing happened and the request may go out on a fresh one.
func (ex *exchange) forward(dc *dynoConn) (retry bool, err error) {
	if ex.cl.gone() {
		// The client left (an HTTP/2 reset) before its request went out.
		dc.pool.put(dc, time.Now())
		return false, ex.bodyError(errStreamReset)
	}
	ex.setDyno(dc)
	keepDyno := false
	defer func() {
		ex.setDyno(nil)
		if keepDyno {
			dc.pool.put(dc, time.Now())
		} else {
			dc.pool.discard(dc)
		}
	}()
	ex.sendStart = time.Now()
	sc := ex.sc
	sc.out = ex.appendDynoHead(sc.out[:0])
	if ex.pre != nil && (ex.preDone || !ex.req.Chunked) {
		sc.out = append(sc.out, *ex.pre...)
	} else if ex.pre != nil && len(*ex.pre) > 0 {
		sc.out = appendChunk(sc.out, *ex.pre)
	}
	var n int
	var werr error
	ex.respFrom = time.Time{}
	if ex.preDone {
		// The whole request goes out in this write: the wait for the
		// response head starts with it (writeAwait), under the
		// response's first deadline.
		ex.respFrom = time.Now()
		ex.responseDeadline(dc, ex.respFrom)
		n, werr = dc.writeAwait(sc.out)
	} else {
		n, werr = dc.c.Write(sc.out)
	}
	if werr != nil {
		if dc.reused && n == 0 {
			// Found dead before any byte of the request was written: the
			// only case a request goes out again (SPEC.md 4.6).
			return true, nil
		}
		return false, ex.backendInterrupted(werr)
	}
	// From here on the dyno may have read the request: whatever happens
	// is answered and logged, never sent again (SPEC.md 4.6).
	ex.wrote = true
	early := false
	if !ex.preDone {
		if early, err = ex.sendBody(dc); err != nil {
			return false, err
		}
	}
	if !early {
		if err := ex.awaitResponse(dc); err != nil {
			return false, err
		}
	}
	dc.keepFor = keepAliveTimeout(&sc.resp)
	keepDyno, err = ex.relay(dc)
	keepDyno = keepDyno && ex.app.keepaliveToDyno && !sc.resp.Close
	return false, err
}

// keepAliveTimeout returns how long a pooled connection may stay idle by
// the dyno's Keep-Alive: timeout=N (seconds), less a margin so the router
// never sends on a connection the dyno is closing (Node closes after 5 s,
// Go's net/http and most servers announce nothing); 0 when not said.
func keepAliveTimeout(resp *h1.Response) time.Duration {
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if f.Known != h1.KnownKeepAlive {
			continue
		}
		n, ok := h1.KeepAliveTimeout(f.Value)
		if !ok {
			return 0
		}
		d := time.Duration(n) * time.Second
		return max(d-min(time.Second, d/4), time.Millisecond)
	}
	return 0
}

// setDyno records the dyno connection in use, so the shutdown limit can
// interrupt it.
func (ex *exchange) setDyno(dc *dynoConn) { ex.cl.setDyno(dc) }

// backendInterrupted is H18: the dyno went away while the request was
// being sent.
func (ex *exchange) backendInterrupted(err error) error {
	ex.line.Service = time.Since(ex.sendStart)
	ex.closeAfter = ex.closeAfter || !ex.preDone
	return errcodes.New(errcodes.ServerRequestInterrupted, err)
}

// appendDynoHead appends the request head sent to the dyno (SPEC.md 4.7).
func (ex *exchange) appendDynoHead(b []byte) []byte {
	req, sc := ex.req, ex.sc
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, ex.target...)
	b = append(b, " HTTP/1.1\r\n"...)
	ownHost := ex.hostAuth != nil
	switch {
	case ex.hostAuth != nil:
		// An absolute-form target: its authority is the Host (RFC 9112
		// section 3.2.2).
		b = append(b, "Host: "...)
		b = append(b, ex.hostAuth...)
		b = append(b, '\r', '\n')
	case req.HasHost && ex.cl.protocol() == logging.HTTP20:
		// :authority (or a host field) becomes the one Host field (RFC
		// 9113 section 8.3.1).
		b = append(b, "Host: "...)
		b = append(b, req.Host...)
		b = append(b, '\r', '\n')
		ownHost = true
	case !req.HasHost:
		// HTTP/1.0 without Host on TLS, or an HTTP/2 request without
		// :authority: the routing name stands for it (SPEC.md 4.3).
		b = append(b, "Host: "...)
		b = append(b, sc.host...)
		b = append(b, '\r', '\n')
	}
	b = appendForwardFields(b, req.Fields, fieldsRequest|skipHostIf(ownHost), ex.via())
	b = append(b, "X-Request-Id: "...)
	b = append(b, sc.rid...)
	b = append(b, "\r\nX-Forwarded-For: "...)
	b = append(b, sc.xff...)
	b = append(b, ex.cl.listener().fwd...) // X-Forwarded-Proto, X-Forwarded-Port, X-Request-Start
	b = sc.appendStartMillis(b, ex.start.UnixMilli())
	b = append(b, "\r\n"...)
	b = ex.appendClientCertFields(b)
	switch {
	case ex.pre != nil && ex.preDone:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(*ex.pre)), 10)
		b = append(b, "\r\n"...)
	case req.ContentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	case req.Chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if req.Expect100 && ex.app.e2eContinue && ex.pre == nil {
		b = append(b, "Expect: 100-continue\r\n"...)
	}
	switch {
	case req.Upgrade:
		b = append(b, "Connection: Upgrade\r\n"...)
	case !ex.app.keepaliveToDyno:
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, '\r', '\n')
}

// via is the router's Via entry for the client's protocol (SPEC.md 4.7).
func (ex *exchange) via() string {
	if ex.cl.protocol() == logging.HTTP20 {
		return via20
	}
	return via11
}

// appendStartMillis appends ms in decimal. The digits above the last
// three change once a second: the connection keeps them, so most requests
// format three digits only.
func (sc *scratch) appendStartMillis(b []byte, ms int64) []byte {
	sec, frac := ms/1000, ms%1000
	if sec <= 0 {
		return strconv.AppendInt(b, ms, 10)
	}
	if sec != sc.startSec {
		sc.startSec = sec
		sc.startSecText = strconv.AppendInt(sc.startSecText[:0], sec, 10)
	}
	b = append(b, sc.startSecText...)
	return append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendChunk appends p as one chunk of a chunked body.
func appendChunk(b, p []byte) []byte {
	b = h1.AppendChunkHeader(b, len(p))
	b = append(b, p...)
	return append(b, '\r', '\n')
}

// expectContinueWait is how long an end-to-end 100-continue waits for the
// dyno's 100 before the body is sent anyway, as clients do (RFC 9110
// section 10.1.1).
const expectContinueWait = time.Second

// sendBody streams the rest of the request body to the dyno, after the
// prefix that went with the head. early reports that the dyno answered
// (end-to-end 100-continue) before the body was sent.
func (ex *exchange) sendBody(dc *dynoConn) (early bool, err error) {
	req, a := ex.req, ex.app
	if req.Expect100 && ex.pre == nil {
		got, final, err := ex.awaitContinue(dc)
		if err != nil {
			return false, ex.responseError(err)
		}
		if final {
			ex.closeAfter = true // the body was never read
			return true, nil
		}
		if err := ex.cl.continue100(ex, got); err != nil {
			return false, errcodes.New(errcodes.ClientInterrupted, err)
		}
	}
	chunked := req.ContentLength < 0
	cb := getBuf(copyBufSize)
	defer putBuf(cb)
	buf := (*cb)[:copyBufSize-16] // room for a chunk's framing
	defer dc.c.SetWriteDeadline(time.Time{})
	sc := ex.sc
	for {
		n, err := ex.readBody(buf)
		if n > 0 {
			out := buf[:n]
			if chunked {
				sc.out = appendChunk(sc.out[:0], out)
				out = sc.out
			}
			dc.c.SetWriteDeadline(time.Now().Add(a.to.Idle))
			if _, werr := dc.c.Write(out); werr != nil {
				return false, ex.backendInterrupted(werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			ex.line.Service = time.Since(ex.sendStart)
			return false, err
		}
	}
	if chunked {
		if _, err := dc.c.Write([]byte(h1.LastChunk)); err != nil {
			return false, ex.backendInterrupted(err)
		}
	}
	ex.preDone = true // the body was read whole
	return false, nil
}

// awaitContinue waits for the dyno's answer to an end-to-end Expect:
// 100-continue: a 100 (got), a final response (final), or nothing within
// expectContinueWait (neither: the body is sent anyway).
func (ex *exchange) awaitContinue(dc *dynoConn) (got, final bool, err error) {
	dc.rdl.set(dc.c, time.Now().Add(min(expectContinueWait, ex.app.to.Response)))
	err = dc.br.ReadResponse(&ex.sc.resp, &ex.sp.respLim)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		dc.br.ClearErr()
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if ex.sc.resp.Status == 100 {
		return true, false, nil
	}
	return false, true, nil
}

// watchDelay is how long the router waits for response headers before it
// starts watching the client for a close (H27): fast responses never pay
// for the watch.
const watchDelay = 20 * time.Millisecond

// awaitResponse reads the final response head (skipping or passing on
// 1xx) within the response timeout (H12).
func (ex *exchange) awaitResponse(dc *dynoConn) error {
	a, sc := ex.app, ex.sc
	now := ex.respFrom // set when the request's one write began the wait
	if now.IsZero() {
		now = time.Now()
		ex.responseDeadline(dc, now)
	}
	watching := false
	defer func() {
		if watching {
			ex.cl.unwatch()
		}
	}()
	for {
		err := dc.br.ReadResponse(&sc.resp, &ex.sp.respLim)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !watching && time.Since(now) < a.to.Response {
			dc.br.ClearErr()
			watching = true
			ex.cl.watch(dc)
			dc.rdl.set(dc.c, now.Add(a.to.Response))
			continue
		}
		if err != nil {
			if watching && ex.cl.gone() {
				err = errClientGone
			}
			return ex.responseError(err)
		}
		st := sc.resp.Status
		if st >= 200 || st == 101 {
			return nil
		}
		// An interim response: the router's own 100 was sent already, and
		// HTTP/1.0 clients never get a 1xx (SPEC.md 4b).
		if st == 100 && !a.e2eContinue || ex.req.Minor == 0 {
			continue
		}
		if err := ex.cl.interim(ex); err != nil {
			return ex.responseError(errClientGone)
		}
	}
}

// responseDeadline sets the first read deadline of the wait for the
// response head that starts at now.
func (ex *exchange) responseDeadline(dc *dynoConn, now time.Time) {
	if to := ex.app.to.Response; to > watchDelay {
		// The first deadline only starts the watch: one that fires a
		// little late costs nothing, so a recent one is kept.
		dc.rdl.extend(dc.c, now, watchDelay)
	} else {
		dc.rdl.set(dc.c, now.Add(to))
	}
}

// responseError classifies a failure to get a response head.
func (ex *exchange) responseError(err error) error {
	ex.line.Service = time.Since(ex.sendStart)
	code := errcodes.ConnectionClosedWithoutResponse
	switch {
	case errors.Is(err, errClientGone):
		code = errcodes.ClientInterrupted
	case errors.Is(err, os.ErrDeadlineExceeded):
		code = errcodes.RequestTimeout
	case errors.Is(err, h1.ErrLineTooLong):
		code = errcodes.OversizedResponseStatusLine
	case errors.Is(err, h1.ErrHeaderTooLong):
		code = errcodes.OversizedResponseHeader
	case errors.Is(err, h1.ErrCookieTooLong):
		code = errcodes.OversizedResponseCookies
	case errors.Is(err, h1.ErrMalformed):
		code = errcodes.PoorlyFormattedResponse
	case errors.Is(err, io.ErrUnexpectedEOF):
		code = errcodes.ServerRequestInterrupted
	}
	if !ex.preDone {
		ex.closeAfter = true // the body was not read whole
	}
	return errcodes.New(code, err)
}
