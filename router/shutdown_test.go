package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownDrains: Shutdown stops accepting, closes idle keep-alive
// connections, and lets a request in flight finish with its response.
func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	slow := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if readRequestHead(br) == "" {
			return
		}
		<-release
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
	})
	tr := startRouter(t, oneApp("", slow.addr()))

	idle := tr.dial(t) // a keep-alive client between requests
	busy := tr.dial(t)
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slow.accepted() == 1 }, 2*time.Second, 5*time.Millisecond,
		"the slow request reaches the dyno")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- tr.Shutdown(ctx)
	}()
	// The idle connection is closed, the listener refuses new ones.
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "an idle keep-alive connection is closed on drain")
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", tr.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 2*time.Second, 10*time.Millisecond, "new connections are refused while draining")

	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	require.NoError(t, err, "the in-flight request completes")
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "slow", string(body))
	assert.True(t, resp.Close, "the last response on a draining connection says Connection: close")
	require.NoError(t, <-done)
	assert.Contains(t, tr.lines.wait(t, 0), `path="/slow"`)
}

// TestShutdownDeadline: requests still in flight when the shutdown limit
// passes are cut, and Shutdown returns the context's error.
func TestShutdownDeadline(t *testing.T) {
	stall := startRawDyno(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		time.Sleep(2 * time.Second)
	})
	tr := startRouter(t, oneApp("", stall.addr()))
	c := tr.dial(t)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	require.Eventually(t, func() bool { return stall.accepted() == 1 }, 2*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tr.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "Shutdown returns soon after its deadline")
}
