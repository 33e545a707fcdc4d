package router

// Issue 10: the H codes of SPEC.md 6 over HTTP/1.1, HTTP/1.1 over TLS and
// HTTP/2: the same codes and statuses in every mode; where a response is
// cut short, HTTP/1 closes the connection and HTTP/2 resets the stream.

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// startModeRouterWith is startModeRouter with setup run on the router
// before it starts (for test hooks such as hookHandle).
func startModeRouterWith(t testing.TB, m mode, global, appExtra string, setup func(r *Router), dynos ...string) *modeRouter {
	t.Helper()
	var p *testPKI
	if m.tls() {
		p = newTestPKI(t)
	}
	text := modesYAML(t, m, p, global, appExtra, dynos...)
	if !strings.Contains(text, "listen:") {
		text = "listen: {http: \"127.0.0.1:0\"}\n" + text
	}
	cfg, err := config.Parse("test.yaml", []byte(text))
	require.NoError(t, err, "config:\n%s", text)
	sink := newLineSink()
	r, err := New(cfg, Options{Lines: logging.NewRouterLog(sink, "heroku[router]", cfg.Log.Redact)})
	require.NoError(t, err)
	setup(r)
	require.NoError(t, r.Start())
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return &modeRouter{testRouter: &testRouter{Router: r, lines: sink, addr: r.HTTPAddr().String()}, m: m, p: p}
}

// mAssertErrorLine checks a router-made error's line: its start (after the
// source), status, bytes= the body the client got, and the mode's
// protocol fields.
func mAssertErrorLine(t *testing.T, mr *modeRouter, resp mresp, start string, status int) {
	t.Helper()
	dyAssertLineStart(t, resp.line, start, "")
	assert.Equal(t, strconv.Itoa(status), field(resp.line, "status"), "line %q", resp.line)
	assert.Equal(t, strconv.Itoa(len(resp.body)), field(resp.line, "bytes"), "bytes= is the body the client got; line %q", resp.line)
	mr.assertLine(t, resp.line)
}

// TestModesH10: no dyno up: 503 with the error page and an H10 line with
// no dyno fields.
func TestModesH10(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		mr := startModeRouter(t, m, "", "", "crashed:127.0.0.1:1", "crashed:127.0.0.1:2")
		resp := mr.do(t, mreq{method: "GET", path: "/x"})
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		mAssertErrorLine(t, mr, resp, `at=error code=H10 desc="App crashed"`, 503)
		assert.Contains(t, resp.line, " dyno= connect= service= status=503 ")
	})
}

// mOpenBeside opens r beside s: on the same connection over HTTP/2 (a
// second stream), on a new connection over HTTP/1.
func (mr *modeRouter) mOpenBeside(t testing.TB, s mstream, r mreq) mstream {
	t.Helper()
	if st, ok := s.(*mh2Stream); ok {
		return st.c.openStream(t, r, true)
	}
	return mr.open(t, r)
}

// TestModesH11: with concurrency_per_dyno 1 and a request held at the
// dyno, the next one gets 503 and H11 at once; over HTTP/2 both are
// streams of one connection.
func TestModesH11(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		arrived := make(chan string, 2)
		d, release := rqHoldingDyno(t, "held", arrived)
		mr := startModeRouter(t, m, "limits: {concurrency_per_dyno: 1}", "", d.addr())
		defer release()
		s := mr.open(t, mreq{method: "GET", path: "/held"})
		defer s.close()
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the first request did not reach the dyno")
		}
		s2 := mr.mOpenBeside(t, s, mreq{method: "GET", path: "/more"})
		defer s2.close()
		resp := s2.response(t)
		resp.line = rqLineWithPath(t, mr.testRouter, "/more")
		assert.Equal(t, 503, resp.status)
		mAssertErrorLine(t, mr, resp, `at=error code=H11 desc="Backlog too deep"`, 503)
		assert.Contains(t, resp.line, " dyno= connect= service= status=503 ")
		release()
		resp = s.response(t)
		assert.Equal(t, 200, resp.status, "the held request completes")
		assert.Equal(t, "held", string(resp.body))
	})
}

// TestModesH12: a dyno that never answers gets H12 after
// timeouts.response; the client gets 503 and the error page.
func TestModesH12(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			readRequestHead(br)
			dyDrain(br)
		})
		mr := startModeRouter(t, m, "timeouts: {response: 300ms}", "", d.addr())
		start := time.Now()
		resp := mr.do(t, mreq{method: "GET", path: "/slow"})
		took := time.Since(start)
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		assert.True(t, took >= 290*time.Millisecond && took < 2*time.Second, "503 came after %v; want about response: 300ms", took)
		mAssertErrorLine(t, mr, resp, `at=error code=H12 desc="Request timeout"`, 503)
		assert.Equal(t, "web.1", field(resp.line, "dyno"), "line %q", resp.line)
		dyAssertMillis(t, resp.line, "service", 290*time.Millisecond, 2*time.Second)
	}, modesNotParallel{})
}

// TestModesH13: a dyno that closes without a response byte: 503 and H13.
func TestModesH13(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := startRawDyno(t, func(c net.Conn) { readRequestHead(bufio.NewReader(c)) })
		mr := startModeRouter(t, m, "", "", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/"})
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		mAssertErrorLine(t, mr, resp, `at=error code=H13 desc="Connection closed without response"`, 503)
		assert.Equal(t, "web.1", field(resp.line, "dyno"), "line %q", resp.line)
	})
}

// mCutShort checks how a response cut short after its head ended: the
// HTTP/1 connection closed mid-body, the HTTP/2 stream reset.
func mCutShort(t testing.TB, m mode, end string) {
	t.Helper()
	if m == modeH2 {
		assert.True(t, strings.HasPrefix(end, "reset "), "over HTTP/2 a response cut short is a reset stream; it ended %q", end)
		return
	}
	assert.Equal(t, "eof", end, "over HTTP/1 a response cut short closes the connection mid-body")
}

// TestModesH15: a dyno that sends its head and 10 of 100 body bytes and
// stalls past timeouts.idle: the client gets the head and the 10 bytes,
// then the response is cut (connection closed, stream reset); the line is
// H15, status=503, bytes=10.
func TestModesH15(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := dyOnceDyno(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
		mr := startModeRouter(t, m, "timeouts: {idle: 300ms}", "", d.addr())
		sentAt := time.Now()
		s := mr.open(t, mreq{method: "GET", path: "/idle"})
		defer s.close()
		resp := s.response(t)
		cutAfter := time.Since(sentAt)
		assert.Equal(t, 200, resp.status, "the dyno's status reaches the client before the stall")
		assert.Equal(t, "0123456789", string(resp.body), "the 10 body bytes the dyno sent reach the client")
		mCutShort(t, m, resp.end)
		assert.True(t, cutAfter >= 290*time.Millisecond && cutAfter < 3*time.Second, "cut %v after the request; want about idle: 300ms", cutAfter)
		line := rqLineWithPath(t, mr.testRouter, "/idle")
		dyAssertLineStart(t, line, `at=error code=H15 desc="Idle connection"`, "GET /idle")
		assert.Equal(t, "503", field(line, "status"), "line %q", line)
		assert.Equal(t, "10", field(line, "bytes"), "bytes= counts the body bytes relayed; line %q", line)
		mr.assertLine(t, line)
	}, modesNotParallel{})
}

// TestModesH17: responses that cannot be parsed get H17 and 503.
func TestModesH17(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range []struct{ name, resp string }{
			{"status line without code", "HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\nok"},
			{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
			{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := dyOnceDyno(t, tc.resp)
				mr := startModeRouter(t, m, "", "", d.addr())
				resp := mr.do(t, mreq{method: "GET", path: "/h17"})
				assert.Equal(t, 503, resp.status, "dyno sent %q", tc.resp)
				assert.Contains(t, string(resp.body), "Application Error", "dyno sent %q", tc.resp)
				mAssertErrorLine(t, mr, resp, `at=error code=H17 desc="Poorly formatted HTTP response"`, 503)
			})
		}
	})
}

// TestModesH18Response: a dyno that closes mid-body after the head reached
// the client: sock=backend H18 with the status already sent, and the
// response is cut (connection closed, stream reset).
func TestModesH18Response(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range []struct{ name, resp string }{
			{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 40)},
			{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + strings.Repeat("x", 40)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				release := make(chan struct{})
				d := startRawDyno(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					if dyReadRequest(br) == "" {
						return
					}
					io.WriteString(c, tc.resp)
					dyWaitFor(release, 3*time.Second)
				})
				mr := startModeRouter(t, m, "", "", d.addr())
				s := mr.open(t, mreq{method: "GET", path: "/h18"})
				defer s.close()
				st, _ := s.head(t)
				require.Equal(t, 200, st, "the head must be relayed while the dyno holds the rest")
				got, _ := s.read(t, 40, 3*time.Second)
				require.Len(t, got, 40, "the first 40 body bytes must reach the client within buffering.window")
				close(release)
				rest, end := s.rest(t)
				assert.Empty(t, rest, "no byte after the dyno closed")
				mCutShort(t, m, end)
				line := rqLineWithPath(t, mr.testRouter, "/h18")
				dyAssertLineStart(t, line, `sock=backend at=error code=H18 desc="Server Request Interrupted"`, "GET /h18")
				assert.Equal(t, "200", field(line, "status"), "status= is the status already sent; line %q", line)
				assert.Equal(t, "40", field(line, "bytes"), "line %q", line)
				mr.assertLine(t, line)
			})
		}
	})
}

// TestModesH18RequestBody: a dyno that closes after reading the head
// while the router still streams the request body to it: H18 with 503.
// The client sends the second part of its body only once the dyno has
// closed, so the dyno's close lands mid-body however large the socket
// buffers are.
func TestModesH18RequestBody(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		closed := make(chan struct{})
		d := startRawDyno(t, func(c net.Conn) {
			readRequestHead(bufio.NewReader(c))
			c.Close()
			close(closed)
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		const size, first = 2 << 20, 256 << 10
		s := mr.openPartial(t, mreq{method: "POST", path: "/upload"}, size)
		defer s.close()
		// The router may answer before all of it went out: the dyno
		// closes as soon as it has the head.
		mTrySend(s, make([]byte, first), false)
		select {
		case <-closed:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request did not reach the dyno")
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := make([]byte, 32<<10)
			for sent := first; sent < size; sent += len(chunk) {
				if err := mTrySend(s, chunk, sent+len(chunk) == size); err != nil {
					return // the router ended the request
				}
			}
		}()
		resp := s.response(t)
		assert.Equal(t, 503, resp.status, "the dyno closed mid-request-body")
		line := rqLineWithPath(t, mr.testRouter, "/upload")
		s.close()
		wg.Wait()
		dyAssertLineStart(t, line, `sock=backend at=error code=H18 desc="Server Request Interrupted"`, "POST /upload")
		assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
		assert.Equal(t, "503", field(line, "status"), "line %q", line)
		mr.assertLine(t, line)
	})
}

// mTrySend sends request body bytes and returns what went wrong, if
// anything (the router may have ended the request).
func mTrySend(s mstream, p []byte, end bool) error {
	switch st := s.(type) {
	case *mh2Stream:
		return st.trySendBody(p, end)
	case *mh1Stream:
		_, err := st.c.nc.Write(p)
		return err
	}
	return nil
}

// TestModesH21: a refused connect is H21 with 503; connect= is filled and
// service= empty.
func TestModesH21(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		mr := startModeRouter(t, m, "", "", dyClosedAddr(t))
		resp := mr.do(t, mreq{method: "GET", path: "/"})
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		mAssertErrorLine(t, mr, resp, `at=error code=H21 desc="Backend connection refused"`, 503)
		assert.Equal(t, "web.1", field(resp.line, "dyno"), "line %q", resp.line)
		dyAssertMillis(t, resp.line, "connect", 0, time.Second)
		assert.Contains(t, resp.line, " service= status=503 ", "service= is empty when no request was sent")
	})
}

// TestModesH25Request: a request field, cookie or request line (over
// HTTP/2, :method and :path) over the limits gets 400 (414 for the line)
// and an H25 line with no dyno; nothing reaches a dyno.
func TestModesH25Request(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range []struct {
			name   string
			r      mreq
			status int
			desc   string
		}{
			{"header", mreq{method: "GET", path: "/big-header", header: [][2]string{{"X-Big", strings.Repeat("a", 1100)}}}, 400, "oversized header"},
			{"cookie", mreq{method: "GET", path: "/big-cookie", header: [][2]string{{"Cookie", "a=" + strings.Repeat("b", 400)}}}, 400, "oversized cookies"},
			{"line", mreq{method: "GET", path: "/" + strings.Repeat("p", 120)}, 414, "oversized status line"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := rqRecordingDyno(t, nil)
				mr := startModeRouter(t, m, "limits: {request_line_bytes: 100, header_bytes: 1000, cookie_bytes: 300}", "", d.addr())
				s := mr.open(t, tc.r)
				resp := s.response(t)
				s.close()
				resp.line = mWaitLine(t, mr.testRouter, func(l string) bool { return strings.Contains(l, " code=H25 ") })
				assert.Equal(t, tc.status, resp.status, "sent %s", &tc.r)
				mAssertErrorLine(t, mr, resp, `at=error code=H25 desc="HTTP restriction: `+tc.desc+`"`, tc.status)
				// SPEC.md 7: path= is the request target as received; the
				// HTTP/1 line of a refused request carries it (conn.go
				// salvageRequestLine keeps up to 1024 bytes of the line).
				assert.Equal(t, tc.r.path, field(resp.line, "path"), "path= of the refused request; line %q", resp.line)
				assert.Contains(t, resp.line, " dyno= connect= service= ", "line %q", resp.line)
				assert.Zero(t, d.accepted(), "nothing of a refused request reaches a dyno")
			})
		}
	})
}

// TestModesH25Response: a response status line, field or Set-Cookie over
// the limits gets 502 and H25.
func TestModesH25Response(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range []struct{ name, resp, desc string }{
			{"status line", "HTTP/1.1 200 " + strings.Repeat("O", 120) + "\r\nContent-Length: 2\r\n\r\nok", "oversized status line"},
			{"header", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1100) + "\r\nContent-Length: 2\r\n\r\nok", "oversized header"},
			{"cookie", "HTTP/1.1 200 OK\r\nSet-Cookie: a=" + strings.Repeat("b", 400) + "\r\nContent-Length: 2\r\n\r\nok", "oversized cookies"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := dyOnceDyno(t, tc.resp)
				mr := startModeRouter(t, m, "limits: {request_line_bytes: 100, header_bytes: 1000, cookie_bytes: 300}", "", d.addr())
				resp := mr.do(t, mreq{method: "GET", path: "/h25"})
				assert.Equal(t, 502, resp.status, "dyno sent a %d-byte head (%s)", len(tc.resp), tc.name)
				assert.Contains(t, string(resp.body), "Application Error", "a router-made 502 carries the error page")
				mAssertErrorLine(t, mr, resp, `at=error code=H25 desc="HTTP restriction: `+tc.desc+`"`, 502)
				assert.Equal(t, "web.1", field(resp.line, "dyno"), "line %q", resp.line)
			})
		}
	})
}

// TestModesH26Expect: an Expect value other than 100-continue gets 417
// and an H26 line in every mode (SPEC.md 4.2).
func TestModesH26Expect(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "POST", path: "/expect", header: [][2]string{{"Expect", "foo"}}, body: []byte("hello")}
		resp := mr.do(t, r)
		assert.Equal(t, 417, resp.status, "sent %s", &r)
		mAssertErrorLine(t, mr, resp, `at=error code=H26 desc="Request Error" cause="unsupported expect header value"`, 417)
		assert.Zero(t, d.accepted(), "nothing of a refused request reaches a dyno")
	})
}

// TestModesH26BadHeaderHTTP1: a malformed HTTP/1 request (two
// Content-Length fields) gets 400 and H26 bad header.
func TestModesH26BadHeaderHTTP1(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "POST", path: "/dup", header: [][2]string{{"Content-Length", "5"}, {"Content-Length", "5"}}, body: []byte("hello")}
		resp := mr.do(t, r)
		assert.Equal(t, 400, resp.status, "sent %s", &r)
		mAssertErrorLine(t, mr, resp, `at=error code=H26 desc="Request Error" cause="bad header"`, 400)
		assert.Zero(t, d.accepted(), "nothing of a refused request reaches a dyno")
	}, []mode{modeH1, modeH1TLS})
}

// TestModesH26MalformedHTTP2: a malformed HTTP/2 request (RFC 9113 section
// 8.2) is reset with PROTOCOL_ERROR and gets an H26 line, cause "bad
// header", status= empty; a body longer or shorter than its
// content-length, cause "bad chunk" (SPEC.md 4, the HTTP/2 paragraph).
// Nothing reaches a dyno, and the connection goes on.
func TestModesH26MalformedHTTP2(t *testing.T) {
	t.Parallel()
	pseudo := func(path string) [][2]string {
		return [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "shop.test"}, {":path", path}}
	}
	for _, tc := range []struct {
		name, path string
		fields     [][2]string
		body       string
		cause      string
	}{
		{"connection field", "/conn", append(pseudo("/conn"), [2]string{"connection", "x"}), "", "bad header"},
		{"te gzip", "/te", append(pseudo("/te"), [2]string{"te", "gzip"}), "", "bad header"},
		{"upper-case name", "/upper", append(pseudo("/upper"), [2]string{"X-Upper", "1"}), "", "bad header"},
		{"CR in a value", "/cr", append(pseudo("/cr"), [2]string{"x-a", "a\rb"}), "", "bad header"},
		{"missing :path", "", pseudo("/nopath")[:3], "", "bad header"},
		{"body shorter than content-length", "/short", append(pseudo("/short"), [2]string{"content-length", "5"}), "abc", "bad chunk"},
		{"body longer than content-length", "/long", append(pseudo("/long"), [2]string{"content-length", "2"}), "hello", "bad chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := rqRecordingDyno(t, nil)
			mr := startModeRouter(t, modeH2, "", "", d.addr())
			c := mr.h2Dial(t, "shop.test", nil)
			r := mreq{method: "POST", path: tc.path}
			if tc.body != "" {
				r.body = []byte(tc.body)
			}
			st := c.openRaw(t, r, tc.fields, true)
			_, end := st.rest(t)
			assert.Equal(t, "reset PROTOCOL_ERROR", end, "sent %q + %q: want RST_STREAM(PROTOCOL_ERROR)", tc.fields, tc.body)
			want := `at=error code=H26 desc="Request Error" cause="` + tc.cause + `"`
			var line string
			if r.path == "" {
				line = mWaitLine(t, mr.testRouter, func(l string) bool { return strings.Contains(l, " code=H26 ") })
			} else {
				line = rqLineWithPath(t, mr.testRouter, r.path)
			}
			dyAssertLineStart(t, line, want, tc.name)
			assert.Contains(t, line, ` method=POST path="`+tc.path+`" `, "line %q", line)
			assert.Contains(t, line, " status= bytes= ", "a reset stream has no status; line %q", line)
			mr.assertLine(t, line)
			assert.Zero(t, d.accepted(), "nothing of a malformed request reaches a dyno")
			ok := c.openStream(t, mreq{method: "GET", path: "/next"}, true).response(t)
			assert.Equal(t, 200, ok.status, "the connection serves on after a malformed stream")
		})
	}
	t.Run("content-length 0 with END_STREAM", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, modeH2, "", "", d.addr())
		c := mr.h2Dial(t, "shop.test", nil)
		r := mreq{method: "POST", path: "/empty"}
		st := c.openRaw(t, r, append(pseudo("/empty"), [2]string{"content-length", "0"}), true)
		resp := st.response(t)
		assert.Equal(t, 200, resp.status, "content-length: 0 with END_STREAM on HEADERS is an ordinary empty body")
		got := d.next(t)
		assert.Equal(t, []string{"0"}, got.values("Content-Length"), "dyno head:\n%s", got.head)
	})
}

// mWaitLine waits for a router line that match accepts.
func mWaitLine(t testing.TB, tr *testRouter, match func(string) bool) string {
	t.Helper()
	var found string
	require.Eventually(t, func() bool {
		for _, l := range rqLines(tr) {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	}, rqIOTimeout, time.Millisecond, "no matching router line; lines %q", rqLines(tr))
	return found
}

// TestModesH31: on TLS, a Host (HTTP/2 :authority) that is not a domain of
// the SNI name's app gets 421 and H31; another domain of the same app is
// fine.
func TestModesH31(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/mis", sni: "shop.test", host: "blog.test"})
		assert.Equal(t, 421, resp.status, "SNI shop.test with Host blog.test")
		mAssertErrorLine(t, mr, resp, `at=error code=H31 desc="Misdirected Request"`, 421)
		assert.Contains(t, resp.line, `path="/mis" host=blog.test `)
		assert.Contains(t, resp.line, " dyno= connect= service= status=421 ")
		resp = mr.do(t, mreq{method: "GET", path: "/same-app", sni: "www.shop.test", host: "shop.test"})
		assert.Equal(t, 200, resp.status, "SNI www.shop.test with Host shop.test: one app")
	}, []mode{modeH1TLS, modeH2})
}

// TestModesH80: maintenance mode answers 503 with the maintenance page and
// an H80 line; no dyno is reached.
func TestModesH80(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "maintenance: true", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/m"})
		assert.Equal(t, 503, resp.status)
		mAssertErrorLine(t, mr, resp, `at=info code=H80 desc="Maintenance mode"`, 503)
		assert.Zero(t, d.accepted(), "maintenance reaches no dyno")
	})
}

// TestModesH99: a panic in the request path is recovered, answered 503
// with an H99 line, and the router (over HTTP/2: the same connection)
// serves on.
func TestModesH99(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		var panics atomic.Bool
		panics.Store(true)
		mr := startModeRouterWith(t, m, "", "", func(r *Router) {
			r.hookHandle = func() {
				if panics.Load() {
					panic("boom")
				}
			}
		}, d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/p"})
		defer s.close()
		resp := s.response(t)
		resp.line = rqLineWithPath(t, mr.testRouter, "/p")
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		mAssertErrorLine(t, mr, resp, `at=error code=H99 desc="Platform error"`, 503)
		panics.Store(false)
		next := mreq{method: "GET", path: "/q"}
		var again mresp
		if st, ok := s.(*mh2Stream); ok {
			again = st.c.openStream(t, next, true).response(t)
		} else {
			again = mr.do(t, next)
		}
		assert.Equal(t, 200, again.status, "the router serves on after a panic")
		assert.Equal(t, "ok", string(again.body))
	})
}
