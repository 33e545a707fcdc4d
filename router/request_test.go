package router

// Request-path tests over real sockets (SPEC.md sections 4, 4b, 6, 7, 9):
// raw bytes go to the router, the raw response and the router line come
// back, and raw dynos record what reached them. This file holds the shared
// helpers (all named rq…) and the parsing and rejection tests.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rqIOTimeout bounds every blocking read or write of a test.
const rqIOTimeout = 5 * time.Second

// rqReq is one request as a raw dyno received it.
type rqReq struct {
	head    string // request line and fields through the blank line
	body    []byte // the body, decoded when chunked
	rawBody []byte // the body as it came on the wire
}

// requestLine returns the first line of the head, without its line end.
func (r rqReq) requestLine() string {
	ln, _, _ := strings.Cut(r.head, "\r\n")
	return ln
}

// fieldLines returns the head's field lines in order, without line ends.
func (r rqReq) fieldLines() []string { return rqFieldLines(r.head) }

// values returns the values of the fields named name (any case), in order.
func (r rqReq) values(name string) []string { return rqValues(r.head, name) }

// value returns the only value of the field name; it fails the test when
// the field is missing or repeated.
func (r rqReq) value(t testing.TB, name string) string {
	t.Helper()
	v := r.values(name)
	require.Len(t, v, 1, "want exactly one %s field in the head the dyno got:\n%s", name, r.head)
	return v[0]
}

// rqFieldLines returns the field lines of a message head (request or
// response), without the start line and line ends.
func rqFieldLines(head string) []string {
	lines := strings.Split(strings.TrimRight(head, "\r\n"), "\n")
	var out []string
	for _, ln := range lines[1:] {
		out = append(out, strings.TrimSuffix(ln, "\r"))
	}
	return out
}

// rqValues returns the values of the fields named name (any case) in head.
func rqValues(head, name string) []string {
	var out []string
	for _, ln := range rqFieldLines(head) {
		n, v, ok := strings.Cut(ln, ":")
		if ok && strings.EqualFold(n, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// rqReadHead reads one message head (through the blank line) from br; it
// returns "" at EOF or on error.
func rqReadHead(br *bufio.Reader) string { return readRequestHead(br) }

// rqReadRequest reads one request, head and body, as a dyno sees it.
func rqReadRequest(br *bufio.Reader) (rqReq, error) {
	head := rqReadHead(br)
	if head == "" {
		return rqReq{}, io.EOF
	}
	r := rqReq{head: head}
	te := r.values("transfer-encoding")
	cl := r.values("content-length")
	switch {
	case len(te) > 0:
		var err error
		r.body, r.rawBody, err = rqReadChunked(br)
		if err != nil {
			return r, err
		}
	case len(cl) == 1:
		n, err := strconv.Atoi(cl[0])
		if err != nil {
			return r, err
		}
		r.body = make([]byte, n)
		if _, err := io.ReadFull(br, r.body); err != nil {
			return r, err
		}
		r.rawBody = r.body
	}
	return r, nil
}

// rqReadChunked reads a chunked body: the decoded bytes and the raw bytes
// (chunk lines and trailer section included).
func rqReadChunked(br *bufio.Reader) (body, raw []byte, err error) {
	for {
		ln, err := br.ReadString('\n')
		raw = append(raw, ln...)
		if err != nil {
			return body, raw, err
		}
		sz, _, _ := strings.Cut(strings.TrimRight(ln, "\r\n"), ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
		if err != nil {
			return body, raw, fmt.Errorf("chunk size line %q: %w", ln, err)
		}
		if n == 0 {
			for {
				tl, err := br.ReadString('\n')
				raw = append(raw, tl...)
				if err != nil {
					return body, raw, err
				}
				if tl == "\r\n" || tl == "\n" {
					return body, raw, nil
				}
			}
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return body, raw, err
		}
		raw = append(raw, chunk...)
		body = append(body, chunk[:n]...)
	}
}

// rqDyno is a raw dyno that records every request it reads and answers it
// with what respond returns (a whole raw response).
type rqDyno struct {
	*rawDyno
	got  chan rqReq
	reqs atomic.Int32
}

// rqOK is the default dyno response.
const rqOK = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

// rqRecordingDyno starts a dyno that answers every request with respond(r),
// or rqOK when respond is nil, on a keep-alive connection.
func rqRecordingDyno(t testing.TB, respond func(r rqReq) string) *rqDyno {
	t.Helper()
	d := &rqDyno{got: make(chan rqReq, 256)}
	d.rawDyno = startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := rqReadRequest(br)
			if r.head == "" {
				return
			}
			d.reqs.Add(1)
			d.got <- r
			if err != nil {
				return
			}
			resp := rqOK
			if respond != nil {
				resp = respond(r)
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
		}
	})
	return d
}

// next returns the next request the dyno received, waiting for it.
func (d *rqDyno) next(t testing.TB) rqReq {
	t.Helper()
	select {
	case r := <-d.got:
		return r
	case <-time.After(rqIOTimeout):
		t.Fatalf("the dyno received no request within %s", rqIOTimeout)
		return rqReq{}
	}
}

// rqConn is a client connection to the router under test.
type rqConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// rqOpen dials the router; the connection is closed at the end of the test.
func rqOpen(t testing.TB, tr *testRouter) *rqConn {
	t.Helper()
	c := tr.dial(t)
	return &rqConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw bytes.
func (c *rqConn) send(raw string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(rqIOTimeout))
	_, err := io.WriteString(c.c, raw)
	require.NoError(c.t, err, "writing %q to the router", rqShort(raw))
}

// response reads one response to a request with the given method and its
// whole body.
func (c *rqConn) response(method, sent string) (*http.Response, string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rqIOTimeout))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	require.NoError(c.t, err, "reading the response to %q", rqShort(sent))
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err, "reading the response body to %q", rqShort(sent))
	return resp, string(body)
}

// roundTrip sends raw and reads the response to it.
func (c *rqConn) roundTrip(raw, method string) (*http.Response, string) {
	c.t.Helper()
	c.send(raw)
	return c.response(method, raw)
}

// rawHead reads one raw response head (through the blank line).
func (c *rqConn) rawHead(sent string) string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rqIOTimeout))
	h := rqReadHead(c.br)
	require.NotEmpty(c.t, h, "no response head came back for %q", rqShort(sent))
	return h
}

// readAll reads until the router closes the connection and returns what
// came.
func (c *rqConn) readAll(sent string) string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rqIOTimeout))
	b, err := io.ReadAll(c.br)
	require.NoError(c.t, err, "reading to EOF after %q; got %q", rqShort(sent), b)
	return string(b)
}

// expectClosed asserts that the router closed the connection: the next
// read returns io.EOF, with no byte before it.
func (c *rqConn) expectClosed(sent string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rqIOTimeout))
	b, err := c.br.ReadByte()
	if err == nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Errorf("after the response to %q the router sent more bytes (%q) instead of closing", rqShort(sent), string(b)+string(rest))
		return
	}
	assert.ErrorIs(c.t, err, io.EOF, "after the response to %q the connection must be closed cleanly (read returns EOF)", rqShort(sent))
}

// expectSilent asserts that nothing arrives on the connection for d and
// that it stays open.
func (c *rqConn) expectSilent(d time.Duration, what string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(d))
	b, err := c.br.ReadByte()
	require.Error(c.t, err, "%s: nothing should arrive yet, got byte %q", what, b)
	require.ErrorIs(c.t, err, os.ErrDeadlineExceeded, "%s: the connection should stay open and silent", what)
}

// rqShort shortens raw bytes for failure messages.
func rqShort(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// rqLinePart returns the part of a router line after the source token.
func rqLinePart(line string) string {
	_, after, ok := strings.Cut(line, " heroku[router]: ")
	if !ok {
		return line
	}
	return after
}

// rqAssertNoDynoFields asserts `dyno= connect= service=` all empty on a
// line with a code, and `dyno= connect=0ms service=0ms` on one without
// (SPEC.md 7: log consumers parse a code-less line's timings as numbers).
func rqAssertNoDynoFields(t testing.TB, line, sent string) {
	t.Helper()
	if strings.Contains(line, " code=") {
		assert.Contains(t, line, " dyno= connect= service= status=",
			"the line of a request no dyno served must leave dyno, connect and service empty; sent %q", rqShort(sent))
		return
	}
	assert.Contains(t, line, " dyno= connect=0ms service=0ms status=",
		"a code-less line of a request no dyno served has no dyno and 0ms timings; sent %q", rqShort(sent))
}

// rqOnce returns a function that closes ch once, however often it is called.
func rqOnce(ch chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// rqHoldingDyno starts a dyno that reports each request on arrived
// and answers it with 200 (body: the dyno's tag) only once release is
// closed. The returned release function is idempotent; it is also called
// when the test ends, before the router is shut down, so no request stays
// in flight.
func rqHoldingDyno(t testing.TB, tag string, arrived chan<- string) (*rawDyno, func()) {
	t.Helper()
	release := make(chan struct{})
	rel := rqOnce(release)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := rqReadRequest(br); err != nil {
				return
			}
			arrived <- tag
			<-release
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(tag), tag); err != nil {
				return
			}
		}
	})
	return d, rel
}

// rqParseLimits are small limits for the parsing tests.
const rqParseLimits = "limits: {request_line_bytes: 100, method_bytes: 10, header_name_bytes: 40, header_bytes: 200, cookie_bytes: 300, headers_total_bytes: 1000, header_count: 8}\n"

// TestReqParseRejected: a request that breaks a limit or a rule of SPEC.md
// 4.2/4b gets its status and its H25/H26 router line with no dyno, the
// connection is closed after the response, and no byte reaches a dyno.
func TestReqParseRejected(t *testing.T) {
	t.Parallel()
	const h = "Host: shop.test\r\n"
	const (
		h25Line   = `at=error code=H25 desc="HTTP restriction: oversized status line" `
		h25Header = `at=error code=H25 desc="HTTP restriction: oversized header" `
		h25Cookie = `at=error code=H25 desc="HTTP restriction: oversized cookies" `
		h26Bad    = `at=error code=H26 desc="Request Error" cause="bad header" `
		h26Expect = `at=error code=H26 desc="Request Error" cause="unsupported expect header value" `
	)
	many := func(n int, size int) string {
		var b strings.Builder
		for i := range n {
			v := strings.Repeat("v", size-len("X-F00: "))
			fmt.Fprintf(&b, "X-F%02d: %s\r\n", i, v)
		}
		return b.String()
	}
	cases := []struct {
		name   string
		raw    string
		status int
		// line is the start of the line's fields (after "heroku[router]: ");
		// "" checks only the code via code.
		line string
		code string
	}{
		{"request line over request_line_bytes", "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n" + h + "\r\n", 414, h25Line, ""},
		{"field over header_bytes", "GET / HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("b", 194) + "\r\n\r\n", 400, h25Header, ""},
		{"cookie over cookie_bytes", "GET / HTTP/1.1\r\n" + h + "Cookie: a=" + strings.Repeat("c", 291) + "\r\n\r\n", 400, h25Cookie, ""},
		{"header_count exceeded", "GET / HTTP/1.1\r\n" + h + many(8, 20) + "\r\n", 400, h25Header, ""},
		{"headers_total_bytes exceeded", "GET / HTTP/1.1\r\n" + h + many(6, 190) + "\r\n", 400, h25Header, ""},
		{"field name over header_name_bytes", "GET / HTTP/1.1\r\n" + h + "X-" + strings.Repeat("n", 45) + ": v\r\n\r\n", 400, h25Header, ""},
		{"method over method_bytes", "ABCDEFGHIJK / HTTP/1.1\r\n" + h + "\r\n", 400, "", "H25"},
		{"two equal Content-Length fields", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na", 400, h26Bad, ""},
		{"Content-Length list 1, 1", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1, 1\r\n\r\na", 400, h26Bad, ""},
		{"Content-Length not a number", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1a\r\n\r\na", 400, h26Bad, ""},
		{"Content-Length negative", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\na", 400, h26Bad, ""},
		{"Content-Length with a plus sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +1\r\n\r\na", 400, h26Bad, ""},
		{"Content-Length and Transfer-Encoding with a smuggled request", "POST / HTTP/1.1\r\n" + h + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n", 400, h26Bad, ""},
		{"two Transfer-Encoding fields", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, h26Bad, ""},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, h26Bad, ""},
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 400, h26Bad, ""},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, h26Bad, ""},
		{"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, h26Bad, ""},
		{"obs-fold", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n b\r\n\r\n", 400, h26Bad, ""},
		{"white space line after the request line", "GET / HTTP/1.1\r\n X-A: a\r\n" + h + "\r\n", 400, h26Bad, ""},
		{"space before colon", "GET / HTTP/1.1\r\n" + h + "X-A : b\r\n\r\n", 400, h26Bad, ""},
		{"non-token byte in a field name", "GET / HTTP/1.1\r\n" + h + "X(A): b\r\n\r\n", 400, h26Bad, ""},
		{"empty field name", "GET / HTTP/1.1\r\n" + h + ": b\r\n\r\n", 400, h26Bad, ""},
		{"field line without colon", "GET / HTTP/1.1\r\n" + h + "X-A b\r\n\r\n", 400, h26Bad, ""},
		{"NUL in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n", 400, h26Bad, ""},
		// Heroku's own example of an H26 bad header (research/heroku-router.md section 2).
		{"Connection with no token", "GET / HTTP/1.1\r\n" + h + "Connection: ,\r\n\r\n", 400, h26Bad, ""},
		{"bare CR in a value", "GET / HTTP/1.1\r\n" + h + "X-A: a\rb\r\n\r\n", 400, h26Bad, ""},
		{"second Host", "GET / HTTP/1.1\r\n" + h + h + "\r\n", 400, h26Bad, ""},
		{"missing Host on HTTP/1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, h26Bad, ""},
		{"HTTP/1.0 without Host on plain HTTP", "GET / HTTP/1.0\r\nX-A: b\r\n\r\n", 400, "", ""},
		{"two spaces in the request line", "GET  / HTTP/1.1\r\n" + h + "\r\n", 400, "", ""},
		{"trailing space in the request line", "GET / HTTP/1.1 \r\n" + h + "\r\n", 400, "", ""},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n" + h + "\r\n", 400, "", ""},
		{"lower-case version", "GET / http/1.1\r\n" + h + "\r\n", 400, "", ""},
		{"tab in the target", "GET /a\tb HTTP/1.1\r\n" + h + "\r\n", 400, "", ""},
		{"non-token method", "GE(T / HTTP/1.1\r\n" + h + "\r\n", 400, "", ""},
		{"Host with a path", "GET / HTTP/1.1\r\nHost: shop.test/x\r\n\r\n", 400, h26Bad, ""},
		{"Expect other than 100-continue", "POST / HTTP/1.1\r\n" + h + "Expect: foo\r\nContent-Length: 3\r\n\r\nabc", 417, h26Expect, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := rqRecordingDyno(t, nil)
			tr := startRouter(t, rqParseLimits+oneApp("", d.addr()))
			c := rqOpen(t, tr)
			resp, _ := c.roundTrip(tc.raw, "GET")
			assert.Equal(t, tc.status, resp.StatusCode, "status of the response to %q", rqShort(tc.raw))
			c.expectClosed(tc.raw)
			line := tr.lines.wait(t, 0)
			if tc.line != "" {
				assert.True(t, strings.HasPrefix(rqLinePart(line), tc.line),
					"sent %q: the router line should start with %q; got %q", rqShort(tc.raw), tc.line, line)
			}
			if tc.code != "" {
				assert.Equal(t, tc.code, field(line, "code"), "sent %q; line %q", rqShort(tc.raw), line)
			}
			rqAssertNoDynoFields(t, line, tc.raw)
			assert.Equal(t, strconv.Itoa(tc.status), field(line, "status"), "status= in %q", line)
			assert.Zero(t, d.accepted(), "sent %q: a rejected request must not reach a dyno", rqShort(tc.raw))
			assert.Len(t, rqLines(tr), 1, "one router line per request")
		})
	}
}

// TestReqParseAccepted: requests at the limits, odd but valid methods,
// OPTIONS *, leading empty lines and bare-LF line ends are forwarded as
// they are (SPEC.md 4.2, 4b).
func TestReqParseAccepted(t *testing.T) {
	t.Parallel()
	const h = "Host: shop.test\r\n"
	target87 := "/" + strings.Repeat("a", 86)
	cases := []struct {
		name     string
		raw      string
		wantLine string // the request line the dyno must get
		wantPath string // path= in the router line
	}{
		{"request line at request_line_bytes", "GET " + target87 + " HTTP/1.1\r\n" + h + "\r\n", "GET " + target87 + " HTTP/1.1", target87},
		{"field at header_bytes", "GET /f HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("b", 193) + "\r\n\r\n", "GET /f HTTP/1.1", "/f"},
		{"cookie over header_bytes but within cookie_bytes", "GET /c HTTP/1.1\r\n" + h + "Cookie: a=" + strings.Repeat("c", 240) + "\r\n\r\n", "GET /c HTTP/1.1", "/c"},
		{"header_count fields", "GET /n HTTP/1.1\r\n" + h + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\n\r\n", "GET /n HTTP/1.1", "/n"},
		{"method at method_bytes", "ABCDEFGHIJ /m HTTP/1.1\r\n" + h + "\r\n", "ABCDEFGHIJ /m HTTP/1.1", "/m"},
		{"PURGE", "PURGE /cache/x HTTP/1.1\r\n" + h + "\r\n", "PURGE /cache/x HTTP/1.1", "/cache/x"},
		{"M-SEARCH", "M-SEARCH * HTTP/1.1\r\n" + h + "\r\n", "M-SEARCH * HTTP/1.1", "*"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + h + "\r\n", "OPTIONS * HTTP/1.1", "*"},
		{"leading CRLF", "\r\nGET /lead HTTP/1.1\r\n" + h + "\r\n", "GET /lead HTTP/1.1", "/lead"},
		{"Connection with an empty list element", "GET /ce2 HTTP/1.1\r\n" + h + "Connection: , keep-alive\r\n\r\n", "GET /ce2 HTTP/1.1", "/ce2"},
		{"lower-case method", "get /lc HTTP/1.1\r\n" + h + "\r\n", "get /lc HTTP/1.1", "/lc"},
		{"bare LF line ends", "GET /lf HTTP/1.1\nHost: shop.test\n\n", "GET /lf HTTP/1.1", "/lf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := rqRecordingDyno(t, nil)
			tr := startRouter(t, rqParseLimits+oneApp("", d.addr()))
			c := rqOpen(t, tr)
			method, _, _ := strings.Cut(strings.TrimLeft(tc.raw, "\r\n"), " ")
			resp, body := c.roundTrip(tc.raw, method)
			require.Equal(t, 200, resp.StatusCode, "sent %q; body %q", rqShort(tc.raw), body)
			got := d.next(t)
			assert.Equal(t, tc.wantLine, got.requestLine(), "request line the dyno got for %q", rqShort(tc.raw))
			line := tr.lines.wait(t, 0)
			assert.Equal(t, method, field(line, "method"), "line %q", line)
			assert.Equal(t, tc.wantPath, field(line, "path"), "line %q", line)
			assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
			// The connection goes on.
			resp, _ = c.roundTrip("GET /again HTTP/1.1\r\n"+h+"\r\n", "GET")
			assert.Equal(t, 200, resp.StatusCode, "a second request on the connection after %q", rqShort(tc.raw))
		})
	}
}

// TestReqParseConnect: CONNECT gets 405 and reaches no dyno (SPEC.md 4.2).
func TestReqParseConnect(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, oneApp("", d.addr()))
	raw := "CONNECT shop.test:443 HTTP/1.1\r\nHost: shop.test:443\r\n\r\n"
	resp, _ := tr.roundTrip(t, raw, "GET")
	assert.Equal(t, 405, resp.StatusCode, "status for %q", raw)
	line := tr.lines.wait(t, 0)
	assert.Equal(t, "CONNECT", field(line, "method"), "line %q", line)
	assert.Equal(t, "405", field(line, "status"), "line %q", line)
	rqAssertNoDynoFields(t, line, raw)
	assert.Zero(t, d.accepted(), "CONNECT must not reach a dyno")
}

// TestReqParseBadChunk: a malformed chunked body gets 400 with H26 bad
// chunk and the client connection is closed. A body that fits in
// buffering.request_bytes is read before a dyno is chosen (SPEC.md 4.7):
// no dyno is named and none is reached. With request_bytes 0 the body
// streams to the dyno: the line names it, and the dyno never gets a
// complete request.
func TestReqParseBadChunk(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, chunks string }{
		{"size not hex", "5\r\nhello\r\nZZ\r\nmore\r\n"},
		{"no CRLF after the data", "5\r\nhelloXX\r\n0\r\n\r\n"},
		{"size overflows", "5\r\nhello\r\nfffffffffffffffffff\r\nmore\r\n"},
		{"bare LF after the size", "5\r\nhello\r\n3\nabc\r\n0\r\n\r\n"},
		{"negative size", "5\r\nhello\r\n-3\r\nabc\r\n0\r\n\r\n"},
		{"bad trailer field", "5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n"},
	}
	for _, streaming := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s streaming=%v", tc.name, streaming), func(t *testing.T) {
				t.Parallel()
				dynoGot := make(chan string, 1)
				d := startRawDyno(t, func(c net.Conn) {
					c.SetReadDeadline(time.Now().Add(rqIOTimeout))
					b, _ := io.ReadAll(c)
					dynoGot <- string(b)
				})
				cfg := oneApp("", d.addr())
				if streaming {
					cfg = "buffering: {request_bytes: 0}\n" + cfg
				}
				tr := startRouter(t, cfg)
				c := rqOpen(t, tr)
				raw := "POST /up HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.chunks
				resp, _ := c.roundTrip(raw, "POST")
				assert.Equal(t, 400, resp.StatusCode, "status for %q", raw)
				c.expectClosed(raw)
				line := tr.lines.wait(t, 0)
				assert.True(t, strings.HasPrefix(rqLinePart(line), `at=error code=H26 desc="Request Error" cause="bad chunk" method=POST path="/up"`),
					"sent %q; line %q", raw, line)
				assert.Equal(t, "400", field(line, "status"), "line %q", line)
				if !streaming {
					assert.Contains(t, line, " dyno= connect= service= ", "the body was refused before a dyno was chosen")
					assert.Zero(t, d.accepted(), "a body refused while buffered must reach no dyno")
					return
				}
				assert.Equal(t, "web.1", field(line, "dyno"), "the body was streaming to web.1; line %q", line)
				select {
				case got := <-dynoGot:
					_, body, _ := strings.Cut(got, "\r\n\r\n")
					assert.NotContains(t, body, "0\r\n\r\n", "the dyno must not get a complete chunked body; got %q", got)
					assert.NotContains(t, body, "more", "bytes after the bad chunk must not reach the dyno; got %q", got)
				case <-time.After(rqIOTimeout):
					t.Fatal("the router did not close its dyno connection after the bad chunk")
				}
			})
		}
	}
}

// TestReqParseRejectedBigRequest: a client that sends a large oversized
// head still reads the router's 400: the router must not reset the
// connection under the response (SPEC: "a clear error, nothing lost").
func TestReqParseRejectedBigRequest(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, rqParseLimits+oneApp("", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET / HTTP/1.1\r\nHost: shop.test\r\nX-Big: " + strings.Repeat("b", 64<<10) + "\r\n\r\n"
	go func() {
		c.c.SetWriteDeadline(time.Now().Add(rqIOTimeout))
		io.WriteString(c.c, raw) // may fail once the router closes
	}()
	c.c.SetReadDeadline(time.Now().Add(rqIOTimeout))
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(t, err, "a client that sent a 64 KiB field (header_bytes: 200) must read the 400, not a reset")
	assert.Equal(t, 400, resp.StatusCode)
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `code=H25 desc="HTTP restriction: oversized header"`, "line %q", line)
	assert.Zero(t, d.accepted(), "nothing reaches the dyno")
}

// rqLineWithPath waits for the router line whose path= is path (paths are
// unique within a test, so lines of sequential connections can be told
// apart whatever order they were written in).
func rqLineWithPath(t testing.TB, tr *testRouter, path string) string {
	t.Helper()
	var found string
	ok := assert.Eventually(t, func() bool {
		tr.lines.mu.Lock()
		defer tr.lines.mu.Unlock()
		for _, l := range tr.lines.lines {
			if field(l, "path") == path {
				found = l
				return true
			}
		}
		return false
	}, rqIOTimeout, time.Millisecond, "no router line with path=%q", path)
	if !ok {
		t.Fatalf("router lines: %q", rqLines(tr))
	}
	return found
}

// rqLines returns a copy of the router lines written so far.
func rqLines(tr *testRouter) []string {
	tr.lines.mu.Lock()
	defer tr.lines.mu.Unlock()
	return append([]string(nil), tr.lines.lines...)
}
