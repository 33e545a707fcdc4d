package router

// Issue 10: the client suite (SPEC.md 4, 6: H27, H28) over HTTP/1.1,
// HTTP/1.1 over TLS and HTTP/2. A client that goes away closes its
// connection over HTTP/1 and resets its stream with RST_STREAM(CANCEL)
// over HTTP/2.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mH27 = `sock=client at=warning code=H27 desc="Client Request Interrupted" `

// mCounter returns the value of a counter.
func mCounter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// mCancelWatchDyno reports each request on arrived, then waits for the
// router to close the connection: it reports "EOF" on saw, or answers
// after wait and reports that no cancel came.
func mCancelWatchDyno(t *testing.T, wait time.Duration, partial string, arrived chan<- struct{}, saw chan<- string) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if rqReadHead(br) == "" {
			return
		}
		if partial != "" {
			io.WriteString(c, partial)
		}
		arrived <- struct{}{}
		c.SetReadDeadline(time.Now().Add(wait))
		_, err := br.ReadByte()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			saw <- fmt.Sprintf("no cancel within %v", wait)
			return
		}
		saw <- fmt.Sprint(err)
	})
}

// TestModesClientH27Waiting: a client that goes away while the router
// waits for the dyno gets an H27 line (status=499) at once, and the dyno
// request is cancelled: the router closes the dyno connection. Over
// HTTP/2 the reset stream is the only casualty: the connection serves the
// next request.
func TestModesClientH27Waiting(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		arrived, saw := make(chan struct{}, 1), make(chan string, 1)
		d := startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				head := rqReadHead(br)
				if head == "" {
					return
				}
				if !strings.HasPrefix(head, "GET /slow ") {
					io.WriteString(c, rqOK)
					continue
				}
				arrived <- struct{}{}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err := br.ReadByte()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					saw <- "no cancel within 2s"
					return
				}
				saw <- fmt.Sprint(err)
				return
			}
		})
		mr := startModeRouter(t, m, "", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/slow"})
		defer s.close()
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request did not reach the dyno")
		}
		time.Sleep(50 * time.Millisecond) // past watchDelay: the router watches the client
		gone := time.Now()
		s.cancel()
		line := rqLineWithPath(t, mr.testRouter, "/slow")
		assert.Less(t, time.Since(gone), time.Second, "H27 is logged when the client goes, not when the dyno gives up (2s)")
		assert.True(t, strings.HasPrefix(rqLinePart(line), mH27+`method=GET path="/slow"`), "line %q", line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
		mr.assertLine(t, line)
		select {
		case got := <-saw:
			assert.Equal(t, "EOF", got, "the dyno request is cancelled: the router closes the dyno connection")
		case <-time.After(rqIOTimeout):
			t.Fatal("the dyno saw nothing")
		}
		if st, isH2 := s.(*mh2Stream); isH2 {
			next := st.c.openStream(t, mreq{method: "GET", path: "/after"}, true)
			resp := next.response(t)
			assert.Equal(t, 200, resp.status, "the connection of a reset stream serves the next request")
			assert.Nil(t, st.c.goAway(), "a stream reset ends no connection")
		}
	})
}

// TestModesClientH27MidResponse: a client that goes away while the
// response body is still coming gets an H27 line with status=499, and the
// dyno request is cancelled.
func TestModesClientH27MidResponse(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		arrived, saw := make(chan struct{}, 1), make(chan string, 1)
		d := mCancelWatchDyno(t, time.Second, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nfirst", arrived, saw)
		mr := startModeRouter(t, m, "", "", d.addr())
		s := mr.open(t, mreq{method: "GET", path: "/partial"})
		defer s.close()
		st, _ := s.head(t)
		require.Equal(t, 200, st)
		got, _ := s.read(t, 5, 2*time.Second)
		require.Equal(t, "first", string(got), "the first 5 body bytes are flushed within the buffering window")
		s.cancel()
		select {
		case saw := <-saw:
			assert.Equal(t, "EOF", saw, "the client left mid-response: the router must cancel the dyno request (close its connection)")
		case <-time.After(rqIOTimeout):
			t.Fatal("the dyno saw nothing")
		}
		line := rqLineWithPath(t, mr.testRouter, "/partial")
		assert.True(t, strings.HasPrefix(rqLinePart(line), mH27+`method=GET path="/partial"`), "the client left after 5 of 10 body bytes; line %q", line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		mr.assertLine(t, line)
	})
}

// TestModesClientH27MidBody: a client that goes away while sending a body
// that streams to the dyno gets an H27 line; the dyno gets the bytes sent,
// then its connection closes.
func TestModesClientH27MidBody(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
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
		mr := startModeRouter(t, m, "buffering: {request_bytes: 0}", "", d.addr())
		r := mreq{method: "POST", path: "/upload", body: []byte("0123456789")}
		s := mr.openPartial(t, r, 100)
		defer s.close()
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request head did not reach the dyno")
		}
		s.cancel()
		line := rqLineWithPath(t, mr.testRouter, "/upload")
		assert.True(t, strings.HasPrefix(rqLinePart(line), mH27+`method=POST path="/upload"`), "sent %s then went away; line %q", &r, line)
		assert.Equal(t, "499", field(line, "status"), "line %q", line)
		select {
		case got := <-dynoGot:
			if m == modeH2 {
				// RST_STREAM cancels the stream at once: body bytes the
				// router received before it and had not forwarded yet may
				// be dropped (RFC 9113 section 6.4); the dyno connection
				// closes all the same.
				assert.True(t, strings.HasPrefix("0123456789", got), "the dyno gets at most the 10 bytes sent, then its connection closes; got %q", got)
			} else {
				assert.Equal(t, "0123456789", got, "the dyno gets the 10 bytes sent, then its connection closes")
			}
		case <-time.After(rqIOTimeout):
			t.Fatal("the router did not close its dyno connection")
		}
	})
}

// TestModesClientGoneWhileBuffered: a client that goes away before its
// body came whole reached no dyno (SPEC.md 4.7). Over HTTP/1 that is an
// H27 line without a dyno; over HTTP/2 it is a stream reset before the
// request went to a dyno: no line, and the early-reset metric counts it
// (SPEC.md 4, the HTTP/2 paragraph).
func TestModesClientGoneWhileBuffered(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, m, "", "", d.addr())
		r := mreq{method: "POST", path: "/upload", body: []byte("0123456789")}
		s := mr.openPartial(t, r, 100)
		defer s.close()
		time.Sleep(20 * time.Millisecond) // the router holds the head and 10 bytes
		s.cancel()
		if m == modeH2 {
			require.Eventually(t, func() bool { return mCounter(t, mr.testRouter.m.earlyResets) == 1 }, rqIOTimeout, time.Millisecond,
				"spacerouter_h2_early_resets_total must count the stream reset before its request went to a dyno")
			mr.Router.lines.Load().Flush()
			assert.Empty(t, rqLines(mr.testRouter), "a stream reset before its request went to a dyno gets no line")
		} else {
			line := rqLineWithPath(t, mr.testRouter, "/upload")
			assert.True(t, strings.HasPrefix(rqLinePart(line), mH27+`method=POST path="/upload"`), "sent %s then closed; line %q", &r, line)
			assert.Equal(t, "499", field(line, "status"), "line %q", line)
			assert.Contains(t, line, " dyno= connect= service= ", "no dyno was chosen")
		}
		assert.Zero(t, d.accepted(), "a request whose body never came whole reaches no dyno")
	})
}

// TestModesClientH28: a client that stalls mid-body for timeouts.client
// gets 408 and an H28 line with status=499, whether its body streams to
// a dyno (which then sees its connection closed) or is being read before
// a dyno is chosen (no dyno).
func TestModesClientH28(t *testing.T) {
	const h28 = `at=warning code=H28 desc="Client Connection Idle" `
	runModes(t, func(t *testing.T, m mode) {
		t.Run("streamed", func(t *testing.T) {
			dynoGot := make(chan string, 1)
			d := startRawDyno(t, func(c net.Conn) {
				c.SetReadDeadline(time.Now().Add(rqIOTimeout))
				b, _ := io.ReadAll(c)
				dynoGot <- string(b)
			})
			mr := startModeRouter(t, m, "timeouts: {client: 200ms, keepalive: 5s}\nbuffering: {request_bytes: 0}", "", d.addr())
			r := mreq{method: "POST", path: "/short", body: []byte("abc")}
			sent := time.Now()
			s := mr.openPartial(t, r, 10)
			defer s.close()
			resp := s.response(t)
			took := time.Since(sent)
			assert.Equal(t, 408, resp.status, "sent %s and stalled", &r)
			assert.GreaterOrEqual(t, took, 150*time.Millisecond, "408 after timeouts.client (200ms)")
			assert.Less(t, took, 2*time.Second, "408 after timeouts.client (200ms)")
			line := rqLineWithPath(t, mr.testRouter, "/short")
			assert.True(t, strings.HasPrefix(rqLinePart(line), h28+`method=POST path="/short"`), "sent %s and stalled; line %q", &r, line)
			assert.Equal(t, "499", field(line, "status"), "line %q", line)
			mr.assertLine(t, line)
			select {
			case got := <-dynoGot:
				assert.True(t, strings.HasSuffix(got, "\r\n\r\nabc"), "the dyno got the head and 3 body bytes, then its connection closed; got %q", got)
			case <-time.After(rqIOTimeout):
				t.Fatal("the router did not close its dyno connection after H28")
			}
		})
		t.Run("buffered", func(t *testing.T) {
			d := rqRecordingDyno(t, nil)
			mr := startModeRouter(t, m, "timeouts: {client: 200ms, keepalive: 5s}", "", d.addr())
			r := mreq{method: "POST", path: "/short", body: []byte("abc")}
			s := mr.openPartial(t, r, 10)
			defer s.close()
			resp := s.response(t)
			assert.Equal(t, 408, resp.status, "sent %s and stalled", &r)
			line := rqLineWithPath(t, mr.testRouter, "/short")
			assert.True(t, strings.HasPrefix(rqLinePart(line), h28+`method=POST path="/short"`), "sent %s and stalled; line %q", &r, line)
			assert.Contains(t, line, " dyno= connect= service= status=499 ", "no dyno was chosen for a body that never came whole")
			assert.Zero(t, d.accepted(), "a slow body holds no dyno (SPEC.md 4.7)")
		})
	})
}

// TestModesClientSlowDynoNotIdle: once its request is complete, a client
// waiting longer than timeouts.client for a slow dyno is not idle.
func TestModesClientSlowDynoNotIdle(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		arrived := make(chan string, 1)
		d, release := rqHoldingDyno(t, "slow", arrived)
		mr := startModeRouter(t, m, "timeouts: {client: 100ms, keepalive: 5s}", "", d.addr())
		defer release()
		s := mr.open(t, mreq{method: "POST", path: "/wait", body: []byte("hello")})
		defer s.close()
		select {
		case <-arrived:
		case <-time.After(rqIOTimeout):
			t.Fatal("the request did not reach the dyno")
		}
		time.Sleep(300 * time.Millisecond) // 3× timeouts.client
		release()
		resp := s.response(t)
		assert.Equal(t, 200, resp.status)
		assert.Equal(t, "slow", string(resp.body))
		line := rqLineWithPath(t, mr.testRouter, "/wait")
		assert.Equal(t, "200", field(line, "status"), "line %q", line)
	})
}
