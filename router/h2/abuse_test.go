package h2

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/router/h1"
)

// abuseConfig returns a config whose hooks count into the returned values.
func abuseConfig() (*Config, *counter, *reasons) {
	early, why := &counter{}, &reasons{}
	return &Config{OnEarlyReset: early.inc, OnAbuse: why.add}, early, why
}

// TestRapidReset: HEADERS+RST_STREAM pairs (CVE-2023-44487) never start a
// handler; past the budget the connection gets GOAWAY(ENHANCE_YOUR_CALM).
func TestRapidReset(t *testing.T) {
	cfg, early, why := abuseConfig()
	var started atomic.Int64
	srv := startServer(t, cfg, handlerFunc(func(s *Stream) { started.Add(1); echo(s) }))
	c := dialRaw(t, srv)
	c.handshake()
	for range 200 {
		id := c.headers(false, reqFields("GET", "/")...)
		c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	c.flush()
	ga := c.expectGoAway(http2.ErrCodeEnhanceYourCalm)
	assert.Equal(t, uint32(2*101-1), ga.LastStreamID, "the 101st reset is over the budget")
	var ce connError
	require.ErrorAs(t, srv.serveErr(t), &ce)
	assert.Equal(t, []string{abuseRapidReset}, why.get())
	assert.Equal(t, int64(101), early.n.Load())
	assert.Zero(t, started.Load(), "no reset stream reached a handler")
}

// TestResetsWithinBudget: a client that cancels some streams but completes
// as many is never cut.
func TestResetsWithinBudget(t *testing.T) {
	cfg, early, why := abuseConfig()
	srv := startServer(t, cfg, handlerFunc(echo))
	c := dialRaw(t, srv)
	c.handshake()
	for range 300 {
		rid := c.headers(false, reqFields("GET", "/cancelled")...)
		c.fr.WriteRSTStream(rid, http2.ErrCodeCancel)
		id := c.headers(true, reqFields("GET", "/done")...)
		c.flush()
		rs, ga := c.until(done(id))
		require.Nil(t, ga)
		require.Equal(t, 200, rs[id].status)
	}
	assert.Equal(t, int64(300), early.n.Load())
	assert.Empty(t, why.get())
}

// TestFloods: PING, SETTINGS, empty DATA, empty CONTINUATION, malformed
// request and PRIORITY floods end the connection with
// GOAWAY(ENHANCE_YOUR_CALM).
func TestFloods(t *testing.T) {
	cases := []struct {
		reason string
		flood  func(c *rawClient)
	}{
		{abusePing, func(c *rawClient) {
			for i := range 200 {
				c.fr.WritePing(false, [8]byte{byte(i)})
			}
		}},
		{abuseSettings, func(c *rawClient) {
			for range 200 {
				c.fr.WriteSettings()
			}
		}},
		{abuseEmptyFrames, func(c *rawClient) {
			id := c.headers(false, reqFields("POST", "/")...)
			for range 200 {
				c.fr.WriteData(id, false, nil)
			}
		}},
		{abuseEmptyFrames, func(c *rawClient) {
			id := c.next
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(reqFields("GET", "/")...)})
			for range 200 {
				c.fr.WriteContinuation(id, false, nil)
			}
		}},
		{abuseMalformed, func(c *rawClient) {
			for range 200 {
				c.headers(true, reqFields("GET", "/", "Upper", "case")...)
			}
		}},
		{abusePriority, func(c *rawClient) {
			for i := range 200 {
				c.fr.WritePriority(uint32(2*i+1), http2.PriorityParam{StreamDep: 0, Weight: 16})
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			cfg, _, why := abuseConfig()
			var started atomic.Int64
			srv := startServer(t, cfg, handlerFunc(func(s *Stream) { started.Add(1); echo(s) }))
			c := dialRaw(t, srv)
			c.handshake()
			tc.flood(c)
			c.flush()
			c.expectGoAway(http2.ErrCodeEnhanceYourCalm)
			var ce connError
			require.ErrorAs(t, srv.serveErr(t), &ce)
			assert.Equal(t, []string{tc.reason}, why.get())
			assert.Zero(t, started.Load())
		})
	}
}

// TestContinuationFlood (CVE-2024-27316): a header block is cut at its cap
// before it is decoded whole, with GOAWAY(ENHANCE_YOUR_CALM); a block
// within the cap but over a limit is only a stream-level 400.
func TestContinuationFlood(t *testing.T) {
	cfg, _, why := abuseConfig()
	cfg.Limits = h1.Limits{HeadersSize: 4096} // cap: 2*(4096+8192) < 64 KiB -> 64 KiB
	d := cfg.withDefaults()
	require.Equal(t, 64<<10, d.blockCap())
	ch := make(chan seen, 1)
	srv := startServer(t, cfg, capture(ch))
	c := dialRaw(t, srv)
	c.handshake()

	// Within the cap, over the limits: 400, the connection goes on.
	block := c.block(reqFields("GET", "/", "x-a", strings.Repeat("a", 20000))...)
	id := c.next
	c.next += 2
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:10000], EndStream: true})
	c.fr.WriteContinuation(id, true, block[10000:])
	c.flush()
	require.ErrorIs(t, waitSeen(t, ch).headErr, h1.ErrHeaderTooLong)
	rs, ga := c.until(done(id))
	require.Nil(t, ga)
	assert.Equal(t, 400, rs[id].status)

	// Past the cap: fields that decode fine, never END_HEADERS.
	id = c.next
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(reqFields("GET", "/")...)})
	var field []byte
	for len(field) < 16000 {
		field = append(field, c.block("x-flood", "0123456789")...)
	}
	sent := 0
	for sent <= 64<<10 {
		c.fr.WriteContinuation(id, false, field)
		sent += len(field)
	}
	c.flush()
	c.expectGoAway(http2.ErrCodeEnhanceYourCalm)
	assert.Equal(t, []string{abuseContinuation}, why.get())
}

// TestMaxStreams: one stream more than SETTINGS_MAX_CONCURRENT_STREAMS is
// refused with REFUSED_STREAM; the others are served.
func TestMaxStreams(t *testing.T) {
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(2)
	srv := startServer(t, &Config{MaxStreams: 2}, handlerFunc(func(s *Stream) {
		running.Done()
		<-release
		echo(s)
	}))
	c := dialRaw(t, srv)
	settings := c.handshake()
	assert.Contains(t, settings, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 2})
	a := c.headers(true, reqFields("GET", "/a")...)
	b := c.headers(true, reqFields("GET", "/b")...)
	x := c.headers(true, reqFields("GET", "/x")...)
	c.flush()
	rs, _ := c.until(done(x))
	assert.Equal(t, http2.ErrCodeRefusedStream, rs[x].rst)
	running.Wait()
	close(release)
	rs, _ = c.until(done(a, b))
	assert.Equal(t, 200, rs[a].status)
	assert.Equal(t, 200, rs[b].status)
}

// blockingConn is a net.Conn whose writes block while gate is closed.
type blockingConn struct {
	net.Conn
	gate chan struct{}
}

func (b *blockingConn) Write(p []byte) (int, error) {
	<-b.gate
	return b.Conn.Write(p)
}

// TestControlQueue: a client that provokes control frames and never lets
// them be written is cut once too many are queued.
func TestControlQueue(t *testing.T) {
	saved := budgetLimit
	budgetLimit = 1e9
	t.Cleanup(func() { budgetLimit = saved })
	cfg := &Config{}
	abused := make(chan string, 1)
	cfg.OnAbuse = func(r string) { abused <- r }
	var mu sync.Mutex
	var bc *blockingConn
	srv := startServer(t, cfg, handlerFunc(echo), withWrap(func(nc net.Conn) net.Conn {
		mu.Lock()
		defer mu.Unlock()
		bc = &blockingConn{Conn: nc, gate: make(chan struct{})}
		return bc
	}))
	c := dialRaw(t, srv)
	c.wbuf.WriteString(http2.ClientPreface)
	c.fr.WriteSettings()
	for i := range 2 * maxQueuedControl {
		c.fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)})
	}
	c.flush()
	select {
	case r := <-abused:
		assert.Equal(t, abuseControlQueue, r)
	case <-time.After(5 * time.Second):
		t.Fatal("no abuse reported")
	}
	c.nc.Close()
	mu.Lock()
	close(bc.gate)
	mu.Unlock()
	var ce connError
	require.ErrorAs(t, srv.serveErr(t), &ce)
}
