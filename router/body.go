package router

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// rateWindow is the span over which limits.min_transfer_rate is averaged
// (SPEC.md 2). A variable so tests can shrink it.
var rateWindow = 10 * time.Second

// rateCount tracks request body bytes against limits.min_transfer_rate.
type rateCount struct {
	start time.Time // when the current window began (zero: not yet)
	n     int64     // bytes in it
	last  time.Time // when the last byte arrived
}

// readPrefix reads the start of the request body, up to
// buffering.request_bytes, before the request takes a slot and a dyno
// (SPEC.md 4.7), so a slow client never holds a dyno. A body that fits is
// read whole and goes to the dyno right after the head. Under
// http-end-to-end-continue the body streams from the start.
func (ex *exchange) readPrefix() error {
	req := ex.req
	if !req.HasBody() {
		ex.preDone = true
		return nil
	}
	if req.Expect100 && ex.app.e2eContinue {
		return nil
	}
	want := ex.sp.cfg.Buffering.RequestBytes
	if req.ContentLength >= 0 {
		want = int(min(int64(want), req.ContentLength))
	}
	if want == 0 {
		return nil
	}
	if req.Expect100 {
		if err := ex.cl.continue100(ex, false); err != nil {
			return errcodes.New(errcodes.ClientInterrupted, err)
		}
	}
	ex.pre = getBuf(want)
	b := (*ex.pre)[:0]
	defer func() { *ex.pre = b }()
	for len(b) < want {
		n, err := ex.readBody(b[len(b):want])
		b = b[:len(b)+n]
		if err == io.EOF {
			ex.preDone = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	ex.preDone = int64(len(b)) == req.ContentLength
	return nil
}

// releasePrefix returns the prefix buffer.
func (ex *exchange) releasePrefix() {
	if ex.pre != nil {
		putBuf(ex.pre)
		ex.pre = nil
	}
}

// readBody reads request body bytes within the client window and at
// limits.min_transfer_rate or faster on average over each rateWindow while
// bytes are still due (SPEC.md 2): too slow or idle is H28, gone H27, a
// malformed body H26 bad chunk. io.EOF ends the body.
func (ex *exchange) readBody(p []byte) (int, error) {
	idle := ex.app.to.Client
	rate := int64(ex.sp.cfg.Limits.MinTransferRate)
	r := &ex.rate
	for {
		now := time.Now()
		if r.last.IsZero() {
			r.start, r.last = now, now
		}
		deadline := r.last.Add(idle)
		if !now.Before(deadline) {
			return 0, errcodes.New(errcodes.ClientIdle, os.ErrDeadlineExceeded)
		}
		if rate > 0 {
			if now.Sub(r.start) >= rateWindow {
				if r.n < rate*int64(rateWindow/time.Second) {
					return 0, errcodes.New(errcodes.ClientIdle, errSlowClient)
				}
				r.start, r.n = now, 0
			}
			if end := r.start.Add(rateWindow); end.Before(deadline) {
				deadline = end
			}
		}
		n, err := ex.cl.readBody(ex, p, deadline)
		if n > 0 {
			r.n += int64(n)
			r.last = time.Now()
		}
		switch {
		case err == nil, err == io.EOF:
			return n, err
		case n > 0:
			return n, nil // the error comes again at the next read
		case ex.rt.forced.Load():
			return 0, errcodes.New(errcodes.ForcedClose, err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // idle or a window's end: judged at the top
		}
		return 0, ex.bodyError(err)
	}
}

// bodyError classifies a request body read that failed.
func (ex *exchange) bodyError(err error) error {
	switch {
	case errors.Is(err, h1.ErrBadChunk), errors.Is(err, errBodyLength):
		return errcodes.New(errcodes.BadChunk, err)
	case !ex.wrote && errors.Is(err, errStreamReset):
		// An HTTP/2 stream reset before its request reached a dyno: no
		// line, no dyno (SPEC.md 4).
		return errEarlyReset
	}
	return errcodes.New(errcodes.ClientInterrupted, err)
}
