package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// h1Client is one HTTP/1.1 keep-alive connection with one request in flight.
// It writes the prebuilt request and reads the response with a small reader
// of its own: net/http's client would add pooling and allocations we do not
// want to measure. A failed or closed connection is redialed on the next
// request.
type h1Client struct {
	t    *target
	conn net.Conn
	br   *bufio.Reader
	stop func() bool // unregisters the abort-on-cancel hook of conn
}

// h1BufSize is the read buffer: large enough for any sane response head.
const h1BufSize = 32 << 10

func (c *h1Client) do(ctx context.Context) (int, int64, error) {
	if c.conn == nil {
		conn, err := c.t.dial(ctx)
		if err != nil {
			return 0, 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, h1BufSize)
		} else {
			c.br.Reset(conn)
		}
		// When the run ends, abort whatever this connection is blocked on.
		c.stop = context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	}
	c.conn.SetDeadline(time.Now().Add(c.t.cfg.Timeout))
	if ctx.Err() != nil { // checked after SetDeadline so the abort hook wins
		return 0, 0, &requestError{KindTimeout, context.Cause(ctx)}
	}
	if _, err := c.conn.Write(c.t.h1req); err != nil {
		c.reset()
		return 0, 0, &requestError{classify(err, KindWrite), err}
	}
	status, n, keep, err := readResponse(c.br, c.t.head)
	if err != nil {
		c.reset()
		return 0, 0, &requestError{classify(err, KindRead), err}
	}
	if !keep {
		c.reset()
	}
	return status, n, nil
}

// reset closes the connection, if any.
func (c *h1Client) reset() {
	if c.conn == nil {
		return
	}
	c.stop()
	c.conn.Close()
	c.conn = nil
}

// readResponse reads one HTTP/1.x response and discards its body. It returns
// the status, the body size, and whether the connection can carry another
// request. Interim 1xx responses are skipped (RFC 9110 section 15.2).
func readResponse(br *bufio.Reader, head bool) (status int, n int64, keep bool, err error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, 0, false, err
		}
		var http11 bool
		status, http11, err = parseStatusLine(line)
		if err != nil {
			return 0, 0, false, err
		}
		h, err := readHeader(br, http11)
		if err != nil {
			return 0, 0, false, err
		}
		if status >= 100 && status < 200 && status != 101 {
			continue
		}
		// RFC 9112 section 6.3: these responses never have a body.
		if head || status < 200 || status == 204 || status == 304 {
			return status, 0, h.keep, nil
		}
		switch {
		case h.chunked:
			n, err = readChunked(br)
		case h.length >= 0:
			n, err = discard(br, h.length)
		default: // body runs to the end of the connection
			n, err = io.Copy(io.Discard, br)
			h.keep = false
		}
		return status, n, h.keep, err
	}
}

// respHeader is what readResponse needs from the header fields.
type respHeader struct {
	length  int64 // Content-Length, -1 if absent
	chunked bool
	keep    bool
}

// readLine returns one line without its CRLF. The slice is valid until the
// next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, h1BufSize)
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// parseStatusLine parses "HTTP/1.1 200 OK".
func parseStatusLine(line []byte) (status int, http11 bool, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		status = status*10 + int(d-'0')
	}
	return status, line[7] == '1', nil
}

// readHeader reads header fields up to the empty line. HTTP/1.1 connections
// stay open unless "Connection: close"; HTTP/1.0 ones only with keep-alive.
func readHeader(br *bufio.Reader, http11 bool) (respHeader, error) {
	h := respHeader{length: -1, keep: http11}
	for {
		line, err := readLine(br)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return h, fmt.Errorf("%w: Content-Length %q", errMalformed, v)
			}
			h.length = n
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			h.chunked = hasToken(v, "chunked")
		case bytes.EqualFold(k, []byte("Connection")):
			if hasToken(v, "close") {
				h.keep = false
			} else if hasToken(v, "keep-alive") {
				h.keep = true
			}
		}
	}
}

// hasToken reports whether the comma-separated list v holds tok.
func hasToken(v []byte, tok string) bool {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(tok)) {
			return true
		}
	}
	return false
}

// discard skips n body bytes.
func discard(br *bufio.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		k, err := br.Discard(int(min(n-done, 1<<30)))
		done += int64(k)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
	}
	return done, nil
}

// readChunked skips a chunked body and its trailers (RFC 9112 section 7.1),
// returning the size of the decoded body.
func readChunked(br *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := readLine(br)
		if err != nil {
			return total, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return total, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for { // trailers, up to the empty line
				line, err := readLine(br)
				if err != nil || len(line) == 0 {
					return total, err
				}
			}
		}
		n, err := discard(br, size)
		total += n
		if err != nil {
			return total, err
		}
		if line, err := readLine(br); err != nil || len(line) != 0 {
			if err == nil {
				err = fmt.Errorf("%w: no CRLF after chunk", errMalformed)
			}
			return total, err
		}
	}
}
