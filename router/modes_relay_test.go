package router

// Issue 10: the relay suite (SPEC.md 4.8, 4.9) over HTTP/1.1, HTTP/1.1 over
// TLS and HTTP/2: buffering, framing, 1xx, bodiless responses, sniffing.

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModesRelayBufferFirstBytes: with the default 10ms window, 5 body
// bytes the dyno sends before pausing reach the client at once. The dyno
// sends the rest only once the client has them (or after 2 s).
func TestModesRelayBufferFirstBytes(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		wrote := make(chan time.Time, 1)
		ack := make(chan struct{})
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if dyReadRequest(br) == "" {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello")
			wrote <- time.Now()
			dyWaitFor(ack, 2*time.Second)
			io.WriteString(c, "world")
			dyDrain(br)
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/first"})
		defer s.close()
		st, _ := s.head(t)
		require.Equal(t, 200, st)
		first, at := s.read(t, 5, 3*time.Second)
		w := <-wrote
		close(ack)
		assert.Equal(t, "hello", string(first))
		assert.Less(t, at.Sub(w), dyFlushSlack,
			"the dyno wrote %q then paused; the client got it %v later; want within buffering.window (10ms) plus margin", "hello", at.Sub(w))
		rest, end := s.rest(t)
		assert.Equal(t, "world", string(rest))
		assert.Equal(t, "end", end)
	}, modesNotParallel{})
}

// TestModesRelayWindowCoalesces: with a 100ms window, 10 one-byte writes
// 40 ms apart reach the client in fewer, larger pieces (socket reads over
// HTTP/1, DATA frames over HTTP/2), the first before the dyno wrote its
// last byte.
func TestModesRelayWindowCoalesces(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		const pieces, gap = 10, 40 * time.Millisecond
		lastWrite := make(chan time.Time, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if dyReadRequest(br) == "" {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\na", pieces)
			for i := 1; i < pieces; i++ {
				time.Sleep(gap)
				c.Write([]byte{byte('a' + i)})
			}
			lastWrite <- time.Now()
			dyDrain(br)
		})
		mr := startModeRouter(t, m, "buffering: {window: 100ms, bytes: 16384}", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/coalesce"})
		defer s.close()
		resp := s.response(t)
		require.Equal(t, 200, resp.status)
		assert.Equal(t, "abcdefghij", string(resp.body))
		ps := s.pieces()
		var sizes []int
		for _, p := range ps {
			sizes = append(sizes, p.n)
		}
		assert.Less(t, len(sizes), pieces, "10 writes 40ms apart with window 100ms must be coalesced; body pieces %v", sizes)
		assert.GreaterOrEqual(t, dyMaxInt(sizes), 2, "at least two bytes arrive together; body pieces %v", sizes)
		last := <-lastWrite
		if assert.NotEmpty(t, ps) {
			assert.True(t, ps[0].at.Before(last), "the first body piece must be flushed once it is window (100ms) old, before the dyno's last byte; pieces %v", sizes)
		}
	}, modesNotParallel{})
}

// TestModesRelayBytesThreshold: with buffering.bytes 1000, a 2000-byte
// burst is flushed at once, without waiting for a 2s window.
func TestModesRelayBytesThreshold(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		wrote := make(chan time.Time, 1)
		ack := make(chan struct{})
		burst := strings.Repeat("0123456789", 200)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if dyReadRequest(br) == "" {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4000\r\n\r\n"+burst)
			wrote <- time.Now()
			dyWaitFor(ack, 3*time.Second)
			io.WriteString(c, burst)
			dyDrain(br)
		})
		mr := startModeRouter(t, m, "buffering: {window: 2s, bytes: 1000}", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/burst"})
		defer s.close()
		st, _ := s.head(t)
		require.Equal(t, 200, st)
		first, at := s.read(t, 1000, 4*time.Second)
		w := <-wrote
		close(ack)
		require.Len(t, first, 1000)
		assert.Less(t, at.Sub(w), dyFlushSlack,
			"2000 bytes waiting with buffering.bytes 1000 must be flushed at once; the first 1000 came %v after the dyno wrote them (window 2s)", at.Sub(w))
		rest, end := s.rest(t)
		assert.Equal(t, "end", end)
		assert.Equal(t, burst+burst, string(first)+string(rest))
	}, modesNotParallel{})
}

// TestModesRelayEventStream: a text/event-stream response is flushed on
// every read, whatever the window; over HTTP/1.1 it goes chunked, over
// HTTP/2 as DATA frames.
func TestModesRelayEventStream(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		wrote := make(chan time.Time, 1)
		ack := make(chan struct{}, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if dyReadRequest(br) == "" {
				return
			}
			head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
			for i := 0; i < 3; i++ {
				ev := fmt.Sprintf("data: %d\n\n", i)
				fmt.Fprintf(c, "%s%x\r\n%s\r\n", head, len(ev), ev)
				head = ""
				wrote <- time.Now()
				select {
				case <-ack:
				case <-time.After(3 * time.Second):
				}
			}
			io.WriteString(c, "0\r\n\r\n")
			dyDrain(br)
		})
		mr := startModeRouter(t, m, "buffering: {window: 2s, bytes: 16384}", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/events", header: [][2]string{{"Accept", "text/event-stream"}}})
		defer s.close()
		st, h := s.head(t)
		require.Equal(t, 200, st)
		assert.Equal(t, "text/event-stream", h.Get("Content-Type"))
		for i := 0; i < 3; i++ {
			want := fmt.Sprintf("data: %d\n\n", i)
			got, at := s.read(t, len(want), 4*time.Second)
			w := <-wrote
			require.Equal(t, want, string(got), "event %d", i)
			assert.Less(t, at.Sub(w), dyFlushSlack, "event %d reached the client %v after the dyno wrote it (window 2s)", i, at.Sub(w))
			ack <- struct{}{}
		}
		rest, end := s.rest(t)
		assert.Empty(t, rest)
		assert.Equal(t, "end", end)
	}, modesNotParallel{})
}

// mChunkedBody returns a chunked dyno body on the wire, with a chunk
// extension, and what it decodes to.
func mChunkedBody() (wire, want string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w, d strings.Builder
	for i, n := range []int{1, 100, 5000, 3, 40000, 17} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte('a' + rng.IntN(26))
		}
		d.Write(p)
		ext := ""
		if i == 1 {
			ext = ";name=value"
		}
		fmt.Fprintf(&w, "%x%s\r\n%s\r\n", n, ext, p)
	}
	w.WriteString("0\r\n\r\n")
	return w.String(), d.String()
}

// TestModesRelayChunked: a chunked dyno response reaches an HTTP/1.1
// client chunked and an HTTP/2 client as DATA frames (no
// transfer-encoding, no content-length); both decode to the same bytes.
func TestModesRelayChunked(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		wire, want := mChunkedBody()
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			split := rand.New(rand.NewPCG(3, 4))
			for dyReadRequest(br) != "" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
				for s := wire; len(s) > 0; { // uneven writes, so chunks straddle reads
					n := min(len(s), 1+split.IntN(7000))
					io.WriteString(c, s[:n])
					s = s[n:]
				}
			}
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/chunked"})
		require.Equal(t, 200, resp.status)
		assert.Equal(t, "end", resp.end)
		assert.True(t, want == string(resp.body), "the body must decode to the %d bytes the dyno sent; got %d bytes", len(want), len(resp.body))
		if m == modeH2 {
			assert.Empty(t, resp.header.Values("Transfer-Encoding"), "no transfer-encoding over HTTP/2")
			assert.Empty(t, resp.header.Values("Content-Length"), "a body of unknown length has no content-length")
		} else {
			assert.True(t, resp.chunked, "an HTTP/1.1 client gets a chunked body chunked")
		}
		assert.Equal(t, fmt.Sprint(len(want)), field(resp.line, "bytes"), "line: %s", resp.line)
		mr.assertLine(t, resp.line)
	})
}

// TestModesRelayCloseDelimited: a dyno response without Content-Length or
// Transfer-Encoding that ends at close is relayed whole: chunked to an
// HTTP/1.1 client, as DATA frames ending with END_STREAM to an HTTP/2 one.
func TestModesRelayCloseDelimited(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		payload := strings.Repeat("close-delimited body. ", 1500)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if dyReadRequest(br) == "" {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
			for s := payload; len(s) > 0; {
				n := min(len(s), 4000)
				io.WriteString(c, s[:n])
				s = s[n:]
			}
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/close"})
		require.Equal(t, 200, resp.status)
		assert.Equal(t, "end", resp.end)
		assert.True(t, payload == string(resp.body), "want the %d bytes the dyno sent before closing; got %d", len(payload), len(resp.body))
		if m != modeH2 {
			assert.True(t, resp.chunked, "a close-delimited body goes chunked to an HTTP/1.1 client")
		}
		dyAssertLineStart(t, resp.line, "at=info", "GET /close")
		assert.Equal(t, fmt.Sprint(len(payload)), field(resp.line, "bytes"), "line: %s", resp.line)
	})
}

// TestModesRelayContentTypeSniffed: a response body without Content-Type
// gets one sniffed by http.DetectContentType, whole or streamed.
func TestModesRelayContentTypeSniffed(t *testing.T) {
	const html = "<!DOCTYPE html><html><body>hi</body></html>"
	runModes(t, func(t *testing.T, m mode) {
		for _, tc := range []struct{ name, resp, want string }{
			{"length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(html), html), "text/html; charset=utf-8"},
			{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n%PDF-\r\n3\r\n1.4\r\n0\r\n\r\n", "application/pdf"},
			{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := dyOnceDyno(t, tc.resp)
				mr := startModeRouter(t, m, "", "", d.addr())
				resp := mr.do(t, mreq{method: "GET", path: "/sniff"})
				require.Equal(t, 200, resp.status)
				assert.Equal(t, tc.want, resp.header.Get("Content-Type"), "dyno sent %q", tc.resp)
			})
		}
	})
}

// TestModesRelayNoBody: HEAD, 204 and 304 responses carry no body (over
// HTTP/2: END_STREAM on the HEADERS frame, no DATA); a HEAD answer keeps
// the dyno's Content-Length.
func TestModesRelayNoBody(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, func(r rqReq) string {
			switch {
			case strings.HasPrefix(r.requestLine(), "HEAD "):
				return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
			case strings.HasPrefix(r.requestLine(), "GET /204 "):
				return "HTTP/1.1 204 No Content\r\nX-N: 204\r\n\r\n"
			case strings.HasPrefix(r.requestLine(), "GET /304 "):
				return "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
			}
			return rqOK
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		for _, tc := range []struct {
			method, path string
			status       int
		}{{"HEAD", "/head", 200}, {"GET", "/204", 204}, {"GET", "/304", 304}} {
			r := mreq{method: tc.method, path: tc.path}
			s := mr.open(t, r)
			resp := s.response(t)
			s.close()
			assert.Equal(t, tc.status, resp.status, "sent %s", &r)
			assert.Empty(t, resp.body, "sent %s", &r)
			assert.Equal(t, "end", resp.end, "sent %s", &r)
			assert.Empty(t, s.pieces(), "sent %s: no body bytes, no DATA frame", &r)
			if tc.method == "HEAD" {
				assert.Equal(t, "100", resp.header.Get("Content-Length"), "the HEAD answer keeps the dyno's Content-Length")
			}
			line := rqLineWithPath(t, mr.testRouter, tc.path)
			assert.Equal(t, fmt.Sprint(tc.status), field(line, "status"), "line %q", line)
			assert.Equal(t, "0", field(line, "bytes"), "line %q", line)
		}
	})
}

// TestModesRelayEarlyHints: a 103 from the dyno reaches the client, with
// its fields, before the final response.
func TestModesRelayEarlyHints(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		ack := make(chan struct{}, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for dyReadRequest(br) != "" {
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
				select {
				case <-ack: // the client saw the 103 before the final response
				case <-time.After(time.Second):
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/hints"})
		defer s.close()
		h := s.waitInterim(t)
		ack <- struct{}{}
		require.NotNil(t, h, "the dyno's 103 comes first, before the dyno sends its 200")
		assert.Equal(t, "103", h.Get(":status"))
		assert.Equal(t, "</style.css>; rel=preload; as=style", h.Get("Link"))
		resp := s.response(t)
		assert.Equal(t, 200, resp.status)
		assert.Equal(t, "ok", string(resp.body))
		line := rqLineWithPath(t, mr.testRouter, "/hints")
		assert.Equal(t, "200", field(line, "status"), "the line has the final status; line %q", line)
	})
}

// TestModesRelayResponseFields: hop-by-hop fields of the dyno's response
// are dropped, Via is appended, other fields pass as they are.
func TestModesRelayResponseFields(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		const dresp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n" +
			"Via: 1.1 vegur\r\nX-Kept: yes\r\nCache-Control: no-store\r\nSet-Cookie: a=1; Path=/; HttpOnly\r\nSet-Cookie: b=2\r\n" +
			"Content-Length: 2\r\n\r\nok"
		d := dyOnceDyno(t, dresp)
		mr := startModeRouter(t, m, "", "", d.addr())
		resp := mr.do(t, mreq{method: "GET", path: "/fields"})
		require.Equal(t, 200, resp.status)
		assert.Equal(t, "ok", string(resp.body))
		for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Connection"} {
			assert.Empty(t, resp.header.Values(h), "hop-by-hop %s must not reach the client; dyno sent %q", h, dresp)
		}
		assert.Equal(t, "yes", resp.header.Get("X-Kept"))
		assert.Equal(t, "no-store", resp.header.Get("Cache-Control"))
		assert.Equal(t, "text/plain; charset=utf-8", resp.header.Get("Content-Type"))
		assert.Equal(t, []string{"a=1; Path=/; HttpOnly", "b=2"}, resp.header.Values("Set-Cookie"), "each Set-Cookie stays a field")
		assert.Equal(t, []string{"1.1 vegur, " + m.via()}, resp.header.Values("Via"), "Via is appended to")
	})
}
