package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the operator's view of the real binary (issue 4): SIGHUP reload,
// logrotate, reload under load, SIGTERM drain, read through /metrics,
// /healthz, the router log file and the operational log on stderr.

// Metric series the tests read from /metrics.
const (
	reloadsOK    = `spacerouter_config_reloads_total{result="ok"}`
	reloadsError = `spacerouter_config_reloads_total{result="error"}`
)

// Poll interval and the usual deadline of a wait.
const (
	pollEvery   = 5 * time.Millisecond
	waitTimeout = 5 * time.Second
)

// countingDyno is a raw-socket dyno: it answers every request on its
// keep-alive connections with 200 "ok", after delay, and counts the
// requests it has read.
type countingDyno struct {
	addr     string
	requests atomic.Int64
	delay    time.Duration
	// got receives the request line of each request, when there is room.
	got chan string
	// done is closed at cleanup; it ends a pending delay.
	done chan struct{}

	// mu guards conns.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startCountingDyno starts a countingDyno on 127.0.0.1 that waits delay
// before each answer.
func startCountingDyno(t *testing.T, delay time.Duration) *countingDyno {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &countingDyno{addr: ln.Addr().String(), delay: delay, got: make(chan string, 16),
		done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(d.done)
		_ = ln.Close()
		d.mu.Lock()
		for c := range d.conns {
			_ = c.Close()
		}
		d.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns[c] = struct{}{}
			d.mu.Unlock()
			wg.Go(func() { d.serve(c) })
		}
	})
	return d
}

// serve answers the body-less requests on c until the peer closes it.
func (d *countingDyno) serve(c net.Conn) {
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		var first string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if first == "" {
				first = strings.TrimRight(line, "\r\n")
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		d.requests.Add(1)
		select {
		case d.got <- first:
		default:
		}
		if d.delay > 0 {
			timer := time.NewTimer(d.delay)
			select {
			case <-timer.C:
			case <-d.done:
				timer.Stop()
				return
			}
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// spaceApp is one app of a test config.
type spaceApp struct {
	name, domain string
	dynos        []spaceDyno
}

// spaceDyno is one dyno of a spaceApp.
type spaceDyno struct {
	name, addr, state string
}

// spaceFile is what a test config file says.
type spaceFile struct {
	httpPort, adminPort int
	routerLog           string
	source              string // log.source; "" for the default
	level               string // log.level; "" for the default
	shutdown            string // timeouts.shutdown; "" for 5s
	apps                []spaceApp
	extra               string // appended to the listen block (to break the file)
}

// yaml renders f as a config file.
func (f spaceFile) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "space: reload-test\nlisten:\n  http: 127.0.0.1:%d\n  admin: 127.0.0.1:%d\n%s",
		f.httpPort, f.adminPort, f.extra)
	fmt.Fprintf(&b, "log:\n  router: %q\n", f.routerLog)
	if f.source != "" {
		fmt.Fprintf(&b, "  source: %q\n", f.source)
	}
	if f.level != "" {
		fmt.Fprintf(&b, "  level: %s\n", f.level)
	}
	shutdown := f.shutdown
	if shutdown == "" {
		shutdown = "5s"
	}
	fmt.Fprintf(&b, "timeouts:\n  shutdown: %s\napps:\n", shutdown)
	for _, a := range f.apps {
		fmt.Fprintf(&b, "  - name: %s\n    domains: [%s]\n    dynos:\n", a.name, a.domain)
		for _, d := range a.dynos {
			state := d.state
			if state == "" {
				state = "up"
			}
			fmt.Fprintf(&b, "      - {name: %s, address: %q, state: %s}\n", d.name, d.addr, state)
		}
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer the process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// routerProc is one running spacerouter binary.
type routerProc struct {
	cmd        *exec.Cmd
	configPath string
	file       spaceFile
	stderr     *lockedBuffer
	exited     chan struct{}
	waitErr    error // set before exited is closed
	client     *http.Client
}

// startRouter writes f to dir/space.yaml, runs the binary on it and waits
// until /healthz answers 200. Cleanup kills the process if it still runs.
func startRouter(t *testing.T, f spaceFile) *routerProc {
	t.Helper()
	return startRouterNamed(t, f, "space.yaml")
}

// startRouterNamed is startRouter with the config file called name.
func startRouterNamed(t *testing.T, f spaceFile, name string) *routerProc {
	t.Helper()
	dir := filepath.Dir(f.routerLog)
	p := &routerProc{configPath: filepath.Join(dir, name), file: f}
	p.writeConfig(t, f)
	p.start(t, dir, "-config", name)
	p.waitFor(t, "/healthz to answer 200", func() bool {
		code, _, err := p.admin("/healthz")
		return err == nil && code == http.StatusOK
	})
	return p
}

// startBinary runs the binary in dir with args, without waiting for
// anything. Cleanup kills the process if it still runs.
func startBinary(t *testing.T, dir string, args ...string) *routerProc {
	t.Helper()
	p := &routerProc{}
	p.start(t, dir, args...)
	return p
}

// start runs the binary in dir with args; stdout is discarded and stderr
// kept in p.stderr.
func (p *routerProc) start(t *testing.T, dir string, args ...string) {
	t.Helper()
	p.stderr, p.exited = &lockedBuffer{}, make(chan struct{})
	p.client = &http.Client{Timeout: 5 * time.Second}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(os.Kill)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("spacerouter stderr:\n%s", p.stderr.String())
		}
	})
}

// stop sends SIGTERM and waits for the process to exit with code 0.
func (p *routerProc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(2 * waitTimeout):
		t.Fatalf("spacerouter still running %v after SIGTERM", 2*waitTimeout)
	}
	require.NoError(t, p.waitErr, "exit after SIGTERM")
}

// writeConfig replaces the config file with f.
func (p *routerProc) writeConfig(t *testing.T, f spaceFile) {
	t.Helper()
	require.NoError(t, os.WriteFile(p.configPath, []byte(f.yaml()), 0o644))
}

// signal sends sig to the process.
func (p *routerProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig), "sending %v to spacerouter", sig)
}

// waitFor polls cond until it holds; it fails the test at the deadline or
// when the process exits.
func (p *routerProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", waitTimeout, what)
		case <-p.exited:
			t.Fatalf("spacerouter exited (%v) while waiting for %s", p.waitErr, what)
		}
	}
}

// admin GETs path on the admin listener.
func (p *routerProc) admin(path string) (int, string, error) {
	resp, err := p.client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", p.file.adminPort, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metric returns the value of series in /metrics, or -1 when absent.
func (p *routerProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, body, err := p.admin("/metrics")
	require.NoError(t, err, "GET /metrics")
	require.Equal(t, http.StatusOK, code, "GET /metrics: %s", body)
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, "value of %s in %q", series, line)
			return v
		}
	}
	return -1
}

// waitMetric waits until series reads want.
func (p *routerProc) waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	p.waitFor(t, fmt.Sprintf("%s %v", series, want), func() bool { return p.metric(t, series) == want })
}

// get sends GET path with Host host to the http listener and returns the
// status and body.
func (p *routerProc) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		fmt.Sprintf("http://127.0.0.1:%d%s", p.file.httpPort, path), nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := p.client.Do(req)
	require.NoError(t, err, "GET %s Host %s", path, host)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the body of GET %s", path)
	return resp.StatusCode, string(body)
}

// routerLogLine waits until the file at path has a line containing all of
// parts and returns it.
func (p *routerProc) routerLogLine(t *testing.T, path string, parts ...string) string {
	t.Helper()
	var found string
	p.waitFor(t, fmt.Sprintf("a line with %q in %s", parts, path), func() bool {
		found = findLine(path, parts...)
		return found != ""
	})
	return found
}

// findLine returns the first line of the file at path containing all of
// parts, or "".
func findLine(path string, parts ...string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
lines:
	for line := range strings.Lines(string(data)) {
		for _, part := range parts {
			if !strings.Contains(line, part) {
				continue lines
			}
		}
		return line
	}
	return ""
}

// newSpace returns a spaceFile with free ports, a router log in a fresh
// temporary directory and app shop on the dyno at addr.
func newSpace(t *testing.T, addr string) spaceFile {
	t.Helper()
	return spaceFile{httpPort: freePort(t), adminPort: freePort(t),
		routerLog: filepath.Join(t.TempDir(), "router.log"),
		apps: []spaceApp{{name: "shop", domain: "shop.example.com",
			dynos: []spaceDyno{{name: "web.1", addr: addr}}}}}
}

// keepAliveConn is one client connection to the http listener that
// requests go on one after the other.
type keepAliveConn struct {
	c  net.Conn
	br *bufio.Reader
}

// dial opens a keepAliveConn to the http listener; cleanup closes it.
func (p *routerProc) dial(t *testing.T) *keepAliveConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.file.httpPort), time.Second)
	require.NoError(t, err, "dialing the http listener")
	t.Cleanup(func() { _ = c.Close() })
	return &keepAliveConn{c: c, br: bufio.NewReader(c)}
}

// get sends GET path with Host host on kc and returns the status and body.
func (kc *keepAliveConn) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	require.NoError(t, kc.c.SetDeadline(time.Now().Add(waitTimeout)))
	_, err := io.WriteString(kc.c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	require.NoError(t, err, "writing GET %s", path)
	resp, err := http.ReadResponse(kc.br, nil)
	require.NoError(t, err, "reading the response to GET %s", path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the body of GET %s", path)
	return resp.StatusCode, string(body)
}

func TestReloadDynoCrashed(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	// A keep-alive connection that was idle across the reload must get the
	// new config on its next request, as a new connection does.
	keep := p.dial(t)
	code, body := keep.get(t, "shop.example.com", "/before")
	require.Equal(t, http.StatusOK, code, "GET /before with web.1 up: %s", body)

	f.apps[0].dynos[0].state = "crashed"
	p.writeConfig(t, f)
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsOK, 1)

	for _, tc := range []struct {
		path string
		conn *keepAliveConn
	}{
		{"/after-crash-new-conn", p.dial(t)},
		{"/after-crash-keep-alive", keep},
	} {
		code, body := tc.conn.get(t, "shop.example.com", tc.path)
		assert.Equal(t, http.StatusServiceUnavailable, code, "GET %s with web.1 crashed: %s", tc.path, body)
		line := p.routerLogLine(t, f.routerLog, `path="`+tc.path+`"`)
		assert.Contains(t, line, " at=error code=H10 ", "router line of GET %s", tc.path)
		assert.Contains(t, line, " dyno= connect= service= status=503 ", "router line of GET %s", tc.path)
	}
	assert.Equal(t, int64(1), dyno.requests.Load(), "requests at the crashed dyno: only /before")
	assert.Equal(t, float64(1), p.metric(t, reloadsOK), "%s after one good reload", reloadsOK)
	assert.Equal(t, float64(0), p.metric(t, reloadsError), "%s after one good reload", reloadsError)
}

// TestReloadConfigNamedDemo: a config file called demo.yaml is a config
// file like any other; only the built-in demo space (no -config) has
// nothing to reload (issue 9).
func TestReloadConfigNamedDemo(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouterNamed(t, f, "demo.yaml")

	f.apps[0].dynos[0].state = "crashed"
	p.writeConfig(t, f)
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsOK, 1)

	code, body := p.get(t, "shop.example.com", "/after-reload")
	assert.Equal(t, http.StatusServiceUnavailable, code, "GET after reloading demo.yaml with web.1 crashed: %s", body)
	assert.Contains(t, p.routerLogLine(t, f.routerLog, `path="/after-reload"`), " code=H10 ")
	assert.Nil(t, findLogEntry(p.stderr.String(), "warn", "demo space has no config file"),
		"demo.yaml was taken for the built-in demo space")
}

// TestReloadLogSource: a new log.source with the same log.router target
// takes effect at the reload, as every other reloadable key does.
func TestReloadLogSource(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	code, body := p.get(t, "shop.example.com", "/before")
	require.Equal(t, http.StatusOK, code, "GET /before: %s", body)
	assert.Contains(t, p.routerLogLine(t, f.routerLog, `path="/before"`), " heroku[router]: at=info ")

	f.source = "shop[router]"
	p.writeConfig(t, f)
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsOK, 1)

	code, body = p.get(t, "shop.example.com", "/after")
	require.Equal(t, http.StatusOK, code, "GET /after: %s", body)
	assert.Contains(t, p.routerLogLine(t, f.routerLog, `path="/after"`), " shop[router]: at=info ",
		"router line after reloading with log.source shop[router]")
}

// TestReloadShutdownTimeout: SIGTERM drains for the timeouts.shutdown of
// the config running then, not of the one the process started with.
func TestReloadShutdownTimeout(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	f.shutdown = "7s"
	p.writeConfig(t, f)
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsOK, 1)
	p.stop(t)

	entry := findLogEntry(p.stderr.String(), "info", "shutting down")
	require.NotNil(t, entry, "no \"shutting down\" entry in the operational log")
	assert.Equal(t, 7*time.Second, logDuration(t, entry["duration"]),
		"drain limit after reloading timeouts.shutdown: 7s: %v", entry)
}

// logDuration reads a duration field of a JSON log entry, written in
// seconds (zap's default) or as a Go duration string.
func logDuration(t *testing.T, v any) time.Duration {
	t.Helper()
	switch v := v.(type) {
	case float64:
		return time.Duration(v * float64(time.Second))
	case string:
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "duration field %q", v)
		return d
	}
	t.Fatalf("duration field %v (%T): want seconds or a Go duration", v, v)
	return 0
}

// TestReloadLogLevel: log.level needs a restart, and a reload that changes
// it says so rather than ignoring it in silence.
func TestReloadLogLevel(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)
	const msg = "log.level changed in the config: it takes effect at the next restart"
	countWarnings := func() int {
		n := 0
		for line := range strings.Lines(p.stderr.String()) {
			if strings.Contains(line, msg) {
				n++
			}
		}
		return n
	}

	for i, tc := range []struct {
		level string
		warns int // warnings so far
	}{
		{"debug", 1}, // info at start -> debug: not applied, warned
		{"info", 1},  // back to the level running: nothing to say
		{"", 1},      // omitted: the default, info
		{"error", 2},
	} {
		f.level = tc.level
		p.writeConfig(t, f)
		p.signal(t, syscall.SIGHUP)
		p.waitMetric(t, reloadsOK, float64(i+1))
		assert.Equal(t, tc.warns, countWarnings(), "warnings after reloading with log.level %q", tc.level)
	}
	entry := findLogEntry(p.stderr.String(), "warn", msg)
	require.NotNil(t, entry)
	assert.Equal(t, "log.level", entry["key"], "the key the warning names")
}

func TestReloadInvalidFile(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	bad := f
	bad.apps = []spaceApp{{name: "shop", domain: "shop.example.com",
		dynos: []spaceDyno{{name: "web.1", addr: dyno.addr, state: "crashed"}}}}
	bad.extra = "  bogus: 127.0.0.1:1\n" // line 5: under listen
	p.writeConfig(t, bad)
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsError, 1)

	code, body := p.get(t, "shop.example.com", "/still-served")
	assert.Equal(t, http.StatusOK, code, "GET after a refused reload (the file says crashed): %s", body)
	assert.Equal(t, "ok", body)
	assert.Equal(t, float64(0), p.metric(t, reloadsOK), "%s after a refused reload", reloadsOK)

	// The operational log (JSON on stderr) has an error naming file:line: key.
	const want = `space.yaml:5: listen: unknown key "bogus"`
	var entry map[string]any
	p.waitFor(t, "an error entry naming "+want+" on stderr", func() bool {
		entry = findLogEntry(p.stderr.String(), "error", want)
		return entry != nil
	})
	t.Logf("operational log entry: %v", entry)
}

// findLogEntry returns the first JSON entry of the zap log at level with a
// string field containing text, or nil.
func findLogEntry(log, level, text string) map[string]any {
	for line := range strings.Lines(log) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["level"] != level {
			continue
		}
		for _, v := range e {
			if s, ok := v.(string); ok && strings.Contains(s, text) {
				return e
			}
		}
	}
	return nil
}

func TestReloadReopensRouterLog(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 0)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	code, body := p.get(t, "shop.example.com", "/before-rotate")
	require.Equal(t, http.StatusOK, code, "GET /before-rotate: %s", body)
	p.routerLogLine(t, f.routerLog, `path="/before-rotate"`)

	rotated := f.routerLog + ".1"
	require.NoError(t, os.Rename(f.routerLog, rotated))
	p.signal(t, syscall.SIGHUP)
	p.waitMetric(t, reloadsOK, 1)
	// The reload counter moves before the log is reopened: wait for the file.
	p.waitFor(t, "a new file at "+f.routerLog, func() bool {
		_, err := os.Stat(f.routerLog)
		return err == nil
	})

	code, body = p.get(t, "shop.example.com", "/after-rotate")
	require.Equal(t, http.StatusOK, code, "GET /after-rotate: %s", body)
	p.routerLogLine(t, f.routerLog, `path="/after-rotate"`, " status=200 ")
	assert.Empty(t, findLine(f.routerLog, `path="/before-rotate"`), "the new file has the line of the request before the rotation")
	assert.NotEmpty(t, findLine(rotated, `path="/before-rotate"`), "the rotated file lost its line")
	assert.Empty(t, findLine(rotated, `path="/after-rotate"`), "the line after the rotation went to the rotated file")
}

// loadClient sends GET requests on one keep-alive connection without pause
// until stop is closed. A failed request (error or not 200 "ok") is
// counted, and the connection is dialed again.
type loadClient struct {
	addr         string
	sent, failed atomic.Int64
	firstFailure atomic.Pointer[string]
	stop, done   chan struct{}
	conn         net.Conn
	br           *bufio.Reader
}

func (lc *loadClient) fail(format string, args ...any) {
	lc.failed.Add(1)
	msg := fmt.Sprintf(format, args...)
	lc.firstFailure.CompareAndSwap(nil, &msg)
	if lc.conn != nil {
		_ = lc.conn.Close()
		lc.conn = nil
	}
}

func (lc *loadClient) run() {
	defer close(lc.done)
	defer func() {
		if lc.conn != nil {
			_ = lc.conn.Close()
		}
	}()
	for {
		select {
		case <-lc.stop:
			return
		default:
		}
		if lc.conn == nil {
			c, err := net.DialTimeout("tcp", lc.addr, time.Second)
			if err != nil {
				lc.fail("dialing the router: %v", err)
				continue
			}
			lc.conn, lc.br = c, bufio.NewReader(c)
		}
		n := lc.sent.Add(1)
		_ = lc.conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := "GET /load/" + strconv.FormatInt(n, 10) + " HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"
		if _, err := io.WriteString(lc.conn, req); err != nil {
			lc.fail("request %d: writing: %v", n, err)
			continue
		}
		resp, err := http.ReadResponse(lc.br, nil)
		if err != nil {
			lc.fail("request %d: reading the response: %v", n, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			lc.fail("request %d: reading the body: %v", n, err)
		case resp.StatusCode != http.StatusOK || string(body) != "ok":
			lc.fail("request %d: got %d %q, want 200 \"ok\"", n, resp.StatusCode, body)
		case resp.Close:
			// The router may close; the next request dials again.
			_ = lc.conn.Close()
			lc.conn = nil
		}
	}
}

func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("reload under load: skipped under -short")
	}
	t.Parallel()
	const reloads = 50
	web1, web2 := startCountingDyno(t, 0), startCountingDyno(t, 0)
	f := newSpace(t, web1.addr)
	p := startRouter(t, f)

	lc := &loadClient{addr: fmt.Sprintf("127.0.0.1:%d", f.httpPort), stop: make(chan struct{}), done: make(chan struct{})}
	go lc.run()
	stopClient := sync.OnceFunc(func() {
		close(lc.stop)
		<-lc.done
	})
	t.Cleanup(stopClient)

	start := time.Now()
	for i := 1; i <= reloads; i++ {
		// Dynos of shop alternate between 1 and 2; app blog comes and goes
		// every other pair of reloads.
		next := f
		next.apps = []spaceApp{{name: "shop", domain: "shop.example.com", dynos: []spaceDyno{{name: "web.1", addr: web1.addr}}}}
		if i%2 == 1 {
			next.apps[0].dynos = append(next.apps[0].dynos, spaceDyno{name: "web.2", addr: web2.addr})
		}
		if i/2%2 == 1 {
			next.apps = append(next.apps, spaceApp{name: "blog", domain: "blog.example.com",
				dynos: []spaceDyno{{name: "web.1", addr: web2.addr}}})
		}
		p.writeConfig(t, next)
		before := lc.sent.Load()
		p.signal(t, syscall.SIGHUP)
		p.waitMetric(t, reloadsOK, float64(i))
		// Let requests flow on the new config before the next reload.
		p.waitFor(t, "requests after reload "+strconv.Itoa(i), func() bool { return lc.sent.Load() >= before+5 })
	}
	stopClient()
	elapsed := time.Since(start)

	sent, failed := lc.sent.Load(), lc.failed.Load()
	counted := web1.requests.Load() + web2.requests.Load()
	t.Logf("reload under load: %d requests sent, %d failed, %d reloads in %v; counted at the dynos %d (web.1 %d, web.2 %d)",
		sent, failed, reloads, elapsed.Round(time.Millisecond), counted, web1.requests.Load(), web2.requests.Load())
	if msg := lc.firstFailure.Load(); msg != nil {
		t.Logf("first failure: %s", *msg)
	}
	assert.Zero(t, failed, "failed requests out of %d", sent)
	assert.Equal(t, sent, counted, "requests sent vs requests counted at the dynos")
	assert.NotZero(t, web2.requests.Load(), "web.2 never got a request: the reloads did not add it")
	assert.Equal(t, float64(reloads), p.metric(t, reloadsOK), reloadsOK)
	assert.Equal(t, float64(0), p.metric(t, reloadsError), reloadsError)
}

func TestDrainSlowRequest(t *testing.T) {
	t.Parallel()
	dyno := startCountingDyno(t, 500*time.Millisecond)
	f := newSpace(t, dyno.addr)
	p := startRouter(t, f)

	type answer struct {
		code  int
		body  string
		close bool
		err   error
	}
	answered := make(chan answer, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/slow", f.httpPort), nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		req.Host = "shop.example.com"
		resp, err := p.client.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{code: resp.StatusCode, body: string(body), close: resp.Close, err: err}
	}()
	select {
	case <-dyno.got:
	case <-time.After(waitTimeout):
		t.Fatal("the slow request never reached the dyno")
	}

	p.signal(t, syscall.SIGTERM)
	var healthz []int
	p.waitFor(t, "/healthz 503 while draining", func() bool {
		code, _, err := p.admin("/healthz")
		if err != nil {
			return false
		}
		healthz = append(healthz, code)
		return code == http.StatusServiceUnavailable
	})

	var got answer
	select {
	case got = <-answered:
	case <-time.After(waitTimeout):
		t.Fatal("the slow request got no answer")
	}
	require.NoError(t, got.err, "GET /slow in flight during the drain")
	assert.Equal(t, http.StatusOK, got.code, "GET /slow in flight during the drain: %s", got.body)
	assert.Equal(t, "ok", got.body)
	assert.True(t, got.close, "the response during the drain lacks Connection: close")

	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatal("spacerouter still running after the drain")
	}
	if exitErr, ok := errors.AsType[*exec.ExitError](p.waitErr); ok {
		t.Fatalf("exit code after SIGTERM: %d, want 0", exitErr.ExitCode())
	}
	require.NoError(t, p.waitErr, "exit after SIGTERM")
	p.routerLogLine(t, f.routerLog, `path="/slow"`, " status=200 ")
	t.Logf("/healthz after SIGTERM: %v", healthz)
}
