package router

// Helpers of the issue 9 black-box tests (files issue9_*_test.go): what a
// client saw of a request, the router lines so far, connection gauges and
// counters read from the router's collectors.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// i9Outcome is what a client saw of one request it sent.
type i9Outcome int

const (
	i9Response    i9Outcome = iota // a whole response
	i9EOF                          // the connection closed cleanly, no response
	i9Reset                        // a reset, no response
	i9WriteFailed                  // the request could not be written whole
	i9Other                        // another error (a timeout, a bad response)
)

func (o i9Outcome) String() string {
	return [...]string{"response", "EOF", "reset", "write failed", "other"}[o]
}

// i9Result is one request a test client sent and what came back.
type i9Result struct {
	path   string
	out    i9Outcome
	status int
	close  bool // the response said Connection: close
	err    error
}

// i9Classify maps a read error to the outcome a client sees.
func i9Classify(err error) i9Outcome {
	switch {
	case err == nil:
		return i9Response
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return i9Reset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return i9EOF
	}
	return i9Other
}

// i9Exchange writes raw on c and reads the response (whole body) with
// net/http's parser.
func i9Exchange(c net.Conn, br *bufio.Reader, path, raw, method string) i9Result {
	r := i9Result{path: path}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		r.out, r.err = i9WriteFailed, err
		return r
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		r.out, r.err = i9Classify(err), err
		return r
	}
	_, err = io.Copy(io.Discard, resp.Body)
	r.status, r.close = resp.StatusCode, resp.Close
	if err != nil {
		r.out, r.err = i9Classify(err), err
		if r.out == i9Response {
			r.out = i9Other
		}
		return r
	}
	return r
}

// i9Lines returns the router lines written so far (the router log writes
// them from a goroutine of its own: pending ones are flushed first).
func i9Lines(tr *testRouter) []string {
	tr.Router.lines.Load().Flush()
	tr.lines.mu.Lock()
	defer tr.lines.mu.Unlock()
	return append([]string(nil), tr.lines.lines...)
}

// i9LinesByPath counts the router lines by their path field.
func i9LinesByPath(tr *testRouter) map[string][]string {
	m := map[string][]string{}
	for _, ln := range i9Lines(tr) {
		p := field(ln, "path")
		m[p] = append(m[p], ln)
	}
	return m
}

// i9Value returns the value of a counter or gauge.
func i9Value(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// i9WaitNoClientConns waits until the router has no plain HTTP/1 client
// connection open: every connection goroutine ended, so every line it
// would write is written.
func i9WaitNoClientConns(t testing.TB, tr *testRouter) {
	t.Helper()
	g := tr.m.clientConns.WithLabelValues("http", "http1")
	require.Eventually(t, func() bool { return i9Value(t, g) == 0 }, 3*time.Second, 2*time.Millisecond,
		"the router still holds a client connection")
}

// i9Refused returns spacerouter_connections_refused_total{reason}.
func i9Refused(t testing.TB, tr *testRouter, reason string) float64 {
	t.Helper()
	return i9Value(t, tr.m.connRefused.WithLabelValues(reason))
}

// i9DialFrom opens a client connection to the router from the loopback
// address ip (Linux routes all of 127/8 to lo).
func i9DialFrom(t testing.TB, tr *testRouter, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", tr.addr)
	require.NoError(t, err, "dialing the router from %s", ip)
	t.Cleanup(func() { c.Close() })
	return c
}

// i9IdleConns counts the client connections the router holds that wait
// between requests.
func i9IdleConns(tr *testRouter) int {
	_, idle := i9ConnCounts(tr)
	return idle
}

// i9ConnCounts returns how many client connections the router tracks, and
// how many of them wait between requests.
func i9ConnCounts(tr *testRouter) (all, idle int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for c := range tr.conns {
		all++
		if c.idle() {
			idle++
		}
	}
	return all, idle
}

// i9Gate is a dyno-side wait that a test opens once (and the cleanup
// opens in any case, so no dyno goroutine outlives its test).
type i9Gate struct {
	ch   chan struct{}
	once sync.Once
}

func newI9Gate(t testing.TB) *i9Gate {
	g := &i9Gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *i9Gate) open() { g.once.Do(func() { close(g.ch) }) }

// i9Recv waits up to 2 s for a value on ch.
func i9Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * time.Second):
		var zero T
		t.Fatalf("%s: nothing within 2s", what)
		return zero
	}
}

// i9NoRecv asserts that nothing arrives on ch for d.
func i9NoRecv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v", what, v)
	case <-time.After(d):
	}
}

// i9Show shortens raw bytes for messages.
func i9Show(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%q…(%d bytes)", s[:200], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// i9StatusLine reads the first line of a response.
func i9StatusLine(t testing.TB, br *bufio.Reader, sent string) string {
	t.Helper()
	ln, err := br.ReadString('\n')
	require.NoError(t, err, "no status line came back for %s (got %q)", i9Show(sent), ln)
	return strings.TrimRight(ln, "\r\n")
}
