package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/bench"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router"
)

// TestMain lets the test binary stand in for a router binary (-router in
// TestSpace/binary): started as "BIN -config FILE", which go test never
// does, it serves FILE's space until SIGTERM.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-config" {
		os.Exit(fakeRouter(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeRouter runs the router in-process like cmd/spacerouter -config FILE.
func fakeRouter(args []string) int {
	if len(args) != 2 || args[0] != "-config" {
		fmt.Fprintf(os.Stderr, "fake router: args %q\n", args)
		return 2
	}
	cfg, err := config.Load(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake router:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	r, err := router.New(cfg, router.Options{})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake router:", err)
		return 1
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.Shutdown(sctx)
	return 0
}

// runSpaceJSON runs spacebench with args and decodes its JSON.
func runSpaceJSON(t *testing.T, args ...string) bench.SpaceSummary {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-space", "-json", "-c", "2", "-d", "300ms", "-rounds", "2"}, args...), &out, &errb)
	require.Equalf(t, 0, code, "args %q; stderr: %s", args, errb.String())
	var got bench.SpaceSummary
	require.NoErrorf(t, json.Unmarshal(out.Bytes(), &got), "stdout must be only JSON: %q", out.String())
	require.Len(t, got.Rounds, 2)
	for _, s := range []bench.Summary{got.Direct, got.Router} {
		assert.Positivef(t, s.Requests, "requests to %s", s.URL)
		assert.Zerof(t, s.ErrorCount, "errors from %s: %v", s.URL, s.Errors)
		assert.Equalf(t, map[string]int{"200": int(s.Requests)}, s.Status, "status from %s", s.URL)
	}
	assert.Greater(t, got.ThroughputRatio, 0.0)
	assert.LessOrEqual(t, got.ThroughputRatio, 1.5)
	assert.NotEqual(t, got.Direct.URL, got.Router.URL)
	return got
}

func TestSpace(t *testing.T) {
	t.Parallel()
	t.Run("in-process", func(t *testing.T) {
		t.Parallel()
		got := runSpaceJSON(t, "-body-size", "100")
		assert.Equal(t, bench.SpaceSetup{Dynos: 2, BodySize: 100, Router: "in-process"}, got.Setup)
		assert.Equal(t, got.Direct.Requests*100, got.Direct.Bytes)
		assert.Equal(t, got.Router.Requests*100, got.Router.Bytes)
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		got := runSpaceJSON(t, "-latency", "20ms", "-chunked", "-dynos", "1", "-body-size", "5000")
		assert.GreaterOrEqual(t, got.Direct.LatencyMS.P50, 20.0, "direct p50 with a 20ms dyno")
		assert.GreaterOrEqual(t, got.Router.LatencyMS.P50, 20.0, "router p50 with a 20ms dyno")
		assert.Equal(t, got.Router.Requests*5000, got.Router.Bytes)
		assert.InDelta(t, got.Router.LatencyMS.P50-got.Direct.LatencyMS.P50, got.AddedP50MS, 0.002)
	})
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		exe, err := os.Executable()
		require.NoError(t, err)
		got := runSpaceJSON(t, "-router", exe)
		assert.Equal(t, exe, got.Setup.Router)
	})
}

func TestSpaceHuman(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plot := filepath.Join(dir, "space.html")
	var out, errb bytes.Buffer
	code := run([]string{"-space", "-c", "2", "-d", "100ms", "-rounds", "1", "-plot", plot}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	for _, want := range []string{"Space     2 dynos", "router/direct", "Overhead  throughput router/direct", "added latency p50", "Router (all rounds)"} {
		assert.Containsf(t, out.String(), want, "output:\n%s", out.String())
	}
	page, err := os.ReadFile(plot)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<svg")
	assert.Contains(t, string(page), ">router</th>")
}

func TestRunPlot(t *testing.T) {
	t.Parallel()
	a, b := newServer(t), newServer(t)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	file := filepath.Join(dir, "one.png")
	code := run([]string{"-n", "50", "-plot", file, a.URL}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, bench.PlotWidth, img.Bounds().Dx())

	file = filepath.Join(dir, "ab.html")
	code = run([]string{"-json", "-d", "50ms", "-rounds", "1", "-compare", b.URL, "-plot", file, a.URL}, &out, &errb)
	require.Equalf(t, 0, code, "stderr: %s", errb.String())
	page, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(page), "<polyline"), "two curves with -compare")
	assert.Contains(t, string(page), "B "+b.URL)

	code = run([]string{"-n", "1", "-plot", filepath.Join(dir, "no/such/dir.png"), a.URL}, &out, &errb)
	assert.Equal(t, 1, code, "unwritable plot")
}

func TestSpaceUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-space", "http://x"},
		{"-space", "-compare", "http://y"},
		{"-space", "-h2"},
		{"-space", "-dynos", "0"},
		{"-space", "-body-size", "-1"},
		{"-space", "-latency", "-1s"},
		{"-plot", "x.svg", "http://x"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equalf(t, 2, run(args, &out, &errb), "args %q; stderr: %s", args, errb.String())
			assert.Empty(t, out.String())
		})
	}
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run([]string{"-space", "-d", "1s", "-router", "/does/not/exist"}, &out, &errb))
	assert.Contains(t, errb.String(), "starting the router")
}
