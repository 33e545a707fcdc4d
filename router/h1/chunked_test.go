package h1

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodeChunked chunks data at the given sizes (the last chunk takes what
// is left), with an extension on every chunk when ext is set and upper-case
// hex when upper is.
func encodeChunked(data []byte, sizes []int, ext, upper bool) []byte {
	var out []byte
	for len(data) > 0 {
		n := len(data)
		if len(sizes) > 0 {
			n = min(max(sizes[0], 1), len(data))
			sizes = sizes[1:]
		}
		h := fmt.Sprintf("%x", n)
		if upper {
			h = strings.ToUpper(h)
		}
		out = append(out, h...)
		if ext {
			out = append(out, ";n=v"...)
		}
		out = append(out, "\r\n"...)
		out = append(out, data[:n]...)
		out = append(out, "\r\n"...)
		data = data[n:]
	}
	return append(out, LastChunk...)
}

// decodeAll decodes one chunked body from b, reading into a small buffer.
func decodeAll(b *Reader) ([]byte, error) {
	var c ChunkedReader
	c.Reset(b)
	var out []byte
	buf := make([]byte, 5)
	for range 1 << 20 {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			if !c.Done() {
				return out, fmt.Errorf("io.EOF before Done")
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, fmt.Errorf("ChunkedReader makes no progress")
}

func TestChunkedReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 700)
	cases := []struct {
		name string
		in   string
		want string // decoded body on success
		rest string // on success: bytes after the body
		err  error
	}{
		{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "many chunks", in: "1\r\nh\r\n2\r\nel\r\n2\r\nlo\r\n0\r\n\r\n", want: "hello"},
		{name: "empty body", in: "0\r\n\r\n", want: ""},
		{name: "extensions", in: "5;a=b\r\nhello\r\n3;x;y=\"q\"\r\nabc\r\n0;last\r\n\r\n", want: "helloabc"},
		{name: "bws before extension", in: "5 ;ext\r\nhello\r\n0\t;e\r\n\r\n", want: "hello"},
		{name: "lower hex", in: "a\r\n0123456789\r\n0\r\n\r\n", want: "0123456789"},
		{name: "upper hex", in: "A\r\n0123456789\r\n0\r\n\r\n", want: "0123456789"},
		{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", want: "hello"},
		{name: "15 hex digits", in: "000000000000005\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "trailers dropped", in: "5\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET /", want: "hello", rest: "GET /"},
		{name: "long chunk", in: fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(long), long), want: long},
		{name: "next message stays", in: "0\r\n\r\nHTTP/1.1 200 OK\r\n", want: "", rest: "HTTP/1.1 200 OK\r\n"},

		{name: "no crlf after size", in: "5hello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "bare lf after size", in: "5\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "cr cr lf after size", in: "5\r\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "bare cr in size line", in: "5\r;\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "empty size line", in: "\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "bad hex", in: "g\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "0x prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "16 hex digits", in: "0000000000000005\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "17 hex digits", in: "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "negative", in: "-5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "plus", in: "+5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "space before size", in: " 5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "htab before size", in: "\t5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "space inside size", in: "1 0\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "ctl in extension", in: "5;a\x01\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "nul in extension", in: "5;a\x00\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "size line too long", in: "5;" + strings.Repeat("a", 5000) + "\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "missing crlf after data", in: "5\r\nhello0\r\n\r\n", err: ErrBadChunk},
		{name: "bare lf after data", in: "5\r\nhello\n0\r\n\r\n", err: ErrBadChunk},
		{name: "data longer than size", in: "3\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "data shorter than size", in: "6\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
		{name: "trailer line too long", in: "0\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", err: ErrBadChunk},
		{name: "trailers too long", in: "0\r\n" + strings.Repeat("X: "+strings.Repeat("a", 4000)+"\r\n", 5) + "\r\n", err: ErrBadChunk},
		{name: "trailer without colon", in: "0\r\nnocolon\r\n\r\n", err: ErrBadChunk},
		{name: "trailer obs-fold", in: "0\r\nX: a\r\n b\r\n\r\n", err: ErrBadChunk},
		{name: "trailer nul", in: "0\r\nX: a\x00\r\n\r\n", err: ErrBadChunk},
		{name: "trailer bare lf", in: "0\r\nX: a\n\r\n", err: ErrBadChunk},
		{name: "bare lf ends trailers", in: "0\r\n\n", err: ErrBadChunk},

		{name: "eof at start", in: "", err: io.ErrUnexpectedEOF},
		{name: "eof in size line", in: "5", err: io.ErrUnexpectedEOF},
		{name: "eof mid-chunk", in: "5\r\nhel", err: io.ErrUnexpectedEOF},
		{name: "eof after data", in: "5\r\nhello", err: io.ErrUnexpectedEOF},
		{name: "eof after data cr", in: "5\r\nhello\r", err: io.ErrUnexpectedEOF},
		{name: "eof before last chunk", in: "5\r\nhello\r\n", err: io.ErrUnexpectedEOF},
		{name: "eof in trailers", in: "0\r\nX: 1\r\n", err: io.ErrUnexpectedEOF},
		{name: "eof before final crlf", in: "0\r\n", err: io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, fd := range feeds {
				t.Run(fd.name, func(t *testing.T) {
					b := NewReader(fd.wrap([]byte(tc.in)), fd.size)
					got, err := decodeAll(b)
					sent := tc.in
					if len(sent) > 200 {
						sent = sent[:200] + "..."
					}
					if tc.err != nil {
						require.ErrorIs(t, err, tc.err, "sent %q: got %s after %q", sent, sentinel(err), got)
						return
					}
					require.NoError(t, err, "sent %q: got %s", sent, sentinel(err))
					assert.Equal(t, tc.want, string(got), "sent %q", sent)
					assert.Equal(t, tc.rest, readRest(t, b), "sent %q: bytes after the body", sent)
				})
			}
		})
	}
}

// TestChunkedReaderRoundTrip decodes what encodeChunked makes, over every
// feed and several chunkings.
func TestChunkedReaderRoundTrip(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog.\n"), 300)
	chunkings := [][]int{nil, {1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {4095, 4096, 4097}, {100, 1, 100, 1}}
	for i, sizes := range chunkings {
		body := encodeChunked(data, sizes, i%2 == 1, i%3 == 1)
		for _, fd := range feeds {
			b := NewReader(fd.wrap(body), fd.size)
			got, err := decodeAll(b)
			require.NoError(t, err, "chunking %v over %s: got %s", sizes, fd.name, sentinel(err))
			assert.Equal(t, data, got, "chunking %v over %s", sizes, fd.name)
		}
	}
}

// TestChunkedReaderResumes checks that a read timing out anywhere in a
// chunked body can be retried after ClearErr and yields the same body:
// the router does this while coalescing response bytes.
func TestChunkedReaderResumes(t *testing.T) {
	t.Parallel()
	data := []byte("hello, world: a body long enough for a few chunks")
	body := append(encodeChunked(data, []int{5, 1, 17, 3}, true, false), "NEXT"...)
	// Trailers too, to stop inside them.
	body = bytes.Replace(body, []byte("0\r\n\r\n"), []byte("0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"), 1)
	check := func(t *testing.T, src *stopReader, what string) {
		t.Helper()
		b := NewReader(src, 16)
		var c ChunkedReader
		c.Reset(b)
		got, err := readAllRetry(&c, b)
		require.NoError(t, err, "sent %q with timeouts %s: got %s", body, what, sentinel(err))
		assert.Equal(t, string(data), string(got), "sent %q with timeouts %s", body, what)
		assert.True(t, c.Done(), "sent %q with timeouts %s: not Done", body, what)
		rest, err := readAllRetry(b, b)
		require.NoError(t, err, "sent %q with timeouts %s: reading the rest", body, what)
		assert.Equal(t, "NEXT", string(rest), "sent %q with timeouts %s: bytes after the body", body, what)
	}
	for _, withData := range []bool{false, true} {
		for _, perRead := range []int{0, 1, 3} {
			for at := 0; at <= len(body); at++ {
				src := &stopReader{data: body, stops: []int{at}, withData: withData, max: perRead}
				check(t, src, fmt.Sprintf("at %d (with data %v, %d per read)", at, withData, perRead))
			}
			var all []int
			for at := 0; at <= len(body); at++ {
				all = append(all, at)
			}
			src := &stopReader{data: body, stops: all, withData: withData, max: perRead}
			check(t, src, fmt.Sprintf("at every offset (with data %v, %d per read)", withData, perRead))
		}
	}
}

func TestLengthReader(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 20000)
	cases := []struct {
		name string
		in   string
		n    int64
		want string
		rest string
		err  error
	}{
		{name: "exact", in: "hello", n: 5, want: "hello"},
		{name: "more follows", in: "hello world", n: 5, want: "hello", rest: " world"},
		{name: "zero", in: "abc", n: 0, want: "", rest: "abc"},
		{name: "big", in: big + "tail", n: int64(len(big)), want: big, rest: "tail"},
		{name: "short", in: "hel", n: 5, want: "hel", err: io.ErrUnexpectedEOF},
		{name: "empty", in: "", n: 1, want: "", err: io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, fd := range feeds {
				for _, bufSize := range []int{3, 64 << 10} {
					b := NewReader(fd.wrap([]byte(tc.in)), fd.size)
					var l LengthReader
					l.Reset(b, tc.n)
					assert.Equal(t, tc.n, l.Left(), "Left before reading")
					var got []byte
					buf := make([]byte, bufSize)
					var err error
					for {
						var n int
						n, err = l.Read(buf)
						got = append(got, buf[:n]...)
						if err != nil {
							break
						}
					}
					assert.Equal(t, tc.want, string(got), "read %d of %q over %s, %d-byte reads", tc.n, tc.in, fd.name, bufSize)
					if tc.err != nil {
						assert.ErrorIs(t, err, tc.err, "read %d of %q over %s, %d-byte reads", tc.n, tc.in, fd.name, bufSize)
						continue
					}
					require.ErrorIs(t, err, io.EOF, "read %d of %q over %s, %d-byte reads", tc.n, tc.in, fd.name, bufSize)
					assert.Equal(t, int64(0), l.Left(), "Left after reading")
					assert.Equal(t, tc.rest, readRest(t, b), "read %d of %q over %s: bytes after", tc.n, tc.in, fd.name)
				}
			}
		})
	}
}

// TestLengthReaderResumes retries reads that time out.
func TestLengthReaderResumes(t *testing.T) {
	t.Parallel()
	in := "0123456789abcdefghijklmnopqrstuvwxyz" + "REST"
	for at := 0; at <= len(in); at++ {
		src := &stopReader{data: []byte(in), stops: []int{at}, max: 5}
		b := NewReader(src, 16)
		var l LengthReader
		l.Reset(b, 36)
		got, err := readAllRetry(&l, b)
		require.NoError(t, err, "sent %q with a timeout at %d", in, at)
		assert.Equal(t, in[:36], string(got), "sent %q with a timeout at %d", in, at)
	}
}

// TestChunkedReaderBadIsSticky checks that after ErrBadChunk the reader
// does not go on to take the following bytes for chunks.
func TestChunkedReaderBadIsSticky(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"zz\r\n5\r\nhello\r\n0\r\n\r\n",
		"0\r\nbad trailer\r\n\r\n",
		"3\r\nabcX\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		b := NewReader(bytes.NewReader([]byte(in)), 0)
		var c ChunkedReader
		c.Reset(b)
		buf := make([]byte, 64)
		var err error
		for range 10 {
			if _, err = c.Read(buf); err == ErrBadChunk {
				break
			}
		}
		require.ErrorIs(t, err, ErrBadChunk, "sent %q", in)
		for range 3 {
			n, err := c.Read(buf)
			assert.ErrorIs(t, err, ErrBadChunk, "sent %q: read after ErrBadChunk gave %q, %v", in, buf[:n], err)
		}
	}
}

// TestLengthReaderNegative checks that an unknown (-1) length reads as an
// empty body instead of panicking.
func TestLengthReaderNegative(t *testing.T) {
	t.Parallel()
	var l LengthReader
	l.Reset(NewReader(bytes.NewReader([]byte("abc")), 0), -1)
	n, err := l.Read(make([]byte, 8))
	assert.Equal(t, 0, n, "Reset(-1) then Read")
	assert.ErrorIs(t, err, io.EOF, "Reset(-1) then Read")
}
