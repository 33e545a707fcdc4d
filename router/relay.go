package router

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// relay passes the dyno's response on to the client (SPEC.md 4.8, 4.9).
// keepDyno reports that dc ended at the end of the response and may serve
// another request.
func (ex *exchange) relay(dc *dynoConn) (keepDyno bool, err error) {
	resp := &ex.sc.resp
	l := &ex.line
	l.Status = resp.Status
	if resp.Status == 101 {
		l.Service = time.Since(ex.sendStart)
		if !ex.req.Upgrade {
			ex.closeAfter = true
			return false, errcodes.New(errcodes.PoorlyFormattedResponse, errUnaskedUpgrade)
		}
		return false, ex.cl.tunnel(ex, dc)
	}
	switch {
	case !resp.BodyAllowed(string(ex.req.Method) == "HEAD"):
		ex.kind = bodyNone
	case resp.Chunked:
		ex.kind = bodyChunked
	case resp.ContentLength > 0:
		ex.kind = bodyLength
	case resp.ContentLength < 0:
		ex.kind = bodyEOF
	default:
		ex.kind = bodyNone
	}
	if !ex.preDone || ex.rt.draining.Load() {
		ex.closeAfter = true
	}
	// Fast path: the whole body is in the buffer already.
	if ex.kind == bodyNone || ex.kind == bodyLength && int64(dc.br.Buffered()) >= resp.ContentLength {
		var body []byte
		if ex.kind == bodyLength {
			body = dc.br.Bytes()[:resp.ContentLength]
		}
		ex.rt.m.flushEnd.Inc()
		err := ex.cl.send(ex, true, body, true)
		now := time.Now()
		dc.br.Discard(len(body))
		l.Service = now.Sub(ex.sendStart)
		if err != nil {
			return true, errcodes.New(errcodes.ClientInterrupted, err)
		}
		ex.sent = true
		ex.relayed = int64(len(body))
		l.Bytes, l.Time = ex.relayed, now
		return ex.kind != bodyEOF, nil
	}
	return ex.stream(dc)
}

var errUnaskedUpgrade = errors.New("101 Switching Protocols to a request that asked for no upgrade")

// pending holds response bytes on their way to the client: they go out
// when buffering.bytes wait, when the oldest waiting byte is
// buffering.window old, or at the end of the body (SPEC.md 4.9). The head
// counts as waiting bytes, so it too is sent within the window.
type pending struct {
	ex       *exchange
	buf      *[]byte // pooled for the length of the stream only
	b        []byte
	firstAt  time.Time // when the oldest waiting byte arrived
	headSent bool
}

// waiting reports bytes (or the head) not sent yet.
func (p *pending) waiting() bool { return len(p.b) > 0 || !p.headSent }

// flush sends what waits, counted under reason; end completes the
// response.
func (p *pending) flush(end bool, reason prometheus.Counter) error {
	reason.Inc()
	ex := p.ex
	if err := ex.cl.send(ex, !p.headSent, p.b, end); err != nil {
		return err
	}
	p.headSent, ex.sent = true, true
	ex.relayed += int64(len(p.b))
	p.b = p.b[:0]
	return nil
}

// stream relays a body that is not whole in the buffer, as it arrives.
func (ex *exchange) stream(dc *dynoConn) (keepDyno bool, err error) {
	sc, a, l := ex.sc, ex.app, &ex.line
	var src io.Reader
	switch ex.kind {
	case bodyLength:
		sc.dynoLen.Reset(dc.br, sc.resp.ContentLength)
		src = &sc.dynoLen
	case bodyChunked:
		sc.dynoChunk.Reset(dc.br)
		src = &sc.dynoChunk
	default:
		src = dc.br
	}
	window, bufBytes := ex.sp.cfg.Buffering.Window, ex.sp.cfg.Buffering.Bytes
	sse := sc.resp.HasContentType && h1.HasPrefixFold(sc.resp.ContentType, "text/event-stream")
	m := ex.rt.m
	p := pending{ex: ex, buf: getBuf(max(bufBytes, 4096)), firstAt: time.Now()}
	defer putBuf(p.buf)
	p.b = (*p.buf)[:0]
	// The head's fields point into the dyno buffer: keep them in place
	// while the body is read into it.
	dc.br.Pin()
	defer dc.br.Unpin()
	lastByte := p.firstAt
	done := func(err error) (bool, error) {
		l.Service = time.Since(ex.sendStart)
		l.Bytes = ex.relayed
		return false, err
	}
	if sse {
		// An event stream's head goes out as it came, like every read.
		if err := p.flush(false, m.flushSize); err != nil {
			return done(errcodes.New(errcodes.ClientInterrupted, err))
		}
	}
	// A client that goes away while the dyno is slow to send the rest is
	// noticed at once, not at the next write (H27).
	ex.cl.watch(dc)
	defer ex.cl.unwatch()
	for {
		if flushAt := p.firstAt.Add(window); p.waiting() && flushAt.Before(lastByte.Add(a.to.Idle)) {
			dc.rdl.set(dc.c, flushAt) // the buffering window is exact
		} else {
			dc.rdl.extend(dc.c, lastByte, a.to.Idle) // H15 may fire a few ms late
		}
		if ex.cl.gone() && !ex.complete() {
			return done(errcodes.New(errcodes.ClientInterrupted, errClientGone))
		}
		n, err := src.Read(p.b[len(p.b):cap(p.b)])
		if n > 0 {
			now := time.Now()
			if len(p.b) == 0 && p.headSent {
				p.firstAt = now
			}
			p.b = p.b[:len(p.b)+n]
			lastByte = now
		}
		switch {
		case err == io.EOF:
			l.Service = time.Since(ex.sendStart)
			if ferr := p.flush(true, m.flushEnd); ferr != nil {
				return done(errcodes.New(errcodes.ClientInterrupted, ferr))
			}
			l.Bytes = ex.relayed
			return ex.kind != bodyEOF, nil
		case err != nil && ex.rt.forced.Load():
			if !ex.sent {
				l.Service = time.Since(ex.sendStart)
				return false, errcodes.New(errcodes.ForcedClose, err)
			}
			return done(errcodes.New(errcodes.ForcedClose, err))
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && p.waiting() && !time.Now().Before(p.firstAt.Add(window)):
			dc.br.ClearErr()
			if ferr := p.flush(false, m.flushWindow); ferr != nil {
				return done(errcodes.New(errcodes.ClientInterrupted, ferr))
			}
			continue
		case err != nil && ex.cl.gone() && !ex.complete():
			return done(errcodes.New(errcodes.ClientInterrupted, errClientGone))
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && dc.hasInput():
			dc.br.ClearErr() // data came as the deadline fired: not idle
			lastByte = time.Now()
			continue
		case err != nil:
			code := errcodes.ServerRequestInterrupted
			if errors.Is(err, os.ErrDeadlineExceeded) {
				code = errcodes.IdleConnection
			} else if errors.Is(err, h1.ErrBadChunk) {
				code = errcodes.PoorlyFormattedResponse
			}
			ex.closeAfter = true
			if !ex.sent {
				// Nothing reached the client: it gets the error page.
				l.Service = time.Since(ex.sendStart)
				return false, errcodes.New(code, err)
			}
			return done(errcodes.New(code, err))
		}
		if len(p.b) >= bufBytes || len(p.b) == cap(p.b) || (sse && len(p.b) > 0) {
			if ferr := p.flush(false, m.flushSize); ferr != nil {
				return done(errcodes.New(errcodes.ClientInterrupted, ferr))
			}
		}
	}
}

// complete reports that the client was sent every byte of a response of
// known length: whatever the client does next, it is done (SPEC.md 4.10).
func (ex *exchange) complete() bool {
	return ex.kind == bodyLength && ex.relayed == ex.sc.resp.ContentLength
}
