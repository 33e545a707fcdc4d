package router

// Dyno connection pool (SPEC.md 4.6, features of section 3).

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dyIdleConns returns how many idle pooled connections the router holds
// to addr. It is the one place these tests look inside the router.
func (tr *testRouter) dyIdleConns(addr string) int {
	tr.mu.Lock()
	be := tr.backends[addr]
	tr.mu.Unlock()
	if be == nil {
		return 0
	}
	return be.pool.idleCount()
}

// dyWaitIdleConns waits up to 2 s until the router holds n idle
// connections to addr: the connection goes back to the pool just after
// the response was written, so a client can be faster.
func (tr *testRouter) dyWaitIdleConns(t *testing.T, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for tr.dyIdleConns(addr) != n {
		if time.Now().After(deadline) {
			t.Fatalf("the router holds %d idle connections to %s; want %d", tr.dyIdleConns(addr), addr, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDynoPoolReuse: sequential requests from different client
// connections share one dyno connection.
func TestDynoPoolReuse(t *testing.T) {
	t.Parallel()
	d := okDyno(t, "pooled")
	tr := startRouter(t, oneApp("", d.addr()))
	for i := 0; i < 8; i++ {
		resp, body := tr.roundTrip(t, dyGetShop, "GET") // a new client connection each time
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
		require.Equal(t, "pooled", body, "request %d", i)
		tr.lines.wait(t, i)
		tr.dyWaitIdleConns(t, d.addr(), 1)
	}
	assert.Equal(t, 1, d.accepted(), "8 sequential requests from 8 client connections must reuse one dyno connection")
}

// TestDynoPoolReuseForNonReplayable: a request that cannot be sent again
// (a POST) checks the pooled connection before using it; a connection idle
// past its last read deadline (watchDelay, 20 ms) passes that check and is
// reused, not replaced by a new one.
func TestDynoPoolReuseForNonReplayable(t *testing.T) {
	t.Parallel()
	d := okDyno(t, "pooled")
	tr := startRouter(t, oneApp("", d.addr()))
	post := "POST /f HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
	for i := range 3 {
		resp, body := tr.roundTrip(t, post, "POST")
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
		require.Equal(t, "pooled", body, "request %d", i)
		tr.lines.wait(t, i)
		tr.dyWaitIdleConns(t, d.addr(), 1)
		time.Sleep(3 * watchDelay) // past the pooled connection's read deadline
	}
	assert.Equal(t, 1, d.accepted(), "3 POSTs must reuse one live pooled dyno connection")
}

// TestDynoPoolDisableKeepalive: with http-disable-keepalive-to-dyno each
// request gets a new dyno connection and the dyno sees Connection: close.
func TestDynoPoolDisableKeepalive(t *testing.T) {
	t.Parallel()
	heads := make(chan string, 16)
	closed := make(chan struct{}, 16)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := dyReadRequest(br)
			if head == "" {
				closed <- struct{}{}
				return
			}
			heads <- head
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := startRouter(t, oneApp("features: [http-disable-keepalive-to-dyno]", d.addr()))
	c := tr.dial(t) // one keep-alive client connection for all three
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cbr := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		_, err := io.WriteString(c, dyGetShop)
		require.NoError(t, err)
		resp, err := http.ReadResponse(cbr, &http.Request{Method: "GET"})
		require.NoError(t, err, "request %d", i)
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
		require.Equal(t, "ok", string(body))
		head := <-heads
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		require.NoError(t, err, "the dyno got %q", head)
		assert.True(t, req.Close, "the dyno must see Connection: close; got head %q", head)
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Errorf("request %d: the router kept the dyno connection open", i)
		}
	}
	assert.Equal(t, 3, d.accepted(), "one dyno connection per request")
}

// TestDynoPoolKeepaliveExpiry: an idle pooled connection is closed by the
// router after timeouts.dyno_keepalive.
func TestDynoPoolKeepaliveExpiry(t *testing.T) {
	// Not parallel: it measures time, so it runs alone.
	idleFor := make(chan time.Duration, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		answered := time.Now()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		head := readRequestHead(br)
		if head != "" {
			idleFor <- -1
			return
		}
		idleFor <- time.Since(answered)
	})
	tr := startRouter(t, "timeouts: {dyno_keepalive: 200ms}\n"+oneApp("", d.addr()))
	resp, _ := tr.roundTrip(t, dyGetShop, "GET")
	require.Equal(t, 200, resp.StatusCode)
	select {
	case idle := <-idleFor:
		assert.True(t, idle >= 150*time.Millisecond && idle < 1500*time.Millisecond,
			"dyno_keepalive: 200ms: the dyno connection was closed after %v idle; want about 200ms", idle)
	case <-time.After(4 * time.Second):
		t.Fatal("the dyno handler never ended")
	}
}

// TestDynoPoolDeadIdleReplaced: a pooled connection the dyno closed while
// idle is replaced in silence: the next request succeeds (no H13), for a
// replayable GET and for a POST with a body alike.
func TestDynoPoolDeadIdleReplaced(t *testing.T) {
	t.Parallel()
	for _, second := range []string{
		"GET /two HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"POST /two HTTP/1.1\r\nHost: shop.test\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody",
	} {
		t.Run(strings.Fields(second)[0], func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			firstClosed := make(chan struct{})
			d := startRawDyno(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if n.Add(1) == 1 {
					// The first connection answers one request keep-alive,
					// then closes while the router holds it idle.
					if dyReadRequest(br) == "" {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\none")
					c.Close()
					close(firstClosed)
					return
				}
				dyOKHandler("two")(c)
			})
			tr := startRouter(t, oneApp("", d.addr()))
			resp, body := tr.roundTrip(t, dyGetShop, "GET")
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "one", body)
			tr.lines.wait(t, 0)
			select {
			case <-firstClosed:
			case <-time.After(2 * time.Second):
				t.Fatal("the first dyno connection never closed")
			}
			tr.dyWaitIdleConns(t, d.addr(), 1) // the dead connection is pooled
			resp, body = tr.roundTrip(t, second, strings.Fields(second)[0])
			assert.Equal(t, 200, resp.StatusCode, "sent %q after the dyno closed the pooled connection; body %q", second, body)
			assert.Equal(t, "two", body)
			line := tr.lines.wait(t, 1)
			dyAssertLineStart(t, line, "at=info", second)
			assert.Equal(t, "200", field(line, "status"), "line: %s", line)
			assert.Equal(t, 2, tr.lines.count(), "one line per request, no error line")
			assert.Equal(t, 2, d.accepted(), "the dead pooled connection is replaced by one new connection")
		})
	}
}

// TestDynoPoolConnectionClose: a dyno response with Connection: close is
// not reused: the router closes that connection and opens a new one.
func TestDynoPoolConnectionClose(t *testing.T) {
	t.Parallel()
	routerClosed := make(chan struct{}, 4)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if dyReadRequest(br) == "" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		// The dyno does not close: the router must.
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if readRequestHead(br) == "" {
			if _, err := br.ReadByte(); err == io.EOF {
				routerClosed <- struct{}{}
			}
		}
	})
	tr := startRouter(t, oneApp("", d.addr()))
	for i := 0; i < 2; i++ {
		resp, body := tr.roundTrip(t, dyGetShop, "GET")
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
		require.Equal(t, "ok", body)
		select {
		case <-routerClosed:
		case <-time.After(2 * time.Second):
			t.Errorf("request %d: the dyno said Connection: close and the router did not close the connection", i)
		}
	}
	assert.Equal(t, 2, d.accepted(), "a connection the dyno said close on is never reused")
}

// dyKillableDyno is a dyno that answers "A" until kill closes its listener
// and every connection it accepted, as a crashed dyno process does.
type dyKillableDyno struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func dyStartKillableDyno(t *testing.T) *dyKillableDyno {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	k := &dyKillableDyno{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			k.mu.Lock()
			k.conns = append(k.conns, c)
			k.mu.Unlock()
			go dyOKHandler("A")(c)
		}
	}()
	t.Cleanup(k.kill)
	return k
}

func (k *dyKillableDyno) kill() {
	k.ln.Close()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		c.Close()
	}
}

// TestDynoPoolDeadDynoRetried: a dyno that went away while the router held
// an idle connection to it: the pooled connection is dead and the
// reconnect is refused. That is a failed connect like any other (SPEC.md
// 4.6): the dyno is skipped and the request goes to another up dyno, so
// every request succeeds.
func TestDynoPoolDeadDynoRetried(t *testing.T) {
	t.Parallel()
	a := dyStartKillableDyno(t)
	b := okDyno(t, "B")
	aAddr := a.ln.Addr().String()
	// App warm reaches only dyno A, to leave an idle connection to it in
	// the pool (pools are per dyno address); app shop has A and B.
	yaml := oneApp("", aAddr, b.addr()) +
		"  - name: warm\n    domains: [warm.test]\n    dynos:\n      - {name: web.1, address: \"" + aAddr + "\"}\n"
	tr := startRouter(t, yaml)
	resp, body := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: warm.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "A", body)
	tr.dyWaitIdleConns(t, aAddr, 1)
	a.kill()

	for i := 0; i < 10; i++ {
		resp, body := tr.roundTrip(t, dyGetShop, "GET")
		line := tr.lines.wait(t, 1+i)
		assert.Equal(t, 200, resp.StatusCode,
			"request %d: %q with web.1 gone (its pooled connection dead, connects refused) and web.2 up; body %q; line: %s", i, dyGetShop, body, line)
		assert.Equal(t, "B", body, "request %d", i)
	}
}
