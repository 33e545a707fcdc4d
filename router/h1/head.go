package h1

import (
	"bytes"
	"encoding/binary"
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
	// Known says which of the names the router acts on this one is, so a
	// name is compared once, when it is parsed.
	Known Known
	// Line is the whole field line as received, CRLF included, when it is
	// exactly Name ": " Value CRLF; else nil. Lines of consecutive fields
	// are adjacent in memory, so a run of them can be copied at once.
	Line []byte
}

// readHead makes sure one whole message head is buffered and returns its
// length n from b.r (both line ends of the empty line included) and the
// length of its start line, line end included. Line limits are checked
// while scanning, so an oversized head is refused as soon as it is seen,
// without waiting for the rest. Each field line is parsed once whole, into
// *fields; bad reports a malformed one (the fields end before it), which
// the caller reports after the start line's own errors. On an error
// *fields is empty. cookie is the field held to the cookie limit.
func (b *Reader) readHead(lim *Limits, cookie Known, fields *[]Field) (n, first int, bad bool, err error) {
	max := lim.maxBuffer()
	fs := (*fields)[:0]
	lineStart := 0 // offset from b.r of the line being scanned
	scan := 0      // offset from b.r up to which no LF was found
	nLines := 0
	data := b.buf[b.r:b.w]
	for {
		i := bytes.IndexByte(data[scan:], '\n')
		if i < 0 {
			scan = len(data)
			// A CR at the end may be the first half of the line end (of
			// the empty line, even), which is not the line's own.
			ln := trimCR(data[lineStart:])
			if err := checkLine(ln, len(ln), nLines, lineStart-first, lim, cookie); err != nil {
				*fields = fs[:0]
				return 0, 0, false, err
			}
			if _, err := b.Fill(max); err != nil {
				*fields = fs[:0]
				if err == errFull {
					return 0, 0, false, ErrHeaderTooLong
				}
				return 0, 0, false, err
			}
			moved := b.buf[b.r:b.w]
			if len(fs) > 0 && &moved[0] != &data[0] {
				rebase(fs, data, moved)
			}
			data = moved
			continue
		}
		end := scan + i // offset of the LF
		ln := trimCR(data[lineStart:end])
		switch {
		case nLines == 0:
			if len(ln) > lim.StartLine {
				*fields = fs[:0]
				return 0, 0, false, ErrLineTooLong
			}
			first = end + 1
		case len(ln) == 0:
			*fields = fs
			return end + 1, first, bad, nil
		default:
			colon := bytes.IndexByte(ln, ':')
			k := KnownOther
			if colon > 0 {
				k = knownName(ln[:colon])
			}
			size, prev := end+1-lineStart, lineStart-first
			limit := lim.Field
			if colon >= 0 && k == cookie {
				limit = lim.Cookie
			}
			// The usual line is within every limit; checkFieldLine finds
			// which limit another one breaks, if any.
			if nLines > lim.FieldCount || colon < 0 || colon > lim.FieldName || len(ln) > limit || prev+size > lim.HeadersSize {
				if err := checkFieldLine(ln, colon, colon >= 0 && k == cookie, size, nLines, prev, lim); err != nil {
					*fields = fs[:0]
					return 0, 0, false, err
				}
			}
			if !bad {
				vs, ve, ok := parseFieldLine(ln, colon, k != KnownOther)
				if ok {
					f := Field{Name: ln[:colon], Value: ln[vs:ve], Known: k}
					if vs == colon+2 && ln[colon+1] == ' ' && ve == len(ln) && len(ln) == end-1-lineStart {
						f.Line = data[lineStart : end+1] // "Name: Value" CRLF, as written out
					}
					fs = append(fs, f)
				}
				bad = !ok
			}
		}
		nLines++
		lineStart = end + 1
		scan = lineStart
	}
}

// rebase points fields parsed from old at the same bytes in moved, where
// Fill moved them. A field's slices were cut from old and reach to its
// end, so their offset in old is what their capacity lacks.
func rebase(fs []Field, old, moved []byte) {
	for i := range fs {
		f := &fs[i]
		f.Name = rebased(f.Name, old, moved)
		f.Value = rebased(f.Value, old, moved)
		f.Line = rebased(f.Line, old, moved)
	}
}

func rebased(s, old, moved []byte) []byte {
	if s == nil {
		return nil
	}
	off := cap(old) - cap(s)
	return moved[off : off+len(s)]
}

// consumeHead reads one whole head (readHead) and consumes it; the
// connection ending inside it is io.ErrUnexpectedEOF.
func (b *Reader) consumeHead(lim *Limits, cookie Known, fields *[]Field) (head []byte, first int, bad bool, err error) {
	n, first, bad, err := b.readHead(lim, cookie, fields)
	if err != nil {
		if err == io.EOF {
			return nil, 0, false, io.ErrUnexpectedEOF
		}
		return nil, 0, false, err
	}
	head = b.buf[b.r : b.r+n]
	b.r += n
	return head, first, bad, nil
}

// trimCR drops one CR at the end of ln.
func trimCR(ln []byte) []byte {
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		return ln[:n-1]
	}
	return ln
}

// checkLine applies the size limits to line idx (0: the start line), whose
// end has not arrived yet. ln is the line without its line end; size is
// what it adds to HeadersSize so far, prev what the field lines before it
// added.
func checkLine(ln []byte, size, idx, prev int, lim *Limits, cookie Known) error {
	if idx == 0 {
		if len(ln) > lim.StartLine {
			return ErrLineTooLong
		}
		return nil
	}
	if len(ln) == 0 {
		return nil // the empty line that ends the head, still arriving
	}
	colon := bytes.IndexByte(ln, ':')
	return checkFieldLine(ln, colon, colon >= 0 && knownName(ln[:colon]) == cookie, size, idx, prev, lim)
}

// checkFieldLine applies the count, name, field, cookie and total limits
// to field line idx, whole or not; colon is the index of its first colon
// (-1: none yet), isCookie says the name is the cookie field's.
//
// A line over its own limit and over HeadersSize gets the error of the
// limit a byte-by-byte read passes first, so the answer does not depend on
// where the reads from the connection happened to end.
func checkFieldLine(ln []byte, colon int, isCookie bool, size, idx, prev int, lim *Limits) error {
	if idx > lim.FieldCount {
		return ErrHeaderTooLong
	}
	err := checkField(ln, colon, isCookie, lim)
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
func checkField(ln []byte, colon int, isCookie bool, lim *Limits) error {
	if colon < 0 {
		if len(ln) > lim.FieldName {
			return ErrHeaderTooLong
		}
		return nil
	}
	if colon > lim.FieldName {
		return ErrHeaderTooLong
	}
	if isCookie {
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

// parseField splits one field line into name and trimmed value; see
// parseFieldLine.
func parseField(ln []byte) (Field, bool) {
	colon := bytes.IndexByte(ln, ':')
	vs, ve, ok := parseFieldLine(ln, colon, false)
	if !ok {
		return Field{}, false
	}
	return Field{Name: ln[:colon], Value: ln[vs:ve]}, true
}

// parseFieldLine checks one field line whose first colon is at colon (-1:
// none) and returns where its trimmed value starts and ends. It enforces
// RFC 9110/9112 syntax: a token name directly followed by a colon, and a
// value without NUL, bare CR or other control bytes (HTAB allowed).
// known says the name is a known one, hence a token.
func parseFieldLine(ln []byte, colon int, known bool) (vs, ve int, ok bool) {
	if len(ln) == 0 || ln[0] == ' ' || ln[0] == '\t' {
		return 0, 0, false // obs-fold or empty
	}
	if colon <= 0 || !known && !isToken(ln[:colon]) {
		return 0, 0, false
	}
	vs, ve = colon+1, len(ln)
	for vs < ve && (ln[vs] == ' ' || ln[vs] == '\t') {
		vs++
	}
	for ve > vs && (ln[ve-1] == ' ' || ln[ve-1] == '\t') {
		ve--
	}
	return vs, ve, validValue(ln[vs:ve])
}

// validValue reports whether v holds no control byte but HTAB, and no DEL.
// It checks eight bytes at a time: a word with a byte below 0x20 or a DEL
// (exactly those words, HTAB included) is checked byte by byte.
func validValue(v []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		del := x ^ 0x7f*ones
		if ((x-0x20*ones)&^x|(del-ones)&^del)&highs != 0 && !validBytes(v[:8]) {
			return false
		}
		v = v[8:]
	}
	return validBytes(v)
}

func validBytes(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
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

// PeekHost returns the value of the first Host field among the complete
// field lines of a request head still being read (b starts at the request
// line), so a stalled head can be judged by its app's window before it is
// whole; ok is false while no whole Host line arrived.
func PeekHost(b []byte) (host []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, false
	}
	for b = b[i+1:]; ; {
		i = bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, false
		}
		ln := trimCR(b[:i])
		if len(ln) == 0 {
			return nil, false
		}
		if colon := bytes.IndexByte(ln, ':'); colon > 0 && knownName(ln[:colon]) == KnownHost {
			return trimOWS(ln[colon+1:]), true
		}
		b = b[i+1:]
	}
}
