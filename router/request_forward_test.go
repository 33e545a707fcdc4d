package router

// Forwarding tests: what the dyno gets (SPEC.md 4.7) and what the client
// gets back (4.8).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rqUUIDv4 matches a lower-case UUID v4.
var rqUUIDv4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// rqForward sends raw to a fresh router and returns what the dyno got and
// the router line.
func rqForward(t *testing.T, extra, raw, method string) (rqReq, string, *testRouter) {
	t.Helper()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, oneApp(extra, d.addr()))
	resp, body := tr.roundTrip(t, raw, method)
	require.Equal(t, 200, resp.StatusCode, "sent %q; body %q", rqShort(raw), body)
	return d.next(t), tr.lines.wait(t, 0), tr
}

// TestReqForwardVersion: an HTTP/1.0 request goes to the dyno as HTTP/1.1.
func TestReqForwardVersion(t *testing.T) {
	t.Parallel()
	raw := "GET /old?x=1 HTTP/1.0\r\nHost: shop.test\r\n\r\n"
	got, line, _ := rqForward(t, "", raw, "GET")
	assert.Equal(t, "GET /old?x=1 HTTP/1.1", got.requestLine(), "sent %q; dyno head:\n%s", raw, got.head)
	assert.Equal(t, "http1.0", field(line, "protocol"), "line %q", line)
}

// TestReqForwardHopByHop: Connection and the fields it names, Keep-Alive,
// Proxy-Connection, TE, Trailer and Upgrade (no upgrade asked) are not
// forwarded; other fields keep their case and order.
func TestReqForwardHopByHop(t *testing.T) {
	t.Parallel()
	raw := "GET /hop HTTP/1.1\r\n" +
		"x-lower: 1\r\n" +
		"Host: shop.test\r\n" +
		"Connection: keep-alive, X-Drop-Me\r\n" +
		"X-Drop-Me: secret\r\n" +
		"X-MiXeD-CaSe: 2\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"TE: trailers\r\n" +
		"Trailer: X-T\r\n" +
		"Upgrade: websocket\r\n" +
		"ZZZ: 3\r\n" +
		"Aaa: 4\r\n" +
		"X-Dup: a\r\n" +
		"X-Dup: b\r\n" +
		"X-Utf8: caf\xc3\xa9\r\n" +
		"X-Empty:\r\n" +
		"\r\n"
	got, _, _ := rqForward(t, "", raw, "GET")
	for _, name := range []string{"Connection", "X-Drop-Me", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"} {
		assert.Empty(t, got.values(name), "%s must not reach the dyno; dyno head:\n%s", name, got.head)
	}
	var kept []string
	assert.Equal(t, []string{"caf\xc3\xa9"}, got.values("X-Utf8"), "obs-text passes as is; dyno head:\n%s", got.head)
	assert.Equal(t, []string{""}, got.values("X-Empty"), "an empty field is forwarded; dyno head:\n%s", got.head)
	want := map[string]bool{"x-lower": true, "host": true, "x-mixed-case": true, "zzz": true, "aaa": true, "x-dup": true}
	for _, ln := range got.fieldLines() {
		n, _, _ := strings.Cut(ln, ":")
		if want[strings.ToLower(n)] {
			kept = append(kept, ln)
		}
	}
	assert.Equal(t, []string{"x-lower: 1", "Host: shop.test", "X-MiXeD-CaSe: 2", "ZZZ: 3", "Aaa: 4", "X-Dup: a", "X-Dup: b"}, kept,
		"end-to-end fields keep their case, order and repetition; dyno head:\n%s", got.head)
}

// TestReqForwardRequestID: X-Request-Id is kept when it is 20–200 bytes of
// A-Z a-z 0-9 + = / -, else replaced by a new lower-case UUID v4; the
// line's request_id is the value sent to the dyno.
func TestReqForwardRequestID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, id string // id "" sends no field
		keep     bool
	}{
		{"none", "", false},
		{"20 characters", "abcdefghij0123456789", true},
		{"all allowed characters", "AZaz09+=/-AZaz09+=/-", true},
		{"200 characters", strings.Repeat("a1", 100), true},
		{"19 characters", "abcdefghij012345678", false},
		{"201 characters", strings.Repeat("a1", 100) + "b", false},
		{"underscore", "abcdefghij0123456789_", false},
		{"dot", "abcdefghij.0123456789", false},
		{"space inside", "abcdefghij 0123456789", false},
	}
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, oneApp("", d.addr()))
	seen := map[string]bool{}
	for i, tc := range cases {
		path := fmt.Sprintf("/id%d", i)
		raw := "GET " + path + " HTTP/1.1\r\nHost: shop.test\r\n"
		if tc.id != "" {
			raw += "X-Request-Id: " + tc.id + "\r\n"
		}
		raw += "\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode, tc.name)
		got := d.next(t)
		line := rqLineWithPath(t, tr, path)
		id := got.value(t, "X-Request-Id")
		if tc.keep {
			assert.Equal(t, tc.id, id, "%s: a valid id is kept", tc.name)
		} else {
			assert.Regexp(t, rqUUIDv4, id, "%s: sent %q, the dyno must get a new lower-case UUID v4", tc.name, tc.id)
			assert.False(t, seen[id], "%s: a new id per request; %q was used before", tc.name, id)
			seen[id] = true
		}
		assert.Equal(t, id, field(line, "request_id"), "%s: request_id= is the id sent to the dyno; line %q", tc.name, line)
	}
}

// TestReqForwardAddedFields: X-Forwarded-For appends the client IP,
// X-Forwarded-Proto/Port/X-Request-Start replace the client's values, Via
// is appended (SPEC.md 4.7), and fwd= is the X-Forwarded-For sent.
func TestReqForwardAddedFields(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, oneApp("", d.addr()))
	_, port, err := net.SplitHostPort(tr.addr)
	require.NoError(t, err)

	t.Run("client values", func(t *testing.T) {
		raw := "GET /f0 HTTP/1.1\r\nHost: shop.test\r\n" +
			"X-Forwarded-For: 203.0.113.7\r\n" +
			"X-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Port: 443\r\n" +
			"X-Request-Start: 1\r\n" +
			"Via: 1.0 fred\r\n\r\n"
		before := time.Now().UnixMilli()
		resp, _ := tr.roundTrip(t, raw, "GET")
		after := time.Now().UnixMilli()
		require.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		line := rqLineWithPath(t, tr, "/f0")
		assert.Equal(t, "203.0.113.7, 127.0.0.1", got.value(t, "X-Forwarded-For"), "the client IP is appended; dyno head:\n%s", got.head)
		assert.Equal(t, "203.0.113.7, 127.0.0.1", field(line, "fwd"), "fwd= is the X-Forwarded-For sent to the dyno; line %q", line)
		assert.Equal(t, "http", got.value(t, "X-Forwarded-Proto"), "dyno head:\n%s", got.head)
		assert.Equal(t, port, got.value(t, "X-Forwarded-Port"), "the listener's port; dyno head:\n%s", got.head)
		start, err := strconv.ParseInt(got.value(t, "X-Request-Start"), 10, 64)
		require.NoError(t, err, "X-Request-Start is an integer; dyno head:\n%s", got.head)
		assert.GreaterOrEqual(t, start, before, "X-Request-Start is when the request arrived, in ms")
		assert.LessOrEqual(t, start, after, "X-Request-Start is when the request arrived, in ms")
		assert.Equal(t, "1.0 fred, 1.1 spacerouter", strings.Join(got.values("Via"), ", "), "Via is appended; dyno head:\n%s", got.head)
	})
	t.Run("no client values", func(t *testing.T) {
		raw := "GET /f1 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		line := rqLineWithPath(t, tr, "/f1")
		assert.Equal(t, "127.0.0.1", got.value(t, "X-Forwarded-For"), "dyno head:\n%s", got.head)
		assert.Equal(t, "127.0.0.1", field(line, "fwd"), "line %q", line)
		assert.Equal(t, "1.1 spacerouter", got.value(t, "Via"), "dyno head:\n%s", got.head)
	})
	t.Run("two client X-Forwarded-For fields", func(t *testing.T) {
		raw := "GET /f2 HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		line := rqLineWithPath(t, tr, "/f2")
		assert.Equal(t, "198.51.100.1, 203.0.113.7, 127.0.0.1", got.value(t, "X-Forwarded-For"), "dyno head:\n%s", got.head)
		assert.Equal(t, "198.51.100.1, 203.0.113.7, 127.0.0.1", field(line, "fwd"), "line %q", line)
	})
}

// TestReqForwardBody: Content-Length and chunked request bodies reach the
// dyno intact; chunked ones re-chunked without their trailers (SPEC.md 4b).
func TestReqForwardBody(t *testing.T) {
	t.Parallel()
	t.Run("content-length", func(t *testing.T) {
		t.Parallel()
		body := "name=value&x=" + strings.Repeat("y", 5000)
		raw := fmt.Sprintf("POST /cl HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		got, line, _ := rqForward(t, "", raw, "POST")
		assert.Equal(t, strconv.Itoa(len(body)), got.value(t, "Content-Length"), "dyno head:\n%s", got.head)
		assert.Empty(t, got.values("Transfer-Encoding"), "dyno head:\n%s", got.head)
		assert.Equal(t, body, string(got.body), "the body arrives intact")
		assert.Equal(t, "2", field(line, "bytes"), "bytes= counts the response body only; line %q", line)
	})
	t.Run("chunked with trailers", func(t *testing.T) {
		t.Parallel()
		raw := "POST /ch HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nX-T: secret-trailer\r\n\r\n"
		// Read whole before a dyno is chosen (SPEC.md 4.7), the body goes
		// out with its length.
		got, _, _ := rqForward(t, "", raw, "POST")
		assert.Equal(t, "21", got.value(t, "Content-Length"), "dyno head:\n%s", got.head)
		assert.Empty(t, got.values("Transfer-Encoding"), "dyno head:\n%s", got.head)
		assert.Empty(t, got.values("Trailer"), "dyno head:\n%s", got.head)
		assert.Equal(t, "hello world0123456789", string(got.body), "the decoded body arrives intact")
		assert.NotContains(t, string(got.rawBody), "secret-trailer", "request trailers are dropped; raw body %q", got.rawBody)
	})
	t.Run("chunked with trailers streamed", func(t *testing.T) {
		t.Parallel()
		raw := "POST /ch HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"5\r\nhello\r\n6;ext=1\r\n world\r\nA\r\n0123456789\r\n0\r\nX-T: secret-trailer\r\n\r\n"
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, "buffering: {request_bytes: 0}\n"+oneApp("", d.addr()))
		resp, body := tr.roundTrip(t, raw, "POST")
		require.Equal(t, 200, resp.StatusCode, "sent %q; body %q", rqShort(raw), body)
		got := d.next(t)
		assert.Equal(t, "chunked", got.value(t, "Transfer-Encoding"), "dyno head:\n%s", got.head)
		assert.Empty(t, got.values("Content-Length"), "dyno head:\n%s", got.head)
		assert.Empty(t, got.values("Trailer"), "dyno head:\n%s", got.head)
		assert.Equal(t, "hello world0123456789", string(got.body), "the decoded body arrives intact")
		assert.True(t, bytes.HasSuffix(got.rawBody, []byte("\r\n0\r\n\r\n")), "request trailers are dropped; raw body %q", got.rawBody)
		assert.NotContains(t, string(got.rawBody), "secret-trailer", "request trailers are dropped; raw body %q", got.rawBody)
	})
}

// TestReqForwardStreamedBody: a 1 MiB body streams to the dyno as it
// arrives: the dyno reads the first half before the client sends the
// second, and the whole arrives intact.
func TestReqForwardStreamedBody(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>9)
	}
	sum := sha256.Sum256(body)
	halfSeen := make(chan struct{})
	seen := rqOnce(halfSeen)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head := rqReadHead(br)
		if head == "" {
			return
		}
		h := sha256.New()
		if _, err := io.CopyN(h, br, size/4); err != nil {
			return
		}
		seen()
		if _, err := io.CopyN(h, br, size-size/4); err != nil {
			return
		}
		sum := hex.EncodeToString(h.Sum(nil))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(sum), sum)
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	head := fmt.Sprintf("POST /big HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n", size)
	c.send(head + string(body[:size/2]))
	select {
	case <-halfSeen:
	case <-time.After(rqIOTimeout):
		t.Fatal("the dyno got nothing of the body before the client finished it: the router must stream, not buffer")
	}
	c.send(string(body[size/2:]))
	resp, got := c.response("POST", head)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, hex.EncodeToString(sum[:]), got, "the dyno's SHA-256 of the 1 MiB body")
}

// TestReqForwardExpect: Expect: 100-continue is answered by the router and
// stripped; end to end with http-end-to-end-continue; never a 1xx to an
// HTTP/1.0 client (SPEC.md 4.2, 4b).
func TestReqForwardExpect(t *testing.T) {
	t.Parallel()
	t.Run("router answers 100", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, oneApp("", d.addr()))
		c := rqOpen(t, tr)
		head := "POST /e HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
		c.send(head)
		interim := c.rawHead(head)
		assert.Equal(t, "HTTP/1.1 100 Continue\r\n\r\n", interim, "the router answers 100 Continue before the body is sent")
		c.send("hello")
		resp, _ := c.response("POST", head+"hello")
		assert.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		assert.Empty(t, got.values("Expect"), "the dyno never sees Expect; dyno head:\n%s", got.head)
		assert.Equal(t, "hello", string(got.body))
	})
	t.Run("end to end", func(t *testing.T) {
		t.Parallel()
		heads := make(chan string, 1)
		sendContinue := make(chan struct{})
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			head := rqReadHead(br)
			heads <- head
			if head == "" {
				return
			}
			select {
			case <-sendContinue:
			case <-time.After(rqIOTimeout):
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\nX-Dyno-Continue: yes\r\n\r\n")
			b := make([]byte, 5)
			if _, err := io.ReadFull(br, b); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n%s", b)
		})
		tr := startRouter(t, oneApp("features: [http-end-to-end-continue]", d.addr()))
		c := rqOpen(t, tr)
		head := "POST /e HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
		c.send(head)
		var dynoHead string
		select {
		case dynoHead = <-heads:
		case <-time.After(rqIOTimeout):
			t.Fatal("the head did not reach the dyno")
		}
		assert.Equal(t, []string{"100-continue"}, rqValues(dynoHead, "Expect"), "the dyno sees Expect; dyno head:\n%s", dynoHead)
		c.expectSilent(100*time.Millisecond, "before the dyno sends its 100 the router must not answer one itself")
		close(sendContinue)
		interim := c.rawHead(head)
		assert.True(t, strings.HasPrefix(interim, "HTTP/1.1 100 "), "the dyno's 100 reaches the client; got %q", interim)
		assert.Equal(t, []string{"yes"}, rqValues(interim, "X-Dyno-Continue"),
			"the dyno's own 100 Continue is passed through with its fields; client got %q", interim)
		c.send("hello")
		resp, body := c.response("POST", head+"hello")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "hello", body)
	})
	for _, e2e := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/1.0 client e2e=%v", e2e), func(t *testing.T) {
			t.Parallel()
			// A dyno that sends 100 whenever it sees Expect.
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				head := rqReadHead(br)
				if head == "" {
					return
				}
				if len(rqValues(head, "Expect")) > 0 {
					io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
				}
				b := make([]byte, 5)
				if _, err := io.ReadFull(br, b); err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n%s", b)
			})
			extra := ""
			if e2e {
				extra = "features: [http-end-to-end-continue]"
			}
			tr := startRouter(t, oneApp(extra, d.addr()))
			c := rqOpen(t, tr)
			head := "POST /e HTTP/1.0\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
			c.send(head)
			c.expectSilent(100*time.Millisecond, "an HTTP/1.0 client with Expect gets no 1xx")
			c.send("hello")
			all := c.readAll(head + "hello")
			assert.True(t, strings.HasPrefix(all, "HTTP/1.0 200 "), "the HTTP/1.0 client gets only the final response; got %q", all)
			assert.True(t, strings.HasSuffix(all, "\r\n\r\nhello"), "got %q", all)
		})
	}
}

// TestReqResponseFields: the response gets Via appended and loses its
// hop-by-hop fields (SPEC.md 4.8).
func TestReqResponseFields(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, func(rqReq) string {
		return "HTTP/1.1 200 OK\r\n" +
			"Content-Type: text/plain\r\n" +
			"Via: 1.1 upstream\r\n" +
			"Connection: X-Hop\r\n" +
			"X-Hop: 1\r\n" +
			"Keep-Alive: timeout=5\r\n" +
			"Proxy-Connection: keep-alive\r\n" +
			"Upgrade: h2c\r\n" +
			"TE: trailers\r\n" +
			"Trailer: X-T\r\n" +
			"X-Keep: kept\r\n" +
			"Set-Cookie: a=1\r\n" +
			"Set-Cookie: b=2\r\n" +
			"Content-Length: 2\r\n\r\nok"
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET /r HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c.send(raw)
	head := c.rawHead(raw)
	assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "head %q", head)
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "TE", "Trailer"} {
		assert.Empty(t, rqValues(head, name), "%s must not reach the client; response head:\n%s", name, head)
	}
	assert.Equal(t, []string{"kept"}, rqValues(head, "X-Keep"), "head:\n%s", head)
	assert.Equal(t, []string{"a=1", "b=2"}, rqValues(head, "Set-Cookie"), "each Set-Cookie stays a field; head:\n%s", head)
	assert.Equal(t, "1.1 upstream, 1.1 spacerouter", strings.Join(rqValues(head, "Via"), ", "), "Via is appended; head:\n%s", head)
	b := make([]byte, 2)
	_, err := io.ReadFull(c.br, b)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
}

// TestReqResponseHTTP10: an HTTP/1.0 client gets an HTTP/1.0 response; a
// chunked dyno body arrives un-chunked and ends at close; with
// Connection: keep-alive a Content-Length response keeps the connection.
func TestReqResponseHTTP10(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, func(r rqReq) string {
		if strings.HasPrefix(r.requestLine(), "GET /chunked ") {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfixed"
	})
	tr := startRouter(t, oneApp("", d.addr()))
	t.Run("chunked response", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /chunked HTTP/1.0\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		all := c.readAll(raw)
		head, body, _ := strings.Cut(all, "\r\n\r\n")
		assert.True(t, strings.HasPrefix(head, "HTTP/1.0 200 OK\r\n"), "an HTTP/1.0 status line; got %q", all)
		assert.Empty(t, rqValues(head+"\r\n\r\n", "Transfer-Encoding"), "no chunking to an HTTP/1.0 client; got %q", all)
		assert.Equal(t, "hello, world", body, "the body un-chunked, ending at close; got %q", all)
	})
	t.Run("router-made 404", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /x HTTP/1.0\r\nHost: nope.test\r\n\r\n"
		c.send(raw)
		all := c.readAll(raw)
		assert.True(t, strings.HasPrefix(all, "HTTP/1.0 404 "), "an HTTP/1.0 client gets an HTTP/1.0 status line; got %q", all)
		line := rqLineWithPath(t, tr, "/x")
		assert.Equal(t, "http1.0", field(line, "protocol"), "line %q", line)
	})
	t.Run("keep-alive", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /fixed HTTP/1.0\r\nHost: shop.test\r\nConnection: keep-alive\r\n\r\n"
		c.send(raw)
		head := c.rawHead(raw)
		assert.True(t, strings.HasPrefix(head, "HTTP/1.0 200 OK\r\n"), "head %q", head)
		assert.Equal(t, []string{"keep-alive"}, rqValues(head, "Connection"), "the router tells the client it keeps the connection; head %q", head)
		assert.Equal(t, []string{"5"}, rqValues(head, "Content-Length"), "head %q", head)
		b := make([]byte, 5)
		_, err := io.ReadFull(c.br, b)
		require.NoError(t, err)
		assert.Equal(t, "fixed", string(b))
		resp, body := c.roundTrip("GET /fixed HTTP/1.0\r\nHost: shop.test\r\n\r\n", "GET")
		assert.Equal(t, 200, resp.StatusCode, "a second request on the kept connection")
		assert.Equal(t, "fixed", body)
		c.expectClosed("GET /fixed HTTP/1.0 without keep-alive")
	})
	t.Run("keep-alive asked, chunked response", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /chunked HTTP/1.0\r\nHost: shop.test\r\nConnection: keep-alive\r\n\r\n"
		c.send(raw)
		all := c.readAll(raw)
		head, body, _ := strings.Cut(all, "\r\n\r\n")
		assert.True(t, strings.HasPrefix(head, "HTTP/1.0 200 OK\r\n"), "got %q", all)
		assert.NotContains(t, strings.ToLower(head), "keep-alive", "a body of unknown length ends at close, so no keep-alive; got %q", all)
		assert.Equal(t, "hello, world", body, "got %q", all)
	})
}

// TestReqResponseInterim: a 1xx from the dyno other than 100 reaches an
// HTTP/1.1 client before the final response; an HTTP/1.0 client never
// gets a 1xx (SPEC.md 4.8, 4b).
func TestReqResponseInterim(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, func(rqReq) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal"
	})
	tr := startRouter(t, oneApp("", d.addr()))
	t.Run("HTTP/1.1", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /hints HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		interim := c.rawHead(raw)
		assert.True(t, strings.HasPrefix(interim, "HTTP/1.1 103 "), "the 103 reaches the client first; got %q", interim)
		assert.Equal(t, []string{"</a.css>; rel=preload"}, rqValues(interim, "Link"), "with its fields; got %q", interim)
		resp, body := c.response("GET", raw)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "final", body)
		line := tr.lines.wait(t, 0)
		assert.Equal(t, "200", field(line, "status"), "the line has the final status; line %q", line)
		assert.Equal(t, "5", field(line, "bytes"), "line %q", line)
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		c := rqOpen(t, tr)
		raw := "GET /hints10 HTTP/1.0\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		all := c.readAll(raw)
		assert.True(t, strings.HasPrefix(all, "HTTP/1.0 200 OK\r\n"), "no 1xx to an HTTP/1.0 client; got %q", all)
	})
}

// TestReqResponseRouterMadeHEAD: a router-made response to HEAD has no
// body and the connection goes on.
func TestReqResponseRouterMadeHEAD(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, rqCrashedApp(""))
	c := rqOpen(t, tr)
	raw := "HEAD /h HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c.send(raw)
	head := c.rawHead(raw)
	assert.True(t, strings.HasPrefix(head, "HTTP/1.1 503 "), "head %q", head)
	resp, body := c.roundTrip("GET /g HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 503, resp.StatusCode, "the next response follows the HEAD response's head directly")
	assert.Equal(t, string(builtinErrorPage.body), body)
	line := rqLineWithPath(t, tr, "/h")
	assert.Equal(t, "0", field(line, "bytes"), "no body was sent for HEAD; line %q", line)
}

// TestReqResponseSniff: a body without Content-Type gets a sniffed one.
func TestReqResponseSniff(t *testing.T) {
	t.Parallel()
	const page = "<html><body>hi</body></html>"
	d := rqRecordingDyno(t, func(r rqReq) string {
		if strings.HasPrefix(r.requestLine(), "GET /chunked ") {
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(page), page)
		}
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(page), page)
	})
	tr := startRouter(t, oneApp("", d.addr()))
	for _, path := range []string{"/length", "/chunked"} {
		resp, body := tr.roundTrip(t, "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Equal(t, page, body, path)
		assert.Equal(t, []string{"text/html; charset=utf-8"}, resp.Header.Values("Content-Type"), "%s: a sniffed Content-Type", path)
	}
}

// TestReqResponseNoBody: HEAD, 204 and 304 responses carry no body and the
// connection serves the next request (SPEC.md 4.8).
func TestReqResponseNoBody(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, func(r rqReq) string {
		switch {
		case strings.HasPrefix(r.requestLine(), "HEAD "):
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
		case strings.HasPrefix(r.requestLine(), "GET /204 "):
			return "HTTP/1.1 204 No Content\r\nX-Kind: 204\r\n\r\n"
		case strings.HasPrefix(r.requestLine(), "GET /304 "):
			return "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnext"
	})
	tr := startRouter(t, oneApp("", d.addr()))
	for _, tc := range []struct{ method, path string }{{"HEAD", "/head"}, {"GET", "/204"}, {"GET", "/304"}} {
		c := rqOpen(t, tr)
		raw := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		head := c.rawHead(raw)
		// The next bytes must be the next response's status line.
		resp, body := c.roundTrip("GET /next HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
		assert.Equal(t, 200, resp.StatusCode, "%s %s (head %q) must leave no body bytes before the next response", tc.method, tc.path, head)
		assert.Equal(t, "next", body, "%s %s", tc.method, tc.path)
		assert.Empty(t, rqValues(head, "Transfer-Encoding"), "%s %s: head %q", tc.method, tc.path, head)
	}
	for _, path := range []string{"/head", "/204", "/304"} {
		line := rqLineWithPath(t, tr, path)
		assert.Equal(t, "0", field(line, "bytes"), "no body bytes; line %q", line)
	}
}
