package router

// dynoConn.writeAwait: the request's write and the wait for its response
// in one RawConn.Read (forward.go).

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router/h1"
)

var awaitLimits = func() h1.Limits {
	cfg := config.Defaults()
	return limitsOf(&cfg.Limits)
}()

// awaitPair returns a dynoConn on a loopback TCP connection and the dyno's
// end of it.
func awaitPair(t *testing.T) (*dynoConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	p := newPool(ln.Addr().String(), prometheus.NewGauge(prometheus.GaugeOpts{Name: "i"}), prometheus.NewGauge(prometheus.GaugeOpts{Name: "a"}))
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dc, err := p.dial(t.Context(), time.Second, 1024)
	require.NoError(t, err)
	srv := (<-accepted).(*net.TCPConn)
	t.Cleanup(func() { dc.c.Close(); srv.Close() })
	return dc, srv
}

// TestWriteAwait: the request arrives whole, writeAwait returns once the
// answer arrived (not before), and the answer is read after it.
func TestWriteAwait(t *testing.T) {
	t.Parallel()
	dc, srv := awaitPair(t)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(req))
		_, err := io.ReadFull(srv, b)
		assert.NoError(t, err)
		got <- b
		time.Sleep(50 * time.Millisecond) // writeAwait waits for this
		srv.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	}()
	dc.rdl.set(dc.c, time.Now().Add(5*time.Second))
	start := time.Now()
	n, err := dc.writeAwait(req)
	require.NoError(t, err)
	assert.Equal(t, len(req), n)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "writeAwait returned before the answer came")
	assert.Equal(t, req, <-got)
	var resp h1.Response
	require.NoError(t, dc.br.ReadResponse(&resp, &awaitLimits))
	assert.Equal(t, 204, resp.Status)
}

// TestWriteAwaitDeadline: the wait ends at the read deadline without an
// error; the response read after it meets the deadline.
func TestWriteAwaitDeadline(t *testing.T) {
	t.Parallel()
	dc, _ := awaitPair(t)
	dc.rdl.set(dc.c, time.Now().Add(30*time.Millisecond))
	n, err := dc.writeAwait([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	assert.Equal(t, 27, n)
	var resp h1.Response
	err = dc.br.ReadResponse(&resp, &awaitLimits)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

// TestWriteAwaitPastDeadline: a read deadline passed already (the shutdown
// limit's interrupt sets both) refuses the write as net.Conn.Write does.
func TestWriteAwaitPastDeadline(t *testing.T) {
	t.Parallel()
	dc, _ := awaitPair(t)
	dc.c.SetDeadline(aLongTimeAgo)
	n, err := dc.writeAwait([]byte("GET / HTTP/1.1\r\n\r\n"))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

// TestWriteAwaitFullBuffer: a request larger than the socket buffers is
// written whole (the rest after the raw write through net.Conn), then the
// answer is awaited by the read as usual.
func TestWriteAwaitFullBuffer(t *testing.T) {
	t.Parallel()
	dc, srv := awaitPair(t)
	require.NoError(t, dc.c.(*net.TCPConn).SetWriteBuffer(64<<10))
	require.NoError(t, srv.SetReadBuffer(64<<10))
	req := make([]byte, 2<<20)
	for i := range req {
		req[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // the raw write fills the buffers first
		b := make([]byte, len(req))
		_, err := io.ReadFull(srv, b)
		if err == nil && string(b) != string(req) {
			err = errors.New("the request arrived changed")
		}
		if err == nil {
			_, err = srv.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		}
		done <- err
	}()
	dc.rdl.set(dc.c, time.Now().Add(5*time.Second))
	n, err := dc.writeAwait(req)
	require.NoError(t, err)
	assert.Equal(t, len(req), n)
	assert.Less(t, dc.awaitN, len(req), "the raw write took it all: the test shows nothing")
	require.NoError(t, <-done)
	var resp h1.Response
	require.NoError(t, dc.br.ReadResponse(&resp, &awaitLimits))
	assert.Equal(t, 204, resp.Status)
}

// TestWriteAwaitReset: a dyno that reset the connection fails the write
// with net.Conn.Write's error, nothing written.
func TestWriteAwaitReset(t *testing.T) {
	t.Parallel()
	dc, srv := awaitPair(t)
	srv.SetLinger(0)
	srv.Close() // RST
	time.Sleep(20 * time.Millisecond)
	dc.rdl.set(dc.c, time.Now().Add(5*time.Second))
	n, err := dc.writeAwait([]byte("GET / HTTP/1.1\r\n\r\n"))
	assert.Equal(t, 0, n)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "write", oe.Op)
	assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "%v", err)
	var se *os.SyscallError
	assert.ErrorAs(t, err, &se)
}
