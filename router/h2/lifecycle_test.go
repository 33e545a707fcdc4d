package h2

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// TestShutdown: GOAWAY names the last stream served, a stream opened
// after it is refused, the stream in flight completes, then the
// connection closes and Serve returns nil.
func TestShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	running := make(chan struct{})
	release := make(chan struct{})
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		if string(s.Request().Target) == "/slow" {
			close(running)
			<-release
		}
		echo(s)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	slow := c.headers(true, reqFields("GET", "/slow")...)
	c.flush()
	<-running
	conn := srv.nextConn()
	conn.Shutdown()
	conn.Shutdown() // idempotent
	_, ga := c.until(gotGoAway)
	require.NotNil(t, ga)
	assert.Equal(t, http2.ErrCodeNo, ga.ErrCode)
	assert.Equal(t, slow, ga.LastStreamID)
	late := c.headers(true, reqFields("GET", "/late")...)
	c.flush()
	rs, _ := c.until(done(late))
	assert.Equal(t, http2.ErrCodeRefusedStream, rs[late].rst)
	assert.Equal(t, 1, conn.Active())
	close(release)
	rs, _ = c.until(done(slow))
	assert.Equal(t, 200, rs[slow].status)
	assert.Equal(t, "GET /slow\n", string(rs[slow].body))
	c.expectClosed()
	c.nc.Close()
	require.NoError(t, srv.serveErr(t))
	assert.Equal(t, 0, conn.Active())
	srv.close()
	waitGoroutines(t, base)
}

// TestShutdownIdle: Shutdown of an idle connection sends GOAWAY and closes
// it at once.
func TestShutdownIdle(t *testing.T) {
	srv := startServer(t, &Config{}, handlerFunc(echo))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	c.until(done(id))
	srv.nextConn().Shutdown()
	ga := c.expectGoAway(http2.ErrCodeNo)
	assert.Equal(t, id, ga.LastStreamID)
	require.NoError(t, srv.serveErr(t))
}

// TestClientGoAway: a client's GOAWAY drains the connection like Shutdown.
func TestClientGoAway(t *testing.T) {
	srv := startServer(t, &Config{}, handlerFunc(echo))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/")...)
	c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	c.flush()
	rs, ga := c.until(func(rs map[uint32]*response, ga *http2.GoAwayFrame) bool {
		return ga != nil && done(id)(rs, ga)
	})
	assert.Equal(t, 200, rs[id].status)
	assert.Equal(t, id, ga.LastStreamID)
	c.expectClosed()
	require.NoError(t, srv.serveErr(t))
}

// TestIdleTimeout: no stream for IdleTimeout: GOAWAY(NO_ERROR), close.
func TestIdleTimeout(t *testing.T) {
	srv := startServer(t, &Config{IdleTimeout: 50 * time.Millisecond}, handlerFunc(echo))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	start := time.Now()
	c.until(done(id))
	ga := c.expectGoAway(http2.ErrCodeNo)
	assert.Equal(t, id, ga.LastStreamID)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
	require.NoError(t, srv.serveErr(t))
}

// TestIdleTimeoutWithOpenStream: a stream open longer than IdleTimeout
// keeps the connection.
func TestIdleTimeoutWithOpenStream(t *testing.T) {
	srv := startServer(t, &Config{IdleTimeout: 30 * time.Millisecond}, handlerFunc(func(s *Stream) {
		<-time.After(150 * time.Millisecond) // a slow dyno
		echo(s)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	id := c.headers(true, reqFields("GET", "/")...)
	c.flush()
	rs, ga := c.until(done(id))
	require.Nil(t, ga)
	assert.Equal(t, 200, rs[id].status)
}

// TestClose: Close ends the connection at once; blocked handlers see
// ErrConnClosed.
func TestClose(t *testing.T) {
	base := runtime.NumGoroutine()
	reading := make(chan struct{}, 2)
	errs := make(chan error, 2)
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		reading <- struct{}{}
		_, err := io.ReadAll(s)
		errs <- err
		errs <- s.Send(&Head{Status: 200}, nil, true)
	}))
	c := dialRaw(t, srv)
	c.handshake()
	c.headers(false, reqFields("POST", "/")...)
	c.headers(false, reqFields("POST", "/")...)
	c.flush()
	<-reading
	<-reading
	conn := srv.nextConn()
	assert.Equal(t, 2, conn.Active())
	conn.Close()
	for range 4 {
		require.ErrorIs(t, <-errs, ErrConnClosed)
	}
	require.NoError(t, srv.serveErr(t))
	c.nc.Close()
	srv.close()
	waitGoroutines(t, base)
}

// TestClientGone: the client closing its end ends the connection; handlers
// see ErrConnClosed and Gone.
func TestClientGone(t *testing.T) {
	reading := make(chan struct{})
	res := make(chan bool, 1)
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		close(reading)
		_, err := io.ReadAll(s)
		res <- err == ErrConnClosed && s.Gone()
	}))
	c := dialRaw(t, srv)
	c.handshake()
	c.headers(false, reqFields("POST", "/")...)
	c.flush()
	<-reading
	c.nc.Close()
	assert.True(t, <-res)
	require.NoError(t, srv.serveErr(t))
}

// TestPreface: a wrong preface gets GOAWAY(PROTOCOL_ERROR); a missing one
// is cut at PrefaceTimeout; a first frame other than SETTINGS is a
// PROTOCOL_ERROR.
func TestPreface(t *testing.T) {
	srv := startServer(t, &Config{PrefaceTimeout: 50 * time.Millisecond}, handlerFunc(echo))
	t.Run("wrong", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.wbuf.WriteString("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.flush()
		c.expectGoAway(http2.ErrCodeProtocol)
		srv.serveErr(t)
	})
	t.Run("timeout", func(t *testing.T) {
		c := dialRaw(t, srv)
		start := time.Now()
		for {
			f, err := c.readErr(5 * time.Second)
			if err != nil {
				break
			}
			_ = f
		}
		assert.Less(t, time.Since(start), 2*time.Second)
		require.Error(t, srv.serveErr(t))
	})
	t.Run("not SETTINGS", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.wbuf.WriteString(http2.ClientPreface)
		c.fr.WritePing(false, [8]byte{})
		c.flush()
		c.expectGoAway(http2.ErrCodeProtocol)
		var ce connError
		require.ErrorAs(t, srv.serveErr(t), &ce)
	})
}

// TestNoGoroutineLeak runs a mix of exchanges, errors and closes and
// checks that every goroutine of the package ends.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		srv := startServer(t, &Config{IdleTimeout: time.Second}, handlerFunc(echo), withTLS)
		for i := range 20 {
			c := dialRaw(t, srv)
			c.handshake()
			id := c.headers(false, reqFields("POST", "/")...)
			c.fr.WriteData(id, true, []byte("x"))
			switch i % 4 {
			case 0: // a clean exchange, then the client closes
				c.flush()
				c.until(done(id))
			case 1: // a protocol error
				c.fr.WriteData(0, true, []byte("x"))
				c.flush()
				c.expectGoAway(http2.ErrCodeProtocol)
			case 2: // the client disappears mid-stream
				c.headers(false, reqFields("POST", "/")...)
				c.flush()
			case 3: // a reset
				c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				c.flush()
			}
			c.nc.Close()
		}
		srv.close()
	}()
	waitGoroutines(t, base)
	_ = net.ErrClosed
}

// TestShutdownBeforeServe: a connection shut down before Serve sends its
// SETTINGS, then GOAWAY(0), and ends once the client's preface came.
func TestShutdownBeforeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		c := NewConn(nc, &Config{}, handlerFunc(echo))
		c.Shutdown()
		errc <- c.Serve()
	}()
	c := dialRaw(t, &testServer{addr: ln.Addr().String()})
	c.wbuf.WriteString(http2.ClientPreface)
	c.fr.WriteSettings()
	c.flush()
	_, ok := c.read().(*http2.SettingsFrame)
	require.True(t, ok, "SETTINGS first")
	ga := c.expectGoAway(http2.ErrCodeNo)
	assert.Zero(t, ga.LastStreamID)
	require.NoError(t, <-errc)
}
