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
// buffering.window old, or at the end of the body (SPEC.md 4.9); a
// text/event-stream goes out on every read. The head counts as waiting
// bytes, so it too is sent within the window.
type pending struct {
	ex       *exchange
	buf      *[]byte // pooled for the length of the stream only
	b        []byte
	firstAt  time.Time // when the oldest waiting byte arrived
	lastAt   time.Time // when the last byte arrived
	headSent bool
	window   time.Duration
	bytes    int
	sse      bool
}

func newPending(ex *exchange) pending {
	bufBytes := ex.sp.cfg.Buffering.Bytes
	now := time.Now()
	p := pending{ex: ex, buf: getBuf(max(bufBytes, 4096)), firstAt: now, lastAt: now,
		window: ex.sp.cfg.Buffering.Window, bytes: bufBytes,
		sse: ex.sc.resp.HasContentType && h1.HasPrefixFold(ex.sc.resp.ContentType, "text/event-stream")}
	p.b = (*p.buf)[:0]
	return p
}

// waiting reports bytes (or the head) not sent yet.
func (p *pending) waiting() bool { return len(p.b) > 0 || !p.headSent }

// due reports that the oldest waiting byte is a window old.
func (p *pending) due() bool { return p.waiting() && !time.Now().Before(p.firstAt.Add(p.window)) }

// full reports that what waits goes out now.
func (p *pending) full() bool {
	return len(p.b) >= p.bytes || len(p.b) == cap(p.b) || p.sse && len(p.b) > 0
}

// room is where the next read goes.
func (p *pending) room() []byte { return p.b[len(p.b):cap(p.b)] }

// add takes n bytes read into room.
func (p *pending) add(n int) {
	now := time.Now()
	if len(p.b) == 0 && p.headSent {
		p.firstAt = now
	}
	p.b = p.b[:len(p.b)+n]
	p.lastAt = now
}

// setDeadline sets the next dyno read to end when the oldest waiting byte
// is due (exact), or when the dyno was idle too long (H15; a few ms late
// at most).
func (p *pending) setDeadline(dc *dynoConn, idle time.Duration) {
	if flushAt := p.firstAt.Add(p.window); p.waiting() && flushAt.Before(p.lastAt.Add(idle)) {
		dc.rdl.set(dc.c, flushAt)
	} else {
		dc.rdl.extend(dc.c, p.lastAt, idle)
	}
}

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
	sc, m := ex.sc, ex.rt.m
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
	p := newPending(ex)
	defer putBuf(p.buf)
	// The head's fields point into the dyno buffer: keep them in place
	// while the body is read into it.
	dc.br.Pin()
	defer dc.br.Unpin()
	if p.sse {
		// An event stream's head goes out as it came, like every read.
		if err := p.flush(false, m.flushSize); err != nil {
			return false, ex.streamEnd(errcodes.ClientInterrupted, err)
		}
	}
	// A client that goes away while the dyno is slow to send the rest is
	// noticed at once, not at the next write (H27).
	ex.cl.watch(dc)
	defer ex.cl.unwatch()
	for {
		p.setDeadline(dc, ex.app.to.Idle)
		if ex.cl.gone() && !ex.complete() {
			return false, ex.streamEnd(errcodes.ClientInterrupted, errClientGone)
		}
		n, err := src.Read(p.room())
		if n > 0 {
			p.add(n)
		}
		switch {
		case err == io.EOF:
			if ferr := p.flush(true, m.flushEnd); ferr != nil {
				return false, ex.streamEnd(errcodes.ClientInterrupted, ferr)
			}
			ex.line.Service, ex.line.Bytes = time.Since(ex.sendStart), ex.relayed
			return ex.kind != bodyEOF, nil
		case err == nil:
		case ex.rt.forced.Load():
			return false, ex.streamEnd(errcodes.ForcedClose, err)
		case errors.Is(err, os.ErrDeadlineExceeded) && p.due():
			dc.br.ClearErr()
			if ferr := p.flush(false, m.flushWindow); ferr != nil {
				return false, ex.streamEnd(errcodes.ClientInterrupted, ferr)
			}
			continue
		case ex.cl.gone() && !ex.complete():
			return false, ex.streamEnd(errcodes.ClientInterrupted, errClientGone)
		case errors.Is(err, os.ErrDeadlineExceeded) && dc.hasInput():
			dc.br.ClearErr() // data came as the deadline fired: not idle
			p.lastAt = time.Now()
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false, ex.streamEnd(errcodes.IdleConnection, err)
		case errors.Is(err, h1.ErrBadChunk):
			return false, ex.streamEnd(errcodes.PoorlyFormattedResponse, err)
		default:
			return false, ex.streamEnd(errcodes.ServerRequestInterrupted, err)
		}
		if p.full() {
			if ferr := p.flush(false, m.flushSize); ferr != nil {
				return false, ex.streamEnd(errcodes.ClientInterrupted, ferr)
			}
		}
	}
}

// streamEnd is the outcome of a relay cut short: the line's service time
// and the body bytes relayed (when any reached the client; otherwise the
// router answers in their place).
func (ex *exchange) streamEnd(code errcodes.Code, err error) error {
	ex.line.Service = time.Since(ex.sendStart)
	if ex.sent {
		ex.line.Bytes = ex.relayed
	}
	if code != errcodes.ClientInterrupted {
		ex.closeAfter = true
	}
	return errcodes.New(code, err)
}

// complete reports that the client was sent every byte of a response of
// known length: whatever the client does next, it is done (SPEC.md 4.10).
func (ex *exchange) complete() bool {
	return ex.kind == bodyLength && ex.relayed == ex.sc.resp.ContentLength
}
