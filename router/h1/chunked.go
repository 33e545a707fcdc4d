package h1

import "io"

// maxChunkLine bounds a chunk-size line with its extensions, and one
// trailer line.
const maxChunkLine = 4096

// maxTrailerBytes bounds the whole trailer section, which is read and
// dropped (SPEC.md 4b: request trailers are dropped).
const maxTrailerBytes = 16384

// ChunkedReader decodes a chunked body from a Reader. It is resumable: a
// read that fails with a timeout can be retried and goes on where it was.
type ChunkedReader struct {
	src      *Reader
	left     int64 // bytes left in the current chunk
	state    uint8
	bad      bool // ErrBadChunk was returned: the framing is lost for good
	trailers int  // trailer bytes read so far
}

const (
	chSize uint8 = iota
	chData
	chDataEnd
	chTrailer
	chDone
)

// Reset makes c decode a new body from src.
func (c *ChunkedReader) Reset(src *Reader) { *c = ChunkedReader{src: src} }

// Done reports whether the last chunk and the trailers were read.
func (c *ChunkedReader) Done() bool { return c.state == chDone }

// Read reads decoded body bytes. It returns io.EOF after the last chunk and
// its trailers, ErrBadChunk for a malformed body (and on every later
// call), and io.ErrUnexpectedEOF when the connection ends inside the body.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.bad {
		return 0, ErrBadChunk
	}
	n, err := c.read(p)
	if err == ErrBadChunk {
		// The bad line may be consumed already; reading on would take
		// what follows it for chunk framing.
		c.bad = true
	}
	return n, err
}

func (c *ChunkedReader) read(p []byte) (int, error) {
	for {
		switch c.state {
		case chSize:
			if err := c.readSize(); err != nil {
				return 0, err
			}
		case chData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.src.Read(p)
			c.left -= int64(n)
			if c.left == 0 {
				c.state = chDataEnd
			}
			if n > 0 {
				return n, nil
			}
			return 0, eofUnexpected(err)
		case chDataEnd:
			ln, err := c.src.chunkLine(0)
			if err != nil {
				return 0, eofUnexpected(err)
			}
			if len(ln) != 0 {
				return 0, ErrBadChunk
			}
			c.state = chSize
		case chTrailer:
			ln, err := c.src.chunkLine(maxChunkLine)
			if err != nil {
				return 0, eofUnexpected(err)
			}
			if len(ln) == 0 {
				c.state = chDone
				continue
			}
			c.trailers += len(ln) + 2
			if c.trailers > maxTrailerBytes {
				return 0, ErrBadChunk
			}
			if _, ok := parseField(ln); !ok {
				return 0, ErrBadChunk
			}
		case chDone:
			return 0, io.EOF
		}
	}
}

// readSize reads a chunk-size line: 1*HEXDIG [ext] CRLF.
func (c *ChunkedReader) readSize() error {
	ln, err := c.src.chunkLine(maxChunkLine)
	if err != nil {
		return eofUnexpected(err)
	}
	n, ok := parseChunkSize(ln)
	if !ok {
		return ErrBadChunk
	}
	c.left = n
	if n == 0 {
		c.state = chTrailer
	} else {
		c.state = chData
	}
	return nil
}

// parseChunkSize parses the size and checks the extension syntax loosely:
// after the digits only BWS ";" ext may follow, with no control bytes.
func parseChunkSize(ln []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(ln); i++ {
		d, ok := hexVal(ln[i])
		if !ok {
			break
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, false
	}
	rest := ln[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, false
	}
	for _, b := range rest {
		if b < ' ' && b != '\t' || b == 0x7f {
			return 0, false
		}
	}
	return n, true
}

func hexVal(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// LengthReader reads exactly N bytes of a Content-Length body from a Reader.
type LengthReader struct {
	src  *Reader
	left int64
}

// Reset makes l read n bytes from src.
func (l *LengthReader) Reset(src *Reader, n int64) { *l = LengthReader{src: src, left: n} }

// Left returns the bytes still to read.
func (l *LengthReader) Left() int64 { return l.left }

// Read reads body bytes; io.EOF once all were read, io.ErrUnexpectedEOF
// when the connection ends before.
func (l *LengthReader) Read(p []byte) (int, error) {
	if l.left <= 0 { // a negative length (unknown) reads as empty
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.src.Read(p)
	l.left -= int64(n)
	if n > 0 {
		return n, nil
	}
	return 0, eofUnexpected(err)
}
