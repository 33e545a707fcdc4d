package router

// Issue 9, request body buffering (SPEC.md 4.7): slow clients never hold a
// dyno or a concurrency slot while a body that fits buffering.request_bytes
// arrives; a larger body streams once that much was read.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// i9BodyDyno reads each request (head, then a Content-Length body) and
// reports it on got with the time its head was read; it answers 200
// "<target>".
type i9BodyReq struct {
	head   string
	body   string
	headAt time.Time
}

func i9BodyDyno(t testing.TB, got chan<- i9BodyReq) *rawDyno {
	return startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := readRequestHead(br)
			if head == "" {
				return
			}
			r := i9BodyReq{head: head, headAt: time.Now()}
			if cl := rqValues(head, "Content-Length"); len(cl) == 1 {
				n, _ := strconv.Atoi(cl[0])
				b := make([]byte, n)
				if _, err := io.ReadFull(br, b); err != nil {
					return
				}
				r.body = string(b)
			}
			got <- r
			target := strings.Split(head, " ")[1]
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(target), target); err != nil {
				return
			}
		}
	})
}

// TestIssue9SlowBodyBuffered: a POST whose 10-byte body trickles in over
// ~300 ms reaches the dyno only once the whole body arrived (head and body
// together), and meanwhile it holds no concurrency slot: with
// concurrency_per_dyno 1 and one dyno, another client's GET is served.
func TestIssue9SlowBodyBuffered(t *testing.T) {
	t.Parallel()
	got := make(chan i9BodyReq, 8)
	d := i9BodyDyno(t, got)
	tr := startRouter(t, "limits: {concurrency_per_dyno: 1}\n"+oneApp("", d.addr()))
	slow := rqOpen(t, tr)
	body := "0123456789"
	slow.send("POST /slow HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 10\r\n\r\n")
	var lastPiece time.Time
	for i := 0; i < len(body); i += 2 {
		<-time.After(60 * time.Millisecond) // the client's pace: ~300 ms in all
		if i == 4 {
			// Midway: another client is served by the only dyno, whose
			// one slot the trickling POST must not hold.
			resp, _ := tr.roundTrip(t, "GET /fast HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
			assert.Equal(t, 200, resp.StatusCode, "a GET while another client's POST body trickles in (concurrency_per_dyno 1)")
			r := i9Recv(t, got, "the GET at the dyno")
			assert.True(t, strings.HasPrefix(r.head, "GET /fast "), "the dyno's first request is the GET, not the unfinished POST; got %q", r.head)
		}
		select {
		case r := <-got:
			t.Fatalf("the dyno got %q before the POST body was complete (%d of %d bytes sent)", r.head, i, len(body))
		default:
		}
		lastPiece = time.Now() // the last piece starts now
		slow.send(body[i : i+2])
	}
	r := i9Recv(t, got, "the POST at the dyno")
	assert.True(t, strings.HasPrefix(r.head, "POST /slow "), "head %q", r.head)
	assert.Equal(t, body, r.body)
	assert.False(t, r.headAt.Before(lastPiece), "the head reached the dyno %v before the last body bytes were sent", lastPiece.Sub(r.headAt))
	resp, b := slow.response("POST", "/slow")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/slow", b)
}

// TestIssue9LargeBodyStreams: a body larger than buffering.request_bytes
// (1024) streams: the dyno gets the head and at least the first 1024
// bytes before the client sent the rest.
func TestIssue9LargeBodyStreams(t *testing.T) {
	t.Parallel()
	firstKiB := make(chan int, 1)
	rest := make(chan struct{})
	done := make(chan string, 1)
	d := startRawDyno(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head := readRequestHead(br)
		if head == "" {
			return
		}
		b := make([]byte, 10240)
		n, err := io.ReadAtLeast(br, b, 1024)
		firstKiB <- n
		if err != nil {
			return
		}
		<-rest
		if _, err := io.ReadFull(br, b[n:]); err != nil {
			return
		}
		done <- string(b)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := startRouter(t, "buffering: {request_bytes: 1024}\n"+oneApp("", d.addr()))
	c := rqOpen(t, tr)
	body := strings.Repeat("0123456789abcdef", 640) // 10 KiB
	c.send("POST /big HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 10240\r\n\r\n" + body[:2048])
	n := i9Recv(t, firstKiB, "the head and the first 1024 body bytes at the dyno while the client holds the rest")
	assert.GreaterOrEqual(t, n, 1024)
	close(rest)
	c.send(body[2048:])
	require.Equal(t, body, i9Recv(t, done, "the whole body at the dyno"), "the body arrives whole and in order")
	resp, b := c.response("POST", "/big")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ok", b)
}
