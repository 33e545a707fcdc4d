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

// TestReaderPinKeepsHead checks that the parsed head stays intact while
// its body is read with the Reader pinned, however the buffer moves or
// grows, and that the next request parses after Unpin.
func TestReaderPinKeepsHead(t *testing.T) {
	t.Parallel()
	data := []byte(strings.Repeat("0123456789", 1000))
	bodies := []struct {
		name  string
		field string
		wire  []byte
	}{
		{"length", fmt.Sprintf("Content-Length: %d", len(data)), data},
		{"chunked", "Transfer-Encoding: chunked", encodeChunked(data, []int{1, 7, 300, 5000}, true, false)},
	}
	for _, bd := range bodies {
		in := []byte(head11("X-Keep: me", bd.field, "X-Also: "+strings.Repeat("k", 40)))
		in = append(in, bd.wire...)
		in = append(in, "POST /next HTTP/1.1\r\nHost: b\r\n\r\n"...)
		for _, fd := range feeds {
			for _, readSize := range []int{3, 100, 64 << 10} {
				what := fmt.Sprintf("%s body over %s, %d-byte reads", bd.name, fd.name, readSize)
				b := NewReader(fd.wrap(in), fd.size)
				lim := testLimits()
				var r Request
				require.NoError(t, b.ReadRequest(&r, &lim), what)
				want := summarizeRequest(&r)
				b.Pin()
				var body io.Reader
				if r.Chunked {
					var c ChunkedReader
					c.Reset(b)
					body = &c
				} else {
					var l LengthReader
					l.Reset(b, r.ContentLength)
					body = &l
				}
				var got []byte
				buf := make([]byte, readSize)
				for {
					n, err := body.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					require.NoError(t, err, what)
				}
				assert.Equal(t, data, got, "%s: body", what)
				assert.Equal(t, want, summarizeRequest(&r), "%s: head changed while the body was read", what)
				b.Unpin()
				require.NoError(t, b.ReadRequest(&r, &lim), "%s: next request", what)
				assert.Equal(t, "/next", string(r.Target), "%s: next request", what)
				assert.Equal(t, "b", string(r.Host), "%s: next request", what)
			}
		}
	}
}

// TestReaderBuffered checks Buffered, Bytes and Discard around a parsed
// head.
func TestReaderBuffered(t *testing.T) {
	t.Parallel()
	in := head11("Content-Length: 5") + "helloGET"
	b := NewReader(bytes.NewReader([]byte(in)), 0)
	lim := testLimits()
	var r Request
	require.NoError(t, b.ReadRequest(&r, &lim), "sent %q", in)
	assert.Equal(t, len(in)-len("helloGET"), r.HeadLen, "sent %q: HeadLen", in)
	assert.Equal(t, 8, b.Buffered(), "sent %q: buffered after the head", in)
	assert.Equal(t, "helloGET", string(b.Bytes()), "sent %q: buffered after the head", in)
	b.Discard(5)
	assert.Equal(t, "GET", string(b.Bytes()), "sent %q: after Discard(5)", in)
	assert.NoError(t, b.Err(), "no read error yet")
}

// TestReaderStickyError checks that a read error is kept until ClearErr
// and returned only once the buffer is drained.
func TestReaderStickyError(t *testing.T) {
	t.Parallel()
	src := &stopReader{data: []byte("abcdef"), stops: []int{3}, withData: true}
	b := NewReader(src, 16)
	n, err := b.Fill(16)
	require.NoError(t, err, "first fill returns the data that came with the error")
	assert.Equal(t, 3, n, "first fill")
	assert.True(t, isTimeout(b.Err()), "sticky error: got %v", b.Err())
	p := make([]byte, 8)
	n, err = b.Read(p)
	require.NoError(t, err, "buffered bytes come first")
	assert.Equal(t, "abc", string(p[:n]))
	_, err = b.Read(p)
	assert.True(t, isTimeout(err), "then the error: got %v", err)
	_, err = b.Read(p)
	assert.True(t, isTimeout(err), "again until ClearErr: got %v", err)
	b.ClearErr()
	n, err = b.Read(p)
	require.NoError(t, err, "after ClearErr")
	assert.Equal(t, "def", string(p[:n]))
}
