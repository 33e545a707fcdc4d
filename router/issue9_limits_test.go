package router

// Issue 9, client limits (SPEC.md 2): limits.requests_per_client,
// limits.connections and limits.connections_per_client, over real
// sockets from several loopback addresses (Linux routes all of 127/8 to
// lo). limits.min_transfer_rate is not tested here: it is averaged over
// rateWindow (10 s), a package variable shared by parallel tests.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// i9HoldDyno answers each request 200 "<target>" once gate opens; arrived
// gets each target as it is read.
func i9HoldDyno(t testing.TB, gate *i9Gate, arrived chan<- string) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := rqReadRequest(br)
			if r.head == "" || err != nil {
				return
			}
			target := strings.Split(r.requestLine(), " ")[1]
			arrived <- target
			<-gate.ch
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(target), target); err != nil {
				return
			}
		}
	})
}

// TestIssue9RequestsPerClient: with limits.requests_per_client 2, two
// requests in flight from 127.0.0.1 hold; a third from that address gets
// 503 H11 at once; one from 127.0.0.2 still reaches the dyno.
func TestIssue9RequestsPerClient(t *testing.T) {
	t.Parallel()
	gate := newI9Gate(t)
	arrived := make(chan string, 8)
	d := i9HoldDyno(t, gate, arrived)
	tr := startRouter(t, "limits: {requests_per_client: 2}\n"+oneApp("", d.addr()))
	held := make([]*rqConn, 2)
	for i := range held {
		c := i9DialFrom(t, tr, "127.0.0.1")
		held[i] = &rqConn{t: t, c: c, br: bufio.NewReader(c)}
		held[i].send(fmt.Sprintf("GET /held%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i))
		i9Recv(t, arrived, "held request at the dyno")
	}
	third := i9DialFrom(t, tr, "127.0.0.1")
	c3 := &rqConn{t: t, c: third, br: bufio.NewReader(third)}
	start := time.Now()
	resp, _ := c3.roundTrip("GET /third HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 503, resp.StatusCode, "a third request in flight from 127.0.0.1")
	assert.Less(t, time.Since(start), time.Second, "refused at once, no queue")
	line := i9LineWithPath(t, tr, "/third")
	assert.Contains(t, line, `code=H11 desc="Backlog too deep"`, "line %q", line)
	assert.Contains(t, line, " dyno= connect= service= status=503 ", "line %q", line)

	other := i9DialFrom(t, tr, "127.0.0.2")
	c4 := &rqConn{t: t, c: other, br: bufio.NewReader(other)}
	c4.send("GET /other HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	assert.Equal(t, "/other", i9Recv(t, arrived, "a request from 127.0.0.2 reaching the dyno"), "another client address is not limited by 127.0.0.1's requests")
	gate.open()
	resp, body := c4.response("GET", "/other")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/other", body)
	for i, c := range held {
		resp, body := c.response("GET", "/held")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, fmt.Sprintf("/held%d", i), body)
	}
	line = i9LineWithPath(t, tr, "/other")
	assert.Equal(t, "127.0.0.2", field(line, "fwd"), "line %q", line)
	// The slots are given back: 127.0.0.1 may send again.
	resp, _ = c3.roundTrip("GET /again HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 200, resp.StatusCode, "after the held requests ended")
}

// i9LineWithPath waits for the router line of path.
func i9LineWithPath(t testing.TB, tr *testRouter, path string) string {
	t.Helper()
	var found string
	require.Eventually(t, func() bool {
		for _, ln := range i9Lines(tr) {
			if field(ln, "path") == path {
				found = ln
				return true
			}
		}
		return false
	}, 3*time.Second, 2*time.Millisecond, "no router line for %s; have %q", path, i9Lines(tr))
	return found
}

// i9ExpectRefused dials the router from ip and asserts that the router
// closes the connection at once without an answer: the dial itself is
// reset (the router's reset came before the dial returned), or a read
// ends in EOF or a reset within a second, with no byte.
func i9ExpectRefused(t testing.TB, tr *testRouter, ip, what string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", tr.addr)
	if err != nil {
		assert.ErrorIs(t, err, syscall.ECONNRESET, "%s: dialing", what)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "GET /refused HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	b, err := io.ReadAll(c)
	assert.Empty(t, b, "%s: no response", what)
	if err != nil {
		assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "%s: the connection must be closed at once, not held (%v)", what, err)
	}
}

// i9CountClosed returns how many of cs the router closed: a read ends
// (EOF or reset) within 300 ms, with no byte. The reads run at once.
func i9CountClosed(cs []*rqConn) int {
	closed := make(chan bool, len(cs))
	for _, c := range cs {
		go func() {
			c.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := c.c.Read(make([]byte, 1))
			closed <- n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
		}()
	}
	n := 0
	for range cs {
		if <-closed {
			n++
		}
	}
	return n
}

// TestIssue9ConnectionLimits: limits.connections (3) and
// connections_per_client (2). A connection past a limit while the others
// are busy is closed at once and counted by reason; while some are idle
// keep-alive connections, one of those is closed instead and the new one
// is served.
func TestIssue9ConnectionLimits(t *testing.T) {
	t.Parallel()
	const limits = "limits: {connections: 3, connections_per_client: 2}\ntimeouts: {keepalive: 10s}\n"
	for _, tc := range []struct {
		name   string
		from   []string // the addresses of the connections that fill the limit
		next   string   // the address of the one past it
		reason string
	}{
		{"per client", []string{"127.0.0.1", "127.0.0.1"}, "127.0.0.1", refusedPerClient},
		{"global", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "127.0.0.4", refusedLimit},
	} {
		t.Run(tc.name+" busy", func(t *testing.T) {
			t.Parallel()
			gate := newI9Gate(t)
			arrived := make(chan string, 8)
			d := i9HoldDyno(t, gate, arrived)
			tr := startRouter(t, limits+oneApp("", d.addr()))
			busy := make([]*rqConn, len(tc.from))
			for i, ip := range tc.from {
				c := i9DialFrom(t, tr, ip)
				busy[i] = &rqConn{t: t, c: c, br: bufio.NewReader(c)}
				busy[i].send(fmt.Sprintf("GET /busy%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i))
				i9Recv(t, arrived, "busy request at the dyno")
			}
			i9ExpectRefused(t, tr, tc.next, fmt.Sprintf("a connection from %s past %s while the others are mid-request", tc.next, tc.reason))
			assert.Equal(t, 1.0, i9Refused(t, tr, tc.reason), "spacerouter_connections_refused_total{reason=%q}", tc.reason)
			assert.Empty(t, i9Lines(tr), "a connection refused at accept has no router line")
			gate.open()
			for i, b := range busy {
				resp, body := b.response("GET", "/busy")
				assert.Equal(t, 200, resp.StatusCode, "busy connection %d is not disturbed", i)
				assert.Equal(t, fmt.Sprintf("/busy%d", i), body)
			}
		})
		t.Run(tc.name+" idle", func(t *testing.T) {
			t.Parallel()
			d := okDyno(t, "ok")
			tr := startRouter(t, limits+oneApp("", d.addr()))
			idle := make([]*rqConn, len(tc.from))
			for i, ip := range tc.from {
				c := i9DialFrom(t, tr, ip)
				idle[i] = &rqConn{t: t, c: c, br: bufio.NewReader(c)}
				resp, _ := idle[i].roundTrip("GET /warm HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
				require.Equal(t, 200, resp.StatusCode)
			}
			require.Eventually(t, func() bool { return i9IdleConns(tr) == len(tc.from) }, 2*time.Second, time.Millisecond,
				"the warm connections wait between requests")
			nc := i9DialFrom(t, tr, tc.next)
			n := &rqConn{t: t, c: nc, br: bufio.NewReader(nc)}
			resp, _ := n.roundTrip("GET /new HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
			assert.Equal(t, 200, resp.StatusCode, "a new connection from %s is served: an idle keep-alive connection makes room", tc.next)
			assert.Equal(t, 1, i9CountClosed(idle), "exactly one idle connection is closed to make room")
			assert.Zero(t, i9Refused(t, tr, tc.reason), "nothing refused")
		})
	}
}

// TestIssue9ConnectionLimitPerClientOthersServed: a client at its
// connections_per_client limit does not stop another address from
// connecting.
func TestIssue9ConnectionLimitPerClientOthersServed(t *testing.T) {
	t.Parallel()
	gate := newI9Gate(t)
	arrived := make(chan string, 8)
	d := i9HoldDyno(t, gate, arrived)
	tr := startRouter(t, "limits: {connections: 3, connections_per_client: 2}\n"+oneApp("", d.addr()))
	for i := range 2 {
		c := i9DialFrom(t, tr, "127.0.0.1")
		fmt.Fprintf(c, "GET /busy%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i)
		i9Recv(t, arrived, "busy request at the dyno")
	}
	c := i9DialFrom(t, tr, "127.0.0.2")
	fmt.Fprintf(c, "GET /other HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	assert.Equal(t, "/other", i9Recv(t, arrived, "127.0.0.2's request at the dyno"))
	gate.open()
}
