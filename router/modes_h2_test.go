package router

// Issue 10: HTTP/2 behaviour at the router level (SPEC.md 2 limits, 4 and
// its HTTP/2 paragraph, 6 H24): rapid reset, the drain under load, the
// shutdown limit, flow control against min_transfer_rate, and
// h2_max_streams.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// mHoldDyno is a dyno that records the target of every request it reads
// and answers each with 200 and the target as the body once release was
// called (requests whose target starts with "/free" are answered at
// once).
type mHoldDyno struct {
	*rawDyno
	arrived chan string
	release func()
	mu      sync.Mutex
	seen    map[string]int
}

func startMHoldDyno(t testing.TB) *mHoldDyno {
	ch := make(chan struct{})
	d := &mHoldDyno{arrived: make(chan string, 1024), release: rqOnce(ch), seen: map[string]int{}}
	d.rawDyno = startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := rqReadRequest(br)
			if r.head == "" || err != nil {
				return
			}
			target := strings.Split(r.requestLine(), " ")[1]
			d.mu.Lock()
			d.seen[target]++
			d.mu.Unlock()
			d.arrived <- target
			if !strings.HasPrefix(target, "/free") {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
				}
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(target), target); err != nil {
				return
			}
		}
	})
	t.Cleanup(d.release)
	return d
}

func (d *mHoldDyno) snapshot() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]int, len(d.seen))
	for k, v := range d.seen {
		m[k] = v
	}
	return m
}

// waitArrivals waits for n requests at the dyno and returns their targets.
func (d *mHoldDyno) waitArrivals(t testing.TB, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case p := <-d.arrived:
			got = append(got, p)
		case <-time.After(rqIOTimeout):
			t.Fatalf("%d of %d requests reached the dyno: %q", len(got), n, got)
		}
	}
	return got
}

// mLinesByPath returns the router lines (flushed) by path.
func mLinesByPath(tr *testRouter) map[string][]string {
	tr.Router.lines.Load().Flush()
	m := map[string][]string{}
	for _, l := range rqLines(tr) {
		m[field(l, "path")] = append(m[field(l, "path")], l)
	}
	return m
}

// TestModesH2RapidReset: HEADERS (END_STREAM) + RST_STREAM(CANCEL) pairs
// written in one go (CVE-2023-44487): a stream reset before its request
// went to a dyno reaches no dyno and gets no line; the early-reset metric
// counts it (SPEC.md 4). Within the budget the connection serves on; past
// it the connection ends with GOAWAY(ENHANCE_YOUR_CALM) and the abuse
// metric counts it.
func TestModesH2RapidReset(t *testing.T) {
	t.Parallel()
	burst := func(c *mh2Client, n int, prefix string) {
		c.batch(func() {
			for i := 0; i < n; i++ {
				id := c.next
				c.next += 2
				fields := requestFields(mreq{method: "GET", path: fmt.Sprintf("/%s%d", prefix, i)}, false)
				c.writeHeadersLocked(id, c.headerBlock(fields), true)
				c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			}
		})
	}
	t.Run("within the budget", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, modeH2, "", "", d.addr())
		c := mr.h2Dial(t, "shop.test", nil)
		const n = 50
		burst(c, n, "rr")
		resp := c.openStream(t, mreq{method: "GET", path: "/ok"}, true).response(t)
		require.Equal(t, 200, resp.status, "a request after %d reset streams on the same connection", n)
		require.Eventually(t, func() bool { return mCounter(t, mr.testRouter.m.earlyResets) == n }, rqIOTimeout, time.Millisecond,
			"spacerouter_h2_early_resets_total: want %d, have %v", n, mCounter(t, mr.testRouter.m.earlyResets))
		rqLineWithPath(t, mr.testRouter, "/ok")
		lines := mLinesByPath(mr.testRouter)
		assert.Len(t, lines, 1, "only /ok has a line; lines %q", lines)
		assert.Equal(t, int32(1), d.reqs.Load(), "the dyno saw /ok only")
		assert.Nil(t, c.goAway(), "within the budget the connection goes on")
	})
	t.Run("past the budget", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		mr := startModeRouter(t, modeH2, "", "", d.addr())
		c := mr.h2Dial(t, "shop.test", nil)
		const n = 300
		burst(c, n, "rr")
		require.True(t, c.waitFor(rqIOTimeout, func() bool { return c.goaway != nil || c.readErr != nil }), "no GOAWAY after %d reset streams", n)
		g := c.goAway()
		require.NotNil(t, g, "the connection ended without GOAWAY: %v", c.readError())
		assert.Equal(t, http2.ErrCodeEnhanceYourCalm, g.ErrCode, "GOAWAY code after %d rapid resets", n)
		abuse := mr.testRouter.m.h2Abuse.WithLabelValues("rapid_reset")
		require.Eventually(t, func() bool { return mCounter(t, abuse) == 1 }, rqIOTimeout, time.Millisecond,
			"spacerouter_h2_abuse_total{reason=\"rapid_reset\"} counts the connection")
		early := mCounter(t, mr.testRouter.m.earlyResets)
		assert.GreaterOrEqual(t, early, 100.0, "the resets before the budget ran out are counted as early resets")
		assert.LessOrEqual(t, early, float64(n))
		assert.LessOrEqual(t, d.reqs.Load(), int32(2), "(almost) no reset stream reaches the dyno")
		lines := mLinesByPath(mr.testRouter)
		assert.LessOrEqual(t, len(lines), int(d.reqs.Load()), "no line for a stream that reached no dyno; lines %q", lines)
		t.Logf("early resets counted: %v; dyno requests: %d; GOAWAY last stream %d", early, d.reqs.Load(), g.LastStreamID)
	})
}

// TestModesH2Drain: Router.Shutdown with streams in flight on one HTTP/2
// connection: the client gets GOAWAY(NO_ERROR) naming the last stream
// opened, those streams complete, a stream opened after it is refused
// (REFUSED_STREAM) and reaches no dyno, every request the dyno saw has
// exactly one line, and Shutdown returns in time (SPEC.md 1, 4).
func TestModesH2Drain(t *testing.T) {
	t.Parallel()
	d := startMHoldDyno(t)
	mr := startModeRouter(t, modeH2, "", "", d.addr())
	c := mr.h2Dial(t, "shop.test", nil)
	var streams []*mh2Stream
	var paths []string
	for i := 0; i < 8; i++ {
		r := mreq{method: "GET", path: fmt.Sprintf("/d%d", i)}
		if i%3 == 2 {
			r = mreq{method: "POST", path: fmt.Sprintf("/d%d", i), body: []byte(strings.Repeat("b", 1000*i))}
		}
		streams = append(streams, c.openStream(t, r, true))
		paths = append(paths, r.path)
	}
	d.waitArrivals(t, len(streams))
	lastID := streams[len(streams)-1].id

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- mr.Shutdown(ctx)
	}()
	require.True(t, c.waitFor(rqIOTimeout, func() bool { return c.goaway != nil || c.readErr != nil }), "no GOAWAY at drain")
	g := c.goAway()
	require.NotNil(t, g, "the connection ended without GOAWAY: %v", c.readError())
	assert.Equal(t, http2.ErrCodeNo, g.ErrCode, "a drain's GOAWAY is NO_ERROR")
	assert.Equal(t, lastID, g.LastStreamID, "GOAWAY names the last stream the client opened")

	late := c.openStream(t, mreq{method: "GET", path: "/late"}, true)
	_, end := late.rest(t)
	assert.Equal(t, "reset REFUSED_STREAM", end, "a stream opened after the GOAWAY's last stream id is refused")

	d.release()
	for i, st := range streams {
		resp := st.response(t)
		assert.Equal(t, 200, resp.status, "stream %d (%s) was below the GOAWAY's last stream id: it completes", st.id, paths[i])
		assert.Equal(t, paths[i], string(resp.body))
	}
	c.close()
	select {
	case err := <-done:
		assert.NoError(t, err, "the drain ended before its limit")
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	seen := d.snapshot()
	lines := mLinesByPath(mr.testRouter)
	assert.Zero(t, seen["/late"], "the refused stream reached no dyno")
	assert.Empty(t, lines["/late"], "the refused stream has no line")
	for p, n := range seen {
		assert.Equal(t, 1, n, "the dyno saw %s %d times", p, n)
		if assert.Len(t, lines[p], 1, "the dyno saw %s: exactly one line; lines %q", p, lines[p]) {
			assert.Equal(t, "200", field(lines[p][0], "status"))
			assert.Contains(t, lines[p][0], " protocol=http2.0 ")
		}
	}
	assert.Len(t, seen, len(streams), "the dyno saw every stream below the last id once: %v", seen)
}

// TestModesH2ShutdownDeadline: at the shutdown limit a stream still
// waiting for its dyno gets 503 (or RST_STREAM) and an H24 line; a stream
// whose response head was sent is reset and its H24 line keeps the status
// sent (SPEC.md 4, 6).
func TestModesH2ShutdownDeadline(t *testing.T) {
	t.Parallel()
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head := readRequestHead(br)
		if strings.HasPrefix(head, "GET /partial ") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
		}
		dyDrain(br) // never answers (more); ends when the router closes
	})
	mr := startModeRouter(t, modeH2, "", "", d.addr())
	c := mr.h2Dial(t, "shop.test", nil)
	waiting := c.openStream(t, mreq{method: "GET", path: "/waiting"}, true)
	partial := c.openStream(t, mreq{method: "GET", path: "/partial"}, true)
	st, _ := partial.head(t)
	require.Equal(t, 200, st)
	got, _ := partial.read(t, 10, 2*time.Second)
	require.Equal(t, "0123456789", string(got))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := mr.Shutdown(ctx)
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the drain ran out of time")
	assert.Less(t, took, 2*time.Second, "Shutdown returns within its limit and the grace to write H24 lines")

	resp := waiting.response(t)
	if resp.status != 0 {
		assert.Equal(t, 503, resp.status, "a stream waiting for its dyno at the limit gets 503 or a reset")
	} else {
		assert.True(t, strings.HasPrefix(resp.end, "reset "), "a stream waiting for its dyno at the limit gets 503 or a reset; it ended %q", resp.end)
	}
	line := rqLineWithPath(t, mr.testRouter, "/waiting")
	dyAssertLineStart(t, line, `at=error code=H24 desc="Forced close"`, "GET /waiting")
	if resp.status != 0 {
		assert.Equal(t, "503", field(line, "status"), "line %q", line)
	}
	assert.Contains(t, line, " protocol=http2.0 ")

	_, end := partial.rest(t)
	assert.True(t, strings.HasPrefix(end, "reset ") || strings.HasPrefix(end, "error: connection"),
		"a response cut at the limit must not end as if whole; it ended %q", end)
	line = rqLineWithPath(t, mr.testRouter, "/partial")
	dyAssertLineStart(t, line, `at=error code=H24 desc="Forced close"`, "GET /partial")
	assert.Equal(t, "200", field(line, "status"), "the status already sent; line %q", line)
	assert.Equal(t, "10", field(line, "bytes"), "line %q", line)
}

// TestModesH2MaxStreams: limits.h2_max_streams is advertised in SETTINGS
// and binds: with that many streams open (heads sent, bodies due), one
// more is refused with RST_STREAM(REFUSED_STREAM) and reaches no dyno;
// once a stream completes, a new one is served.
func TestModesH2MaxStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		global string
		max    int
	}{
		{"default 250", "timeouts: {client: 5s}", 250},
		{"configured 3", "timeouts: {client: 5s}\nlimits: {h2_max_streams: 3}", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := rqRecordingDyno(t, nil)
			mr := startModeRouter(t, modeH2, tc.global, "", d.addr())
			c := mr.h2Dial(t, "shop.test", nil)
			require.True(t, c.waitFor(rqIOTimeout, func() bool { return len(c.settings) > 0 }), "no SETTINGS from the router")
			c.mu.Lock()
			adv, ok := c.settings[http2.SettingMaxConcurrentStreams]
			c.mu.Unlock()
			assert.True(t, ok, "SETTINGS_MAX_CONCURRENT_STREAMS is advertised")
			assert.Equal(t, uint32(tc.max), adv)

			var open []*mh2Stream
			err := c.batch(func() {
				for i := 0; i < tc.max; i++ {
					id := c.next
					c.next += 2
					c.mu.Lock()
					st := c.stream(id)
					st.req = mreq{method: "POST", path: fmt.Sprintf("/s%d", i)}
					c.mu.Unlock()
					open = append(open, st)
					fields := append(requestFields(st.req, false), [2]string{"content-length", "1"})
					c.writeHeadersLocked(id, c.headerBlock(fields), false)
				}
			})
			require.NoError(t, err)
			extra := c.openRaw(t, mreq{method: "POST", path: "/extra"},
				append(requestFields(mreq{method: "POST", path: "/extra"}, false), [2]string{"content-length", "1"}), false)
			require.True(t, c.waitFor(rqIOTimeout, func() bool { return extra.rst != nil || c.readErr != nil }),
				"stream %d, one over h2_max_streams %d, was not reset", extra.id, tc.max)
			assert.Equal(t, "REFUSED_STREAM", mH2Code(extra.rstCode()), "the stream over h2_max_streams")
			for _, st := range open[:min(5, len(open))] {
				assert.Nil(t, st.rstCode(), "stream %d within the limit stays open", st.id)
			}

			// One completes; then a new stream is served.
			open[0].sendBody(t, []byte("x"), true)
			resp := open[0].response(t)
			assert.Equal(t, 200, resp.status)
			next := c.openStream(t, mreq{method: "GET", path: "/next"}, true).response(t)
			assert.Equal(t, 200, next.status, "a stream opened once another completed is served")
			assert.Equal(t, int32(2), d.reqs.Load(), "the dyno saw the completed stream and /next only")
			assert.Empty(t, mLinesByPath(mr.testRouter)["/extra"], "the refused stream has no line")
		})
	}
}

// mH2Code names a reset code ("none" for nil).
func mH2Code(c *http2.ErrCode) string {
	if c == nil {
		return "none"
	}
	return c.String()
}

// TestModesH2FlowControlStall: a client whose stream window stays 0 asks
// for a body: the response head arrives, the body never does, and after
// limits.min_transfer_rate's 10 s window the stream is cut with an H27
// line (SPEC.md 2: "response bytes wait for a client that does not take
// them, HTTP/2 flow control included (slower -> H27)").
func TestModesH2FlowControlStall(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s min_transfer_rate window")
	}
	t.Parallel()
	body := strings.Repeat("z", 100000)
	d := rqRecordingDyno(t, func(rqReq) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	mr := startModeRouter(t, modeH2, "", "", d.addr())
	c := mr.h2Dial(t, "shop.test", mh2Settings{{ID: http2.SettingInitialWindowSize, Val: 0}})
	c.mu.Lock()
	c.noWindowUpdates = true
	c.mu.Unlock()
	start := time.Now()
	st := c.openStream(t, mreq{method: "GET", path: "/big"}, true)
	status, _ := st.head(t)
	require.Equal(t, 200, status, "the response head is not flow-controlled: it arrives")
	headAfter := time.Since(start)
	assert.Less(t, headAfter, 2*time.Second)
	c.waitFor(14*time.Second, st.finishedLocked)
	cutAfter := time.Since(start)
	body2, end := st.rest(t)
	assert.Empty(t, body2, "no DATA within a zero window")
	assert.True(t, strings.HasPrefix(end, "reset "), "the stalled stream is cut with RST_STREAM; it ended %q after %v", end, cutAfter)
	assert.True(t, cutAfter >= 9500*time.Millisecond && cutAfter < 13*time.Second, "cut after %v; want about the 10 s rate window", cutAfter)
	line := rqLineWithPath(t, mr.testRouter, "/big")
	dyAssertLineStart(t, line, mH27[:len(mH27)-1], "GET /big")
	assert.Equal(t, "499", field(line, "status"), "line %q", line)
	assert.Nil(t, c.goAway(), "the connection is not ended for one stalled stream")
}
