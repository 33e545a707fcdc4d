package router

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router/h1"
)

// handle answers one parsed request: route, admit, proxy (SPEC.md 4.3–4.5).
// It returns whether the connection may serve another request.
func (cc *clientConn) handle(sp *space, start time.Time) bool {
	req := &cc.req
	l := &cc.line
	l.Method, l.Path = req.Method, req.Target
	cc.closeAfter = req.Close
	if req.HasHost {
		cc.host = normalizeHost(cc.host[:0], req.Host)
	}
	cc.buildXFF()
	if h := cc.rt.hookHandle; h != nil {
		h()
	}
	if string(req.Method) == "CONNECT" {
		return cc.refuse(405, errcodes.None, nil, start)
	}
	if !req.HasHost {
		if len(cc.sni) == 0 {
			// HTTP/1.0 without Host on plain HTTP: nothing to route by.
			return cc.refuse(400, errcodes.BadHeader, nil, start)
		}
		cc.host = append(cc.host[:0], cc.sni...)
	}
	a := sp.lookup(cc.host)
	if cc.tlsVersion != 0 && (a == nil || sp.lookup(cc.sni) != a) {
		// On TLS the Host must be a domain of the SNI name's app
		// (SPEC.md 4.3 and the H31 row of section 6).
		return cc.refuse(421, errcodes.MisdirectedRequest, nil, start)
	}
	if a == nil {
		return cc.refuse(404, errcodes.None, nil, start)
	}
	cc.am = a.m
	cc.buildRequestID(req)
	if a.cfg.Maintenance {
		return cc.refuse(503, errcodes.MaintenanceMode, a.pages.maintenancePage(), start)
	}
	if len(a.up) == 0 {
		return cc.refuse(503, errcodes.AppCrashed, a.pages.errorPage(), start)
	}
	return cc.admit(sp, a, start)
}

// admit counts the request in flight for its app while it is proxied, or
// refuses it when the app has too many (SPEC.md 4.4). It is apart from
// handle so its defers stay cheap (open-coded).
func (cc *clientConn) admit(sp *space, a *app, start time.Time) bool {
	n := a.inflight.Add(1)
	defer a.inflight.Add(-1)
	a.m.inFlight.Inc()
	defer a.m.inFlight.Dec()
	if n > a.limit {
		return cc.refuse(503, errcodes.BacklogTooDeep, a.pages.errorPage(), start)
	}
	return cc.proxy(sp, a, start)
}

// refuse answers a request the router does not forward. The connection is
// kept only when no unread body follows.
func (cc *clientConn) refuse(status int, code errcodes.Code, pg *page, start time.Time) bool {
	if cc.req.HasBody() || code == errcodes.BadHeader {
		cc.closeAfter = true
	}
	cc.line.Code = code
	cc.line.Status = status
	cc.writeSimple(status, pg, cc.closeAfter)
	cc.finishLine(start)
	return !cc.closeAfter
}

// writeSimple writes a complete router-made response: pg as the body, or
// a one-line text body when pg is nil. HEAD gets the head only.
func (cc *clientConn) writeSimple(status int, pg *page, closeConn bool) {
	minor := cc.req.Minor
	if len(cc.req.Method) == 0 {
		minor = 1
		if cc.protoKnown && cc.line.Protocol == logging.HTTP10 {
			minor = 0
		}
	}
	cc.linger = cc.linger || closeConn
	ctype, body := "text/plain; charset=utf-8", []byte(nil)
	if pg != nil {
		ctype, body = pg.contentType, pg.body
	}
	b := h1.AppendStatusLine(cc.out[:0], minor, status, nil)
	b = append(b, "Content-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	if pg == nil {
		b = strconv.AppendInt(b, int64(len(h1.StatusText(status))+1), 10)
	} else {
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n"...)
	b = appendConnection(b, minor, closeConn)
	b = append(b, "\r\n"...)
	n := 0
	if string(cc.req.Method) != "HEAD" {
		if pg == nil {
			b = append(b, h1.StatusText(status)...)
			b = append(b, '\n')
			n = len(h1.StatusText(status)) + 1
		} else {
			b = append(b, body...)
			n = len(body)
		}
	}
	cc.out = b
	cc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := cc.c.Write(b); err == nil {
		cc.line.Bytes = int64(n)
	}
	cc.c.SetWriteDeadline(time.Time{})
	cc.respStarted = true
}

// writeTimeout bounds one write of a router-made response.
const writeTimeout = 10 * time.Second

// appendConnection appends the Connection field the client needs: close
// for an HTTP/1.1 connection that ends, keep-alive for an HTTP/1.0 one that
// stays.
func appendConnection(b []byte, minor int, closeConn bool) []byte {
	switch {
	case closeConn && minor == 1:
		return append(b, "Connection: close\r\n"...)
	case !closeConn && minor == 0:
		return append(b, "Connection: keep-alive\r\n"...)
	}
	return b
}

// buildXFF sets cc.xff: the client's X-Forwarded-For values, then the
// client IP, joined with ", " (SPEC.md 4.7).
func (cc *clientConn) buildXFF() {
	x := cc.xff[:0]
	for i := range cc.req.Fields {
		f := &cc.req.Fields[i]
		if len(f.Value) > 0 && f.Known == h1.KnownXForwardedFor {
			x = append(x, f.Value...)
			x = append(x, ", "...)
		}
	}
	cc.xff = append(x, cc.ip...)
}

// buildRequestID sets cc.rid: the client's X-Request-Id when it is 20–200
// bytes of A-Z a-z 0-9 + = / -, else a new UUID v4.
func (cc *clientConn) buildRequestID(req *h1.Request) {
	for i := range req.Fields {
		f := &req.Fields[i]
		if f.Known == h1.KnownXRequestID {
			if validRequestID(f.Value) {
				cc.rid = append(cc.rid[:0], f.Value...)
				return
			}
			break
		}
	}
	cc.rid = appendUUID(cc.rid[:0], cc.rng.Uint64(), cc.rng.Uint64())
}

func validRequestID(v []byte) bool {
	if len(v) < 20 || len(v) > 200 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '+', c == '=', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}

// appendUUID appends a lower-case UUID v4 (RFC 9562) made of the random
// bits of a and b: a's bytes (least significant first) are the first
// eight of the UUID, b's the last eight.
func appendUUID(dst []byte, a, b uint64) []byte {
	a = a&^(0xf0<<48) | 0x40<<48 // byte 6: version 4
	b = b&^0xc0 | 0x80           // byte 8: variant 10
	var s [36]byte
	le := binary.LittleEndian
	le.PutUint64(s[0:], hex4(uint32(a)))
	h := hex4(uint32(a >> 32))
	le.PutUint32(s[9:], uint32(h))
	le.PutUint32(s[14:], uint32(h>>32))
	h = hex4(uint32(b))
	le.PutUint32(s[19:], uint32(h))
	le.PutUint32(s[24:], uint32(h>>32))
	le.PutUint64(s[28:], hex4(uint32(b>>32)))
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return append(dst, s[:]...)
}

// hex4 returns the lower-case hex text of the four bytes of x, least
// significant byte first, as eight bytes in little-endian order. It works
// on all nibbles at once: no loop, no table.
func hex4(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff // one input byte per 16-bit lane
	// Each lane's high nibble goes to its low byte, low nibble to its high
	// byte: every byte now holds one nibble, in text order.
	v = v>>4&0x000f000f000f000f | (v&0x000f000f000f000f)<<8
	// A nibble n becomes '0'+n, and 'a'-'0'-10 more when n > 9 (n+6 then
	// carries into bit 4). No byte carries into the next.
	return v + 0x3030303030303030 + (v+0x0606060606060606)>>4&0x0101010101010101*0x27
}
