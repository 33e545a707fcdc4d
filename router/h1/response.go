package h1

import (
	"bytes"
	"io"
)

// Response is one parsed response head from a dyno. It is reused; its
// slices point into the Reader's buffer.
type Response struct {
	// Minor is the dyno's HTTP/1 minor version.
	Minor int
	// Status is the three-digit status code; Reason the reason phrase as
	// sent (may be empty).
	Status int
	Reason []byte
	Fields []Field
	// ContentLength is the body length, or -1 when unknown.
	ContentLength int64
	// Chunked: the body is chunked.
	Chunked bool
	// Close: the dyno will close the connection after this response.
	Close bool
	// ConnUpgrade: the Connection field has the upgrade token.
	ConnUpgrade bool
	// ContentType is the Content-Type value; HasContentType says whether
	// the field was there.
	ContentType    []byte
	HasContentType bool
	HeadLen        int
	connTokens     [][]byte
}

func (r *Response) reset() {
	fields, tokens := r.Fields[:0], r.connTokens[:0]
	*r = Response{Fields: fields, connTokens: tokens, ContentLength: -1}
}

// ReadResponse reads one response head from b into r; the body stays in b.
// It returns ErrEmpty when the connection ended before any byte,
// io.ErrUnexpectedEOF when it ended inside the head, and the package's
// errors for heads that break the limits or the syntax.
func (b *Reader) ReadResponse(r *Response, lim *Limits) error {
	r.reset()
	if b.Buffered() == 0 {
		if _, err := b.Fill(len(b.buf)); err != nil {
			if err == io.EOF {
				return ErrEmpty
			}
			return err
		}
	}
	// A response that cannot start with "HTTP/" (an HTTP/0.9 body, say)
	// is malformed as soon as its first bytes show it, whether or not the
	// dyno closes after them, and whatever the reads' sizes.
	for {
		n := min(b.Buffered(), len(httpPrefix))
		if string(b.Bytes()[:n]) != httpPrefix[:n] {
			return ErrMalformed
		}
		if n == len(httpPrefix) {
			break
		}
		if _, err := b.Fill(lim.maxBuffer()); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	head, first, bad, err := b.consumeHead(lim, KnownSetCookie, &r.Fields)
	if err != nil {
		return err
	}
	r.HeadLen = len(head)
	if !parseStatusLine(r, trimCR(head[:first-1])) {
		r.Fields = r.Fields[:0]
		return ErrMalformed
	}
	if bad {
		return ErrMalformed
	}
	return r.interpret()
}

const httpPrefix = "HTTP/"

// parseStatusLine parses HTTP/1.x SP 3DIGIT [SP reason]. A missing reason
// phrase is accepted (SPEC.md 4b).
func parseStatusLine(r *Response, line []byte) bool {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return false
	}
	switch line[7] {
	case '0':
		r.Minor = 0
	case '1':
		r.Minor = 1
	default:
		return false
	}
	s := line[9:12]
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	r.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if r.Status < 100 {
		return false
	}
	rest := line[12:]
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return false
		}
		rest = rest[1:]
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	r.Reason = rest
	return true
}

// interpret checks the framing fields and marks hop-by-hop ones.
func (r *Response) interpret() error {
	nTE, nCL := 0, 0
	keepAlive := false
	for i := range r.Fields {
		f := &r.Fields[i]
		switch f.Known {
		case KnownContentLength:
			n, ok := parseLength(f.Value)
			if !ok || (r.ContentLength >= 0 && r.ContentLength != n) {
				return ErrMalformed
			}
			r.ContentLength = n
			nCL++
			f.Hop = true
		case KnownTransferEncoding:
			nTE++
			if !EqualFold(f.Value, "chunked") {
				return ErrMalformed
			}
			f.Hop = true
		case KnownConnection:
			f.Hop = true
			for v := f.Value; len(v) > 0; {
				var tok []byte
				if j := bytes.IndexByte(v, ','); j >= 0 {
					tok, v = trimOWS(v[:j]), v[j+1:]
				} else {
					tok, v = trimOWS(v), nil
				}
				switch {
				case len(tok) == 0:
				case EqualFold(tok, "close"):
					r.Close = true
				case EqualFold(tok, "keep-alive"):
					keepAlive = true
				case EqualFold(tok, "upgrade"):
					r.ConnUpgrade = true
				default:
					r.connTokens = append(r.connTokens, tok)
				}
			}
		case KnownContentType:
			r.ContentType, r.HasContentType = f.Value, true
		}
	}
	if nTE > 1 {
		return ErrMalformed
	}
	if nTE == 1 {
		// RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length.
		// Both together may be an attempt at response splitting, so the
		// connection is not reused after this response.
		r.Chunked, r.ContentLength = true, -1
		r.Close = r.Close || nCL > 0
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true
	}
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Hop {
			continue
		}
		switch {
		case hopKnown(f.Known), f.Known == KnownUpgrade && r.Status != 101:
			f.Hop = true
		case len(r.connTokens) > 0 && r.namedInConnection(f.Name):
			f.Hop = true
		}
	}
	return nil
}

func (r *Response) namedInConnection(name []byte) bool {
	for _, t := range r.connTokens {
		if len(t) == len(name) && bytes.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// BodyAllowed reports whether a response to a request with the given
// method may carry a body (RFC 9110 section 6.4.1).
func (r *Response) BodyAllowed(head bool) bool {
	return !head && r.Status >= 200 && r.Status != 204 && r.Status != 304
}

// KeepAliveTimeout returns the timeout=N parameter (whole seconds) of a
// Keep-Alive field value such as "timeout=5, max=1000" (RFC 2068 section
// 19.7.1.1, still sent by Node and Apache); ok is false when it has none
// or it is not a number.
func KeepAliveTimeout(v []byte) (secs int64, ok bool) {
	for len(v) > 0 {
		var p []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			p, v = v[:i], v[i+1:]
		} else {
			p, v = v, nil
		}
		p = trimOWS(p)
		const name = "timeout="
		if len(p) <= len(name) || !HasPrefixFold(p, name) {
			continue
		}
		n := int64(0)
		for _, c := range p[len(name):] {
			if c < '0' || c > '9' || n > 1<<31 {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
	return 0, false
}
