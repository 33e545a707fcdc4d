package h2

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingConn counts the writes to a connection (syscalls, under TLS
// records included when it wraps the TCP connection).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func countWrites(n *atomic.Int64) serverOpt {
	return withWrap(func(nc net.Conn) net.Conn { return countingConn{nc, n} })
}

// TestBatching: N streams answering at once go out in far fewer writes
// than frames: the writer batches every ready stream's frames.
func TestBatching(t *testing.T) {
	const n = 32
	var writes atomic.Int64
	var ready sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	srv := startServer(t, &Config{}, handlerFunc(func(s *Stream) {
		defer s.Close()
		ready.Done()
		<-start
		body := []byte("batched response body")
		s.Send(&Head{Status: 200, ContentLength: int64(len(body))}, body, true)
	}), countWrites(&writes))
	c := dialRaw(t, srv)
	c.handshake()
	var ids []uint32
	for range n {
		ids = append(ids, c.headers(true, reqFields("GET", "/")...))
	}
	c.flush()
	ready.Wait()
	before := writes.Load()
	close(start)
	rs, ga := c.until(done(ids...))
	require.Nil(t, ga)
	for _, id := range ids {
		require.Equal(t, 200, rs[id].status)
	}
	got := writes.Load() - before
	t.Logf("%d streams, %d frames, %d writes", n, 2*n, got)
	assert.LessOrEqual(t, got, int64(n/2), "writes for %d streams (%d frames)", n, 2*n)
}
