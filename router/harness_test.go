package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// lineSink collects router lines written by the router under test.
type lineSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	cond  *sync.Cond
}

func newLineSink() *lineSink {
	s := &lineSink{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	for {
		i := bytes.IndexByte(s.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		s.lines = append(s.lines, string(s.buf.Next(i+1)))
	}
	s.cond.Broadcast()
	return len(p), nil
}

// wait returns the n-th router line (0-based), waiting up to 5 s for it.
func (s *lineSink) wait(t testing.TB, n int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.lines) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("router line %d not written within 5s; have %d: %q", n, len(s.lines), s.lines)
		}
		s.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		s.mu.Lock()
	}
	return s.lines[n]
}

// count returns how many lines were written so far.
func (s *lineSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// testRouter is a router under test on 127.0.0.1:0.
type testRouter struct {
	*Router
	lines *lineSink
	addr  string
}

// startRouter parses yamlText (listen.http defaults to 127.0.0.1:0 when
// absent) and starts a router; it is shut down at the end of the test.
func startRouter(t testing.TB, yamlText string) *testRouter {
	t.Helper()
	if !strings.Contains(yamlText, "listen:") {
		yamlText = "listen: {http: \"127.0.0.1:0\"}\n" + yamlText
	}
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	require.NoError(t, err, "config:\n%s", yamlText)
	sink := newLineSink()
	rl := logging.NewRouterLog(sink, "heroku[router]", cfg.Log.Redact)
	r, err := New(cfg, Options{Lines: rl})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return &testRouter{Router: r, lines: sink, addr: r.HTTPAddr().String()}
}

// oneApp returns the YAML of an app "shop" on shop.test with the given dyno
// addresses (web.1, web.2, …) and extra YAML lines for the app.
func oneApp(extra string, dynos ...string) string {
	var b strings.Builder
	b.WriteString("apps:\n  - name: shop\n    domains: [shop.test, \"*.shop.test\"]\n")
	if extra != "" {
		for _, ln := range strings.Split(strings.TrimRight(extra, "\n"), "\n") {
			b.WriteString("    " + ln + "\n")
		}
	}
	b.WriteString("    dynos:\n")
	if len(dynos) == 0 {
		b.WriteString("      []\n")
	}
	for i, d := range dynos {
		fmt.Fprintf(&b, "      - {name: web.%d, address: \"%s\"}\n", i+1, d)
	}
	return b.String()
}

// rawDyno is a dyno written on a raw listener: handle gets each accepted
// connection and controls every byte.
type rawDyno struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	wg    sync.WaitGroup
}

func startRawDyno(t testing.TB, handle func(c net.Conn)) *rawDyno {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &rawDyno{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns++
			d.mu.Unlock()
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return d
}

func (d *rawDyno) addr() string { return d.ln.Addr().String() }

// accepted returns the number of connections accepted so far.
func (d *rawDyno) accepted() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns
}

// readRequestHead reads one request head from br (through the blank line)
// and returns it; it returns "" at EOF.
func readRequestHead(br *bufio.Reader) string {
	var b strings.Builder
	for {
		ln, err := br.ReadString('\n')
		b.WriteString(ln)
		if err != nil {
			return ""
		}
		if ln == "\r\n" || ln == "\n" {
			return b.String()
		}
	}
}

// okDyno answers every request on a keep-alive connection with 200 and
// body, after reading a Content-Length body if any.
func okDyno(t testing.TB, body string) *rawDyno {
	return startRawDyno(t, okHandler(body))
}

// okHandler is okDyno's connection handler, for a plain or TLS listener.
func okHandler(body string) func(c net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head := readRequestHead(br)
			if head == "" {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err == nil && req.ContentLength > 0 {
				io.CopyN(io.Discard, br, req.ContentLength)
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	}
}

// dial opens a client connection to the router.
func (tr *testRouter) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends raw request bytes on a new connection and reads one
// response with net/http's parser (the reply to method).
func (tr *testRouter) roundTrip(t testing.TB, raw, method string) (*http.Response, string) {
	t.Helper()
	c := tr.dial(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	require.NoError(t, err, "reading the response to %q", raw)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// field returns the value of key in a router line ("" when absent),
// unquoting quoted values.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, "\"") {
		end := 1
		for end < len(v) && v[end] != '"' {
			if v[end] == '\\' {
				end++
			}
			end++
		}
		return v[1:min(end, len(v))]
	}
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return v
}
