package router

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// maxTries bounds the connect attempts of one request (SPEC.md 4.6).
const maxTries = 3

// proxy forwards the admitted request to a dyno of a and relays the
// response. It returns whether the client connection may go on.
func (cc *clientConn) proxy(sp *space, a *app, start time.Time) bool {
	l := &cc.line
	var tried [maxTries]*dyno
	var again *dyno // the dyno whose pooled connection proved dead
	// The first try comes microseconds after the request arrived: its time
	// stands for now in the skip and pool idle checks.
	now := start
	for try := 0; ; now = time.Now() {
		d := again
		if d == nil {
			d = pickDyno(a.up, tried[:try], cc.rng, now.UnixNano())
		}
		l.Dyno = d.name
		var dc *dynoConn
		if again == nil {
			dc = d.pool.get(now, sp.cfg.Timeouts.DynoKeepalive)
		}
		again = nil
		if dc != nil {
			l.Connect = 0
		} else {
			var err error
			dialStart := time.Now()
			dc, err = d.pool.dial(cc.rt.stopCtx, a.to.Connect, dynoReadBuf)
			l.Connect = time.Since(dialStart)
			if err != nil {
				d.skipUntil.Store(time.Now().Add(dynoSkip).UnixNano())
				tried[try] = d
				try++
				if try < maxTries && hasUntried(a.up, tried[:try]) {
					continue
				}
				code := errcodes.BackendConnectionRefused
				var de *dialError
				if errors.As(err, &de) && de.timeout {
					code = errcodes.BackendConnectionTimeout
				}
				return cc.routerError(a, code, start)
			}
		}
		d.inflight.Add(1)
		keep, retry := cc.exchange(sp, a, dc, start)
		d.inflight.Add(-1)
		if dynoFault(l.Code) {
			// A dyno that fails at once must not attract the traffic its
			// short requests free up (SPEC.md 4.5).
			d.skipUntil.Store(time.Now().Add(dynoSkip).UnixNano())
		}
		if !retry {
			return keep
		}
		// The pooled connection was dead before the dyno saw the request:
		// the same dyno again on a fresh connection, in silence (SPEC.md
		// 4.6); this is no new try.
		again = d
	}
}

// pickDyno chooses, of two up dynos drawn at random, the one with fewer
// requests in flight (SPEC.md 4.5). Dynos tried already are left out, and
// so are skipped ones while others remain.
func pickDyno(up []*dyno, tried []*dyno, rng *rand.ChaCha8, now int64) *dyno {
	var cand [2]*dyno
	n := 0
	for pass := 0; pass < 2 && n == 0; pass++ {
		// Reservoir-sample two candidates in one walk, without allocating.
		seen := 0
		for _, d := range up {
			if contains(tried, d) || (pass == 0 && d.skipUntil.Load() > now) {
				continue
			}
			seen++
			if n < 2 {
				cand[n] = d
				n++
			} else if j := int(rng.Uint64() % uint64(seen)); j < 2 {
				cand[j] = d
			}
		}
	}
	switch n {
	case 0:
		return up[int(rng.Uint64()%uint64(len(up)))]
	case 1:
		return cand[0]
	}
	if rng.Uint64()&1 == 0 {
		cand[0], cand[1] = cand[1], cand[0]
	}
	if cand[1].inflight.Load() < cand[0].inflight.Load() {
		return cand[1]
	}
	return cand[0]
}

func contains(ds []*dyno, d *dyno) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func hasUntried(up []*dyno, tried []*dyno) bool {
	for _, d := range up {
		if !contains(tried, d) {
			return true
		}
	}
	return false
}

// routerError answers with a router-made 5xx carrying the error page.
func (cc *clientConn) routerError(a *app, code errcodes.Code, start time.Time) bool {
	status := code.Status()
	cc.line.Code = code
	cc.line.Status = status
	if cc.req.HasBody() {
		cc.closeAfter = true
	}
	if !cc.respStarted {
		cc.writeSimple(status, a.pages.errorPage(), cc.closeAfter)
	} else {
		cc.closeAfter = true
	}
	cc.finishLine(start)
	return !cc.closeAfter
}

// exchange sends the request on dc and relays the response. retry reports
// a pooled connection found dead before the dyno saw any of the request:
// nothing was answered and the request can go out again on a fresh one.
func (cc *clientConn) exchange(sp *space, a *app, dc *dynoConn, start time.Time) (keep, retry bool) {
	req := &cc.req
	sendStart := time.Now()
	keepDyno := false
	defer func() {
		if keepDyno {
			// The line's time, when written, was taken as the response ended.
			t := cc.line.Time
			if t.IsZero() {
				t = time.Now()
			}
			dc.pool.put(dc, t)
		} else {
			dc.pool.discard(dc)
		}
	}()
	cc.out = cc.appendDynoHead(cc.out[:0], a, start)
	// A body that is whole in the buffer goes out with the head.
	inline := req.ContentLength > 0 && int64(cc.br.Buffered()) >= req.ContentLength && req.ContentLength <= copyBufSize && !req.Expect100
	if inline {
		cc.out = append(cc.out, cc.br.Bytes()[:req.ContentLength]...)
	}
	if n, err := dc.c.Write(cc.out); err != nil {
		if dc.reused && n == 0 {
			// Found dead before any byte of the request was written: the
			// only case a request goes out again (SPEC.md 4.6).
			return false, true
		}
		return cc.backendInterrupted(a, start, sendStart), false
	}
	if inline {
		cc.br.Discard(int(req.ContentLength))
	}
	earlyResp := false
	if req.HasBody() && !inline {
		var ok bool
		earlyResp, ok = cc.sendBody(sp, a, dc, start, sendStart)
		if !ok {
			return false, false
		}
	}
	if !earlyResp {
		// Once a byte of the request was written the dyno may have read
		// it: whatever happens now is answered and logged, never sent
		// again (SPEC.md 4.6), idempotent method or not.
		err := cc.awaitResponse(sp, a, dc, sendStart)
		if err != nil {
			return cc.responseError(a, err, start, sendStart), false
		}
	}
	dc.keepFor = keepAliveTimeout(&cc.resp)
	keepClient, kd := cc.relay(sp, a, dc, start, sendStart)
	keepDyno = kd && a.keepaliveToDyno && !cc.resp.Close
	return keepClient, false
}

// dynoFault reports the codes that count against the dyno (SPEC.md 4.5):
// it closed without a response, answered garbage or went away mid-way.
func dynoFault(c errcodes.Code) bool {
	switch c {
	case errcodes.ConnectionClosedWithoutResponse, errcodes.PoorlyFormattedResponse, errcodes.ServerRequestInterrupted:
		return true
	}
	return false
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

// backendInterrupted logs H18 for a dyno that went away while the request
// was being sent.
func (cc *clientConn) backendInterrupted(a *app, start, sendStart time.Time) bool {
	cc.line.Service = time.Since(sendStart)
	cc.closeAfter = true
	return cc.routerError(a, errcodes.ServerRequestInterrupted, start)
}

// appendDynoHead appends the request head sent to the dyno (SPEC.md 4.7).
func (cc *clientConn) appendDynoHead(b []byte, a *app, start time.Time) []byte {
	req := &cc.req
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Target...)
	b = append(b, " HTTP/1.1\r\n"...)
	if !req.HasHost && len(cc.sni) > 0 {
		// HTTP/1.0 without Host on TLS: the SNI name stands for it (SPEC.md 4.3).
		b = append(b, "Host: "...)
		b = append(b, cc.sni...)
		b = append(b, '\r', '\n')
	}
	b = appendForwardFields(b, req.Fields, true, cc.via)
	b = append(b, "X-Request-Id: "...)
	b = append(b, cc.rid...)
	b = append(b, "\r\nX-Forwarded-For: "...)
	b = append(b, cc.xff...)
	b = append(b, cc.li.fwd...) // X-Forwarded-Proto, X-Forwarded-Port, X-Request-Start
	b = cc.appendStartMillis(b, start.UnixMilli())
	b = append(b, "\r\n"...)
	switch {
	case req.Chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if req.Expect100 && a.e2eContinue && req.HasBody() {
		b = append(b, "Expect: 100-continue\r\n"...)
	}
	switch {
	case req.Upgrade:
		b = append(b, "Connection: Upgrade\r\n"...)
	case !a.keepaliveToDyno:
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, '\r', '\n')
}

// appendStartMillis appends ms in decimal. The digits above the last
// three change once a second: the connection keeps them, so most requests
// format three digits only.
func (cc *clientConn) appendStartMillis(b []byte, ms int64) []byte {
	sec, frac := ms/1000, ms%1000
	if sec <= 0 {
		return strconv.AppendInt(b, ms, 10)
	}
	if sec != cc.startSec {
		cc.startSec = sec
		cc.startSecText = strconv.AppendInt(cc.startSecText[:0], sec, 10)
	}
	b = append(b, cc.startSecText...)
	return append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// The router's Via entries (SPEC.md 4.7): by the client's protocol.
const (
	via11 = "1.1 spacerouter"
	via20 = "2.0 spacerouter"
)

// appendForwardFields appends the fields that pass through: not Hop, and
// on a request (replaced) not one the router sets itself. Via is appended
// to the last Via field, or added. Runs of fields that go out exactly as
// they came (h1.Field.Line) are copied at once.
func appendForwardFields(b []byte, fields []h1.Field, replaced bool, via string) []byte {
	lastVia := -1
	for i := range fields {
		if fields[i].Known == h1.KnownVia {
			lastVia = i
		}
	}
	var run []byte // field lines not appended yet
	for i := range fields {
		f := &fields[i]
		if f.Hop || replaced && replacedRequestField(f.Known) {
			continue
		}
		if f.Line != nil && i != lastVia {
			// Lines of one head share its buffer: this one follows the run
			// when the run ends where it starts.
			if run != nil && cap(run)-len(run) == cap(f.Line) {
				run = run[:len(run)+len(f.Line)]
			} else {
				b = append(b, run...)
				run = f.Line
			}
			continue
		}
		b = append(b, run...)
		run = nil
		b = append(b, f.Name...)
		b = append(b, ':', ' ')
		b = append(b, f.Value...)
		if i == lastVia {
			b = append(b, ", "...)
			b = append(b, via...)
		}
		b = append(b, '\r', '\n')
	}
	b = append(b, run...)
	if lastVia < 0 {
		b = append(b, "Via: "...)
		b = append(b, via...)
		b = append(b, '\r', '\n')
	}
	return b
}

// replacedRequestField reports the request fields the router sets itself
// (SPEC.md 4.7).
func replacedRequestField(k h1.Known) bool {
	switch k {
	case h1.KnownXRequestID, h1.KnownXForwardedFor, h1.KnownXRequestStart, h1.KnownXForwardedPort, h1.KnownXForwardedProto:
		return true
	}
	return false
}

// continueLine is the interim response the router sends for
// Expect: 100-continue (SPEC.md 4.2).
const continueLine = "HTTP/1.1 100 Continue\r\n\r\n"

// expectContinueWait is how long an end-to-end 100-continue waits for the
// dyno's 100 before the body is sent anyway, as clients do (RFC 9110
// section 10.1.1).
const expectContinueWait = time.Second

// sendBody streams the request body to the dyno. earlyResp reports that
// the dyno answered (end-to-end 100-continue) before the body was sent; ok
// is false when the request ended with an error line already written.
func (cc *clientConn) sendBody(sp *space, a *app, dc *dynoConn, start, sendStart time.Time) (earlyResp, ok bool) {
	req := &cc.req
	if req.Expect100 && req.Minor == 1 {
		if a.e2eContinue {
			got, final, err := cc.awaitContinue(sp, a, dc)
			if err != nil {
				return false, cc.responseError(a, err, start, sendStart)
			}
			if final {
				cc.closeAfter = true // the body was never read
				return true, true
			}
			if got && cc.br.Buffered() == 0 {
				// The dyno's own 100 passes through, fields and all.
				if err := cc.forwardInterim(); err != nil {
					return false, cc.clientGone(a, start, sendStart)
				}
			}
		} else if cc.br.Buffered() == 0 {
			if _, err := cc.c.Write([]byte(continueLine)); err != nil {
				return false, cc.clientGone(a, start, sendStart)
			}
		}
	}
	var src io.Reader
	if req.Chunked {
		cc.chunk.Reset(cc.br)
		src = &cc.chunk
	} else {
		cc.lenr.Reset(cc.br, req.ContentLength)
		src = &cc.lenr
	}
	cc.cr.mode, cc.cr.timeout = readActive, a.to.Client
	cb := getBuf(copyBufSize)
	defer putBuf(cb)
	copyb := (*cb)[:copyBufSize]
	defer dc.c.SetWriteDeadline(time.Time{})
	for {
		n, err := src.Read(copyb)
		if n > 0 {
			dc.c.SetWriteDeadline(time.Now().Add(a.to.Idle))
			if werr := cc.writeBodyChunk(dc, copyb[:n], req.Chunked); werr != nil {
				return false, cc.backendInterrupted(a, start, sendStart)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, cc.requestBodyError(a, err, start, sendStart)
		}
	}
	if req.Chunked {
		if _, err := dc.c.Write([]byte(h1.LastChunk)); err != nil {
			return false, cc.backendInterrupted(a, start, sendStart)
		}
	}
	return false, true
}

// writeBodyChunk writes request body bytes to the dyno, re-chunked when
// the request is chunked.
func (cc *clientConn) writeBodyChunk(dc *dynoConn, p []byte, chunked bool) error {
	if !chunked {
		_, err := dc.c.Write(p)
		return err
	}
	b := h1.AppendChunkHeader(cc.out[:0], len(p))
	b = append(b, p...)
	b = append(b, '\r', '\n')
	cc.out = b
	_, err := dc.c.Write(b)
	return err
}

// requestBodyError ends a request whose body could not be read from the
// client: a bad chunk (400 H26), an idle client (H28) or a gone one (H27).
func (cc *clientConn) requestBodyError(a *app, err error, start, sendStart time.Time) bool {
	cc.closeAfter = true
	cc.line.Service = time.Since(sendStart)
	switch {
	case errors.Is(err, h1.ErrBadChunk):
		cc.line.Code = errcodes.BadChunk
		cc.line.Status = 400
		cc.writeSimple(400, nil, true)
	case errors.Is(err, os.ErrDeadlineExceeded):
		cc.line.Code = errcodes.ClientIdle
		cc.line.Status = 499
		cc.writeSimple(408, nil, true)
		cc.line.Bytes = -1
	default:
		return cc.clientGone(a, start, sendStart)
	}
	cc.finishLine(start)
	return false
}

// clientGone logs H27: the client closed before its response was done.
func (cc *clientConn) clientGone(a *app, start, sendStart time.Time) bool {
	cc.closeAfter = true
	cc.line.Code = errcodes.ClientInterrupted
	cc.line.Status = 499
	cc.line.Service = time.Since(sendStart)
	cc.finishLine(start)
	return false
}

// awaitContinue waits for the dyno's answer to an end-to-end Expect:
// 100-continue: a 100 (got), a final response (final), or nothing within
// expectContinueWait (neither: the body is sent anyway).
func (cc *clientConn) awaitContinue(sp *space, a *app, dc *dynoConn) (got, final bool, err error) {
	dc.rdl.set(dc.c, time.Now().Add(min(expectContinueWait, a.to.Response)))
	err = dc.br.ReadResponse(&cc.resp, &sp.respLim)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		dc.br.ClearErr()
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if cc.resp.Status == 100 {
		return true, false, nil
	}
	return false, true, nil
}

// watchDelay is how long the router waits for response headers before it
// starts watching the client connection for a close (H27): fast responses
// never pay for the watcher.
const watchDelay = 20 * time.Millisecond

// awaitResponse reads the final response head (skipping or forwarding
// 1xx) within the response timeout (H12).
func (cc *clientConn) awaitResponse(sp *space, a *app, dc *dynoConn, sendStart time.Time) error {
	now := time.Now()
	if a.to.Response > watchDelay {
		// The first deadline only starts the watcher: one that fires a
		// little late costs nothing, so a recent one is kept.
		dc.rdl.extend(dc.c, now, watchDelay)
	} else {
		dc.rdl.set(dc.c, now.Add(a.to.Response))
	}
	var w *watcher
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	for {
		err := dc.br.ReadResponse(&cc.resp, &sp.respLim)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && w == nil && time.Since(now) < a.to.Response {
			dc.br.ClearErr()
			w = cc.watchClient(dc)
			dc.rdl.set(dc.c, now.Add(a.to.Response))
			if w.gone.Load() {
				return errClientGone
			}
			continue
		}
		if err != nil {
			if w != nil && w.gone.Load() {
				return errClientGone
			}
			return err
		}
		st := cc.resp.Status
		if st >= 200 || st == 101 {
			return nil
		}
		// An interim response: the router's own 100 was sent already, and
		// HTTP/1.0 clients never get a 1xx (SPEC.md 4b).
		if st == 100 && !a.e2eContinue || cc.req.Minor == 0 {
			continue
		}
		if err := cc.forwardInterim(); err != nil {
			return errClientGone
		}
	}
}

var errClientGone = errors.New("client closed the connection")

// forwardInterim passes a 1xx response on to the client.
func (cc *clientConn) forwardInterim() error {
	b := h1.AppendStatusLine(cc.out[:0], 1, cc.resp.Status, cc.resp.Reason)
	for i := range cc.resp.Fields {
		f := &cc.resp.Fields[i]
		if !f.Hop {
			b = h1.AppendField(b, f.Name, f.Value)
		}
	}
	b = append(b, '\r', '\n')
	cc.out = b
	_, err := cc.c.Write(b)
	return err
}

// responseError maps a failure to get a response head to its H code.
func (cc *clientConn) responseError(a *app, err error, start, sendStart time.Time) bool {
	cc.line.Service = time.Since(sendStart)
	code := errcodes.ConnectionClosedWithoutResponse
	switch {
	case errors.Is(err, errClientGone):
		return cc.clientGone(a, start, sendStart)
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
	if cc.req.HasBody() && !cc.reqBodyDone() {
		cc.closeAfter = true
	}
	return cc.routerError(a, code, start)
}

// reqBodyDone reports whether the request body was read whole.
func (cc *clientConn) reqBodyDone() bool {
	if cc.req.Chunked {
		return cc.chunk.Done()
	}
	return cc.lenr.Left() == 0
}
