package router

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/router/h1"
)

// h2conn serves the streams of one HTTP/2 connection. Each stream is
// presented to the core as an HTTP/1.1 exchange on a streamConn, so
// HTTP/2 requests meet the same admission, dyno choice, H codes, buffering
// and router line as HTTP/1 ones; only the transport differs.
type h2conn struct {
	rt         *Router
	li         *listenerInfo
	tlsVersion uint16
	sni        []byte
	remote     net.Addr
	peer       netip.Addr
	active     atomic.Int32 // streams being served
}

// ServeHTTP serves one stream.
func (h *h2conn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Add(-1)
	sc := newStreamConn(w, r, h.remote)
	// A stream takes no connection slot of its own.
	slot := &connSlot{r: h.rt, peer: h.peer}
	slot.freed.Store(true)
	cc := newConn(h.rt, sc, sc, h.li, slot)
	cc.h2shim, cc.tlsVer, cc.sniName = true, h.tlsVersion, h.sni
	cc.serveOne()
	sc.finish()
}

// streamConn is one HTTP/2 stream seen as an HTTP/1.1 connection: reads
// give the request head (serialized) and then its body; writes take the
// core's HTTP/1.1 response and pass it on to the ResponseWriter.
type streamConn struct {
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	remote net.Addr

	// Request side.
	head     []byte // serialized head not read yet
	chunked  bool   // the body has no length: sent chunked
	bodyDone bool
	tmp      []byte

	// mu guards deadline; wake is signalled when it changes.
	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{}

	// Response side.
	out      []byte // response bytes not passed on yet
	headDone bool
	bodyKind int   // bodyLength or bodyChunked, as the core framed it
	left     int64 // body bytes still due on a Content-Length response
	complete bool  // the whole response was passed on
	resp     h1.Response
	rd       *h1.Reader
	br       bytes.Reader
	failed   error
}

func newStreamConn(w http.ResponseWriter, r *http.Request, remote net.Addr) *streamConn {
	sc := &streamConn{w: w, r: r, rc: http.NewResponseController(w), remote: remote, wake: make(chan struct{}, 1)}
	if ra, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		sc.remote = ra
	}
	sc.head = sc.serializeHead()
	return sc
}

// serializeHead writes the stream's request as an HTTP/1.1 head. Fields
// are passed as received (duplicates included: the core's rules judge
// them); Expect is left out because the HTTP/2 server answers it.
func (sc *streamConn) serializeHead() []byte {
	r := sc.r
	b := make([]byte, 0, 512)
	b = append(b, r.Method...)
	b = append(b, ' ')
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	hasCL := false
	for k, vs := range r.Header {
		switch k {
		case "Expect", "Host":
			continue
		case "Content-Length":
			hasCL = true
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	switch {
	case hasCL:
	case r.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		sc.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		sc.bodyDone = true
	}
	return append(b, "\r\n"...)
}

// Read gives the head, then the body, then blocks until the stream ends
// or the read deadline passes (the core's client watch relies on that).
func (sc *streamConn) Read(p []byte) (int, error) {
	if len(sc.head) > 0 {
		n := copy(p, sc.head)
		sc.head = sc.head[n:]
		return n, nil
	}
	if !sc.bodyDone {
		return sc.readBody(p)
	}
	return 0, sc.waitEnd()
}

func (sc *streamConn) readBody(p []byte) (int, error) {
	if !sc.chunked {
		n, err := sc.r.Body.Read(p)
		if err == io.EOF {
			sc.bodyDone = true
			err = nil
		}
		return n, sc.bodyErr(err)
	}
	const overhead = 32
	if len(p) <= overhead {
		return 0, io.ErrShortBuffer
	}
	if cap(sc.tmp) < len(p) {
		sc.tmp = make([]byte, len(p))
	}
	n, err := sc.r.Body.Read(sc.tmp[:len(p)-overhead])
	b := p[:0]
	if n > 0 {
		b = h1.AppendChunkHeader(b, n)
		b = append(b, sc.tmp[:n]...)
		b = append(b, '\r', '\n')
	}
	if err == io.EOF {
		sc.bodyDone = true
		b = append(b, h1.LastChunk...)
		err = nil
	}
	return len(b), sc.bodyErr(err)
}

// bodyErr reports a body read that failed at the read deadline as the
// deadline error the core expects (H28); others pass as they are (H27).
func (sc *streamConn) bodyErr(err error) error {
	if err == nil {
		return nil
	}
	sc.mu.Lock()
	d := sc.deadline
	sc.mu.Unlock()
	if !d.IsZero() && !time.Now().Before(d) {
		return os.ErrDeadlineExceeded
	}
	return err
}

// waitEnd blocks until the stream is gone or the read deadline passes.
func (sc *streamConn) waitEnd() error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		sc.mu.Lock()
		d := sc.deadline
		sc.mu.Unlock()
		var timer <-chan time.Time
		if !d.IsZero() {
			wait := time.Until(d)
			if wait <= 0 {
				return os.ErrDeadlineExceeded
			}
			t.Reset(wait)
			timer = t.C
		}
		select {
		case <-sc.r.Context().Done():
			return net.ErrClosed
		case <-timer:
			return os.ErrDeadlineExceeded
		case <-sc.wake:
		}
	}
}

// Write takes the core's HTTP/1.1 response bytes.
func (sc *streamConn) Write(p []byte) (int, error) {
	if sc.failed != nil {
		return 0, sc.failed
	}
	sc.out = append(sc.out, p...)
	if err := sc.pass(); err != nil {
		sc.failed = err
		return 0, err
	}
	return len(p), nil
}

// pass moves what can be passed on from out to the ResponseWriter.
func (sc *streamConn) pass() error {
	for !sc.headDone {
		i := bytes.Index(sc.out, []byte("\r\n\r\n"))
		if i < 0 {
			return nil
		}
		if err := sc.passHead(i + 4); err != nil {
			return err
		}
	}
	var body []byte
	switch sc.bodyKind {
	case bodyChunked:
		body = sc.dechunk()
	default:
		body, sc.out = sc.out, sc.out[:0]
		sc.left -= int64(len(body))
		sc.complete = sc.left <= 0
	}
	if len(body) == 0 {
		return nil
	}
	if _, err := sc.w.Write(body); err != nil {
		return err
	}
	return sc.rc.Flush()
}

var h2Limits = h1.Limits{StartLine: 1 << 20, Method: 1 << 10, FieldName: 1 << 20, Field: 1 << 24, Cookie: 1 << 24, HeadersSize: 1 << 26, FieldCount: 1 << 20}

// passHead parses the head at the start of out (n bytes) and writes it.
func (sc *streamConn) passHead(n int) error {
	sc.br.Reset(sc.out[:n])
	if sc.rd == nil {
		sc.rd = h1.NewReader(&sc.br, n)
	} else {
		sc.rd.Reset(&sc.br)
	}
	if err := sc.rd.ReadResponse(&sc.resp, &h2Limits); err != nil {
		return err
	}
	sc.out = sc.out[n:]
	st := sc.resp.Status
	if st == 100 {
		return nil // the HTTP/2 server answers Expect itself
	}
	hdr := sc.w.Header()
	clear(hdr)
	for i := range sc.resp.Fields {
		f := &sc.resp.Fields[i]
		if f.Hop {
			continue
		}
		hdr.Add(string(f.Name), string(f.Value))
	}
	if sc.resp.ContentLength >= 0 && st >= 200 {
		hdr.Set("Content-Length", strconv.FormatInt(sc.resp.ContentLength, 10))
	}
	sc.w.WriteHeader(st)
	if st < 200 {
		clear(hdr)
		return nil
	}
	sc.headDone = true
	switch {
	case !sc.resp.BodyAllowed(sc.r.Method == http.MethodHead):
		sc.complete = true
	case sc.resp.Chunked:
		sc.bodyKind = bodyChunked
	default:
		sc.bodyKind = bodyLength
		sc.left = max(sc.resp.ContentLength, 0)
		sc.complete = sc.left == 0
	}
	return nil
}

// dechunk takes the whole chunks at the start of out and returns their data.
func (sc *streamConn) dechunk() []byte {
	var data []byte
	for {
		i := bytes.Index(sc.out, []byte("\r\n"))
		if i < 0 {
			return data
		}
		size, err := strconv.ParseInt(string(sc.out[:i]), 16, 64)
		if err != nil || int64(len(sc.out)) < int64(i)+2+size+2 {
			return data
		}
		start := i + 2
		data = append(data, sc.out[start:start+int(size)]...)
		sc.out = sc.out[start+int(size)+2:]
		if size == 0 {
			sc.out = sc.out[:0]
			sc.complete = true
			return data
		}
	}
}

// finish ends the stream once the core is done: a response cut short (or
// none at all, when the client is gone) resets the stream instead of
// ending it as if it were whole.
func (sc *streamConn) finish() {
	if !sc.complete {
		panic(http.ErrAbortHandler)
	}
}

// Close is called when the core ends the connection; the stream ends when
// the handler returns.
func (sc *streamConn) Close() error { return nil }

func (sc *streamConn) LocalAddr() net.Addr  { return nil }
func (sc *streamConn) RemoteAddr() net.Addr { return sc.remote }

func (sc *streamConn) SetDeadline(t time.Time) error {
	sc.SetReadDeadline(t)
	return sc.SetWriteDeadline(t)
}

func (sc *streamConn) SetReadDeadline(t time.Time) error {
	sc.mu.Lock()
	sc.deadline = t
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default:
	}
	if err := sc.rc.SetReadDeadline(t); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (sc *streamConn) SetWriteDeadline(t time.Time) error {
	if err := sc.rc.SetWriteDeadline(t); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
