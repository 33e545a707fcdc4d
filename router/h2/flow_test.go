package h2

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// shrinkRateWindow makes the MinRate window d for one test.
func shrinkRateWindow(t *testing.T, d time.Duration) {
	saved := rateWindow
	rateWindow = d
	t.Cleanup(func() { rateWindow = saved })
}

// TestSlowClient: a window that never opens cuts a Send with ErrSlowClient
// after one rate window (SPEC.md section 2 min_transfer_rate).
func TestSlowClient(t *testing.T) {
	shrinkRateWindow(t, 100*time.Millisecond)
	type result struct {
		err     error
		elapsed time.Duration
	}
	res := make(chan result, 1)
	srv := startServer(t, &Config{MinRate: 1000}, handlerFunc(func(s *Stream) {
		defer s.Close()
		start := time.Now()
		err := s.Send(&Head{Status: 200, ContentLength: 10000}, make([]byte, 10000), true)
		res <- result{err, time.Since(start)}
	}))
	c := dialRaw(t, srv)
	c.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	r := <-res
	require.ErrorIs(t, r.err, ErrSlowClient)
	assert.Less(t, r.elapsed, 2*time.Second)
	rs, _ := c.until(done(id))
	assert.Equal(t, 200, rs[id].status, "the head went out")
	assert.Equal(t, http2.ErrCodeInternal, rs[id].rst, "Close resets the cut response")
}

// TestIdleStreamNotCut: a stream with nothing to send (a long poll, SSE)
// is never cut by MinRate, and a slow but steady reader is not either.
func TestIdleStreamNotCut(t *testing.T) {
	shrinkRateWindow(t, 50*time.Millisecond)
	errs := make(chan error, 2)
	srv := startServer(t, &Config{MinRate: 1000}, handlerFunc(func(s *Stream) {
		defer s.Close()
		errs <- s.Send(&Head{Status: 200, ContentLength: -1}, []byte("first"), false)
		<-time.After(200 * time.Millisecond) // idle: nothing to send for four rate windows
		errs <- s.Send(nil, []byte("second"), true)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/events")...)
	c.flush()
	rs, _ := c.until(done(id))
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.Equal(t, "firstsecond", string(rs[id].body))
}

// TestWriteDeadline: Send returns os.ErrDeadlineExceeded at the write
// deadline while it waits for a window.
func TestWriteDeadline(t *testing.T) {
	errc := make(chan error, 1)
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		s.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
		errc <- s.Send(&Head{Status: 200, ContentLength: 10}, make([]byte, 10), true)
	}))
	c := dialRaw(t, srv)
	c.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.headers(true, reqFields("GET", "/")...)
	c.flush()
	require.ErrorIs(t, <-errc, os.ErrDeadlineExceeded)
}

// TestSendWindows: DATA frames never exceed the client's windows or frame
// size, SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams, and
// the response completes as WINDOW_UPDATEs come.
func TestSendWindows(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100000)
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		s.Send(&Head{Status: 200, ContentLength: int64(len(body))}, body, true)
	}))
	c := dialRaw(t, srv)
	c.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	win := int64(1000)
	got := 0
	for got < len(body) {
		switch f := c.read().(type) {
		case *http2.DataFrame:
			n := int64(len(f.Data()))
			require.LessOrEqual(t, n, win, "DATA beyond the window")
			require.LessOrEqual(t, n, int64(16384))
			win -= n
			got += int(n)
			if win == 0 {
				// Grow the window by SETTINGS once, by WINDOW_UPDATE after.
				if got == 1000 {
					c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 21000})
					win += 20000
				} else {
					c.fr.WriteWindowUpdate(id, 30000)
					win += 30000
				}
				c.fr.WriteWindowUpdate(0, 1<<20)
				c.flush()
			}
		case *http2.SettingsFrame, *http2.HeadersFrame, *http2.WindowUpdateFrame:
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	assert.Equal(t, len(body), got)
}

// TestRecvWindow: a handler that does not read holds the client to the
// stream window (one byte more is a FLOW_CONTROL_ERROR reset); what it
// reads comes back in WINDOW_UPDATE frames.
func TestRecvWindow(t *testing.T) {
	readNow := make(chan struct{})
	read := make(chan int, 1)
	srv := startServer(t, &Config{StreamWindow: 16384}, handlerFunc(func(s *Stream) {
		defer s.Close()
		<-readNow
		n, _ := io.ReadFull(s, make([]byte, 8192))
		read <- n
		<-readNow
	}))
	c := dialRaw(t, srv)
	got := c.handshake()
	assert.Contains(t, got, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16384})
	id := c.headers(false, reqFields("POST", "/")...)
	c.fr.WriteData(id, false, make([]byte, 16384))
	c.flush()
	readNow <- struct{}{}
	require.Equal(t, 8192, <-read)
	// The handler read 8192 bytes: at least a quarter of the window comes
	// back on the stream.
	var credit uint32
	for credit == 0 {
		if wu, ok := c.read().(*http2.WindowUpdateFrame); ok && wu.StreamID == id {
			credit = wu.Increment
		}
	}
	assert.Equal(t, uint32(8192), credit)
	c.fr.WriteData(id, false, make([]byte, int(credit)+1))
	c.flush()
	rs, _ := c.until(done(id))
	assert.Equal(t, http2.ErrCodeFlowControl, rs[id].rst)
	close(readNow)
}

// TestLargeBodiesWithSmallWindows moves 3 MiB each way through the x/net
// client with windows smaller than the bodies.
func TestLargeBodiesWithSmallWindows(t *testing.T) {
	srv := startServer(t, &Config{StreamWindow: 20000, ConnWindow: 70000}, handlerFunc(echo), withTLS)
	tr := srv.transport()
	defer tr.CloseIdleConnections()
	big := bytes.Repeat([]byte("abcdefgh"), 3<<17)
	resp, body := get(t, &http.Client{Transport: tr}, "PUT", srv.url("/big"), big)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, len("PUT /big\n")+len(big), len(body))
	require.True(t, bytes.Equal(big, body[len("PUT /big\n"):]))
}

// TestReadDeadline: Read returns os.ErrDeadlineExceeded at the deadline
// and the stream stays usable.
func TestReadDeadline(t *testing.T) {
	type result struct {
		first error
		data  string
		err   error
	}
	res := make(chan result, 1)
	timedOut := make(chan struct{})
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		var r result
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, r.first = s.Read(make([]byte, 10))
		close(timedOut)
		s.SetReadDeadline(time.Time{})
		b, err := io.ReadAll(s)
		r.data, r.err = string(b), err
		res <- r
		s.Send(&Head{Status: 204, ContentLength: -1}, nil, true)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(false, reqFields("POST", "/")...)
	c.flush()
	<-timedOut
	c.fr.WriteData(id, true, []byte("late"))
	c.flush()
	r := <-res
	require.ErrorIs(t, r.first, os.ErrDeadlineExceeded)
	require.NoError(t, r.err)
	assert.Equal(t, "late", r.data)
	rs, _ := c.until(done(id))
	assert.Equal(t, 204, rs[id].status)
}

// TestGone: a client reset wakes a blocked Read with ErrStreamReset and
// runs the OnGone callback.
func TestGone(t *testing.T) {
	reading := make(chan struct{})
	res := make(chan error, 1)
	goneCalled := make(chan struct{})
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		s.SetOnGone(func() { close(goneCalled) })
		close(reading)
		_, err := s.Read(make([]byte, 10))
		<-goneCalled
		if !s.Gone() {
			err = errors.New("Gone is false")
		}
		res <- err
		// A callback set now runs at once.
		again := make(chan struct{})
		s.SetOnGone(func() { close(again) })
		<-again
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(false, reqFields("POST", "/")...)
	c.flush()
	<-reading
	c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	c.flush()
	require.ErrorIs(t, <-res, ErrStreamReset)
}
