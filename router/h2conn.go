package router

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
	"github.com/spacerouter/spacerouter/router/h2"
)

// h2conn is an HTTP/2 client connection: router/h2's connection state
// machine, with one exchange per request stream, straight from its decoded
// head (no HTTP/1 text in between).
type h2conn struct {
	rt      *Router
	li      *listenerInfo
	hc      *h2.Conn
	tc      *tls.Conn
	cs      *connSlot
	tlsVer  uint16
	sniName []byte
	ipTxt   []byte
	pc      *peerCert // the client certificate; nil: none
	tv      *tlsConn  // what the TLS connection view shows
	peer    netip.Addr

	// mu guards streams, the exchanges in flight (for the shutdown limit).
	mu      sync.Mutex
	streams map[*h2stream]struct{}
}

// newH2conn makes the HTTP/2 connection of tc; serve serves it once it is
// tracked.
func (r *Router) newH2conn(tc *tls.Conn, li *listenerInfo, st *tls.ConnectionState, sni []byte, slot *connSlot) *h2conn {
	sp := r.sp.Load()
	lim := &sp.cfg.Limits
	h := &h2conn{rt: r, li: li, cs: slot, tlsVer: st.Version, sniName: sni, peer: slot.peer, pc: newPeerCert(st),
		ipTxt: peerText(slot.peer, tc.RemoteAddr()), streams: map[*h2stream]struct{}{}}
	log := r.log.Named("h2")
	h.hc = h2.NewConn(tc, &h2.Config{
		MaxStreams:  uint32(lim.H2MaxStreams),
		Limits:      sp.reqLim,
		IdleTimeout: sp.cfg.Timeouts.Keepalive,
		MinRate:     lim.MinTransferRate,
		OnEarlyReset: func() {
			r.m.earlyResets.Inc()
		},
		OnAbuse: func(reason string) {
			r.m.h2Abuse.WithLabelValues(reason).Inc()
			log.Warn("HTTP/2 connection ended with ENHANCE_YOUR_CALM", zap.String(logging.KeyReason, reason),
				zap.String(logging.KeyRemoteAddr, tc.RemoteAddr().String()))
		},
		OnConnError: func(err error) {
			log.Debug("HTTP/2 connection error", zap.String(logging.KeyRemoteAddr, tc.RemoteAddr().String()), zap.Error(err))
		},
	}, h)
	h.tc = tc
	return h
}

// serve serves the connection until it ends.
func (h *h2conn) serve() {
	defer h.cs.free()
	defer h.rt.untrack(h)
	g := h.rt.m.clientConns.WithLabelValues("https", "http2")
	g.Inc()
	defer g.Dec()
	h.hc.Serve()
	h.tc.Close()
}

// The drain's view of the connection (tracked).

// closeIfIdle starts the drain of the connection: GOAWAY with the last
// stream id it serves; it closes once those streams ended (SPEC.md 4).
func (h *h2conn) closeIfIdle()    { h.hc.Shutdown() }
func (h *h2conn) idle() bool      { return h.hc.Active() == 0 }
func (h *h2conn) forceClose()     { h.hc.Close() }
func (h *h2conn) slot() *connSlot { return h.cs }

// interrupt wakes every exchange of the connection at the shutdown limit:
// each ends with H24, answering 503 where no head was sent (SPEC.md 6).
func (h *h2conn) interrupt() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		if dc := s.dyno.Load(); dc != nil {
			dc.c.SetDeadline(aLongTimeAgo)
		}
		s.st.SetReadDeadline(aLongTimeAgo)
	}
}

// h2stream is one request stream with its exchange; pooled, so a stream's
// buffers serve the next.
type h2stream struct {
	h    *h2conn
	st   *h2.Stream
	sc   scratch
	ex   exchange
	dyno atomic.Pointer[dynoConn]
	rdl  time.Time // the read deadline last set
}

var h2streamPool = sync.Pool{New: func() any {
	s := &h2stream{}
	s.sc.rng = newRNG()
	return s
}}

// ServeStream runs the exchange of one request stream.
func (h *h2conn) ServeStream(st *h2.Stream) {
	s := h2streamPool.Get().(*h2stream)
	s.h, s.st, s.rdl = h, st, time.Time{}
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.streams, s)
		h.mu.Unlock()
		st.Close()
		s.h, s.st = nil, nil
		s.dyno.Store(nil)
		if cap(s.sc.out) > maxIdleOut {
			s.sc.out = nil
		}
		h2streamPool.Put(s)
	}()
	rt := h.rt
	h.tv.counted()
	sp := rt.sp.Load()
	s.ex.reset(rt, sp, s, st.Request(), &s.sc, h.peer, time.Now())
	ex := &s.ex
	defer func() {
		if p := recover(); p != nil {
			rt.log.Error("recovered panic in request", zap.Any("panic", p), zap.Stack("stack"))
			ex.finish(errcodes.New(errcodes.PlatformError, nil))
		}
	}()
	if err := st.HeadErr(); err != nil {
		ex.line.Method, ex.line.Path = ex.req.Method, ex.req.Target
		if ex.req.HasHost {
			s.sc.host = normalizeHost(s.sc.host[:0], ex.req.Host)
		}
		ex.finish(headErrorOutcome(err))
		return
	}
	ex.run()
}

// headErrorOutcome classifies a request head the wire code refused.
func headErrorOutcome(err error) error {
	code, status := errcodes.BadHeader, 0
	switch {
	case errors.Is(err, h1.ErrLineTooLong):
		code = errcodes.OversizedRequestLine
	case errors.Is(err, h1.ErrMethodTooLong):
		code, status = errcodes.OversizedRequestLine, 400
	case errors.Is(err, h1.ErrHeaderTooLong):
		code = errcodes.OversizedRequestHeader
	case errors.Is(err, h1.ErrCookieTooLong):
		code = errcodes.OversizedRequestCookies
	case errors.Is(err, h1.ErrUnsupportedExpect):
		code = errcodes.UnsupportedExpect
	}
	return &errcodes.Error{Code: code, Status: status, Err: err}
}

// The client side of the exchange of an HTTP/2 stream.

func (s *h2stream) protocol() logging.Protocol { return logging.HTTP20 }
func (s *h2stream) sni() []byte                { return s.h.sniName }
func (s *h2stream) ip() []byte                 { return s.h.ipTxt }
func (s *h2stream) tlsVersion() uint16         { return s.h.tlsVer }
func (s *h2stream) listener() *listenerInfo    { return s.h.li }
func (s *h2stream) setDyno(dc *dynoConn)       { s.dyno.Store(dc) }
func (s *h2stream) gone() bool                 { return s.st.Gone() }
func (s *h2stream) peerCert() *peerCert        { return s.h.pc }

func (s *h2stream) tunnel(*exchange, *dynoConn) error {
	return errcodes.New(errcodes.PoorlyFormattedResponse, errNoTunnel)
}

func (s *h2stream) readBody(ex *exchange, p []byte, deadline time.Time) (int, error) {
	if !s.rdl.Equal(deadline) {
		s.rdl = deadline
		s.st.SetReadDeadline(deadline)
	}
	n, err := s.st.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, h2.ErrBodyLength):
		err = errBodyLength
	case errors.Is(err, h2.ErrStreamReset), errors.Is(err, h2.ErrConnClosed):
		err = errStreamReset
	}
	return n, err
}

func (s *h2stream) continue100(ex *exchange, fromDyno bool) error {
	var fields []h1.Field
	if fromDyno {
		fields = s.interimFields()
	}
	return s.sendErr(s.st.Interim(100, fields))
}

func (s *h2stream) interim(ex *exchange) error {
	return s.sendErr(s.st.Interim(s.sc.resp.Status, s.interimFields()))
}

// interimFields are the dyno's 1xx fields that pass on.
func (s *h2stream) interimFields() []h1.Field {
	f := s.sc.fields[:0]
	for i := range s.sc.resp.Fields {
		if !s.sc.resp.Fields[i].Hop {
			f = append(f, s.sc.resp.Fields[i])
		}
	}
	s.sc.fields = f
	return f
}

// sendErr maps the stream's send errors to the exchange's.
func (s *h2stream) sendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, h2.ErrSlowClient):
		return errSlowClient
	case errors.Is(err, h2.ErrStreamReset), errors.Is(err, h2.ErrConnClosed):
		return errClientGone
	}
	return err
}

// Constant field names and values of HTTP/2 response heads.
var (
	nameVia         = []byte("via")
	nameContentType = []byte("content-type")
	valueVia20      = []byte(via20)
)

func (s *h2stream) send(ex *exchange, head bool, body []byte, end bool) error {
	s.st.SetWriteDeadline(time.Now().Add(ex.writeTimeout(len(body))))
	if !head {
		return s.sendErr(s.st.Send(nil, body, end))
	}
	resp := &s.sc.resp
	hd := h2.Head{Status: resp.Status, Fields: s.respFields(ex, body), ContentLength: -1}
	if ex.kind == bodyLength || ex.kind == bodyNone && resp.ContentLength >= 0 && resp.Status != 204 && resp.Status != 304 {
		hd.ContentLength = max(resp.ContentLength, 0)
	}
	return s.sendErr(s.st.Send(&hd, body, end))
}

// respFields are the dyno's response fields that pass on (not hop-by-hop),
// with Via appended (SPEC.md 4.8) and a sniffed Content-Type for a body
// that came without one.
func (s *h2stream) respFields(ex *exchange, body []byte) []h1.Field {
	sc := s.sc
	resp := &sc.resp
	f := sc.fields[:0]
	lastVia := -1
	for i := range resp.Fields {
		if resp.Fields[i].Hop {
			continue
		}
		if resp.Fields[i].Known == h1.KnownVia {
			lastVia = len(f)
		}
		f = append(f, resp.Fields[i])
	}
	if lastVia >= 0 {
		v := append(sc.vals[:0], f[lastVia].Value...)
		v = append(v, ", "...)
		v = append(v, via20...)
		sc.vals = v
		f[lastVia].Value = v
	} else {
		f = append(f, h1.Field{Name: nameVia, Value: valueVia20})
	}
	if ex.kind != bodyNone && !resp.HasContentType && len(body) > 0 {
		ct := sniff(body)
		f = append(f, h1.Field{Name: nameContentType, Value: unsafe.Slice(unsafe.StringData(ct), len(ct))})
	}
	s.sc.fields = f
	return f
}

func (s *h2stream) answer(ex *exchange, status int, pg *page) int64 {
	ctype, body := "text/plain; charset=utf-8", []byte(nil)
	if pg != nil {
		ctype, body = pg.contentType, pg.body
	} else {
		text := h1.StatusText(status)
		body = append(append(s.sc.out[:0], text...), '\n')
		s.sc.out = body
	}
	f := append(s.sc.fields[:0], h1.Field{Name: nameContentType, Value: unsafe.Slice(unsafe.StringData(ctype), len(ctype))})
	s.sc.fields = f
	hd := h2.Head{Status: status, Fields: f, ContentLength: int64(len(body))}
	if string(ex.req.Method) == "HEAD" {
		body = nil
	}
	ex.sent = true
	s.st.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.st.Send(&hd, body, true); err != nil {
		return -1
	}
	return int64(len(body))
}

// abort resets the stream: PROTOCOL_ERROR for a malformed request (SPEC.md
// 4), INTERNAL_ERROR for a response cut short.
func (s *h2stream) abort(ex *exchange) {
	code := http2.ErrCodeInternal
	switch ex.line.Code {
	case errcodes.BadHeader, errcodes.BadChunk:
		code = http2.ErrCodeProtocol
	case errcodes.ClientInterrupted:
		code = http2.ErrCodeCancel
	}
	s.st.Reset(code)
}

// watch wakes the dyno read on dc when the client resets the stream or
// the connection ends.
func (s *h2stream) watch(dc *dynoConn) {
	s.st.SetOnGone(func() { dc.c.SetReadDeadline(aLongTimeAgo) })
}

func (s *h2stream) unwatch() { s.st.SetOnGone(func() {}) }
