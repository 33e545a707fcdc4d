package router

// Dyno-side error codes of SPEC.md sections 4.6, 4.8, 6 and 7, over real
// sockets: each dyno is a raw listener whose handler writes every byte, and
// each test reads the router line back.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- helpers ---------------------------------------------------------------

// dyErrorPageLen is the length of the built-in error page a router-made 5xx
// carries when the app names no ERROR_PAGE_URL (SPEC.md section 9).
var dyErrorPageLen = len(builtinErrorPage.body)

// dyAssertLineStart checks the part of a router line after the source token,
// up to method=: `[sock=] at= [code= desc=]` (SPEC.md section 7).
func dyAssertLineStart(t *testing.T, line, want, sent string) {
	t.Helper()
	assert.Contains(t, line, " heroku[router]: "+want+" method=",
		"router line for %q: want it to start with %q", sent, want)
}

// dyAssertMillis checks that a connect= or service= value is filled and lies
// in [lo, hi).
func dyAssertMillis(t *testing.T, line, key string, lo, hi time.Duration) {
	t.Helper()
	v := field(line, key)
	if !assert.True(t, strings.HasSuffix(v, "ms"), "%s= must be filled in whole ms; line: %s", key, line) {
		return
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "ms"))
	if !assert.NoError(t, err, "%s=%q is not whole milliseconds; line: %s", key, v, line) {
		return
	}
	d := time.Duration(n) * time.Millisecond
	assert.True(t, d >= lo && d < hi, "%s=%s: want within [%v, %v); line: %s", key, v, lo, hi, line)
}

// dySendOnce sends v on ch without blocking (first value wins).
func dySendOnce[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// dyReadRequest reads one request head and its Content-Length body from br;
// it returns the head, or "" at EOF.
func dyReadRequest(br *bufio.Reader) string {
	head := readRequestHead(br)
	if head == "" {
		return ""
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err == nil && req.ContentLength > 0 {
		io.CopyN(io.Discard, br, req.ContentLength)
	}
	return head
}

// dyDrain reads r until the router closes the connection.
func dyDrain(r io.Reader) { io.Copy(io.Discard, r) }

// dyOnceDyno answers each request on a connection with the raw bytes resp
// and then waits for the router to close the connection.
func dyOnceDyno(t *testing.T, resp string) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		io.WriteString(c, resp)
		dyDrain(br)
	})
}

// dyClosedAddr returns a loopback address nothing listens on: a listener
// opened and closed again, so connects are refused.
func dyClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// dyListenAt starts a raw dyno on a fixed address (a port closed earlier in
// the test).
func dyListenAt(t *testing.T, addr string, handle func(c net.Conn)) *rawDyno {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "listening again on %s", addr)
	d := &rawDyno{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns++
			d.mu.Unlock()
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return d
}

// dyOKHandler answers every request on a keep-alive connection with 200 and
// body.
func dyOKHandler(body string) func(c net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for dyReadRequest(br) != "" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	}
}

const dyGetShop = "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n"

// --- H12 -------------------------------------------------------------------

// TestDynoH12RequestTimeout: a dyno that reads the request and never answers
// gets H12 after timeouts.response; the client gets 503 and the error page.
func TestDynoH12RequestTimeout(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	got := make(chan string, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		dySendOnce(got, readRequestHead(br))
		dyDrain(br) // never answers; ends when the router closes
	})
	tr := startRouter(t, "timeouts: {response: 300ms}\n"+oneApp("", d.addr()))
	const sent = "GET /slow HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	start := time.Now()
	resp, body := tr.roundTrip(t, sent, "GET")
	took := time.Since(start)
	require.Equal(t, 503, resp.StatusCode, "sent %q to a dyno that never answers; body %q", sent, body)
	assert.Contains(t, body, "Application Error", "a router-made 503 carries the error page")
	assert.True(t, took >= 290*time.Millisecond && took < 2*time.Second, "503 came after %v; want about response: 300ms", took)
	select {
	case h := <-got:
		assert.Contains(t, h, "GET /slow HTTP/1.1\r\n", "the dyno got the request")
	default:
		t.Error("the dyno never got the request")
	}
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H12 desc="Request timeout"`, sent)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	dyAssertMillis(t, line, "connect", 0, time.Second)
	dyAssertMillis(t, line, "service", 290*time.Millisecond, 2*time.Second)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
	assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "bytes= is the error page the client got; line: %s", line)
	assert.Equal(t, strconv.Itoa(dyErrorPageLen), field(line, "bytes"), "line: %s", line)
}

// TestDynoH12PerAppResponseTimeout: an app's timeouts.response overrides the
// global one: a dyno answering after 500 ms is served on the app with 1s
// and gets H12 on an app using the global 300ms.
func TestDynoH12PerAppResponseTimeout(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for dyReadRequest(br) != "" {
			time.Sleep(500 * time.Millisecond) // past the global response timeout
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nlate")
		}
	})
	yaml := "timeouts: {response: 300ms}\n" +
		oneApp("timeouts: {response: 1s}", d.addr()) +
		"  - name: plain\n    domains: [plain.test]\n    dynos:\n      - {name: web.1, address: \"" + d.addr() + "\"}\n"
	tr := startRouter(t, yaml)

	const sentShop = "GET /late HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	resp, body := tr.roundTrip(t, sentShop, "GET")
	assert.Equal(t, 200, resp.StatusCode, "sent %q (app timeouts.response 1s, dyno answers after 500ms); body %q", sentShop, body)
	assert.Equal(t, "late", body)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, "at=info", sentShop)
	dyAssertMillis(t, line, "service", 490*time.Millisecond, time.Second)

	const sentPlain = "GET /late HTTP/1.1\r\nHost: plain.test\r\n\r\n"
	resp, body = tr.roundTrip(t, sentPlain, "GET")
	assert.Equal(t, 503, resp.StatusCode, "sent %q (global response 300ms, dyno answers after 500ms); body %q", sentPlain, body)
	line = tr.lines.wait(t, 1)
	dyAssertLineStart(t, line, `at=error code=H12 desc="Request timeout"`, sentPlain)
}

// --- H13 -------------------------------------------------------------------

// TestDynoH13ClosedWithoutResponse: a dyno that closes without a response
// byte gets H13 and 503.
func TestDynoH13ClosedWithoutResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		readHead bool
	}{
		{"after reading the request", true},
		{"at once", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startRawDyno(t, func(c net.Conn) {
				if tc.readHead {
					readRequestHead(bufio.NewReader(c))
				}
				// The deferred Close of startRawDyno ends the connection.
			})
			tr := startRouter(t, oneApp("", d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 503, resp.StatusCode, "sent %q to a dyno that closes without a byte; body %q", dyGetShop, body)
			assert.Contains(t, body, "Application Error")
			line := tr.lines.wait(t, 0)
			dyAssertLineStart(t, line, `at=error code=H13 desc="Connection closed without response"`, dyGetShop)
			assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
			dyAssertMillis(t, line, "connect", 0, time.Second)
			dyAssertMillis(t, line, "service", 0, time.Second)
			assert.Equal(t, "503", field(line, "status"), "line: %s", line)
			assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "line: %s", line)
		})
	}
}

// --- H15 -------------------------------------------------------------------

// TestDynoH15IdleBody: a dyno that sends its head and 10 of 100 body bytes
// and then stalls past timeouts.idle: the client got the head and the 10
// bytes, then the connection is closed; the line is H15, status=503,
// bytes=10.
func TestDynoH15IdleBody(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	d := dyOnceDyno(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
	tr := startRouter(t, "timeouts: {idle: 300ms}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	sentAt := time.Now()
	_, err := io.WriteString(c, dyGetShop)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	require.NoError(t, err, "reading the head relayed before the dyno stalled")
	assert.Equal(t, 200, resp.StatusCode, "the dyno's status reaches the client before the stall")
	body, err := io.ReadAll(resp.Body)
	closedAfter := time.Since(sentAt)
	assert.Equal(t, "0123456789", string(body), "the 10 body bytes the dyno sent reach the client")
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client connection must be closed after the stall, cutting the 100-byte body short")
	assert.True(t, closedAfter >= 290*time.Millisecond && closedAfter < 3*time.Second,
		"connection closed %v after the request was sent; want about idle: 300ms", closedAfter)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H15 desc="Idle connection"`, dyGetShop)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	dyAssertMillis(t, line, "service", 290*time.Millisecond, 3*time.Second)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
	assert.Equal(t, "10", field(line, "bytes"), "bytes= counts the body bytes relayed; line: %s", line)
}

// --- H17 -------------------------------------------------------------------

// TestDynoH17PoorlyFormatted: responses that cannot be parsed get H17 and
// 503.
func TestDynoH17PoorlyFormatted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, resp string }{
		{"status line without code", "HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"status code not digits", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"space before colon", "HTTP/1.1 200 OK\r\nFoo : bar\r\nContent-Length: 2\r\n\r\nok"},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dyOnceDyno(t, tc.resp)
			tr := startRouter(t, oneApp("", d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 503, resp.StatusCode, "dyno sent %q; client got body %q", tc.resp, body)
			assert.Contains(t, body, "Application Error", "dyno sent %q", tc.resp)
			line := tr.lines.wait(t, 0)
			dyAssertLineStart(t, line, `at=error code=H17 desc="Poorly formatted HTTP response"`, tc.resp)
			assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
			assert.Equal(t, "503", field(line, "status"), "line: %s", line)
			assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "line: %s", line)
		})
	}
}

// TestDynoStatusLineWithoutReason: a status line without a reason phrase is
// accepted (SPEC.md 4b).
func TestDynoStatusLineWithoutReason(t *testing.T) {
	t.Parallel()
	for _, sl := range []string{"HTTP/1.1 200", "HTTP/1.1 200 "} {
		t.Run(strconv.Quote(sl), func(t *testing.T) {
			t.Parallel()
			dresp := sl + "\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
			d := dyOnceDyno(t, dresp)
			tr := startRouter(t, oneApp("", d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, 200, resp.StatusCode, "dyno sent %q; client got body %q", dresp, body)
			assert.Equal(t, "ok", body)
			line := tr.lines.wait(t, 0)
			dyAssertLineStart(t, line, "at=info", dresp)
			assert.Equal(t, "200", field(line, "status"), "line: %s", line)
		})
	}
}

// --- H18 -------------------------------------------------------------------

// TestDynoH18ResponseInterrupted: a dyno that closes mid-body after the
// head reached the client, with a Content-Length or a chunked body: the
// line starts sock=backend, H18, with the status already sent, and the
// client connection is closed.
func TestDynoH18ResponseInterrupted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, resp string }{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 40)},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + strings.Repeat("x", 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if dyReadRequest(br) == "" {
					return
				}
				io.WriteString(c, tc.resp)
				select {
				case <-release: // the client has the head and the 40 bytes
				case <-time.After(3 * time.Second):
				}
				// Returning closes the connection mid-body.
			})
			tr := startRouter(t, oneApp("", d.addr()))
			c := tr.dial(t)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.WriteString(c, dyGetShop)
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
			require.NoError(t, err, "the head must be relayed while the dyno holds the rest of the body")
			require.Equal(t, 200, resp.StatusCode)
			got := make([]byte, 40)
			_, err = io.ReadFull(resp.Body, got)
			require.NoError(t, err, "the first 40 body bytes must reach the client within buffering.window")
			close(release)
			rest, err := io.ReadAll(resp.Body)
			assert.Empty(t, rest, "no byte after the dyno closed")
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client connection must be closed: the body was cut short")
			line := tr.lines.wait(t, 0)
			dyAssertLineStart(t, line, `sock=backend at=error code=H18 desc="Server Request Interrupted"`, dyGetShop)
			assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
			dyAssertMillis(t, line, "service", 0, 5*time.Second)
			assert.Equal(t, "200", field(line, "status"), "status= is the status already sent; line: %s", line)
			assert.Equal(t, "40", field(line, "bytes"), "line: %s", line)
		})
	}
}

// TestDynoH18RequestBodyInterrupted: a dyno that closes after reading the
// head while the router still streams a large request body: H18 with 503.
func TestDynoH18RequestBodyInterrupted(t *testing.T) {
	t.Parallel()
	d := startRawDyno(t, func(c net.Conn) {
		readRequestHead(bufio.NewReader(c))
		// Returning closes the connection with the body unread.
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const size = 8 << 20
	head := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
	_, err := io.WriteString(c, head)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // the router closed the connection
			}
		}
	}()
	resp, rerr := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
	if assert.NoError(t, rerr, "reading the router's answer to %q + %d body bytes", head, size) {
		assert.Equal(t, 503, resp.StatusCode, "dyno closed mid-request-body")
		resp.Body.Close()
	}
	line := tr.lines.wait(t, 0)
	c.Close()
	wg.Wait()
	dyAssertLineStart(t, line, `sock=backend at=error code=H18 desc="Server Request Interrupted"`, head)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	dyAssertMillis(t, line, "connect", 0, time.Second)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
	assert.Equal(t, strconv.Itoa(dyErrorPageLen), field(line, "bytes"), "line: %s", line)
}

// --- H21 and retries -----------------------------------------------------

// TestDynoH21Refused: a refused connect is H21 with 503; connect= is
// filled and service= empty.
func TestDynoH21Refused(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, oneApp("", dyClosedAddr(t)))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 503, resp.StatusCode, "sent %q to a dyno whose port is closed; body %q", dyGetShop, body)
	assert.Contains(t, body, "Application Error")
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H21 desc="Backend connection refused"`, dyGetShop)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	dyAssertMillis(t, line, "connect", 0, time.Second)
	assert.Contains(t, line, " service= status=", "service= is empty when no request was sent; line: %s", line)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
	assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "line: %s", line)
}

// TestDynoH21RetryOnOtherDyno: with web.1 refused and web.2 fine, requests
// succeed on web.2, and once web.1 failed it is skipped for 5 s: a listener
// opened on its port then sees no connection.
func TestDynoH21RetryOnOtherDyno(t *testing.T) {
	t.Parallel()
	dead := dyClosedAddr(t)
	holding := make(chan struct{}, 1)
	release := make(chan struct{})
	good := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := dyReadRequest(br)
			if head == "" {
				return
			}
			if strings.HasPrefix(head, "GET /hold ") {
				dySendOnce(holding, struct{}{})
				select {
				case <-release:
				case <-time.After(5 * time.Second):
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := startRouter(t, oneApp("", dead, good.addr()))

	// A request held in flight on web.2 makes web.1 the less loaded dyno,
	// so the next request tries web.1 unless it is skipped already
	// (SPEC.md 4.5, 4.6).
	held := make(chan *http.Response, 1)
	go func() {
		c, err := net.Dial("tcp", tr.addr)
		if err != nil {
			held <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(8 * time.Second))
		io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		resp, _ := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		held <- resp
	}()
	select {
	case <-holding:
	case <-time.After(3 * time.Second):
		t.Fatal("GET /hold never reached web.2")
	}
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode, "sent %q with web.1 refused and web.2 fine; body %q", dyGetShop, body)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, "at=info", dyGetShop)
	assert.Equal(t, "web.2", field(line, "dyno"), "the line names the dyno of the last try; line: %s", line)

	// web.1 failed a connect: for 5 s no request tries it.
	probe := dyListenAt(t, dead, dyOKHandler("from web.1"))
	for i := 1; i <= 10; i++ {
		resp, body := tr.roundTrip(t, dyGetShop, "GET")
		assert.Equal(t, 200, resp.StatusCode, "request %d", i)
		assert.Equal(t, "ok", body, "request %d must be served by web.2 while web.1 is skipped", i)
		line := tr.lines.wait(t, i)
		assert.Equal(t, "web.2", field(line, "dyno"), "request %d; line: %s", i, line)
	}
	assert.Zero(t, probe.accepted(), "web.1 failed to connect less than 5 s ago: the router must not connect to it")
	close(release)
	select {
	case r := <-held:
		if assert.NotNil(t, r, "GET /hold got no response") {
			assert.Equal(t, 200, r.StatusCode)
		}
	case <-time.After(5 * time.Second):
		t.Error("GET /hold got no response")
	}
}

// TestDynoH21AtMostThreeTries: with four dead dynos a request makes three
// connect tries and logs H21 naming the last one tried. The three tried
// are then skipped, so once every port listens the next requests all go
// to the fourth.
func TestDynoH21AtMostThreeTries(t *testing.T) {
	t.Parallel()
	addrs := []string{dyClosedAddr(t), dyClosedAddr(t), dyClosedAddr(t), dyClosedAddr(t)}
	tr := startRouter(t, oneApp("", addrs...))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 503, resp.StatusCode, "sent %q with four refused dynos; body %q", dyGetShop, body)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H21 desc="Backend connection refused"`, dyGetShop)
	last := field(line, "dyno")
	assert.Regexp(t, `^web\.[1-4]$`, last, "the line names the last dyno tried; line: %s", line)
	dyAssertMillis(t, line, "connect", 0, time.Second)
	assert.Contains(t, line, " service= status=503 ", "line: %s", line)

	dynos := make([]*rawDyno, len(addrs))
	for i, a := range addrs {
		dynos[i] = dyListenAt(t, a, dyOKHandler(fmt.Sprintf("web.%d", i+1)))
	}
	var served []string
	for i := 1; i <= 5; i++ {
		resp, body := tr.roundTrip(t, dyGetShop, "GET")
		require.Equal(t, 200, resp.StatusCode, "request %d once every dyno listens", i)
		served = append(served, body)
	}
	for i := 1; i < len(served); i++ {
		assert.Equal(t, served[0], served[i], "after three failed tries only the untried dyno is not skipped; served by %v", served)
	}
	assert.NotEqual(t, last, served[0], "the dyno named in the H21 line was tried and must be skipped")
	for i, d := range dynos {
		name := fmt.Sprintf("web.%d", i+1)
		if name != served[0] {
			assert.Zero(t, d.accepted(), "%s was tried by the first request and is skipped for 5 s: no connection to it; served by %v", name, served)
		}
	}
}

// --- H25 (response side) -------------------------------------------------

// TestDynoH25OversizedResponse: a response status line, field or Set-Cookie
// over the limits gets 502 and H25; just under the limits passes.
func TestDynoH25OversizedResponse(t *testing.T) {
	t.Parallel()
	limits := "limits: {request_line_bytes: 100, header_bytes: 1000, cookie_bytes: 300}\n"
	for _, tc := range []struct {
		name, resp string
		status     int
		desc       string
	}{
		{"status line", "HTTP/1.1 200 " + strings.Repeat("O", 120) + "\r\nContent-Length: 2\r\n\r\nok", 502, "oversized status line"},
		{"header", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1100) + "\r\nContent-Length: 2\r\n\r\nok", 502, "oversized header"},
		{"cookie", "HTTP/1.1 200 OK\r\nSet-Cookie: a=" + strings.Repeat("b", 400) + "\r\nContent-Length: 2\r\n\r\nok", 502, "oversized cookies"},
		{"under the limits", "HTTP/1.1 200 " + strings.Repeat("O", 80) + "\r\nX-Big: " + strings.Repeat("a", 900) +
			"\r\nSet-Cookie: a=" + strings.Repeat("b", 250) + "\r\nContent-Length: 2\r\n\r\nok", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dyOnceDyno(t, tc.resp)
			tr := startRouter(t, limits+oneApp("", d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			assert.Equal(t, tc.status, resp.StatusCode, "dyno sent a %d-byte head (%s); client got body %q", len(tc.resp), tc.name, body)
			line := tr.lines.wait(t, 0)
			if tc.desc == "" {
				dyAssertLineStart(t, line, "at=info", tc.name)
				assert.Equal(t, "ok", body)
				return
			}
			assert.Contains(t, body, "Application Error", "a router-made 502 carries the error page")
			dyAssertLineStart(t, line, `at=error code=H25 desc="HTTP restriction: `+tc.desc+`"`, tc.name)
			assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
			assert.Equal(t, "502", field(line, "status"), "line: %s", line)
			assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "line: %s", line)
		})
	}
}

// TestDynoH12StartsAfterRequestBody: the response timeout runs from the
// end of the request: a body that takes longer than timeouts.response to
// arrive is streamed to the dyno as it comes, and a prompt answer is
// served.
func TestDynoH12StartsAfterRequestBody(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	const pieces, size = 4, 10
	gotPiece := make(chan struct{}, pieces)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if readRequestHead(br) == "" {
			return
		}
		buf := make([]byte, size)
		for i := 0; i < pieces; i++ {
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			gotPiece <- struct{}{}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\ndone")
		dyDrain(br)
	})
	tr := startRouter(t, "timeouts: {response: 300ms}\nbuffering: {request_bytes: 0}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	head := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", pieces*size)
	_, err := io.WriteString(c, head)
	require.NoError(t, err)
	for i := 0; i < pieces; i++ {
		if i > 0 {
			time.Sleep(150 * time.Millisecond) // the whole body takes 450ms, over response: 300ms
		}
		_, err := io.WriteString(c, strings.Repeat(strconv.Itoa(i), size))
		require.NoError(t, err)
		select {
		case <-gotPiece:
		case <-time.After(time.Second):
			t.Fatalf("body piece %d did not reach the dyno: the body must stream as it arrives", i)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode, "sent %q and a body over 450ms (response: 300ms); the dyno answered at once; body %q", head, body)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, "at=info", head)
}

// TestDynoH12AfterEarlyHints: a 103 is no response head: a dyno that sends
// one and then stalls still gets H12, and the client the 103 then a 503.
func TestDynoH12AfterEarlyHints(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	d := dyOnceDyno(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
	tr := startRouter(t, "timeouts: {response: 300ms}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c, dyGetShop)
	require.NoError(t, err)
	cbr := bufio.NewReader(c)
	resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
	require.NoError(t, err)
	assert.Equal(t, 103, resp.StatusCode, "the dyno's 103 reaches the HTTP/1.1 client")
	if resp.StatusCode == 103 {
		resp, err = http.ReadResponse(cbr, &http.Request{Method: "GET"})
		require.NoError(t, err)
	}
	assert.Equal(t, 503, resp.StatusCode, "no final head within response: 300ms")
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H12 desc="Request timeout"`, dyGetShop)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
}

// TestDynoH15RollingWindow: timeouts.idle is a rolling window: a body
// that trickles in a byte every 100ms, 1s in all, longer than idle:
// 800ms, is relayed whole.
func TestDynoH15RollingWindow(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\na")
		for _, b := range []byte("bcdefghijk") {
			time.Sleep(100 * time.Millisecond)
			c.Write([]byte{b})
		}
		dyDrain(br)
	})
	tr := startRouter(t, "timeouts: {idle: 800ms}\n"+oneApp("", d.addr()))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	line := tr.lines.wait(t, 0)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "abcdefghijk", body, "a byte every 100ms never leaves the dyno idle for 800ms; line: %s", line)
	dyAssertLineStart(t, line, "at=info", dyGetShop)
	assert.Equal(t, "11", field(line, "bytes"), "line: %s", line)
}
