package router

// Issue 9, items 1d and "keep-alive closed between requests": a response
// whose last byte reached the client is complete whatever the client does
// next, and a connection closed between requests is no request (SPEC.md
// sections 4 and 6, H27).

import (
	"bufio"
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

// i9BodyLen is the body of i9SlowBodyDyno: four times buffering.bytes
// (1024), so each write of the dyno fills the relay buffer.
const i9BodyLen = 4096

// i9SlowBodyDyno answers each request with Content-Length: 4096 and the
// body in four writes of 1024 bytes, 2 ms apart, so the router streams it
// (SPEC.md 4.9) and the last bytes fill its buffer.
func i9SlowBodyDyno(t testing.TB) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		chunk := strings.Repeat("z", i9BodyLen/4)
		for readRequestHead(br) != "" {
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", i9BodyLen); err != nil {
				return
			}
			for range 4 {
				<-time.After(2 * time.Millisecond)
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		}
	})
}

// TestIssue9CompleteResponseLoggedComplete is item 1d: a client that reads
// exactly the Content-Length bytes of a streamed response and closes at
// once (FIN or reset) got the whole response: the line is status=200 with
// no code and bytes=4096, never H27.
func TestIssue9CompleteResponseLoggedComplete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		raw   string
		reset bool
	}{
		{"HTTP/1.0 FIN", "GET /%d HTTP/1.0\r\nHost: shop.test\r\n\r\n", false},
		{"HTTP/1.1 close FIN", "GET /%d HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", false},
		{"HTTP/1.1 keep-alive RST", "GET /%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := i9SlowBodyDyno(t)
			tr := startRouter(t, "buffering: {bytes: 1024}\n"+oneApp("", d.addr()))
			const n = 50
			const workers = 5
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < n; i += workers {
						raw := fmt.Sprintf(tc.raw, i)
						c, err := net.Dial("tcp", tr.addr)
						if !assert.NoError(t, err) {
							return
						}
						c.SetDeadline(time.Now().Add(3 * time.Second))
						io.WriteString(c, raw)
						resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
						if assert.NoError(t, err, "sent %q", raw) {
							b := make([]byte, i9BodyLen)
							_, err = io.ReadFull(resp.Body, b)
							assert.NoError(t, err, "reading the %d body bytes of %q", i9BodyLen, raw)
						}
						if tc.reset {
							c.(*net.TCPConn).SetLinger(0)
						}
						c.Close()
					}
				})
			}
			wg.Wait()
			i9WaitNoClientConns(t, tr)
			lines := i9Lines(tr)
			require.Len(t, lines, n, "one line per request")
			bad := 0
			for _, ln := range lines {
				if strings.Contains(ln, " code=") || field(ln, "status") != "200" || field(ln, "bytes") != fmt.Sprint(i9BodyLen) {
					bad++
					if bad <= 3 {
						t.Errorf("the client read all %d bytes of the response, then closed: want status=200 bytes=%d and no code; line %q",
							i9BodyLen, i9BodyLen, ln)
					}
				}
			}
			assert.Zero(t, bad, "lines of complete responses logged as incomplete, of %d", n)
			assert.GreaterOrEqual(t, i9Value(t, tr.m.flushSize), float64(n), "the bodies were streamed, flushed by size (the test's premise)")
		})
	}
}

// TestIssue9KeepAliveClosedBetweenRequests: a keep-alive connection closed
// by its client after one complete request, with a FIN or a reset, writes
// exactly one line (the request's); no H27 line with an empty method.
func TestIssue9KeepAliveClosedBetweenRequests(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		name := "FIN"
		if reset {
			name = "RST"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := okDyno(t, "ok")
			tr := startRouter(t, oneApp("", d.addr()))
			const n = 10
			for i := range n {
				c, err := net.Dial("tcp", tr.addr)
				require.NoError(t, err)
				br := bufio.NewReader(c)
				r := i9Exchange(c, br, "/ka", fmt.Sprintf("GET /ka%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i), "GET")
				require.Equal(t, i9Response, r.out, "%v", r.err)
				if reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
			}
			i9WaitNoClientConns(t, tr)
			lines := i9Lines(tr)
			assert.Len(t, lines, n, "one line per request, none for the close between requests: %q", lines)
			for _, ln := range lines {
				assert.NotContains(t, ln, "H27", "a connection closed between requests is no request")
				assert.Equal(t, "200", field(ln, "status"), "line %q", ln)
				assert.NotEmpty(t, field(ln, "method"), "line %q", ln)
			}
		})
	}
}
