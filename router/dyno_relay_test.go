package router

// Response relay: buffering (SPEC.md 4.9), framing, upgrades and 1xx
// (SPEC.md 4.8).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dyTimedRead is one Read of the client connection: when it returned and
// what it got.
type dyTimedRead struct {
	at   time.Time
	data []byte
}

// dyReadAllTimed reads c until EOF or until stop(all bytes so far) is true,
// recording each read.
func dyReadAllTimed(t *testing.T, c net.Conn, stop func([]byte) bool) ([]dyTimedRead, []byte) {
	t.Helper()
	var reads []dyTimedRead
	var all []byte
	buf := make([]byte, 64<<10)
	for !stop(all) {
		n, err := c.Read(buf)
		if n > 0 {
			reads = append(reads, dyTimedRead{at: time.Now(), data: append([]byte(nil), buf[:n]...)})
			all = append(all, buf[:n]...)
		}
		if err != nil {
			break
		}
	}
	return reads, all
}

// dyFlushSlack is how late a byte may reach the client past the point the
// buffering rules say it must be flushed: room for a loaded CI machine.
// The dynos of these tests wait for the client's ack with a fallback of a
// second or more, so a router that holds bytes shows that fallback, well
// over the slack.
const dyFlushSlack = 300 * time.Millisecond

// dyWaitFor waits for ch (a signal from the test) or gives up after d, so a
// dyno never hangs a failing test.
func dyWaitFor(ch <-chan struct{}, d time.Duration) {
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// TestDynoBufferFirstBytes: with the default 10ms window, 5 body bytes the
// dyno sends before pausing reach the client at once, not at the end of
// the body. The dyno sends the rest only once the client has them.
func TestDynoBufferFirstBytes(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	wrote := make(chan time.Time, 1)
	ack := make(chan struct{})
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello")
		wrote <- time.Now()
		dyWaitFor(ack, 2*time.Second) // a stall the router must not wait out
		io.WriteString(c, "world")
		dyDrain(br)
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c, dyGetShop)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	require.NoError(t, err)
	first := make([]byte, 5)
	_, err = io.ReadFull(resp.Body, first)
	got := time.Now()
	w := <-wrote
	close(ack)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(first))
	assert.Less(t, got.Sub(w), dyFlushSlack,
		"the dyno wrote %q then paused; the client got it %v later; want within buffering.window (10ms) plus margin", "hello", got.Sub(w))
	rest, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.Equal(t, "world", string(rest))
}

// TestDynoBufferWindowCoalesces: with a 100ms window, 10 one-byte writes
// 40 ms apart reach the client in fewer, larger pieces, the first before
// the dyno wrote its last byte (the body takes 360ms, over three windows).
func TestDynoBufferWindowCoalesces(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	const pieces, gap = 10, 40 * time.Millisecond
	firstWrite, lastWrite := make(chan time.Time, 1), make(chan time.Time, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		// The head goes with the first byte (TestDynoHeadIntactWhenBodyLater
		// covers a head sent alone).
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\na", pieces)
		firstWrite <- time.Now()
		for i := 1; i < pieces; i++ {
			time.Sleep(gap)
			c.Write([]byte{byte('a' + i)})
		}
		lastWrite <- time.Now()
		dyDrain(br)
	})
	tr := startRouter(t, "buffering: {window: 100ms, bytes: 16384}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c, dyGetShop)
	require.NoError(t, err)
	reads, all := dyReadAllTimed(t, c, func(b []byte) bool {
		i := bytes.Index(b, []byte("\r\n\r\n"))
		return i >= 0 && len(b)-(i+4) >= pieces
	})
	headEnd := bytes.Index(all, []byte("\r\n\r\n"))
	require.GreaterOrEqual(t, headEnd, 0, "no response head; got %q", all)
	assert.Equal(t, "abcdefghij", string(all[headEnd+4:]))
	// Split the reads into body pieces.
	var sizes []int
	var firstBody time.Time
	off := 0
	for _, r := range reads {
		start, end := off, off+len(r.data)
		off = end
		if end <= headEnd+4 {
			continue
		}
		n := end - max(start, headEnd+4)
		if firstBody.IsZero() {
			firstBody = r.at
		}
		sizes = append(sizes, n)
	}
	assert.Less(t, len(sizes), pieces, "10 writes 40ms apart with window 100ms must be coalesced; body pieces %v", sizes)
	assert.GreaterOrEqual(t, max(0, dyMaxInt(sizes)), 2, "at least two bytes arrive together; body pieces %v", sizes)
	w, last := <-firstWrite, <-lastWrite
	assert.True(t, firstBody.Before(last),
		"the first body byte reached the client %v after the dyno wrote it, after the dyno's last byte (%v after the first): want it flushed once it is window (100ms) old",
		firstBody.Sub(w), last.Sub(w))
}

func dyMaxInt(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// TestDynoBufferBytesThreshold: with buffering.bytes 1000, a 2000-byte
// burst is flushed at once, without waiting for a 2s window.
func TestDynoBufferBytesThreshold(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
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
	tr := startRouter(t, "buffering: {window: 2s, bytes: 1000}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(6 * time.Second))
	_, err := io.WriteString(c, dyGetShop)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	require.NoError(t, err)
	first := make([]byte, 1000)
	_, err = io.ReadFull(resp.Body, first)
	got := time.Now()
	w := <-wrote
	close(ack)
	require.NoError(t, err)
	assert.Less(t, got.Sub(w), dyFlushSlack,
		"2000 bytes waiting with buffering.bytes 1000 must be flushed at once; the first 1000 came %v after the dyno wrote them (window 2s)", got.Sub(w))
	rest, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.Equal(t, burst+burst, string(first)+string(rest))
}

// TestDynoBufferEventStream: a text/event-stream response is flushed on
// every read, whatever the window.
func TestDynoBufferEventStream(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	wrote := make(chan time.Time, 1)
	ack := make(chan struct{}, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		// The head goes with the first event (TestDynoBufferHeadNotHeld
		// covers a head sent alone).
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
	tr := startRouter(t, "buffering: {window: 2s, bytes: 16384}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(8 * time.Second))
	_, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: shop.test\r\nAccept: text/event-stream\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	require.NoError(t, err)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var got []byte
	buf := make([]byte, 256)
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("data: %d\n\n", i)
		for !bytes.HasSuffix(got, []byte(want)) {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				require.NoError(t, err, "reading event %d; got %q", i, got)
			}
		}
		at := time.Now()
		w := <-wrote
		assert.Less(t, at.Sub(w), dyFlushSlack, "event %d reached the client %v after the dyno wrote it (window 2s)", i, at.Sub(w))
		ack <- struct{}{}
	}
	rest, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.Empty(t, rest)
}

// TestDynoRechunked: a chunked dyno response reaches an HTTP/1.1 client
// chunked and decodes to the same bytes; an HTTP/1.0 client gets it
// unchunked, ending at close.
func TestDynoRechunked(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 100, 5000, 3, 40000, 17}
	var want bytes.Buffer
	var wire strings.Builder
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte('a' + rng.IntN(26))
		}
		want.Write(p)
		ext := ""
		if i == 1 {
			ext = ";name=value"
		}
		fmt.Fprintf(&wire, "%x%s\r\n%s\r\n", n, ext, p)
	}
	wire.WriteString("0\r\n\r\n")
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		split := rand.New(rand.NewPCG(3, 4))
		for dyReadRequest(br) != "" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
			s := wire.String()
			for len(s) > 0 { // in uneven writes, so chunks straddle reads
				n := min(len(s), 1+split.IntN(7000))
				io.WriteString(c, s[:n])
				s = s[n:]
			}
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))

	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding, "an HTTP/1.1 client gets the chunked body chunked")
	assert.True(t, want.String() == body, "the re-chunked body must decode to the %d bytes the dyno sent; got %d bytes", want.Len(), len(body))
	line := tr.lines.wait(t, 0)
	assert.Equal(t, fmt.Sprint(want.Len()), field(line, "bytes"), "line: %s", line)

	const sent10 = "GET / HTTP/1.0\r\nHost: shop.test\r\n\r\n"
	resp, body = tr.roundTrip(t, sent10, "GET")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "HTTP/1.0", resp.Proto, "an HTTP/1.0 client gets an HTTP/1.0 response")
	assert.Empty(t, resp.TransferEncoding, "no chunking for an HTTP/1.0 client")
	assert.True(t, want.String() == body, "sent %q: the body must be the %d bytes the dyno sent; got %d bytes", sent10, want.Len(), len(body))
}

// TestDynoCloseDelimited: a dyno response without Content-Length or
// Transfer-Encoding that ends at close is relayed whole: chunked to an
// HTTP/1.1 client, ending at close for an HTTP/1.0 one.
func TestDynoCloseDelimited(t *testing.T) {
	t.Parallel()
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
		// Returning closes: the end of the body.
	})
	tr := startRouter(t, oneApp("", d.addr()))

	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding, "a close-delimited body goes chunked to an HTTP/1.1 client")
	assert.True(t, payload == body, "want the %d bytes the dyno sent before closing; got %d", len(payload), len(body))
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, "at=info", dyGetShop)
	assert.Equal(t, fmt.Sprint(len(payload)), field(line, "bytes"), "line: %s", line)

	const sent10 = "GET / HTTP/1.0\r\nHost: shop.test\r\n\r\n"
	resp, body = tr.roundTrip(t, sent10, "GET")
	require.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, resp.TransferEncoding, "no chunking for an HTTP/1.0 client")
	assert.True(t, payload == body, "sent %q: want the %d bytes the dyno sent; got %d", sent10, len(payload), len(body))
	line = tr.lines.wait(t, 1)
	dyAssertLineStart(t, line, "at=info", sent10)
}

// TestDynoUpgradeTunnel: a WebSocket-style upgrade is tunnelled both ways;
// the line, status=101, is written when the tunnel closes.
func TestDynoUpgradeTunnel(t *testing.T) {
	t.Parallel()
	heads := make(chan string, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head := readRequestHead(br)
		if head == "" {
			return
		}
		heads <- head
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
		io.Copy(c, br) // echo until the router closes
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const sent = "GET /chat HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_, err := io.WriteString(c, sent)
	require.NoError(t, err)
	cbr := bufio.NewReader(c)
	resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
	require.NoError(t, err, "reading the answer to %q", sent)
	require.Equal(t, 101, resp.StatusCode)
	assert.Equal(t, "websocket", strings.ToLower(resp.Header.Get("Upgrade")), "the client sees the dyno's Upgrade")
	assert.Equal(t, "upgrade", strings.ToLower(resp.Header.Get("Connection")))
	dh := <-heads
	dreq, err := http.ReadRequest(bufio.NewReader(strings.NewReader(dh)))
	require.NoError(t, err, "the dyno got %q", dh)
	assert.Equal(t, "websocket", dreq.Header.Get("Upgrade"), "the dyno must see Upgrade; head %q", dh)
	assert.Equal(t, "upgrade", strings.ToLower(dreq.Header.Get("Connection")), "the dyno must see Connection: Upgrade; head %q", dh)

	// Small and large messages, both ways.
	_, err = io.WriteString(c, "ping-1")
	require.NoError(t, err)
	echo := make([]byte, 6)
	_, err = io.ReadFull(cbr, echo)
	require.NoError(t, err)
	assert.Equal(t, "ping-1", string(echo))
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Write(big)
	}()
	back := make([]byte, len(big))
	_, err = io.ReadFull(cbr, back)
	wg.Wait()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, back), "1 MiB sent through the tunnel must come back identical")
	assert.Equal(t, 0, tr.lines.count(), "the line is written when the tunnel closes, not before")

	c.Close()
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, "at=info", sent)
	assert.Equal(t, "101", field(line, "status"), "line: %s", line)
	assert.Equal(t, "web.1", field(line, "dyno"), "line: %s", line)
	assert.Equal(t, fmt.Sprint(6+len(big)), field(line, "bytes"), "bytes= counts what the dyno sent through the tunnel; line: %s", line)
}

// TestDyno101WithoutUpgrade: a 101 to a request that asked for no upgrade
// is H17.
func TestDyno101WithoutUpgrade(t *testing.T) {
	t.Parallel()
	const dresp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	d := dyOnceDyno(t, dresp)
	tr := startRouter(t, oneApp("", d.addr()))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	assert.Equal(t, 503, resp.StatusCode, "sent %q, dyno answered %q; body %q", dyGetShop, dresp, body)
	line := tr.lines.wait(t, 0)
	dyAssertLineStart(t, line, `at=error code=H17 desc="Poorly formatted HTTP response"`, dyGetShop)
	assert.Equal(t, "503", field(line, "status"), "line: %s", line)
}

// TestDynoEarlyHints: a 103 from the dyno reaches an HTTP/1.1 client before
// the final response, and never an HTTP/1.0 client.
func TestDynoEarlyHints(t *testing.T) {
	t.Parallel()
	const hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
	const final = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	ack := make(chan struct{}, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for dyReadRequest(br) != "" {
			io.WriteString(c, hints)
			select {
			case <-ack: // the client saw the 103 before the final response
			case <-time.After(time.Second):
			}
			io.WriteString(c, final)
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))

	t.Run("HTTP/1.1", func(t *testing.T) {
		c := tr.dial(t)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := io.WriteString(c, dyGetShop)
		require.NoError(t, err)
		cbr := bufio.NewReader(c)
		interim, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
		require.NoError(t, err)
		ack <- struct{}{}
		assert.Equal(t, 103, interim.StatusCode, "the dyno's 103 comes first, before the dyno sends its 200")
		assert.Equal(t, "</style.css>; rel=preload; as=style", interim.Header.Get("Link"))
		if interim.StatusCode == 103 {
			resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "ok", string(body))
		}
		line := tr.lines.wait(t, 0)
		assert.Equal(t, "200", field(line, "status"), "line: %s", line)
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		const sent = "GET / HTTP/1.0\r\nHost: shop.test\r\n\r\n"
		c := tr.dial(t)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := io.WriteString(c, sent)
		require.NoError(t, err)
		ack <- struct{}{}
		raw, _ := io.ReadAll(c)
		assert.True(t, strings.HasPrefix(string(raw), "HTTP/1.0 200 "), "sent %q: want the final response only; got %q", sent, raw)
		assert.NotContains(t, string(raw), "103", "no 1xx to an HTTP/1.0 client")
		assert.True(t, strings.HasSuffix(string(raw), "\r\n\r\nok"), "got %q", raw)
	})
}

// TestDynoBufferHeadNotHeld: a response head reaches the client within the
// buffering window even when no body byte follows yet (SPEC.md 4.9: no
// byte from the dyno waits longer than the window; an event stream is
// flushed on every read). The dyno sends its body only once the client
// has the head, or after 1 s.
func TestDynoBufferHeadNotHeld(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	for _, tc := range []struct{ name, head, body string }{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n", "hello"},
		{"event-stream", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n", "9\r\ndata: 1\n\n\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrote := make(chan time.Time, 1)
			ack := make(chan struct{})
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if dyReadRequest(br) == "" {
					return
				}
				io.WriteString(c, tc.head)
				wrote <- time.Now()
				dyWaitFor(ack, time.Second)
				io.WriteString(c, tc.body)
				dyDrain(br)
			})
			tr := startRouter(t, oneApp("", d.addr()))
			c := tr.dial(t)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.WriteString(c, dyGetShop)
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
			got := time.Now()
			w := <-wrote
			close(ack)
			require.NoError(t, err)
			assert.Less(t, got.Sub(w), dyFlushSlack,
				"the dyno sent the head %q and paused; the client got it %v later; want within buffering.window (10ms) plus margin", tc.head, got.Sub(w))
			body, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			assert.NotEmpty(t, body)
		})
	}
}

// TestDynoUpgradeIdle: a tunnel stays open while either side sends, and
// closes once neither sent a byte for timeouts.idle.
func TestDynoUpgradeIdle(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	received := make(chan int, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if readRequestHead(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(4 * time.Second))
		n, _ := io.Copy(io.Discard, br) // the dyno never writes again
		received <- int(n)
	})
	tr := startRouter(t, "timeouts: {idle: 500ms}\n"+oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const sent = "GET /tunnel HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n"
	_, err := io.WriteString(c, sent)
	require.NoError(t, err)
	cbr := bufio.NewReader(c)
	resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	const writes = 16
	for i := 0; i < writes; i++ {
		time.Sleep(50 * time.Millisecond) // 800ms in all, longer than the idle window
		_, err := c.Write([]byte{'x'})
		require.NoError(t, err, "write %d: the tunnel closed while the client was sending", i)
	}
	last := time.Now()
	_, err = cbr.ReadByte()
	closedAfter := time.Since(last)
	assert.ErrorIs(t, err, io.EOF, "the router closes an idle tunnel")
	assert.True(t, closedAfter >= 450*time.Millisecond && closedAfter < 2*time.Second,
		"the tunnel closed %v after the last byte; want about idle: 500ms", closedAfter)
	select {
	case n := <-received:
		assert.Equal(t, writes, n, "every byte the client sent reached the dyno")
	case <-time.After(3 * time.Second):
		t.Error("the dyno side of the tunnel was not closed")
	}
	line := tr.lines.wait(t, 0)
	assert.Equal(t, "101", field(line, "status"), "line: %s", line)
}

// TestDynoResponseHopByHop: hop-by-hop fields of the dyno's response are
// dropped and Via is appended (SPEC.md 4.8).
func TestDynoResponseHopByHop(t *testing.T) {
	t.Parallel()
	const dresp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\n" +
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n" +
		"Via: 1.1 vegur\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok"
	d := dyOnceDyno(t, dresp)
	tr := startRouter(t, oneApp("", d.addr()))
	resp, body := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ok", body)
	for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		assert.Empty(t, resp.Header.Values(h), "hop-by-hop %s must not reach the client; dyno sent %q", h, dresp)
	}
	for _, v := range resp.Header.Values("Connection") {
		assert.NotContains(t, strings.ToLower(v), "x-secret", "the dyno's Connection field must not reach the client")
	}
	assert.Equal(t, "yes", resp.Header.Get("X-Kept"))
	assert.Equal(t, []string{"1.1 vegur, 1.1 spacerouter"}, resp.Header.Values("Via"), "Via is appended to")
}

// TestDynoContentTypeSniffed: a response body without Content-Type gets
// one sniffed by http.DetectContentType, whole or streamed.
func TestDynoContentTypeSniffed(t *testing.T) {
	t.Parallel()
	const html = "<!DOCTYPE html><html><body>hi</body></html>"
	for _, tc := range []struct{ name, resp, want string }{
		{"length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(html), html), "text/html; charset=utf-8"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n%PDF-\r\n3\r\n1.4\r\n0\r\n\r\n", "application/pdf"},
		{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dyOnceDyno(t, tc.resp)
			tr := startRouter(t, oneApp("", d.addr()))
			resp, _ := tr.roundTrip(t, dyGetShop, "GET")
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, tc.want, resp.Header.Get("Content-Type"), "dyno sent %q", tc.resp)
		})
	}
}

// TestDynoNoBodyResponses: HEAD, 204 and 304 responses carry no body, so
// one keep-alive client connection goes on in step after them.
func TestDynoNoBodyResponses(t *testing.T) {
	t.Parallel()
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := dyReadRequest(br)
			switch {
			case head == "":
				return
			case strings.HasPrefix(head, "HEAD "):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
			case strings.HasPrefix(head, "GET /204 "):
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-N: 204\r\n\r\n")
			case strings.HasPrefix(head, "GET /304 "):
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nlast")
			}
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cbr := bufio.NewReader(c)
	for i, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"HEAD", "/head", 200, ""},
		{"GET", "/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"GET", "/last", 200, "last"},
	} {
		sent := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		_, err := io.WriteString(c, sent)
		require.NoError(t, err)
		resp, err := http.ReadResponse(cbr, &http.Request{Method: tc.method})
		require.NoError(t, err, "sent %q on the same connection", sent)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, tc.status, resp.StatusCode, "sent %q", sent)
		assert.Equal(t, tc.body, string(body), "sent %q", sent)
		if tc.method == "HEAD" {
			assert.Equal(t, int64(100), resp.ContentLength, "the HEAD answer keeps the dyno's Content-Length")
		}
		line := tr.lines.wait(t, i)
		assert.Equal(t, fmt.Sprint(tc.status), field(line, "status"), "line: %s", line)
		assert.Equal(t, fmt.Sprint(len(tc.body)), field(line, "bytes"), "line: %s", line)
	}
}

// TestDynoHeadIntactWhenBodyLater: a dyno that sends its head, then its
// body in a later segment: the client gets the head exactly as the dyno
// sent it (less hop-by-hop fields), whatever the body's framing. The dyno
// waits for the client to have the head, or 100 ms.
func TestDynoHeadIntactWhenBodyLater(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("z", 1000)
	const fields = "Content-Type: text/plain; charset=utf-8\r\nX-Custom: some-value-that-must-survive\r\n" +
		"Cache-Control: no-store\r\nSet-Cookie: session=abc123; Path=/; HttpOnly\r\n"
	for _, tc := range []struct{ name, framing, wire string }{
		{"content-length", "Content-Length: 1000\r\n", body},
		{"chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)},
		{"close-delimited", "", body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gotHead := make(chan struct{})
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if dyReadRequest(br) == "" {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+fields+tc.framing+"\r\n")
				dyWaitFor(gotHead, 100*time.Millisecond)
				io.WriteString(c, tc.wire)
				if tc.framing == "" {
					return // close: the end of the body
				}
				dyDrain(br)
			})
			tr := startRouter(t, oneApp("", d.addr()))
			c := tr.dial(t)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.WriteString(c, dyGetShop)
			require.NoError(t, err)
			cbr := bufio.NewReader(c)
			var raw strings.Builder
			for {
				ln, err := cbr.ReadString('\n')
				raw.WriteString(ln)
				require.NoError(t, err, "reading the head; got %q", raw.String())
				if ln == "\r\n" {
					break
				}
			}
			close(gotHead)
			head := raw.String()
			var missing []string
			if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
				missing = append(missing, "HTTP/1.1 200 OK")
			}
			for _, f := range strings.Split(strings.TrimSuffix(fields, "\r\n"), "\r\n") {
				if !strings.Contains(head, "\r\n"+f+"\r\n") {
					missing = append(missing, f)
				}
			}
			assert.Empty(t, missing, "the dyno sent its head, then %d body bytes later: these lines of its head did not reach the client intact; client got head %q", len(tc.wire), head)
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), cbr)), &http.Request{Method: "GET"})
			require.NoError(t, err, "head %q", head)
			got, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			assert.True(t, body == string(got), "want the %d-byte body; got %q", len(body), got)
		})
	}
}
