package h1

import (
	"bytes"
	"io"
)

// Request is one parsed request head. A Request is reused across the
// requests of a connection; its slices point into the Reader's buffer.
type Request struct {
	Method []byte
	Target []byte
	// Minor is the HTTP/1 minor version: 0 or 1.
	Minor int
	// Fields are the header fields in order of arrival.
	Fields []Field
	// Host is the Host field's value; HasHost says whether one was sent.
	Host    []byte
	HasHost bool
	// ContentLength is the body length, or -1 when the request has no
	// Content-Length (a chunked body, or none).
	ContentLength int64
	// Chunked: the body is chunked (Transfer-Encoding: chunked).
	Chunked bool
	// Expect100: the client sent Expect: 100-continue.
	Expect100 bool
	// Close: the connection ends after this request (HTTP/1.1 with
	// Connection: close, or HTTP/1.0 without Connection: keep-alive).
	Close bool
	// Upgrade: the client asked for a protocol upgrade (Connection: upgrade
	// and an Upgrade field).
	Upgrade bool
	// HeadLen is the head's length on the wire.
	HeadLen int
	// Line is the request line as received (without its line end), set
	// once the whole head was read, even when the line is refused, so the
	// router can log what it refused.
	Line []byte
	// connTokens lists the field names the Connection field names.
	connTokens [][]byte
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// reset clears r for the next request, keeping its slices' storage.
func (r *Request) reset() {
	fields, tokens := r.Fields[:0], r.connTokens[:0]
	*r = Request{Fields: fields, connTokens: tokens, ContentLength: -1}
}

// maxLeadingEmpty bounds the empty lines skipped before a request line
// (RFC 9112 section 2.2 allows ignoring at least one).
const maxLeadingEmpty = 8

// ReadRequest reads and validates one request head from b into r. The head
// is consumed; the body, if any, is left in b. It returns ErrEmpty when the
// connection ends before any byte, and one of the package's errors for a
// head that breaks SPEC.md section 4.2. Any other error is the
// connection's (a timeout, say); Buffered then tells whether bytes of the
// request had arrived.
func (b *Reader) ReadRequest(r *Request, lim *Limits) error {
	r.reset()
	if err := b.skipEmptyLines(); err != nil {
		return err
	}
	head, first, bad, err := b.consumeHead(lim, KnownCookie, &r.Fields)
	if err != nil {
		return err
	}
	r.HeadLen = len(head)
	r.Line = trimCR(head[:first-1])
	if err := parseRequestLine(r, r.Line, lim); err != nil {
		r.Fields = r.Fields[:0]
		return err
	}
	if bad {
		return ErrMalformed
	}
	return r.interpret()
}

// skipEmptyLines drops empty lines (CRLF or a bare LF) before a request
// line and makes sure at least one byte of the request line is buffered.
// A CR not followed by LF is left for the request line to refuse.
func (b *Reader) skipEmptyLines() error {
	skipped := 0
	for {
		for b.r < b.w {
			n := 0
			switch {
			case b.buf[b.r] == '\n':
				n = 1
			case b.buf[b.r] != '\r':
				return nil
			case b.r+1 == b.w:
				// A CR alone: its LF may be in the next read.
			case b.buf[b.r+1] == '\n':
				n = 2
			default:
				return nil
			}
			if n == 0 {
				break
			}
			if skipped == maxLeadingEmpty {
				return ErrMalformed
			}
			b.r += n
			skipped++
		}
		if _, err := b.Fill(max(len(b.buf), 2)); err != nil {
			if err == io.EOF {
				return ErrEmpty // nothing, or a lone CR, before the close
			}
			return err
		}
	}
}

// parseRequestLine parses METHOD SP target SP HTTP/1.x.
func parseRequestLine(r *Request, line []byte, lim *Limits) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return ErrMalformed
	}
	r.Method = line[:sp1]
	if len(r.Method) > lim.Method {
		return ErrMethodTooLong
	}
	if !isToken(r.Method) {
		return ErrMalformed
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return ErrMalformed
	}
	r.Target = rest[:sp2]
	for _, c := range r.Target {
		if c <= ' ' || c == 0x7f {
			return ErrMalformed
		}
	}
	switch string(rest[sp2+1:]) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		return ErrMalformed
	}
	return nil
}

// interpret applies the field rules of SPEC.md section 4.2 and fills the
// framing and connection flags.
func (r *Request) interpret() error {
	var nCL, nTE, nHost int
	keepAlive, unsupportedExpect := false, false
	connUpgrade, hasUpgrade := false, false
	for i := range r.Fields {
		f := &r.Fields[i]
		switch f.Known {
		case KnownContentLength:
			nCL++
			n, ok := parseLength(f.Value)
			if !ok {
				return ErrMalformed
			}
			r.ContentLength = n
			f.Hop = true
		case KnownTransferEncoding:
			nTE++
			if !EqualFold(f.Value, "chunked") {
				return ErrMalformed
			}
			f.Hop = true
		case KnownHost:
			nHost++
			r.Host, r.HasHost = f.Value, true
		case KnownExpect:
			if EqualFold(f.Value, "100-continue") {
				r.Expect100 = true
			} else {
				unsupportedExpect = true
			}
			f.Hop = true
		case KnownConnection:
			f.Hop = true
			ok, closeTok, kaTok, upTok := r.connectionTokens(f.Value)
			if !ok {
				return ErrMalformed
			}
			r.Close = r.Close || closeTok
			keepAlive = keepAlive || kaTok
			connUpgrade = connUpgrade || upTok
		case KnownUpgrade:
			hasUpgrade = true
		}
	}
	switch {
	case nCL > 1, nTE > 1, nCL > 0 && nTE > 0, nTE > 0 && r.Minor == 0:
		return ErrMalformed
	case nHost > 1, nHost == 0 && r.Minor == 1:
		return ErrMalformed
	case r.HasHost && !validHost(r.Host):
		return ErrMalformed
	}
	r.Chunked = nTE == 1
	if unsupportedExpect {
		return ErrUnsupportedExpect
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true
	}
	r.Upgrade = connUpgrade && hasUpgrade && r.Minor == 1
	r.markHop()
	return nil
}

// connectionTokens reads a Connection value: a comma list of tokens. An
// empty list or a non-token element is malformed ("connection: ,").
func (r *Request) connectionTokens(v []byte) (ok, closeTok, keepAlive, upgrade bool) {
	n := 0
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = trimOWS(v[:i]), v[i+1:]
		} else {
			tok, v = trimOWS(v), nil
		}
		if len(tok) == 0 {
			continue
		}
		if !isToken(tok) {
			return false, false, false, false
		}
		n++
		switch {
		case EqualFold(tok, "close"):
			closeTok = true
		case EqualFold(tok, "keep-alive"):
			keepAlive = true
		case EqualFold(tok, "upgrade"):
			upgrade = true
		default:
			r.connTokens = append(r.connTokens, tok)
		}
	}
	return n > 0, closeTok, keepAlive, upgrade
}

// markHop marks the hop-by-hop fields (RFC 9110 section 7.6.1) and the
// ones named in Connection. Upgrade stays for an upgrade request. Host
// stays even when Connection names it (which RFC 9110 forbids senders to
// do): the dyno must get an HTTP/1.1 request with a Host.
func (r *Request) markHop() {
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Hop {
			continue
		}
		switch {
		case hopKnown(f.Known), f.Known == KnownUpgrade && !r.Upgrade:
			f.Hop = true
		case f.Known != KnownHost && len(r.connTokens) > 0 && r.namedInConnection(f.Name):
			f.Hop = true
		case f.Known == KnownOther && UnderscoreAlias(f.Name):
			f.Hop = true
		}
	}
}

// UnderscoreAlias reports a name with '_' that reads as a name the router
// acts on once '_' is '-' (Transfer_Encoding, Content_Length,
// X_Forwarded_For): servers that map header names to variables (CGI, WSGI,
// Rack) take it for that field, so a client could slip framing or a
// forwarding field past the router. Such fields are dropped, as nginx does
// with underscores_in_headers off.
func UnderscoreAlias(name []byte) bool {
	if len(name) > maxKnownLen || bytes.IndexByte(name, '_') < 0 {
		return false
	}
	var buf [maxKnownLen]byte
	n := copy(buf[:], name)
	for i := range n {
		if buf[i] == '_' {
			buf[i] = '-'
		}
	}
	return knownName(buf[:n]) != KnownOther
}

func (r *Request) namedInConnection(name []byte) bool {
	for _, t := range r.connTokens {
		if len(t) == len(name) && bytes.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// isHopName reports the fixed hop-by-hop names other than Connection,
// Upgrade and the framing fields, which callers handle themselves.
func isHopName(name []byte) bool { return hopKnown(knownName(name)) }

// parseLength parses a Content-Length value: 1*DIGIT, at most 18 digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost reports whether v is a plausible uri-host [":" port]: not
// empty, and only bytes a reg-name, IPv6 literal or port may hold.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !hostTable[c] {
			return false
		}
	}
	return true
}

var hostTable = makeHostTable()

func makeHostTable() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=:[]%" {
		t[c] = true
	}
	return t
}
