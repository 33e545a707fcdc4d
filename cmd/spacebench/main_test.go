package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/bench"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.Header.Get("X-A")+" "+string(b))
		io.WriteString(w, "hello")
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRunJSON(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var out, errb bytes.Buffer
	code := run([]string{"-json", "-n", "20", "-c", "2", "-m", "POST", "-H", "X-A: 1", "-body", "x", s.URL}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	var got bench.Summary
	require.NoErrorf(t, json.Unmarshal(out.Bytes(), &got), "stdout must be only JSON: %q", out.String())
	assert.EqualValues(t, 20, got.Requests)
	assert.Equal(t, map[string]int{"200": 20}, got.Status)
	assert.EqualValues(t, 100, got.Bytes)
	assert.Equal(t, "closed", got.Mode)
	assert.Zero(t, got.ErrorCount)
	assert.Empty(t, errb.String(), "no progress bar when stderr is not a terminal")
}

func TestRunHuman(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var out, errb bytes.Buffer
	code := run([]string{"-n", "10", "-rate", "500", s.URL}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	for _, want := range []string{"Requests  10 in", "req/s", "p50", "p99.9", "max", "Status    200: 10", "Errors    none", "open loop at 500 req/s"} {
		assert.Containsf(t, out.String(), want, "output:\n%s", out.String())
	}
}

func TestRunCompare(t *testing.T) {
	t.Parallel()
	a, b := newServer(t), newServer(t)
	var out, errb bytes.Buffer
	code := run([]string{"-json", "-d", "100ms", "-c", "2", "-rounds", "2", "-compare", b.URL, a.URL}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	var got bench.ComparisonSummary
	require.NoErrorf(t, json.Unmarshal(out.Bytes(), &got), "stdout: %q", out.String())
	assert.Len(t, got.Rounds, 2)
	assert.Positive(t, got.MedianRatio)
	assert.Equal(t, a.URL, got.A.URL)
	assert.Equal(t, b.URL, got.B.URL)

	out.Reset()
	code = run([]string{"-d", "50ms", "-rounds", "1", "-compare", b.URL, a.URL}, &out, &errb)
	require.Equal(t, 0, code)
	assert.Contains(t, out.String(), "median B/A")
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"-c", "x", "http://x"},
		{"-H", "nocolon", "http://x"},
		{"ftp://x"},
		{"http://a", "http://b"},
		{"-body", "@/does/not/exist", "http://x"},
		{"-compare", "ftp://y", "http://x"},
		{"http://x", "-c", "x"},
		{"http://x", "-rate", "10/x"},
		{"http://x", "-rate", "-1"},
		{"http://x", "-rate", "NaN"},
		{"http://x", "-rate", "10/0s"},
		{"http://a", "-c", "1", "http://b"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equalf(t, 2, run(args, &out, &errb), "args %q; stderr: %s", args, errb.String())
			assert.Empty(t, out.String())
		})
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "none", counts(map[int]int{}))
	assert.Equal(t, "200: 3  404: 1", counts(map[int]int{404: 1, 200: 3}))
}

// stallServer accepts connections and never answers; it returns the URL.
func stallServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// statusServer answers every request with code.
func statusServer(t *testing.T, code int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	t.Cleanup(s.Close)
	return s
}

// newSummary is the part of bench.Summary these tests read, decoded by
// name so the test speaks about the JSON, not the Go type.
type newSummary struct {
	Requests     int64             `json:"requests"`
	Errors       map[string]int    `json:"errors"`
	Status       map[string]int    `json:"status"`
	Sent         int64             `json:"sent"`
	StatusErrors int               `json:"status_errors"`
	AllFailed    bool              `json:"all_failed"`
	EndTimeouts  int               `json:"end_timeouts"`
	FirstErrors  map[string]string `json:"first_errors"`
	Due          int64             `json:"due"`
	Unsent       int64             `json:"unsent"`
	AchievedRate float64           `json:"achieved_rate"`
}

// runJSON runs spacebench -json with args and decodes its stdout.
func runJSON(t *testing.T, args ...string) (int, newSummary, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-json"}, args...), &out, &errb)
	var got newSummary
	require.NoErrorf(t, json.Unmarshal(out.Bytes(), &got), "stdout must be only JSON: %q; stderr: %s", out.String(), errb.String())
	return code, got, errb.String()
}

// TestRunStalled: a server that accepts and never answers. Each of the 2
// connections sends one request, still in flight when -d ends; after
// -timeout they count as timeouts, and as every request failed, spacebench
// exits 3 (issue 9: "Requests 0, Errors none", exit 0).
func TestRunStalled(t *testing.T) {
	t.Parallel()
	url := stallServer(t)
	args := []string{"-c", "2", "-d", "200ms", "-timeout", "300ms", url}
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	assert.Equalf(t, 3, code, "exit code of %q; stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
	for _, want := range []string{"Requests  0 in", "Errors    timeout: 2 (2 in flight when -d ended", "first timeout error: "} {
		assert.Containsf(t, out.String(), want, "stdout of %q", args)
	}
	assert.Contains(t, errb.String(), "spacebench: every request failed: 2 transport errors (timeout: 2)")

	code, got, stderr := runJSON(t, args...)
	assert.Equal(t, 3, code, stderr)
	assert.Equal(t, 2, got.Errors["timeout"])
	assert.Equal(t, 2, got.EndTimeouts)
	assert.EqualValues(t, 2, got.Sent)
	assert.True(t, got.AllFailed)
	assert.Contains(t, got.FirstErrors, "timeout")
}

// TestRunNon2xx: responses other than 2xx and 3xx are flagged as wrk does,
// and when none is 2xx or 3xx spacebench exits 3 (issue 9: 100% 421 showed
// "Errors none").
func TestRunNon2xx(t *testing.T) {
	t.Parallel()
	t.Run("all 421", func(t *testing.T) {
		t.Parallel()
		s := statusServer(t, http.StatusMisdirectedRequest)
		var out, errb bytes.Buffer
		code := run([]string{"-n", "20", "-c", "2", s.URL}, &out, &errb)
		assert.Equalf(t, 3, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		assert.Contains(t, out.String(), "Status    421: 20\nNon-2xx   20 of 20 responses (100.0%) are not 2xx or 3xx: 421: 20\n")
		assert.Contains(t, errb.String(), "spacebench: every request failed: 20 responses, none 2xx or 3xx (421: 20)")

		code, got, stderr := runJSON(t, "-n", "20", s.URL)
		assert.Equal(t, 3, code, stderr)
		assert.Equal(t, 20, got.StatusErrors)
		assert.True(t, got.AllFailed)
		assert.Equal(t, map[string]int{"421": 20}, got.Status)
	})
	t.Run("some 503", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%4 == 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		t.Cleanup(s.Close)
		var out, errb bytes.Buffer
		code := run([]string{"-n", "20", "-c", "1", s.URL}, &out, &errb)
		assert.Equalf(t, 0, code, "some requests succeeded; stderr:\n%s", errb.String())
		assert.Contains(t, out.String(), "Non-2xx   5 of 20 responses (25.0%) are not 2xx or 3xx: 503: 5\n")
		assert.NotContains(t, errb.String(), "every request failed")
	})
	t.Run("redirects are fine", func(t *testing.T) {
		t.Parallel()
		s := statusServer(t, http.StatusNotModified)
		var out, errb bytes.Buffer
		assert.Equal(t, 0, run([]string{"-n", "5", s.URL}, &out, &errb), errb.String())
		assert.NotContains(t, out.String(), "Non-2xx")
	})
}

// TestRunTLSReason: a certificate that does not verify is reported with its
// x509 reason and the hint -insecure (issue 9: "tls: N" only).
func TestRunTLSReason(t *testing.T) {
	t.Parallel()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	var out, errb bytes.Buffer
	code := run([]string{"-n", "3", s.URL}, &out, &errb)
	assert.Equal(t, 3, code)
	assert.Contains(t, out.String(), "Errors    tls: 3\n          first tls error: tls: failed to verify certificate: x509: ")
	assert.Contains(t, errb.String(), "spacebench: the server's certificate did not verify (x509: ")
	assert.Contains(t, errb.String(), "-insecure skips the check")

	out.Reset()
	errb.Reset()
	assert.Equal(t, 0, run([]string{"-n", "3", "-insecure", s.URL}, &out, &errb), errb.String())
	assert.NotContains(t, errb.String(), "-insecure")
}

// TestRunRateNotReached: one connection to a server that takes 300 ms
// cannot send 100 requests per second; spacebench says so, with the rate
// it reached and the due requests it never sent (issue 9: it said
// nothing).
func TestRunRateNotReached(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tm := time.NewTimer(300 * time.Millisecond)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	args := []string{"-c", "1", "-d", "200ms", "-timeout", "5s", "-rate", "100", s.URL}
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	assert.Equalf(t, 0, code, "the one request succeeded; stderr:\n%s", errb.String())
	assert.Contains(t, out.String(), "Rate      asked 100 req/s, sent 5.0 req/s, 19 of 20 due requests never sent\n")
	assert.Contains(t, errb.String(), "spacebench: warning: -rate 100 not reached: sent 5.0 req/s, 19 of 20 due requests never sent; requests waited for a free connection: raise -c\n")

	code, got, stderr := runJSON(t, args...)
	assert.Equal(t, 0, code, stderr)
	assert.EqualValues(t, 20, got.Due)
	assert.EqualValues(t, 19, got.Unsent)
	assert.InDelta(t, 5, got.AchievedRate, 1e-9)
	assert.Contains(t, stderr, "not reached", "warnings go to stderr with -json too")
}

// TestParseFlags: flags after the URL, and -rate in vegeta's N/UNIT form.
func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		url   string
		conns int
		rate  float64
	}{
		{[]string{"-c", "3", "http://x/"}, "http://x/", 3, 0},
		{[]string{"http://x/", "-c", "3"}, "http://x/", 3, 0},
		{[]string{"-rate", "5", "http://x/", "-c", "3", "-d", "1s"}, "http://x/", 3, 5},
		{[]string{"http://x/", "-rate", "100/s"}, "http://x/", 10, 100},
		{[]string{"http://x/", "-rate=100/1s"}, "http://x/", 10, 100},
		{[]string{"http://x/", "-rate", "50/100ms"}, "http://x/", 10, 500},
		{[]string{"http://x/", "-rate", "6000/m"}, "http://x/", 10, 100},
		{[]string{"http://x/", "-rate", "1.5"}, "http://x/", 10, 1.5},
		{[]string{"-c", "2", "--", "http://x/"}, "http://x/", 2, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var errb bytes.Buffer
			o, err := parseFlags(tc.args, &errb)
			require.NoErrorf(t, err, "stderr: %s", errb.String())
			assert.Equal(t, tc.url, o.cfg.URL)
			assert.Equal(t, tc.conns, o.cfg.Conns)
			assert.InDelta(t, tc.rate, o.cfg.Rate, 1e-9)
		})
	}
	s := newServer(t)
	code, got, stderr := runJSON(t, s.URL, "-n", "7", "-c", "2")
	assert.Equal(t, 0, code, stderr)
	assert.EqualValues(t, 7, got.Requests, "-n after the URL")
}

// TestUsage: -h lists the exit codes.
func TestUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"-h"}, &out, &errb))
	for _, want := range []string{"spacebench [flags] URL [flags]", "Exit status:", "  0  ", "  1  ", "  2  usage error",
		"  3  every request failed", "100/s"} {
		assert.Containsf(t, errb.String(), want, "usage:\n%s", errb.String())
	}
}

// TestParseFlagsClientCert: -cert and -key name a client certificate for
// TLS targets (mtls); one without the other is a usage error.
func TestParseFlagsClientCert(t *testing.T) {
	t.Parallel()
	var errb bytes.Buffer
	o, err := parseFlags([]string{"https://x/", "-cert", "laptop/client.crt", "-key", "laptop/client.key"}, &errb)
	require.NoError(t, err, errb.String())
	assert.Equal(t, "laptop/client.crt", o.cfg.ClientCert)
	assert.Equal(t, "laptop/client.key", o.cfg.ClientKey)
	_, err = parseFlags([]string{"-cert", "laptop/client.crt", "https://x/"}, &errb)
	assert.ErrorContains(t, err, "needs its key")
	var out bytes.Buffer
	code := run([]string{"-n", "1", "-cert", "missing.crt", "-key", "missing.key", "https://127.0.0.1:1/"}, &out, &errb)
	assert.NotEqual(t, 0, code, "a client certificate that cannot be read")
	assert.Contains(t, errb.String(), "client certificate: open missing.crt")
}
