package router

// Issue 9, config-dependent behaviour: the app's client timeout once Host
// named the app (SPEC.md 4.10, H28), and error pages kept across a
// reload whose fetch fails (SPEC.md 9).

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// TestIssue9AppClientTimeoutInHead: "a client idle for client (the app's,
// once Host has named an app) before its request is complete → H28"
// (SPEC.md 4.10). The global window is 2 s, shop's 200 ms; a client that
// sent its request line and Host and stalls gets 408 after ~200 ms.
func TestIssue9AppClientTimeoutInHead(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, "timeouts: {client: 2s, keepalive: 5s}\n"+oneApp("timeouts: {client: 200ms}", d.addr()))
	c := rqOpen(t, tr)
	raw := "GET /stall HTTP/1.1\r\nHost: shop.test\r\n"
	c.send(raw)
	sent := time.Now()
	c.c.SetReadDeadline(sent.Add(1200 * time.Millisecond))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	took := time.Since(sent)
	require.NoError(t, err, "sent %q and stalled: want 408 after shop's client timeout (200ms), nothing came within %v (global client timeout 2s)", raw, took)
	assert.Equal(t, 408, resp.StatusCode)
	assert.Less(t, took, time.Second, "after the app's client timeout (200ms), not the global one (2s)")
	assert.GreaterOrEqual(t, took, 150*time.Millisecond, "not before the app's window")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `code=H28 desc="Client Connection Idle"`, "line %q", line)
	assert.Equal(t, "shop.test", field(line, "host"), "line %q", line)
}

// TestIssue9AppClientTimeoutInBody: the same app window once the head is
// complete and the body stalls (this part of SPEC.md 4.10 holds today; it
// pins that the app's window applies).
func TestIssue9AppClientTimeoutInBody(t *testing.T) {
	t.Parallel()
	d := rqRecordingDyno(t, nil)
	tr := startRouter(t, "timeouts: {client: 2s, keepalive: 5s}\n"+oneApp("timeouts: {client: 200ms}", d.addr()))
	c := rqOpen(t, tr)
	raw := "POST /stall HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 10\r\n\r\nabc"
	c.send(raw)
	sent := time.Now()
	c.c.SetReadDeadline(sent.Add(1200 * time.Millisecond))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
	took := time.Since(sent)
	require.NoError(t, err, "sent %q and stalled (%v)", raw, took)
	assert.Equal(t, 408, resp.StatusCode)
	assert.Less(t, took, time.Second, "after the app's client timeout (200ms)")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `code=H28 desc="Client Connection Idle"`, "line %q", line)
}

// i9PageServer serves an error page until failing is set, then 500.
type i9PageServer struct {
	*httptest.Server
	failing atomic.Bool
	fetches atomic.Int32
}

const i9PageBody = `{"error":"custom page from the app"}`

func startI9PageServer(t testing.TB) *i9PageServer {
	s := &i9PageServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.failing.Load() {
			http.Error(w, "page server broken", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, i9PageBody)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestIssue9ReloadKeepsFetchedPage (SPEC.md 9): "a fetch that fails at a
// reload or refresh keeps the page fetched before". The page is fetched
// at load; the page server then fails; after a reload with the same
// config a router-made 503 (H10 here) still carries the fetched page, not
// the built-in one.
func TestIssue9ReloadKeepsFetchedPage(t *testing.T) {
	t.Parallel()
	ps := startI9PageServer(t)
	yamlText := "listen: {http: \"127.0.0.1:0\"}\n" +
		"apps:\n  - name: shop\n    domains: [shop.test]\n" +
		"    config_vars: {ERROR_PAGE_URL: \"" + ps.URL + "/error.json\"}\n" +
		"    dynos: [{name: web.1, address: \"127.0.0.1:1\", state: crashed}]\n"
	tr := startRouter(t, yamlText)
	check := func(when string) {
		t.Helper()
		c := rqOpen(t, tr)
		raw := "GET /x HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n"
		resp, body := c.roundTrip(raw, "GET")
		assert.Equal(t, 503, resp.StatusCode, when)
		assert.Equal(t, i9PageBody, body, "%s: the 503 carries the page fetched at load", when)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), when)
	}
	check("before the reload")
	require.Positive(t, ps.fetches.Load())
	ps.failing.Store(true)
	before := ps.fetches.Load()
	for _, text := range []string{yamlText, yamlText + "  - name: blog\n    domains: [blog.test]\n    dynos: []\n"} {
		cfg, err := config.Parse("test.yaml", []byte(text))
		require.NoError(t, err)
		require.NoError(t, tr.Reload(cfg))
		assert.Greater(t, ps.fetches.Load(), before, "the reload fetched the page again (and failed)")
		check("after a reload whose page fetch failed")
	}
	lines := i9Lines(tr)
	for _, ln := range lines {
		assert.True(t, strings.Contains(ln, `code=H10 desc="App crashed"`), "line %q", ln)
	}
}

// TestIssue9PageFetchFailsAtStart: a page that cannot be fetched at load
// falls back to the built-in page (SPEC.md 9), served with the 503.
func TestIssue9PageFetchFailsAtStart(t *testing.T) {
	t.Parallel()
	ps := startI9PageServer(t)
	ps.failing.Store(true)
	tr := startRouter(t, "apps:\n  - name: shop\n    domains: [shop.test]\n"+
		"    config_vars: {ERROR_PAGE_URL: \""+ps.URL+"/error.json\"}\n"+
		"    dynos: [{name: web.1, address: \"127.0.0.1:1\", state: crashed}]\n")
	resp, body := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, string(builtinErrorPage.body), body)
}
