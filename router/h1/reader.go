package h1

import (
	"bytes"
	"io"
)

// Reader is a growable read buffer over a connection. Unlike bufio.Reader it
// can grow to hold one whole message head (up to the limits the caller
// passes) so parsed fields can point into it.
type Reader struct {
	rd   io.Reader
	buf  []byte
	r, w int
	err  error // sticky read error, returned once the buffer is drained
	// pin is the offset below which bytes must not move (0: none). Parsed
	// heads live there while their body is read; see Pin.
	pin int
}

// DefaultReaderSize is the initial buffer size of a Reader.
const DefaultReaderSize = 4096

// NewReader returns a Reader over rd with a buffer of size bytes.
func NewReader(rd io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultReaderSize
	}
	return &Reader{rd: rd, buf: make([]byte, size)}
}

// Reset makes b read from rd, dropping what was buffered. The buffer is
// kept; a zero Reader gets one of DefaultReaderSize bytes.
func (b *Reader) Reset(rd io.Reader) {
	b.rd, b.r, b.w, b.err, b.pin = rd, 0, 0, nil, 0
	if len(b.buf) == 0 {
		b.buf = make([]byte, DefaultReaderSize)
	}
}

// Detach takes b's buffer away, for a connection waiting idle (nothing
// buffered, nothing pinned): b must get one back by Attach before it reads.
func (b *Reader) Detach() []byte {
	buf := b.buf
	b.buf, b.r, b.w, b.pin = nil, 0, 0, 0
	return buf
}

// Attached reports whether b has a buffer (see Detach).
func (b *Reader) Attached() bool { return b.buf != nil }

// Attach gives a detached b the buffer buf (len(buf) >= len(p)) holding p
// as its first bytes, and err, if not nil, as its sticky read error: what
// the read that found p returned.
func (b *Reader) Attach(buf, p []byte, err error) {
	b.buf, b.r, b.w, b.pin = buf, 0, copy(buf, p), 0
	if err != nil {
		b.err = err
	}
}

// Pin keeps every byte consumed so far in place until Unpin, so slices of
// the last parsed head stay valid while its body is read. Reads go on in
// the space after it; when that is short the buffer grows into a new
// array, leaving the old one (and the slices into it) untouched.
func (b *Reader) Pin() { b.pin = b.r }

// Unpin lets the buffer compact again.
func (b *Reader) Unpin() { b.pin = 0 }

// Buffered returns the number of bytes read from the connection and not yet
// consumed.
func (b *Reader) Buffered() int { return b.w - b.r }

// Bytes returns the buffered bytes without consuming them.
func (b *Reader) Bytes() []byte { return b.buf[b.r:b.w] }

// Discard consumes n buffered bytes (n <= Buffered()).
func (b *Reader) Discard(n int) { b.r += n }

// Err returns the sticky read error, if a read failed.
func (b *Reader) Err() error { return b.err }

// ClearErr forgets a sticky error, so a read that timed out can be retried.
func (b *Reader) ClearErr() { b.err = nil }

// Fill reads once from the connection into free space, compacting and
// growing the buffer (never past max bytes in all) as needed. It returns
// the number of bytes read. When the buffer already holds max bytes it
// returns errFull.
func (b *Reader) Fill(max int) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.r > b.pin && (b.w == len(b.buf) || b.r == b.w) {
		copy(b.buf[b.pin:], b.buf[b.r:b.w])
		b.w -= b.r - b.pin
		b.r = b.pin
	}
	if b.w == len(b.buf) {
		if len(b.buf)-b.pin >= max {
			return 0, errFull
		}
		n := 2 * len(b.buf)
		if n > max+b.pin {
			n = max + b.pin
		}
		nb := make([]byte, n)
		copy(nb, b.buf[:b.w])
		b.buf = nb
	}
	// A reader that keeps returning (0, nil) would make callers spin.
	for range maxEmptyReads {
		n, err := b.rd.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
	b.err = io.ErrNoProgress
	return 0, b.err
}

// maxEmptyReads bounds successive empty reads, as bufio does.
const maxEmptyReads = 100

// Read reads up to len(p) bytes: buffered bytes first, else straight from
// the connection.
func (b *Reader) Read(p []byte) (int, error) {
	if b.r < b.w {
		n := copy(p, b.buf[b.r:b.w])
		b.r += n
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) >= len(b.buf)-b.pin {
		n, err := b.rd.Read(p)
		if err != nil {
			b.err = err
		}
		return n, err
	}
	b.r, b.w = b.pin, b.pin
	n, err := b.Fill(len(b.buf) - b.pin)
	if n == 0 {
		return 0, err
	}
	n = copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// chunkLine returns the next CRLF-terminated line (without CRLF), reading
// more as needed; lim bounds its length. A line is consumed only once whole,
// so a read that times out can be retried.
func (b *Reader) chunkLine(lim int) ([]byte, error) {
	start := 0
	for {
		if i := bytes.IndexByte(b.buf[b.r+start:b.w], '\n'); i >= 0 {
			end := b.r + start + i
			if end == b.r || b.buf[end-1] != '\r' || end-1-b.r > lim {
				return nil, ErrBadChunk
			}
			ln := b.buf[b.r : end-1]
			b.r = end + 1
			return ln, nil
		}
		start = b.w - b.r
		if start > lim+1 {
			return nil, ErrBadChunk
		}
		if _, err := b.Fill(max(len(b.buf), lim+2)); err != nil {
			return nil, err
		}
	}
}
