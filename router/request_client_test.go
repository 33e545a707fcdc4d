package router

// Client-side tests (keep-alive, pipelining, H27, H28; SPEC.md 4, 4b, 6)
// and router line details (SPEC.md 7).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rqEchoDyno answers every request with its request target as the body.
func rqEchoDyno(t testing.TB) *rqDyno {
	return rqRecordingDyno(t, func(r rqReq) string {
		parts := strings.Split(r.requestLine(), " ")
		target := parts[1]
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(target), target)
	})
}

// TestReqClientKeepAlive: two requests on one connection reuse it.
func TestReqClientKeepAlive(t *testing.T) {
	t.Parallel()
	d := rqEchoDyno(t)
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	for _, p := range []string{"/one", "/two", "/three"} {
		raw := "GET " + p + " HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		head := c.rawHead(raw)
		assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "%s: head %q", p, head)
		assert.Empty(t, rqValues(head, "Connection"), "%s: an HTTP/1.1 keep-alive response needs no Connection field; head %q", p, head)
		b := make([]byte, len(p))
		_, err := io.ReadFull(c.br, b)
		require.NoError(t, err)
		assert.Equal(t, p, string(b), "response on the reused connection")
	}
	assert.Equal(t, 1, d.accepted(), "the router reused its dyno connection too")
	// Connection: close ends it after the response.
	raw := "GET /last HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n"
	c.send(raw)
	head := c.rawHead(raw)
	assert.Equal(t, []string{"close"}, rqValues(head, "Connection"), "the router says it closes; head %q", head)
	assert.Equal(t, "/last", c.readAll(raw), "the body, then the router closes")
}

// TestReqClientPipelining: requests written in one write are answered in
// order, bodies included (SPEC.md 4b).
func TestReqClientPipelining(t *testing.T) {
	t.Parallel()
	d := rqEchoDyno(t)
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET /p1 HTTP/1.1\r\nHost: shop.test\r\n\r\n" +
		"POST /p2 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 11\r\n\r\nGET /evil\r\n" +
		"POST /p3 HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /p4 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c.send(raw)
	for _, p := range []string{"/p1", "/p2", "/p3", "/p4"} {
		resp, body := c.response("GET", raw)
		assert.Equal(t, 200, resp.StatusCode, p)
		assert.Equal(t, p, body, "pipelined responses come in request order")
	}
	var bodies []string
	for range 4 {
		bodies = append(bodies, string(d.next(t).body))
	}
	assert.Equal(t, []string{"", "GET /evil\r\n", "abc", ""}, bodies, "each body reaches the dyno with its request")
	for i, p := range []string{"/p1", "/p2", "/p3", "/p4"} {
		line := tr.lines.wait(t, i)
		assert.Equal(t, p, field(line, "path"), "lines in request order; line %d %q", i, line)
	}
}

// TestReqClientKeepaliveIdle: an idle keep-alive connection is closed
// after timeouts.keepalive with no router line; timeouts.client does not
// apply between requests.
func TestReqClientKeepaliveIdle(t *testing.T) {
	t.Parallel()
	d := rqEchoDyno(t)
	tr := startRouter(t, "timeouts: {keepalive: 600ms, client: 50ms}\n"+oneApp("", d.addr()))
	c := rqOpen(t, tr)
	resp, _ := c.roundTrip("GET /a HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode)
	c.expectSilent(150*time.Millisecond, "an idle connection past timeouts.client (50ms) but within keepalive (600ms)")
	resp, _ = c.roundTrip("GET /b HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode, "the connection still serves after 150ms idle")
	idleFrom := time.Now()
	c.expectClosed("GET /b then nothing")
	idle := time.Since(idleFrom)
	assert.GreaterOrEqual(t, idle, 400*time.Millisecond, "closed after keepalive (600ms), not before")
	assert.Less(t, idle, 3*time.Second, "closed soon after keepalive (600ms)")
	assert.Len(t, rqLines(tr), 2, "an idle close writes no router line")
}

// TestReqClientIdleH28: a client that stalls mid-request for
// timeouts.client gets 408 and an H28 line with status=499 (SPEC.md 4, 6).
func TestReqClientIdleH28(t *testing.T) {
	t.Parallel()
	const h28 = `at=warning code=H28 desc="Client Connection Idle" `
	t.Run("half a head", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, "timeouts: {client: 200ms, keepalive: 5s}\n"+oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "GET /half HTTP/1.1\r\nHost: sh"
		sent := time.Now()
		resp, _ := c.roundTrip(raw, "GET")
		took := time.Since(sent)
		assert.Equal(t, 408, resp.StatusCode, "sent %q and stalled", raw)
		assert.GreaterOrEqual(t, took, 150*time.Millisecond, "408 after timeouts.client (200ms)")
		assert.Less(t, took, 2*time.Second, "408 after timeouts.client (200ms), not keepalive (5s)")
		c.expectClosed(raw)
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h28), "sent %q and stalled; line %q", raw, line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		rqAssertNoDynoFields(t, line, raw)
		assert.Zero(t, d.accepted(), "an incomplete head reaches no dyno")
	})
	t.Run("short body", func(t *testing.T) {
		t.Parallel()
		dynoGot := make(chan string, 1)
		d := startRawDyno(t, func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(rqIOTimeout))
			b, _ := io.ReadAll(c)
			dynoGot <- string(b)
		})
		tr := startRouter(t, "timeouts: {client: 200ms, keepalive: 5s}\nbuffering: {request_bytes: 0}\n"+oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "POST /short HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 10\r\n\r\nabc"
		sent := time.Now()
		resp, _ := c.roundTrip(raw, "POST")
		took := time.Since(sent)
		assert.Equal(t, 408, resp.StatusCode, "sent %q and stalled", raw)
		assert.GreaterOrEqual(t, took, 150*time.Millisecond, "408 after timeouts.client (200ms)")
		c.expectClosed(raw)
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h28+`method=POST path="/short"`), "sent %q and stalled; line %q", raw, line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		select {
		case got := <-dynoGot:
			assert.True(t, strings.HasSuffix(got, "\r\n\r\nabc"), "the dyno got the head and 3 body bytes, then its connection closed; got %q", got)
		case <-time.After(rqIOTimeout):
			t.Fatal("the router did not close its dyno connection after H28")
		}
	})
	t.Run("short body while buffered", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, "timeouts: {client: 200ms, keepalive: 5s}\n"+oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "POST /short HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 10\r\n\r\nabc"
		resp, _ := c.roundTrip(raw, "POST")
		assert.Equal(t, 408, resp.StatusCode, "sent %q and stalled", raw)
		c.expectClosed(raw)
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h28+`method=POST path="/short"`), "sent %q and stalled; line %q", raw, line)
		assert.Contains(t, line, " dyno= connect= service= status=499 ", "no dyno was chosen for a body that never came whole")
		assert.Zero(t, d.accepted(), "a slow body holds no dyno (SPEC.md 4.7)")
	})
}

// TestReqClientInterrupted: a client that closes before its response is
// done gets an H27 line (sock=client, status=499) at once, and the dyno
// request is cancelled: the dyno's connection is closed.
func TestReqClientInterrupted(t *testing.T) {
	t.Parallel()
	const h27 = `sock=client at=warning code=H27 desc="Client Request Interrupted" `
	t.Run("waiting for the response", func(t *testing.T) {
		t.Parallel()
		arrived := make(chan struct{}, 1)
		dynoSaw := make(chan string, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if rqReadHead(br) == "" {
				return
			}
			arrived <- struct{}{}
			// Answer after 2 s unless the router hangs up first.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := br.ReadByte()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				dynoSaw <- "no cancel within 2s"
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
				return
			}
			dynoSaw <- fmt.Sprint(err)
		})
		tr := startRouter(t, oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "GET /slow HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		c.send(raw)
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request did not reach the dyno")
		}
		c.expectSilent(100*time.Millisecond, "the dyno has not answered yet")
		closedAt := time.Now()
		c.c.Close()
		line := tr.lines.wait(t, 0)
		lineAfter := time.Since(closedAt)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h27+`method=GET path="/slow"`), "line %q", line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
		assert.Less(t, lineAfter, time.Second, "H27 is logged when the client goes, not when the dyno answers (2s)")
		select {
		case saw := <-dynoSaw:
			assert.Equal(t, "EOF", saw, "the dyno request is cancelled: the router closes the dyno connection")
		case <-time.After(rqIOTimeout):
			t.Fatal("the dyno saw nothing")
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		t.Parallel()
		arrived := make(chan struct{}, 1)
		dynoGot := make(chan string, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if rqReadHead(br) == "" {
				return
			}
			arrived <- struct{}{}
			c.SetReadDeadline(time.Now().Add(rqIOTimeout))
			b, _ := io.ReadAll(br)
			dynoGot <- string(b)
		})
		tr := startRouter(t, "buffering: {request_bytes: 0}\n"+oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100\r\n\r\n0123456789"
		c.send(raw)
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request head did not reach the dyno")
		}
		c.c.Close()
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h27+`method=POST path="/upload"`), "sent %q then closed; line %q", raw, line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		select {
		case got := <-dynoGot:
			assert.Equal(t, "0123456789", got, "the dyno gets the 10 bytes sent, then its connection closes")
		case <-time.After(rqIOTimeout):
			t.Fatal("the router did not close its dyno connection")
		}
	})
	t.Run("mid-body while buffered", func(t *testing.T) {
		t.Parallel()
		// SPEC.md 4.7: the body is read before a dyno is chosen, so a
		// client that leaves mid-body reached no dyno.
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, oneApp("", d.addr()))
		c := rqOpen(t, tr)
		raw := "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100\r\n\r\n0123456789"
		c.send(raw)
		c.c.Close()
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), h27+`method=POST path="/upload"`), "sent %q then closed; line %q", raw, line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		assert.Contains(t, line, " dyno= connect= service= ", "no dyno was chosen")
		assert.Zero(t, d.accepted(), "a request whose body never came whole reaches no dyno")
	})
}

// rqLineShape is the exact shape of an at=info router line on plain HTTP.
var rqLineShape = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 heroku\[router\]: ` +
	`at=info method=GET path="/shape\?a=1" host=shop\.test request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" ` +
	`dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=5 protocol=http1\.1 tls=false\n$`)

// TestReqLine: the router line's shape, escaping, redaction, protocol, tls
// and bytes fields (SPEC.md 7).
func TestReqLine(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, func(r rqReq) string {
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: " + strings.Repeat("p", 500) + "\r\nContent-Length: 5\r\n\r\n"
		if strings.HasPrefix(r.requestLine(), "HEAD ") {
			return head
		}
		return head + "hello"
	})
	tr := startRouter(t, "log: {redact: [token]}\n"+oneApp("", d.addr()))

	t.Run("shape", func(t *testing.T) {
		raw := "GET /shape?a=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		d.next(t)
		line := rqLineWithPath(t, tr, "/shape?a=1")
		assert.Regexp(t, rqLineShape, line, "sent %q; bytes= counts the 5 body bytes only, tls=false without tls_version", raw)
	})
	t.Run("escaping", func(t *testing.T) {
		raw := "GET /a\"b\\c?q=\"x\" HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 1.2.3.4\tx\"y\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		assert.Equal(t, `GET /a"b\c?q="x" HTTP/1.1`, got.requestLine(), "the target reaches the dyno as sent")
		line := rqLineWithPath(t, tr, `/a\"b\\c?q=\"x\"`)
		assert.Contains(t, line, ` path="/a\"b\\c?q=\"x\"" `, "quotes and backslashes in path are escaped; line %q", line)
		assert.Contains(t, line, ` fwd="1.2.3.4\u0009x\"y, 127.0.0.1" `, "a tab in fwd is written \\u0009, a quote \\\"; line %q", line)
		assert.Equal(t, 1, strings.Count(line, "\n"), "one request, one line: %q", line)
	})
	t.Run("redact", func(t *testing.T) {
		raw := "GET /x?token=s3cret&a=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		got := d.next(t)
		assert.Equal(t, "GET /x?token=s3cret&a=1 HTTP/1.1", got.requestLine(), "the dyno gets the real value")
		line := rqLineWithPath(t, tr, "/x?token=REDACTED&a=1")
		assert.NotContains(t, line, "s3cret", "line %q", line)
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		raw := "GET /ten HTTP/1.0\r\nHost: shop.test\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "GET")
		require.Equal(t, 200, resp.StatusCode)
		d.next(t)
		line := rqLineWithPath(t, tr, "/ten")
		assert.True(t, strings.HasSuffix(line, " bytes=5 protocol=http1.0 tls=false\n"), "line %q", line)
	})
	t.Run("HEAD", func(t *testing.T) {
		raw := "HEAD /head HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, _ := tr.roundTrip(t, raw, "HEAD")
		require.Equal(t, 200, resp.StatusCode)
		d.next(t)
		line := rqLineWithPath(t, tr, "/head")
		assert.Equal(t, "0", field(line, "bytes"), "a HEAD response has no body bytes; line %q", line)
	})
}

// TestReqClientInterruptedMidResponse: a client that closes while the
// response body is still coming gets an H27 line with status=499, and the
// dyno request is cancelled (SPEC.md 4: "A client that closes before its
// response is done → H27 (the dyno request is cancelled)").
func TestReqClientInterruptedMidResponse(t *testing.T) {
	t.Parallel()
	dynoSaw := make(chan string, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if rqReadHead(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nfirst")
		// The rest comes after 1s unless the router hangs up first.
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := br.ReadByte()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			dynoSaw <- "no cancel within 1s"
			io.WriteString(c, "_rest")
			return
		}
		dynoSaw <- fmt.Sprint(err)
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET /partial HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c.send(raw)
	head := c.rawHead(raw)
	require.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), "head %q", head)
	b := make([]byte, 5)
	_, err := io.ReadFull(c.br, b)
	require.NoError(t, err, "the first 5 body bytes are flushed within the buffering window")
	c.c.Close()
	select {
	case saw := <-dynoSaw:
		assert.Equal(t, "EOF", saw, "the client left mid-response: the router must cancel the dyno request (close its connection)")
	case <-time.After(rqIOTimeout):
		t.Fatal("the dyno saw nothing")
	}
	line := tr.lines.wait(t, 0)
	assert.True(t, strings.HasPrefix(rqLinePart(line), `sock=client at=warning code=H27 desc="Client Request Interrupted" method=GET path="/partial"`),
		"the client closed after 5 of 10 body bytes; line %q", line)
	assert.Equal(t, "499", field(line, "status"), "line %q", line)
}

// TestReqClientPipelinedDuringWait: a request pipelined while the router
// waits for a slow dyno (and watches the client for a close) is kept and
// answered after the first, in order; a large one too.
func TestReqClientPipelinedDuringWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rel := rqOnce(release)
	arrived := make(chan string, 4)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := rqReadRequest(br)
			if err != nil {
				return
			}
			target := strings.Split(r.requestLine(), " ")[1]
			arrived <- target
			if target == "/slow" {
				<-release
			}
			body := target + " " + strings.Join(r.values("X-Big"), ",")[:3]
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))
	defer rel()
	c := rqOpen(t, tr)
	first := "GET /slow HTTP/1.1\r\nHost: shop.test\r\nX-Big: " + strings.Repeat("a", 100) + "\r\n\r\n"
	c.send(first)
	select {
	case got := <-arrived:
		require.Equal(t, "/slow", got)
	case <-time.After(rqIOTimeout):
		t.Fatal("the first request did not reach the dyno")
	}
	c.expectSilent(60*time.Millisecond, "the dyno holds the first request")
	second := "GET /next HTTP/1.1\r\nHost: shop.test\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n"
	c.send(second)
	c.expectSilent(30*time.Millisecond, "the dyno still holds the first request")
	rel()
	resp, body := c.response("GET", first)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/slow aaa", body, "the first response answers the first request, with its own fields")
	resp, body = c.response("GET", second)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/next bbb", body, "the request pipelined during the wait is answered next")
	assert.Equal(t, "/slow", field(tr.lines.wait(t, 0), "path"))
	assert.Equal(t, "/next", field(tr.lines.wait(t, 1), "path"))
}

// TestReqClientIdleSecondRequest: on a kept connection, a next request
// that stalls mid-head gets 408 after timeouts.client, not keepalive.
func TestReqClientIdleSecondRequest(t *testing.T) {
	t.Parallel()
	d := rqEchoDyno(t)
	tr := startRouter(t, "timeouts: {client: 200ms, keepalive: 5s}\n"+oneApp("", d.addr()))
	c := rqOpen(t, tr)
	resp, _ := c.roundTrip("GET /first HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode)
	raw := "GET /stall HTTP/1.1\r\nHo"
	sent := time.Now()
	resp, _ = c.roundTrip(raw, "GET")
	took := time.Since(sent)
	assert.Equal(t, 408, resp.StatusCode, "sent %q on a kept connection and stalled", raw)
	assert.Less(t, took, 2*time.Second, "after timeouts.client (200ms), not keepalive (5s)")
	c.expectClosed(raw)
	line := tr.lines.wait(t, 1)
	assert.True(t, strings.HasPrefix(rqLinePart(line), `at=warning code=H28 desc="Client Connection Idle" method=GET path="/stall"`), "line %q", line)
	assert.Equal(t, "499", field(line, "status"), "line %q", line)
}

// TestReqClientTrickle: timeouts.client is a rolling window: a client that
// sends its head and body in pieces 50ms apart, over longer than the
// window in all, is served (SPEC.md 2: "rolling window of no bytes").
func TestReqClientTrickle(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, "timeouts: {client: 600ms, keepalive: 5s}\n"+oneApp("", d.addr()))
	c := rqOpen(t, tr)
	pieces := []string{"POST /tr", "ickle HT", "TP/1.1\r\n", "Host: sh", "op.test\r\n", "Content-Len", "gth: 4\r\n",
		"X-A: 1\r\n", "X-B: 2\r\n", "\r\n", "a", "b", "c", "d"}
	begin := time.Now()
	for i, p := range pieces {
		c.send(p)
		if i < len(pieces)-1 {
			c.expectSilent(50*time.Millisecond, fmt.Sprintf("after piece %d of a trickled request", i))
		}
	}
	require.Greater(t, time.Since(begin), 600*time.Millisecond, "the trickle lasts longer than the window")
	resp, _ := c.response("POST", strings.Join(pieces, ""))
	assert.Equal(t, 200, resp.StatusCode, "no gap was longer than timeouts.client (600ms)")
	got := d.next(t)
	assert.Equal(t, "abcd", string(got.body))
}

// TestReqClientPipelinedMany: 60 pipelined requests of mixed sizes and
// bodies in one write are answered in order.
func TestReqClientPipelinedMany(t *testing.T) {
	t.Parallel()
	d := rqEchoDyno(t)
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	var b strings.Builder
	var paths []string
	for i := range 60 {
		p := fmt.Sprintf("/m%d", i)
		paths = append(paths, p)
		pad := strings.Repeat("x", (i*997)%3000)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: shop.test\r\nX-Pad: %s\r\n\r\n", p, pad)
		case 1:
			fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n%s", p, len(pad), pad)
		default:
			fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", p, len(pad)+1, pad+"y")
		}
	}
	raw := b.String()
	go func() {
		c.c.SetWriteDeadline(time.Now().Add(rqIOTimeout))
		io.WriteString(c.c, raw)
	}()
	for _, p := range paths {
		resp, body := c.response("GET", p)
		require.Equal(t, 200, resp.StatusCode, p)
		require.Equal(t, p, body, "pipelined responses in request order")
	}
}

// TestReqClientSlowDynoNotIdle: once its request is complete, a client
// waiting longer than timeouts.client for a slow dyno is not idle (H28 is
// only for a request that is not complete).
func TestReqClientSlowDynoNotIdle(t *testing.T) {
	t.Parallel()
	for _, body := range []bool{false, true} {
		t.Run(fmt.Sprintf("body=%v", body), func(t *testing.T) {
			t.Parallel()
			arrived := make(chan string, 1)
			d, release := rqHoldingDyno(t, "slow", arrived)
			tr := startRouter(t, "timeouts: {client: 100ms, keepalive: 5s}\n"+oneApp("", d.addr()))
			defer release()
			c := rqOpen(t, tr)
			raw := "GET /wait HTTP/1.1\r\nHost: shop.test\r\n\r\n"
			if body {
				raw = "POST /wait HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello"
			}
			c.send(raw)
			select {
			case <-arrived:
			case <-time.After(rqIOTimeout):
				t.Fatal("the request did not reach the dyno")
			}
			c.expectSilent(300*time.Millisecond, "a client waiting for a slow dyno past timeouts.client (100ms)")
			release()
			resp, got := c.response("GET", raw)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "slow", got)
			line := tr.lines.wait(t, 0)
			assert.Equal(t, "200", field(line, "status"), "line %q", line)
		})
	}
}
