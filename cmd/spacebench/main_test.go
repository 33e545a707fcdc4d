package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
