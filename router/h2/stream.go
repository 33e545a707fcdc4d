package h2

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/router/h1"
)

// Stream is one request stream (RFC 9113 section 5.1), as its handler
// sees it: the request head, the request body, and the response.
type Stream struct {
	c  *Conn
	id uint32

	// The request head, written by the reader before the handler starts
	// and read-only after.
	req     h1.Request
	headErr error
	hs      headState
	arena   []byte
	spans   []fieldSpan

	rwake, wwake chan struct{} // wake a blocked Read, a blocked Send
	serve        func()        // runs the handler: s.runHandler, bound once per pooled Stream
	gone         atomic.Bool

	// The fields below are guarded by c.mu.

	inMap         bool // open or half-closed: counted in c.streams
	started       bool // the handler was started
	handlerClosed bool // the handler called Close
	remoteEnd     bool // END_STREAM received, or the stream was reset
	localEnd      bool // END_STREAM queued, or the stream was reset
	onGone        func()

	body       recvBuf
	bodyErr    error // after the buffered bytes: io.EOF, ErrBodyLength, ErrStreamReset...
	declLen    int64 // content-length, -1: none
	recvd      int64 // body bytes received
	recvWindow int64 // what the client may still send on the stream
	recvCredit int64 // bytes read and not yet returned in a WINDOW_UPDATE
	rdeadline  time.Time
	rtimer     *time.Timer

	headSent    bool
	sendErr     error // why Send fails from now on
	sendWindow  int64 // the client's window for the stream (may be negative)
	sendWaiting bool
	readWaiting bool          // a Read waits on rwake
	sent        int64         // body bytes queued
	periodSent  int64         // sent when the current rate period began
	waited      time.Duration // time Send waited in the current rate period
	wdeadline   time.Time
	wtimer      *time.Timer
}

var streamPool = sync.Pool{New: func() any {
	return &Stream{rwake: make(chan struct{}, 1), wwake: make(chan struct{}, 1)}
}}

// runHandler is the handler goroutine of s (a method value made once, so
// starting it allocates nothing).
func (s *Stream) runHandler() { s.c.runHandler(s) }

// newStreamLocked maps a new request stream (idle -> open, or half-closed
// (remote) when the HEADERS frame ends it).
func (c *Conn) newStreamLocked(id uint32, endStream bool) *Stream {
	s := streamPool.Get().(*Stream)
	if s.serve == nil {
		s.serve = s.runHandler
	}
	s.c, s.id = c, id
	s.inMap = true
	s.remoteEnd = endStream
	s.declLen = -1
	s.hs.cookie, s.hs.declLen = -1, -1
	s.recvWindow = int64(c.cfg.StreamWindow)
	s.sendWindow = c.peerInitWindow
	if c.streams == nil {
		c.streams = make(map[uint32]*Stream)
	}
	c.streams[id] = s
	c.peakStreams = max(c.peakStreams, len(c.streams))
	c.idleSince = time.Time{}
	return s
}

// Arena and field storage kept by a pooled stream; more is dropped.
const (
	maxKeptArena  = 64 << 10
	maxKeptFields = 256
)

// release returns s to the pool, with its storage, once no goroutine of
// the connection refers to it.
func (s *Stream) release() {
	s.body.reset()
	if s.rtimer != nil {
		s.rtimer.Stop()
	}
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	arena, spans, fields, chunks := s.arena[:0], s.spans[:0], s.req.Fields[:0], s.body.chunks[:0]
	if cap(arena) > maxKeptArena {
		arena = nil
	}
	if cap(spans) > maxKeptFields {
		spans, fields = nil, nil
	}
	clear(fields[:cap(fields)])
	*s = Stream{
		arena:  arena,
		spans:  spans,
		req:    h1.Request{Fields: fields},
		body:   recvBuf{chunks: chunks},
		rwake:  s.rwake,
		wwake:  s.wwake,
		serve:  s.serve,
		rtimer: s.rtimer,
		wtimer: s.wtimer,
	}
	streamPool.Put(s)
}

// ID returns the stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Request returns the decoded request head, valid until Close. Method is
// :method, Target :path, Host :authority (else a host field); Fields are
// the regular fields in order, as received (lower case), Known-classified,
// with the cookie fields joined into one (RFC 9113 section 8.2.3) and
// content-length, te and expect marked Hop. ContentLength is -1 when
// unknown; Chunked reports a body of unknown length (no content-length,
// and the HEADERS frame did not end the stream). Minor is 1. The bytes are
// the stream's own: the caller may change them.
func (s *Stream) Request() *h1.Request { return &s.req }

// HeadErr returns nil, or why the head is refused, as router/h1's errors:
// h1.ErrLineTooLong, ErrMethodTooLong, ErrHeaderTooLong, ErrCookieTooLong
// (a limit: answer 400, or 414 for the line, with H25),
// h1.ErrUnsupportedExpect (417), or h1.ErrMalformed (RFC 9113 sections
// 8.2 and 8.3: Reset(http2.ErrCodeProtocol) and H26). Request still
// returns what was decoded before the refusal.
func (s *Stream) HeadErr() error { return s.headErr }

// Read reads request body bytes (DATA payloads, padding excluded). Bytes
// read are returned to the client's windows, so a handler that does not
// read applies back-pressure. It returns io.EOF after the end of the
// stream, ErrBodyLength (the stream is already reset with
// PROTOCOL_ERROR), ErrStreamReset, ErrConnClosed, or
// os.ErrDeadlineExceeded when the read deadline passes (the stream stays
// usable).
func (s *Stream) Read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.body.n > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n := s.body.read(p)
			if !s.handlerClosed {
				c.creditLocked(s, int64(n))
				c.kickWriterLocked()
			}
			return n, nil
		}
		switch {
		case s.bodyErr != nil:
			return 0, s.bodyErr
		case c.dead:
			return 0, ErrConnClosed
		case !s.rdeadline.IsZero() && !time.Now().Before(s.rdeadline):
			return 0, os.ErrDeadlineExceeded
		}
		s.readWaiting = true
		s.waitLocked(s.rwake, s.rdeadline, &s.rtimer)
		s.readWaiting = false
	}
}

// SetReadDeadline sets the deadline of Read; zero means none. A blocked
// Read sees the new deadline at once.
func (s *Stream) SetReadDeadline(t time.Time) {
	s.c.mu.Lock()
	s.rdeadline = t
	s.wakeReadLocked()
	s.c.mu.Unlock()
}

// SetWriteDeadline sets the deadline of Send and Interim; zero means none.
func (s *Stream) SetWriteDeadline(t time.Time) {
	s.c.mu.Lock()
	s.wdeadline = t
	s.wakeSendLocked()
	s.c.mu.Unlock()
}

// wakeReadLocked wakes a Read that waits; wakeSendLocked a Send. A
// goroutine sets its flag under c.mu before it waits and checks its
// condition first, so a change made under c.mu is never missed, and a
// stream nobody waits on costs no channel operation.
func (s *Stream) wakeReadLocked() {
	if s.readWaiting {
		signal(s.rwake)
	}
}

func (s *Stream) wakeSendLocked() {
	if s.sendWaiting {
		signal(s.wwake)
	}
}

// waitLocked releases c.mu until ch is signalled, the connection dies, or
// until passes (it reports that). t is the stream's timer for this wait.
func (s *Stream) waitLocked(ch chan struct{}, until time.Time, t **time.Timer) bool {
	c := s.c
	c.mu.Unlock()
	defer c.mu.Lock()
	if until.IsZero() {
		select {
		case <-ch:
		case <-c.done:
		}
		return false
	}
	d := time.Until(until)
	if d <= 0 {
		return true
	}
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-ch:
	case <-c.done:
	case <-(*t).C:
		return true
	}
	(*t).Stop()
	return false
}

// Head is a response head for Send.
type Head struct {
	// Status is the response status, 200-999 (1xx go through Interim).
	Status int
	// Fields are sent in order, names lower-cased. Fields marked Hop,
	// content-length, pseudo-headers and the connection-specific fields
	// of RFC 9113 section 8.2.2 (connection, keep-alive,
	// proxy-connection, transfer-encoding, upgrade) are not sent.
	Fields []h1.Field
	// ContentLength is sent as content-length when >= 0; -1: none.
	ContentLength int64
}

// Interim sends a 1xx response (a HEADERS frame without END_STREAM), such
// as 100 Continue or 103 Early Hints, before the final head.
func (s *Stream) Interim(status int, fields []h1.Field) error {
	if status < 100 || status > 199 || status == 101 {
		return errBadStatus
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.sendableLocked(); err != nil {
		return err
	}
	if s.headSent {
		return errHeadSent
	}
	c.appendHeadLocked(s.id, status, fields, -1, false)
	c.kickWriterLocked()
	return nil
}

// Send sends the response: head on the first call (nil after), then body
// bytes; end sets END_STREAM on the last frame. The head, the body of the
// same call and END_STREAM join one write batch, with the frames other
// streams have ready, as far as the client's windows allow. DATA frames
// are at most the client's SETTINGS_MAX_FRAME_SIZE.
//
// Send blocks on flow control (the stream and connection windows,
// SETTINGS_INITIAL_WINDOW_SIZE changes included) and on the writer. It
// returns ErrStreamReset, ErrConnClosed, os.ErrDeadlineExceeded at the
// write deadline, or ErrSlowClient (Config.MinRate).
func (s *Stream) Send(head *Head, body []byte, end bool) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.sendableLocked(); err != nil {
		return err
	}
	ended := false
	if head != nil {
		switch {
		case s.headSent:
			return errHeadSent
		case head.Status < 200 || head.Status > 999:
			return errBadStatus
		}
		ended = end && len(body) == 0
		c.appendHeadLocked(s.id, head.Status, head.Fields, head.ContentLength, ended)
		s.headSent = true
	} else if !s.headSent {
		return errNoHead
	}
	for len(body) > 0 {
		n, err := s.reserveLocked(len(body))
		if err != nil {
			c.kickWriterLocked()
			return err
		}
		last := n == len(body)
		c.appendDataLocked(s.id, body[:n], end && last)
		ended = end && last
		s.sendWindow -= int64(n)
		c.sendWindow -= int64(n)
		s.sent += int64(n)
		body = body[n:]
	}
	if end && !ended {
		c.appendDataLocked(s.id, nil, true)
	}
	if end {
		c.localEndLocked(s)
	}
	c.kickWriterLocked()
	return nil
}

// sendableLocked reports why nothing more can be sent on s.
func (s *Stream) sendableLocked() error {
	switch {
	case s.sendErr != nil:
		return s.sendErr
	case s.c.dead:
		return ErrConnClosed
	case s.localEnd:
		return errStreamDone
	}
	return nil
}

// Writer room: a Send waits for the writer while this much is queued, and
// does not cut a DATA frame smaller than minChunk for the queue's sake.
const (
	maxQueued = 128 << 10
	minChunk  = 4 << 10
)

// reserveLocked returns how many of want body bytes may be queued now,
// waiting for the client's windows or the writer as needed.
func (s *Stream) reserveLocked(want int) (int, error) {
	c := s.c
	for {
		if err := s.sendableLocked(); err != nil {
			return 0, err
		}
		n := min(int64(want), s.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
		if n > 0 {
			room := int64(maxQueued)
			if c.out != nil {
				room -= int64(len(c.out.b))
			}
			if room >= n || room >= minChunk {
				return int(min(n, max(room, 0))), nil
			}
		}
		if err := s.waitSendLocked(); err != nil {
			return 0, err
		}
	}
}

// waitSendLocked waits until a window grows, the writer takes the queue,
// the stream or connection ends, or the write deadline passes. It applies
// Config.MinRate: the stream's waits add up to a rate period, and a
// period of rateWindow in which fewer than MinRate bytes a second went out
// ends the Send with ErrSlowClient. Time spent not waiting does not count,
// so an idle stream is never cut.
func (s *Stream) waitSendLocked() error {
	c := s.c
	minRate := c.cfg.MinRate
	until := s.wdeadline
	start := time.Now()
	if minRate > 0 {
		if r := start.Add(rateWindow - s.waited); until.IsZero() || r.Before(until) {
			until = r
		}
	}
	s.sendWaiting = true
	c.sendWaiters++
	c.kickWriterLocked()
	s.waitLocked(s.wwake, until, &s.wtimer)
	s.sendWaiting = false
	c.sendWaiters--
	now := time.Now()
	if minRate > 0 {
		s.waited += now.Sub(start)
		if s.waited >= rateWindow {
			if float64(s.sent-s.periodSent) < float64(minRate)*rateWindow.Seconds() {
				return ErrSlowClient
			}
			s.periodSent, s.waited = s.sent, 0
		}
	}
	if !s.wdeadline.IsZero() && !now.Before(s.wdeadline) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Reset sends RST_STREAM(code) — a response cut short, a malformed request
// — unless the stream already ended. Later Reads and Sends fail.
func (s *Stream) Reset(code http2.ErrCode) {
	c := s.c
	c.mu.Lock()
	if s.inMap && !c.dead {
		c.resetLocked(s, code, errStreamDone)
		c.kickWriterLocked()
	}
	c.mu.Unlock()
}

// Gone reports that the client reset the stream (or broke it with a
// stream error) or the connection ended.
func (s *Stream) Gone() bool { return s.gone.Load() }

// SetOnGone registers f, called once when the stream becomes gone (see
// Gone), or at once if it is already. f runs with the connection's lock
// held, from the goroutine that noticed (usually the reader): it must not
// block nor call the Stream's methods.
func (s *Stream) SetOnGone(f func()) {
	c := s.c
	c.mu.Lock()
	if !s.gone.Load() {
		s.onGone = f
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	f()
}

// markGoneLocked records that the client is gone for s.
func (s *Stream) markGoneLocked() {
	if s.gone.Swap(true) {
		return
	}
	s.wakeReadLocked()
	s.wakeSendLocked()
	if f := s.onGone; f != nil {
		s.onGone = nil
		f()
	}
}

// Close ends the handler's use of the stream. A response without
// END_STREAM is reset (INTERNAL_ERROR); a complete response to a request
// whose body is still arriving is followed by RST_STREAM(NO_ERROR) so the
// client stops sending it (RFC 9113 section 8.1). Nothing is sent when the
// client reset the stream or the connection ended. Unread body bytes are
// returned to the connection window; the storage goes back to pools when
// the handler returns. The handler must call Close exactly once, before
// it returns.
func (s *Stream) Close() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.handlerClosed {
		return
	}
	s.handlerClosed = true
	s.onGone = nil
	switch {
	case s.inMap && c.dead:
		c.endStreamLocked(s, ErrConnClosed)
	case s.inMap:
		code := http2.ErrCodeNo
		if !s.localEnd {
			code = http2.ErrCodeInternal
		}
		c.resetLocked(s, code, errStreamDone)
		c.kickWriterLocked()
	}
	if n := s.body.reset(); n > 0 {
		c.creditConnLocked(int64(n))
		c.kickWriterLocked()
	}
}

// remoteEndLocked handles END_STREAM from the client: the body must match
// a content-length (RFC 9113 section 8.1.1; SPEC.md section 4: a non-zero
// content-length on a HEADERS frame that ends the stream is malformed).
func (c *Conn) remoteEndLocked(s *Stream) {
	if s.declLen >= 0 && s.recvd != s.declLen {
		c.resetLocked(s, http2.ErrCodeProtocol, ErrBodyLength)
		return
	}
	s.remoteEnd = true
	if s.bodyErr == nil {
		s.bodyErr = io.EOF
	}
	s.wakeReadLocked()
	if s.localEnd {
		c.closeStreamLocked(s)
	}
}

// localEndLocked records that END_STREAM was queued on s.
func (c *Conn) localEndLocked(s *Stream) {
	s.localEnd = true
	if s.remoteEnd {
		c.closeStreamLocked(s)
	}
}

// resetLocked sends RST_STREAM(code) on s and closes it. err is what its
// Reads and Sends return from now on; unless this end's handler reset it
// (errStreamDone), the stream is gone for the handler too: the client
// broke it.
func (c *Conn) resetLocked(s *Stream, code http2.ErrCode, err error) {
	c.queueRSTLocked(s.id, code)
	c.noteResetLocked(s.id)
	c.endStreamLocked(s, err)
	if err != errStreamDone {
		s.markGoneLocked()
	}
}

// clientResetLocked closes s after the client's RST_STREAM.
func (c *Conn) clientResetLocked(s *Stream) {
	c.endStreamLocked(s, ErrStreamReset)
	s.markGoneLocked()
}

// endStreamLocked closes s at once (a reset either way): buffered body
// bytes are dropped and returned to the connection window.
func (c *Conn) endStreamLocked(s *Stream, err error) {
	s.remoteEnd, s.localEnd = true, true
	if s.sendErr == nil {
		s.sendErr = err
	}
	s.bodyErr = err
	if n := s.body.reset(); n > 0 {
		c.creditConnLocked(int64(n))
	}
	s.wakeReadLocked()
	s.wakeSendLocked()
	c.closeStreamLocked(s)
}

// closeStreamLocked removes a closed stream from the connection (RFC 9113
// section 5.1: both ends sent END_STREAM, or a reset). A stream closed
// with both END_STREAMs completed a request, which refunds the abuse
// budgets.
func (c *Conn) closeStreamLocked(s *Stream) {
	if !s.inMap {
		return
	}
	s.inMap = false
	delete(c.streams, s.id)
	if s.sendErr == nil {
		c.resets.refund()
		c.floods.refund()
	}
	c.noteIdleLocked()
}

// removeLocked closes a stream whose handler never started.
func (s *Stream) removeLocked() {
	s.c.endStreamLocked(s, ErrConnClosed)
}
