package router

// Issue 9, item 1: the drain (SIGTERM = Router.Shutdown) under load, at
// its deadline, and against a request that arrives as it starts (SPEC.md
// sections 1 and 6, H24).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// i9CountingDyno answers every request with 200 and its target as the
// body, after reading a Content-Length body, and records each target it
// read. Every third request takes a couple of milliseconds, so a drain
// finds requests in flight.
type i9CountingDyno struct {
	*rawDyno
	mu   sync.Mutex
	seen map[string]int
	n    int
}

func startI9CountingDyno(t testing.TB) *i9CountingDyno {
	d := &i9CountingDyno{seen: map[string]int{}}
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
			d.n++
			slow := d.n%3 == 0
			d.mu.Unlock()
			if slow {
				<-time.After(2 * time.Millisecond) // a dyno at work
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(target), target); err != nil {
				return
			}
		}
	})
	return d
}

func (d *i9CountingDyno) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func (d *i9CountingDyno) snapshot() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]int, len(d.seen))
	for k, v := range d.seen {
		m[k] = v
	}
	return m
}

// i9CheckAccounting checks the drain's bookkeeping: every request the
// dyno saw was seen once and has exactly one router line; no line is
// doubled; every response a client got has its line with its status; and
// no request a client had fully sent ended in a reset with no response
// and no line.
func i9CheckAccounting(t *testing.T, tr *testRouter, d *i9CountingDyno, results []i9Result) {
	t.Helper()
	seen := d.snapshot()
	lines := i9LinesByPath(tr)
	sent := map[string]bool{}
	outcomes := map[i9Outcome]int{}
	for _, r := range results {
		sent[r.path] = true
		outcomes[r.out]++
	}
	t.Logf("requests: %d; outcomes %v; dyno saw %d; lines %d", len(results), outcomes, len(seen), len(i9Lines(tr)))
	for p, n := range seen {
		assert.Equal(t, 1, n, "the dyno saw %s %d times (a request is never sent twice)", p, n)
		assert.Len(t, lines[p], 1, "the dyno saw %s: it needs exactly one router line; lines %q", p, lines[p])
	}
	for p, ls := range lines {
		assert.True(t, sent[p], "a line for a path no client sent: %q", ls)
		assert.Len(t, ls, 1, "%s has more than one line: %q", p, ls)
	}
	for _, r := range results {
		switch r.out {
		case i9Response:
			if assert.Len(t, lines[r.path], 1, "%s: the client got %d but there is no single line", r.path, r.status) {
				assert.Equal(t, fmt.Sprint(r.status), field(lines[r.path][0], "status"), "line %q", lines[r.path][0])
			}
		case i9Reset:
			assert.NotEmpty(t, lines[r.path],
				"%s was written whole, then the client got a reset (%v) with no response and no router line", r.path, r.err)
		case i9EOF:
			// The router closed an idle connection as the request came:
			// tolerated only when the request reached no dyno (checked
			// above) — the client may retry it.
		case i9Other:
			t.Errorf("%s: unexpected client error %v", r.path, r.err)
		}
	}
}

// i9LoadClient sends sequential GETs and small POSTs on one keep-alive
// connection until the router closes it (or says it will).
func i9LoadClient(t *testing.T, tr *testRouter, id int) []i9Result {
	c, err := net.Dial("tcp", tr.addr)
	if err != nil {
		return []i9Result{{path: fmt.Sprintf("/c%d/dial", id), out: i9Other, err: err}}
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var out []i9Result
	for i := 0; i < 200; i++ {
		path := fmt.Sprintf("/c%d/r%d", id, i)
		method, raw := "GET", "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		if i%2 == 1 {
			body := fmt.Sprintf("body-%d-%d", id, i)
			method = "POST"
			raw = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		}
		r := i9Exchange(c, br, path, raw, method)
		out = append(out, r)
		if r.out != i9Response || r.close {
			break
		}
	}
	return out
}

// TestIssue9DrainUnderLoad is item 1a: Shutdown while several keep-alive
// clients send requests back to back. Requests in flight finish, each
// connection gets a last response with Connection: close, and the
// accounting holds: what reached the dyno is logged once, what a client
// got is logged, and no request written whole ends in a reset unlogged.
func TestIssue9DrainUnderLoad(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			t.Parallel()
			d := startI9CountingDyno(t)
			tr := startRouter(t, "timeouts: {keepalive: 5s}\n"+oneApp("", d.addr()))
			const clients = 4
			var wg sync.WaitGroup
			results := make([][]i9Result, clients)
			for i := range clients {
				wg.Go(func() { results[i] = i9LoadClient(t, tr, i) })
			}
			require.Eventually(t, func() bool { return d.count() >= 40 }, 3*time.Second, time.Millisecond, "load reaches the dyno")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := tr.Shutdown(ctx)
			assert.NoError(t, err, "short requests finish well within the shutdown deadline")
			wg.Wait()
			var all []i9Result
			for i, rs := range results {
				require.NotEmpty(t, rs, "client %d", i)
				last := rs[len(rs)-1]
				if last.out == i9Response {
					assert.True(t, last.close, "client %d: the last response on a drained connection says Connection: close", i)
				}
				all = append(all, rs...)
			}
			for _, r := range all {
				if r.out == i9Response {
					assert.Equal(t, 200, r.status, "%s", r.path)
				}
			}
			i9CheckAccounting(t, tr, d, all)
		})
	}
}

// TestIssue9DrainForcedClose is item 1b (SPEC.md 6, H24): a request still
// in flight when the shutdown deadline runs out is answered 503 with
// Connection: close when no response head was sent yet (otherwise it
// keeps the status sent), and its line is H24 "Forced close", not H27.
func TestIssue9DrainForcedClose(t *testing.T) {
	t.Parallel()
	const h24 = `at=error code=H24 desc="Forced close" `
	// The dyno reads the head, then what the test says, then waits for
	// the router to close.
	type tc struct {
		name string
		// dyno runs after the head was read; it returns when the
		// request is in the state the case tests.
		dyno  func(c net.Conn, br *bufio.Reader, ready chan<- struct{})
		extra string
		// client sends the request.
		raw string
		// status and bytes expected on the line; wantResp: the client
		// reads a whole 503.
		status, bytes string
		wantResp      bool
	}
	holdDyno := func(c net.Conn, br *bufio.Reader, ready chan<- struct{}) {
		ready <- struct{}{}
		io.Copy(io.Discard, br)
	}
	cases := []tc{
		{
			name: "no response head", dyno: holdDyno,
			raw:    "GET /hang HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			status: "503", wantResp: true,
		},
		{
			name: "POST body sent whole, no response head", dyno: holdDyno,
			raw:    "POST /hang HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
			status: "503", wantResp: true,
		},
		{
			name: "response head sent",
			dyno: func(c net.Conn, br *bufio.Reader, ready chan<- struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
				ready <- struct{}{}
				io.Copy(io.Discard, br)
			},
			raw:    "GET /half HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			status: "200", bytes: "10",
		},
		{
			// Larger than buffering.request_bytes: the head and the first
			// bytes went to the dyno, the rest of the body is due.
			name: "request body streaming to the dyno", extra: "buffering: {request_bytes: 1024}\n",
			dyno: func(c net.Conn, br *bufio.Reader, ready chan<- struct{}) {
				io.ReadFull(br, make([]byte, 1024))
				ready <- struct{}{}
				io.Copy(io.Discard, br)
			},
			raw:    "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 4096\r\n\r\n" + strings.Repeat("u", 2048),
			status: "503", wantResp: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ready := make(chan struct{}, 1)
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if readRequestHead(br) == "" {
					return
				}
				tc.dyno(c, br, ready)
			})
			tr := startRouter(t, tc.extra+oneApp("", d.addr()))
			c := tr.dial(t)
			c.SetDeadline(time.Now().Add(4 * time.Second))
			_, err := io.WriteString(c, tc.raw)
			require.NoError(t, err)
			i9Recv(t, ready, "the request reaching the dyno")
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- tr.Shutdown(ctx) }()
			br := bufio.NewReader(c)
			resp, rerr := http.ReadResponse(br, &http.Request{Method: strings.Fields(tc.raw)[0]})
			if tc.wantResp {
				if assert.NoError(t, rerr, "sent %s; the shutdown deadline passed with it in flight: want a 503 with Connection: close (after %v)", i9Show(tc.raw), time.Since(start)) {
					body, _ := io.ReadAll(resp.Body)
					assert.Equal(t, 503, resp.StatusCode, "body %q", body)
					assert.True(t, resp.Close, "H24 503 says Connection: close")
					assert.Less(t, time.Since(start), time.Second, "answered at the deadline (150ms), not at the forced close")
				}
			} else if rerr == nil {
				assert.Equal(t, 200, resp.StatusCode)
				b, err := io.ReadAll(resp.Body)
				assert.Error(t, err, "the body is cut short (got %d bytes)", len(b))
			}
			line := tr.lines.wait(t, 0)
			t.Logf("line: %s", line)
			assert.True(t, strings.HasPrefix(rqLinePart(line), h24), "sent %s, cut by the shutdown deadline; line %q", i9Show(tc.raw), line)
			assert.NotContains(t, line, "H27")
			assert.Equal(t, tc.status, field(line, "status"), "line %q", line)
			if tc.bytes != "" {
				assert.Equal(t, tc.bytes, field(line, "bytes"), "line %q", line)
			}
			assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
			select {
			case err := <-done:
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			case <-time.After(3 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			assert.Equal(t, 1, tr.lines.count(), "one line: %q", i9Lines(tr))
		})
	}
}

// TestIssue9DrainForcedCloseBuffering: the same deadline while the
// router still buffers the request body (SPEC.md 4.7: before a dyno is
// chosen). SPEC.md 6 says H24 for "the request was still in flight"; a
// request whose body is being read counts, we think, so it gets 503 with
// Connection: close and an H24 line.
func TestIssue9DrainForcedCloseBuffering(t *testing.T) {
	t.Parallel()
	d := okDyno(t, "ok")
	tr := startRouter(t, oneApp("", d.addr()))
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(4 * time.Second))
	raw := "POST /slowbody HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100\r\n\r\n0123456789"
	_, err := io.WriteString(c, raw)
	require.NoError(t, err)
	// The head was read once the connection counts as active.
	require.Eventually(t, func() bool { all, idle := i9ConnCounts(tr); return all == 1 && idle == 0 }, 2*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	go tr.Shutdown(ctx)
	resp, rerr := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
	took := time.Since(start)
	if assert.NoError(t, rerr, "sent %s and stalled; at the shutdown deadline (150ms) want a 503 (after %v)", i9Show(raw), took) {
		assert.Equal(t, 503, resp.StatusCode)
		assert.True(t, resp.Close, "Connection: close")
		assert.Less(t, took, time.Second, "answered at the deadline, not at the forced close")
	}
	line := tr.lines.wait(t, 0)
	t.Logf("line: %s", line)
	assert.Contains(t, line, `code=H24 desc="Forced close"`, "line %q", line)
	assert.Zero(t, d.accepted(), "nothing reached a dyno")
}

// TestIssue9DrainIdleRace is item 1c: idle keep-alive connections whose
// clients send a request just as the drain starts. Each such request is
// served (or, if the router closed the connection before it came, gets a
// clean close and reaches no dyno); none gets a reset with no line.
func TestIssue9DrainIdleRace(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			t.Parallel()
			d := startI9CountingDyno(t)
			tr := startRouter(t, "timeouts: {keepalive: 5s}\n"+oneApp("", d.addr()))
			const n = 16
			type client struct {
				c  net.Conn
				br *bufio.Reader
			}
			cs := make([]client, n)
			var results []i9Result
			for i := range n {
				c := tr.dial(t)
				cs[i] = client{c, bufio.NewReader(c)}
				path := fmt.Sprintf("/warm%d", i)
				r := i9Exchange(c, cs[i].br, path, "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
				require.Equal(t, i9Response, r.out, "warm-up %s: %v", path, r.err)
				results = append(results, r)
			}
			require.Eventually(t, func() bool { return i9IdleConns(tr) == n }, 10*time.Second, time.Millisecond)
			start := make(chan struct{})
			out := make([]i9Result, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					path := fmt.Sprintf("/race%d", i)
					out[i] = i9Exchange(cs[i].c, cs[i].br, path, "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
				})
			}
			// Generous: the drain ends as soon as the requests do; only a
			// loaded machine (the race detector, parallel tests) comes near it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			close(start)
			assert.NoError(t, tr.Shutdown(ctx))
			wg.Wait()
			served := 0
			for _, r := range out {
				if r.out == i9Response {
					served++
					assert.Equal(t, 200, r.status, r.path)
					assert.True(t, r.close, "%s: the response on a drained connection says Connection: close", r.path)
				}
			}
			t.Logf("served %d of %d requests sent as the drain began", served, n)
			i9CheckAccounting(t, tr, d, append(results, out...))
		})
	}
}

// TestIssue9DrainPipelinedNoReset makes the reset that
// TestIssue9DrainUnderLoad catches now and then happen every time: the
// drain begins while a response streams (its head went out without
// Connection: close), and the client has already pipelined its next
// request (SPEC.md 4b), 16 KiB of head, more than the router reads ahead
// while it relays. The streamed response must arrive whole, and the
// pipelined request must be answered or see a clean close, never a reset
// with no response and no line.
func TestIssue9DrainPipelinedNoReset(t *testing.T) {
	t.Parallel()
	gate := newI9Gate(t)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := readRequestHead(br)
			if head == "" {
				return
			}
			if strings.HasPrefix(head, "GET /stream ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n0123456789")
				<-gate.ch
				io.WriteString(c, "abcdefghij")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))
	c := rqOpen(t, tr)
	c.send("GET /stream HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	head := c.rawHead("GET /stream")
	require.True(t, strings.HasPrefix(head, "HTTP/1.1 200 "), "head %q", head)
	require.Empty(t, rqValues(head, "Connection"), "the head went out before the drain: keep-alive")
	first := make([]byte, 10)
	_, err := io.ReadFull(c.br, first)
	require.NoError(t, err)
	next := "GET /next HTTP/1.1\r\nHost: shop.test\r\nX-Pad: " + strings.Repeat("p", 16<<10) + "\r\n\r\n"
	c.send(next)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown(ctx) }()
	require.Eventually(t, tr.Draining, time.Second, time.Millisecond)
	gate.open()
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	rest := make([]byte, 10)
	_, err = io.ReadFull(c.br, rest)
	assert.NoError(t, err, "the tail of the streamed response (its line says complete)")
	assert.Equal(t, "abcdefghij", string(rest))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	switch out := i9Classify(err); out {
	case i9Response:
		assert.Equal(t, 200, resp.StatusCode)
		assert.True(t, resp.Close, "the last response of a drained connection says Connection: close")
	case i9EOF:
		t.Logf("the pipelined request got a clean close (%v)", err)
	default:
		t.Errorf("sent a pipelined GET /next (16 KiB head) while GET /stream was relayed; the drain began; the connection ended in %v (%v): "+
			"a reset with no response and no line for a request sent whole", out, err)
	}
	require.NoError(t, <-done)
	lines := i9LinesByPath(tr)
	if assert.Len(t, lines["/stream"], 1) {
		assert.Equal(t, "200", field(lines["/stream"][0], "status"))
	}
}
