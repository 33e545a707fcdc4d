package router

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dyUnansweredAddr returns a loopback address whose connects time out: a
// socket listening with backlog 0 whose accept queue is filled with
// connections never accepted, so Linux drops further SYNs. It checks that
// one more dial does time out, and skips the test when the kernel answers
// anyway.
func dyUnansweredAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			continue // queued, never accepted
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			return addr // the queue is full: SYNs are dropped
		}
		t.Skipf("dialing the backlog-0 listener %s failed with %v, not a timeout: cannot make a connect time out here", addr, err)
	}
	t.Skipf("8 connections to a backlog-0 listener were all accepted by the kernel: cannot make a connect time out here")
	return ""
}

// TestDynoH19ConnectTimeout: a connect that takes longer than
// timeouts.connect is H19 with 503; the line names the dyno, fills
// connect= (about the timeout) and leaves service= empty.
func TestDynoH19ConnectTimeout(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	addr := dyUnansweredAddr(t)
	tr := startRouter(t, "timeouts: {connect: 200ms}\n"+oneApp("", addr))
	start := time.Now()
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	took := time.Since(start)
	assert.Equal(t, 503, resp.StatusCode, "sent %q to a dyno that never completes a connect; body %q", dyGetShop, body)
	assert.Contains(t, body, "Application Error")
	assert.True(t, took >= 190*time.Millisecond && took < 2*time.Second, "503 after %v; want about connect: 200ms", took)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H19 desc="Backend connection timeout"`, dyGetShop)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	dyAssertMillis(t, line, "connect", 190*time.Millisecond, 2*time.Second)
	assert.Contains(t, line, " service= status=503 ", "service= is empty: no request was sent; line: %s", line)
	assert.Equal(t, strconv.Itoa(len(body)), field(line, "bytes"), "line: %s", line)
}
