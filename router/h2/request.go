package h2

import (
	"strings"

	"github.com/spacerouter/spacerouter/router/h1"
)

// span is a slice of a stream's arena, kept as offsets while the arena
// grows.
type span struct{ off, n uint32 }

// fieldSpan is one regular field being decoded.
type fieldSpan struct {
	name, value span
	known       h1.Known
	hop         bool
	dropped     bool // a cookie crumb joined into the first one
}

// headState decodes one request head: it checks every field as the HPACK
// decoder emits it (RFC 9113 sections 8.2 and 8.3, SPEC.md section 2
// limits) and copies what it keeps into the stream's arena.
type headState struct {
	limits *h1.Limits
	err    error // the first refusal: a limit, or h1.ErrMalformed

	regular                      bool // a regular field was seen (section 8.3)
	method, path, authority      span
	hasMethod, hasPath, hasAuth  bool
	hasScheme                    bool
	host                         span
	nHost, nCL, nFields, size    int
	cookie                       int // index in fields of the first cookie, -1: none
	cookieLine                   int // "cookie: " + the joined value
	expect100, unsupportedExpect bool
	declLen                      int64
}

// storing reports whether fields are still wanted: past a limit nothing is
// stored (a malformed head is kept for the router's log line).
func (h *headState) storing() bool {
	return h.err == nil || h.err == h1.ErrMalformed
}

// refuse records why the head is refused; the first reason wins.
func (h *headState) refuse(err error) {
	if h.err == nil {
		h.err = err
	}
}

// add checks and keeps one field. It reports false once a limit is broken.
func (h *headState) add(s *Stream, name, value string) bool {
	if len(name) == 0 {
		h.refuse(h1.ErrMalformed)
		return true
	}
	if name[0] == ':' {
		return h.addPseudo(s, name, value)
	}
	h.regular = true
	k := knownOf(name)
	if err := h.checkLimits(name, value, k); err != nil {
		h.refuse(err)
		return false
	}
	if !validName(name) || !validValue(value) {
		h.refuse(h1.ErrMalformed) // section 8.2.1
	}
	f := fieldSpan{known: k}
	switch k {
	case h1.KnownConnection, h1.KnownKeepAlive, h1.KnownProxyConnection,
		h1.KnownTransferEncoding, h1.KnownUpgrade:
		h.refuse(h1.ErrMalformed) // section 8.2.2
	case h1.KnownTE:
		if !equalFold(value, "trailers") {
			h.refuse(h1.ErrMalformed) // section 8.2.2
		}
		f.hop = true
	case h1.KnownTrailer:
		f.hop = true // hop-by-hop (SPEC.md 4.7): the router sends no trailers
	case h1.KnownOther:
		f.hop = strings.IndexByte(name, '_') >= 0 && h1.UnderscoreAlias([]byte(name)) // as on HTTP/1 (router/h1)
	case h1.KnownContentLength:
		// SPEC.md section 4.2: one valid Content-Length, duplicates
		// refused even when equal.
		h.nCL++
		n, ok := parseLength(value)
		if !ok || h.nCL > 1 {
			h.refuse(h1.ErrMalformed)
		}
		h.declLen = n
		f.hop = true
	case h1.KnownHost:
		h.nHost++
		if h.nHost > 1 || !validHost(value) {
			h.refuse(h1.ErrMalformed)
		}
	case h1.KnownExpect:
		if equalFold(value, "100-continue") {
			h.expect100 = true
		} else {
			h.unsupportedExpect = true
		}
		f.hop = true
	case h1.KnownCookie:
		if h.cookie >= 0 {
			// Section 8.2.3: crumbs are joined with "; " into the
			// first cookie field when the head is complete.
			f.dropped = true
		} else {
			h.cookie = len(s.spans)
		}
	}
	f.name = s.keep(name)
	f.value = s.keep(value)
	if k == h1.KnownHost {
		h.host = f.value
	}
	s.spans = append(s.spans, f)
	return true
}

// checkLimits applies the field limits to a regular field: the count, the
// name, the field (name + ": " + value), the joined cookie and the total
// (name + value + 4 a field, as HTTP/1 lines with their CRLF). A field
// over its own limit and the total gets the error of the limit an HTTP/1
// reader would pass first (as router/h1 does).
func (h *headState) checkLimits(name, value string, k h1.Known) error {
	l := h.limits
	crumb := k == h1.KnownCookie && h.cookie >= 0
	if !crumb {
		h.nFields++
		if h.nFields > l.FieldCount {
			return h1.ErrHeaderTooLong
		}
	}
	if len(name) > l.FieldName {
		return h1.ErrHeaderTooLong
	}
	line := len(name) + 2 + len(value)
	add := line + 2
	var err error
	switch {
	case k == h1.KnownCookie:
		if crumb {
			line = h.cookieLine + 2 + len(value)
			add = 2 + len(value)
		}
		h.cookieLine = line
		if line > l.Cookie {
			err = h1.ErrCookieTooLong
		}
	case line > l.Field:
		err = h1.ErrHeaderTooLong
	}
	prev := h.size
	h.size += add
	if h.size <= l.HeadersSize {
		return err
	}
	if err == h1.ErrCookieTooLong && l.Cookie <= l.HeadersSize-prev {
		return err
	}
	return h1.ErrHeaderTooLong
}

// addPseudo checks and keeps a request pseudo-header (RFC 9113 section
// 8.3.1).
// maxLoggedPath bounds what is kept of a refused over-long :path for the
// router line.
const maxLoggedPath = 1024

func (h *headState) addPseudo(s *Stream, name, value string) bool {
	if h.regular {
		h.refuse(h1.ErrMalformed) // section 8.3: pseudo-headers come first
		return true
	}
	l := h.limits
	switch name {
	case ":method":
		if h.hasMethod {
			h.refuse(h1.ErrMalformed)
			return true
		}
		h.hasMethod = true
		if len(value) > l.Method {
			h.refuse(h1.ErrMethodTooLong)
			return false
		}
		if !isToken(value) {
			h.refuse(h1.ErrMalformed)
		}
		h.method = s.keep(value)
	case ":path":
		if h.hasPath {
			h.refuse(h1.ErrMalformed)
			return true
		}
		h.hasPath = true
		if len(value) > l.StartLine {
			// The line of the refusal shows the start of the target, as
			// on HTTP/1.
			h.path = s.keep(value[:min(len(value), maxLoggedPath)])
			h.refuse(h1.ErrLineTooLong)
			return false
		}
		if !validTarget(value) {
			h.refuse(h1.ErrMalformed)
		}
		h.path = s.keep(value)
	case ":scheme":
		if h.hasScheme || !validScheme(value) {
			h.refuse(h1.ErrMalformed)
		}
		h.hasScheme = true
	case ":authority":
		if h.hasAuth || !validHost(value) {
			h.refuse(h1.ErrMalformed)
		}
		h.hasAuth = true
		h.authority = s.keep(value)
	default:
		// :status, :protocol (no extended CONNECT is advertised) and
		// unknown pseudo-headers (section 8.3).
		h.refuse(h1.ErrMalformed)
		return true
	}
	if h.hasMethod && h.hasPath && int(h.method.n)+1+int(h.path.n) > l.StartLine {
		h.refuse(h1.ErrLineTooLong)
		return false
	}
	return true
}

// finishHead checks what only the whole head shows and builds the
// request. blockLen is the header block's length on the wire.
func (s *Stream) finishHead(blockLen int) {
	h := &s.hs
	method := s.bytes(h.method)
	switch {
	case !h.storing():
	case !h.hasMethod:
		h.refuse(h1.ErrMalformed)
	case string(method) == "CONNECT":
		// Section 8.5: :authority only. The router answers 405.
		if !h.hasAuth || h.hasScheme || h.hasPath {
			h.refuse(h1.ErrMalformed)
		}
	case !h.hasScheme || !h.hasPath:
		h.refuse(h1.ErrMalformed)
	case string(s.bytes(h.path)) == "*" && string(method) != "OPTIONS":
		h.refuse(h1.ErrMalformed) // section 8.3.1
	}
	if h.hasAuth && h.nHost > 0 && !equalFoldBytes(s.bytes(h.authority), s.bytes(h.host)) {
		h.refuse(h1.ErrMalformed) // section 8.3.1: Host differs from :authority
	}
	if h.unsupportedExpect {
		h.refuse(h1.ErrUnsupportedExpect)
	}
	s.joinCookies()
	r := &s.req
	fields := r.Fields[:0]
	for i := range s.spans {
		f := &s.spans[i]
		if !f.dropped {
			fields = append(fields, h1.Field{Name: s.bytes(f.name), Value: s.bytes(f.value), Known: f.known, Hop: f.hop})
		}
	}
	*r = h1.Request{
		Method:        method,
		Target:        s.bytes(h.path),
		Minor:         1,
		Fields:        fields,
		ContentLength: -1,
		HeadLen:       blockLen,
	}
	switch {
	case h.hasAuth:
		r.Host, r.HasHost = s.bytes(h.authority), true
	case h.nHost > 0:
		r.Host, r.HasHost = s.bytes(h.host), true
	}
	if h.nCL == 1 && h.err != h1.ErrMalformed {
		r.ContentLength = h.declLen
		s.declLen = h.declLen
	}
	r.Chunked = r.ContentLength < 0 && !s.remoteEnd
	r.Expect100 = h.expect100
	s.headErr = h.err
}

// joinCookies joins the cookie crumbs into the first cookie field, with
// "; " (RFC 9113 section 8.2.3), at the end of the arena.
func (s *Stream) joinCookies() {
	h := &s.hs
	if h.cookie < 0 {
		return
	}
	first := &s.spans[h.cookie]
	n := 0
	for i := h.cookie + 1; i < len(s.spans); i++ {
		if s.spans[i].known == h1.KnownCookie {
			n++
		}
	}
	if n == 0 {
		return
	}
	off := len(s.arena)
	s.arena = append(s.arena, s.bytes(first.value)...)
	for i := h.cookie + 1; i < len(s.spans); i++ {
		if f := &s.spans[i]; f.known == h1.KnownCookie {
			s.arena = append(s.arena, "; "...)
			s.arena = append(s.arena, s.bytes(f.value)...)
		}
	}
	first.value = span{uint32(off), uint32(len(s.arena) - off)}
}

// keep copies v into the arena. The request's bytes are the stream's own,
// so the router may change them in place, and nothing of them aliases the
// HPACK decoder's table.
func (s *Stream) keep(v string) span {
	off := len(s.arena)
	s.arena = append(s.arena, v...)
	return span{uint32(off), uint32(len(v))}
}

// bytes returns the arena bytes of sp (nil when empty).
func (s *Stream) bytes(sp span) []byte {
	if sp.n == 0 {
		return nil
	}
	return s.arena[sp.off : sp.off+sp.n : sp.off+sp.n]
}

// parseLength parses a content-length value: 1*DIGIT, at most 18 digits.
func parseLength(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
