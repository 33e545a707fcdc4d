package h1

import (
	"bytes"
	"io"
)

// Limits bounds one message head. Every field must be > 0.
type Limits struct {
	StartLine   int // request line or status line, without its line end
	Method      int // method bytes
	FieldName   int // one field name
	Field       int // one field line (name, colon, value), without its line end
	Cookie      int // one Cookie or Set-Cookie field line
	HeadersSize int // all field lines together, line ends included
	FieldCount  int // number of field lines
}

// maxBuffer is the largest buffer a head of these limits needs.
func (l *Limits) maxBuffer() int {
	return l.StartLine + 2 + l.HeadersSize + 2 + 64
}

// Field is one header field as received: name and value (outer white
// space trimmed), slices into the Reader's buffer.
type Field struct {
	Name  []byte
	Value []byte
	// Hop marks a field the router does not forward (hop-by-hop, framing,
	// or one it replaces).
	Hop bool
}

// readHead makes sure one whole message head is buffered and returns its
// length from b.r (both line ends of the empty line included). Line limits
// are checked while scanning, so an oversized head is refused as soon as
// it is seen, without waiting for the rest.
func (b *Reader) readHead(lim *Limits, cookieName string) (int, error) {
	max := lim.maxBuffer()
	lineStart := 0 // offset from b.r of the line being scanned
	scan := 0      // offset from b.r up to which no LF was found
	nLines := 0
	firstLen := 0 // length of the start line with its line end
	for {
		data := b.buf[b.r:b.w]
		i := bytes.IndexByte(data[scan:], '\n')
		if i < 0 {
			scan = len(data)
			// A CR at the end may be the first half of the line end (of
			// the empty line, even), which is not the line's own.
			ln := trimCR(data[lineStart:])
			if err := checkLine(ln, len(ln), nLines, lineStart-firstLen, lim, cookieName); err != nil {
				return 0, err
			}
			if _, err := b.Fill(max); err != nil {
				if err == errFull {
					return 0, ErrHeaderTooLong
				}
				return 0, err
			}
			continue
		}
		end := scan + i // offset of the LF
		ln := trimCR(data[lineStart:end])
		if nLines > 0 && len(ln) == 0 {
			return end + 1, nil
		}
		if err := checkLine(ln, end+1-lineStart, nLines, lineStart-firstLen, lim, cookieName); err != nil {
			return 0, err
		}
		if nLines == 0 {
			firstLen = end + 1
		}
		nLines++
		lineStart = end + 1
		scan = lineStart
	}
}

// consumeHead reads one whole head (readHead) and consumes it; the
// connection ending inside it is io.ErrUnexpectedEOF.
func (b *Reader) consumeHead(lim *Limits, cookieName string) ([]byte, error) {
	n, err := b.readHead(lim, cookieName)
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	head := b.buf[b.r : b.r+n]
	b.r += n
	return head, nil
}

// trimCR drops one CR at the end of ln.
func trimCR(ln []byte) []byte {
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		return ln[:n-1]
	}
	return ln
}

// checkLine applies the size limits to line idx (0: the start line), whose
// end may not have arrived yet. ln is the line without its line end; size
// is what it adds to HeadersSize so far (its line end included once it
// came), prev what the field lines before it added.
//
// A line over its own limit and over HeadersSize gets the error of the
// limit a byte-by-byte read passes first, so the answer does not depend on
// where the reads from the connection happened to end.
func checkLine(ln []byte, size, idx, prev int, lim *Limits, cookieName string) error {
	if idx == 0 {
		if len(ln) > lim.StartLine {
			return ErrLineTooLong
		}
		return nil
	}
	if len(ln) == 0 {
		return nil // the empty line that ends the head, still arriving
	}
	if idx > lim.FieldCount {
		return ErrHeaderTooLong
	}
	err := checkField(ln, lim, cookieName)
	if prev+size <= lim.HeadersSize {
		return err
	}
	if err == ErrCookieTooLong && lim.Cookie <= lim.HeadersSize-prev {
		return err
	}
	return ErrHeaderTooLong
}

// checkField applies the name, field and cookie limits to a field line. A
// line without a colon (yet) is held to the name limit only.
func checkField(ln []byte, lim *Limits, cookieName string) error {
	colon := bytes.IndexByte(ln, ':')
	if colon < 0 {
		if len(ln) > lim.FieldName {
			return ErrHeaderTooLong
		}
		return nil
	}
	if colon > lim.FieldName {
		return ErrHeaderTooLong
	}
	if EqualFold(ln[:colon], cookieName) {
		if len(ln) > lim.Cookie {
			return ErrCookieTooLong
		}
		return nil
	}
	if len(ln) > lim.Field {
		return ErrHeaderTooLong
	}
	return nil
}

// nextLine splits head at the first LF, dropping one CR before it.
func nextLine(head []byte) (line, rest []byte) {
	i := bytes.IndexByte(head, '\n')
	if i < 0 {
		return head, nil
	}
	return trimCR(head[:i]), head[i+1:]
}

// appendFields parses the field lines of a head (after its start line) up
// to the empty line and appends them to dst; false for a malformed one.
func appendFields(dst []Field, rest []byte) ([]Field, bool) {
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		f, ok := parseField(line)
		if !ok {
			return dst, false
		}
		dst = append(dst, f)
	}
	return dst, true
}

// parseField splits one field line into name and trimmed value, enforcing
// RFC 9110/9112 syntax: a token name directly followed by a colon, and a
// value without NUL, bare CR or other control bytes (HTAB allowed).
func parseField(ln []byte) (Field, bool) {
	if len(ln) == 0 || ln[0] == ' ' || ln[0] == '\t' {
		return Field{}, false // obs-fold or empty
	}
	colon := bytes.IndexByte(ln, ':')
	if colon <= 0 {
		return Field{}, false
	}
	name := ln[:colon]
	if !isToken(name) {
		return Field{}, false
	}
	v := trimOWS(ln[colon+1:])
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return Field{}, false
		}
	}
	return Field{Name: name, Value: v}, true
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}
