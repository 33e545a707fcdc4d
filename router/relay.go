package router

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// Body framings of the dyno's response.
const (
	srcNone    = iota // no body
	srcLength         // Content-Length
	srcChunked        // chunked
	srcEOF            // until the dyno closes
)

// relay writes the response head and streams the body to the client with
// the buffering of SPEC.md 4.9. It returns whether the client and the dyno
// connections may be reused.
func (cc *clientConn) relay(sp *space, a *app, dc *dynoConn, start, sendStart time.Time) (keepClient, keepDyno bool) {
	resp := &cc.resp
	req := &cc.req
	l := &cc.line
	l.Status = resp.Status
	if resp.Status == 101 {
		if !req.Upgrade {
			cc.closeAfter = true
			cc.line.Service = time.Since(sendStart)
			return cc.routerError(a, errcodes.PoorlyFormattedResponse, start), false
		}
		cc.tunnel(a, dc, start, sendStart)
		return false, false
	}
	isHead := string(req.Method) == "HEAD"
	kind := srcNone
	switch {
	case !resp.BodyAllowed(isHead):
	case resp.Chunked:
		kind = srcChunked
	case resp.ContentLength > 0:
		kind = srcLength
	case resp.ContentLength < 0:
		kind = srcEOF
	}
	// The client side's framing.
	outChunked := false
	if kind == srcChunked || kind == srcEOF {
		if req.Minor == 1 {
			outChunked = true
		} else {
			cc.closeAfter = true // an HTTP/1.0 body ends at close
		}
	}
	if cc.req.HasBody() && !cc.reqBodyDone() {
		cc.closeAfter = true
	}
	if cc.rt.draining.Load() {
		cc.closeAfter = true
	}
	// Fast path: the whole body is in the buffer already.
	if kind == srcNone || kind == srcLength && int64(dc.br.Buffered()) >= resp.ContentLength {
		var body []byte
		if kind == srcLength {
			body = dc.br.Bytes()[:resp.ContentLength]
		}
		b := cc.appendRespHead(cc.out[:0], body, kind, outChunked)
		b = append(b, body...)
		cc.out = b
		dc.br.Discard(len(body))
		cc.rt.m.flushEnd.Inc()
		_, err := cc.c.Write(b)
		now := time.Now()
		l.Service = now.Sub(sendStart)
		if err != nil {
			cc.clientGone(a, start, sendStart)
			return false, true
		}
		cc.respStarted = true
		l.Bytes = int64(len(body))
		l.Time = now
		cc.finishLine(start)
		return !cc.closeAfter, kind != srcEOF
	}
	return cc.stream(sp, a, dc, kind, outChunked, start, sendStart)
}

// stream relays a body that is not whole in the buffer: bytes go out when
// buffering.bytes wait, when the oldest waiting byte is buffering.window
// old, or at the end (SPEC.md 4.9); text/event-stream on every read.
func (cc *clientConn) stream(sp *space, a *app, dc *dynoConn, kind int, outChunked bool, start, sendStart time.Time) (keepClient, keepDyno bool) {
	l := &cc.line
	var src io.Reader
	switch kind {
	case srcLength:
		cc.dynoLen.Reset(dc.br, cc.resp.ContentLength)
		src = &cc.dynoLen
	case srcChunked:
		cc.dynoChunk.Reset(dc.br)
		src = &cc.dynoChunk
	default:
		src = dc.br
	}
	window, bufBytes := sp.cfg.Buffering.Window, sp.cfg.Buffering.Bytes
	sse := cc.resp.HasContentType && h1.HasPrefixFold(cc.resp.ContentType, "text/event-stream")
	// The waiting bytes live in a pooled buffer for the length of the
	// stream only: an idle connection holds none.
	pb := getBuf(max(bufBytes, 4096))
	defer putBuf(pb)
	pend := (*pb)[:0]
	headSent := false
	var relayed int64
	// firstAt is when the oldest byte still waiting arrived: the head
	// counts, so it too goes out within the window even with no body yet.
	firstAt := time.Now()
	lastByte := firstAt
	// The head's fields point into the dyno buffer: keep them in place
	// while the body is read into it.
	dc.br.Pin()
	defer dc.br.Unpin()
	flush := func(end bool, reason prometheus.Counter) error {
		reason.Inc()
		b := cc.out[:0]
		if !headSent {
			b = cc.appendRespHead(b, pend, kind, outChunked)
		}
		if outChunked && len(pend) > 0 {
			b = h1.AppendChunkHeader(b, len(pend))
			b = append(b, pend...)
			b = append(b, '\r', '\n')
		} else {
			b = append(b, pend...)
		}
		if end && outChunked {
			b = append(b, h1.LastChunk...)
		}
		cc.out = b
		if len(b) == 0 {
			return nil
		}
		cc.c.SetWriteDeadline(time.Now().Add(a.to.Client))
		_, err := cc.c.Write(b)
		if err == nil {
			headSent = true
			cc.respStarted = true
			relayed += int64(len(pend))
			pend = pend[:0]
		}
		return err
	}
	defer cc.c.SetWriteDeadline(time.Time{})
	if sse {
		// An event stream's head goes out as it came, like every read.
		if err := flush(false, cc.rt.m.flushSize); err != nil {
			l.Service = time.Since(sendStart)
			cc.clientGone(a, start, sendStart)
			return false, false
		}
	}
	// A client that goes away while the dyno is slow to send the rest is
	// noticed at once, not at the next write (H27).
	w := cc.watchClient(dc)
	defer w.stop()
	gone := func() (bool, bool) {
		l.Service = time.Since(sendStart)
		l.Bytes = relayed
		cc.clientGone(a, start, sendStart)
		return false, false
	}
	for {
		waiting := len(pend) > 0 || !headSent
		if flushAt := firstAt.Add(window); waiting && flushAt.Before(lastByte.Add(a.to.Idle)) {
			dc.rdl.set(dc.c, flushAt) // the buffering window is exact
		} else {
			dc.rdl.extend(dc.c, lastByte, a.to.Idle) // H15 may fire a few ms late
		}
		if w.gone.Load() {
			return gone()
		}
		n, err := src.Read(pend[len(pend):cap(pend)])
		if n > 0 {
			now := time.Now()
			if len(pend) == 0 && headSent {
				firstAt = now
			}
			pend = pend[:len(pend)+n]
			lastByte = now
		}
		switch {
		case err == io.EOF:
			l.Service = time.Since(sendStart)
			if ferr := flush(true, cc.rt.m.flushEnd); ferr != nil {
				return gone()
			}
			l.Bytes = relayed
			cc.finishLine(start)
			return !cc.closeAfter, kind != srcEOF
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && (len(pend) > 0 || !headSent) && !time.Now().Before(firstAt.Add(window)):
			dc.br.ClearErr()
			if ferr := flush(false, cc.rt.m.flushWindow); ferr != nil {
				return gone()
			}
			continue
		case err != nil && w.gone.Load():
			return gone()
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && dc.hasInput():
			dc.br.ClearErr() // data came as the deadline fired: not idle
			lastByte = time.Now()
			continue
		case err != nil:
			l.Service = time.Since(sendStart)
			l.Bytes = relayed
			cc.closeAfter = true
			code := errcodes.ServerRequestInterrupted
			if errors.Is(err, os.ErrDeadlineExceeded) {
				code = errcodes.IdleConnection
			} else if errors.Is(err, h1.ErrBadChunk) {
				code = errcodes.PoorlyFormattedResponse
			}
			if !headSent {
				// Nothing reached the client: it gets the error page.
				cc.line.Bytes = -1
				return cc.routerError(a, code, start), false
			}
			l.Code = code
			if code == errcodes.IdleConnection {
				l.Status = 503
			}
			cc.finishLine(start)
			return false, false
		}
		if len(pend) >= bufBytes || len(pend) == cap(pend) || (sse && len(pend) > 0) {
			if ferr := flush(false, cc.rt.m.flushSize); ferr != nil {
				return gone()
			}
		}
	}
}

// appendRespHead appends the response head for the client: the dyno's
// fields less hop-by-hop ones, Via appended, the router's framing, and a
// sniffed Content-Type when a body comes without one (SPEC.md 4.8).
func (cc *clientConn) appendRespHead(b []byte, body []byte, kind int, outChunked bool) []byte {
	resp := &cc.resp
	minor := cc.req.Minor
	b = h1.AppendStatusLine(b, minor, resp.Status, resp.Reason)
	b = appendForwardFields(b, resp.Fields, false, cc.via)
	hasBody := kind != srcNone
	if hasBody && !resp.HasContentType && len(body) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(body)...)
		b = append(b, '\r', '\n')
	}
	switch {
	case kind == srcLength || (kind == srcNone && resp.ContentLength >= 0 && resp.Status != 204 && resp.Status >= 200):
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, max(resp.ContentLength, 0), 10)
		b = append(b, '\r', '\n')
	case outChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = appendConnection(b, minor, cc.closeAfter)
	return append(b, '\r', '\n')
}
