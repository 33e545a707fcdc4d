package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
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

// Environment of the test binary run as a process (TestSpaceClosedStdout).
const (
	// envMain set to 1 makes the test binary run spacebench's main.
	envMain = "SPACEBENCH_TEST_MAIN"
	// envPIDFile names a file the fake router writes its process ID to.
	envPIDFile = "SPACEBENCH_TEST_ROUTER_PID_FILE"
)

// TestMain lets the test binary stand in for a router binary (-router in
// TestSpace/binary): started as "BIN -config FILE", which go test never
// does, it serves FILE's space until SIGTERM. With envMain=1 it is
// spacebench itself.
func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "-config":
		os.Exit(fakeRouter(os.Args[1:]))
	case os.Getenv(envMain) == "1":
		main()
	}
	os.Exit(m.Run())
}

// fakeRouter runs the router in-process like cmd/spacerouter -config FILE.
func fakeRouter(args []string) int {
	if len(args) != 2 || args[0] != "-config" {
		fmt.Fprintf(os.Stderr, "fake router: args %q\n", args)
		return 2
	}
	if f := os.Getenv(envPIDFile); f != "" {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "fake router:", err)
			return 1
		}
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

// TestSpaceClosedStdout runs spacebench -space -router BIN as a process
// whose stdout is a pipe already closed at the reading end, as in
// "spacebench -space ... | head -1" once head has exited. The broken pipe
// must not kill spacebench before it stops the router it started (issue 9:
// the router child kept running). The test binary plays both spacebench
// (envMain) and the router, which writes its PID to envPIDFile.
func TestSpaceClosedStdout(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "router.pid")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	r.Close()
	defer w.Close()
	// A file, not a buffer: with a buffer, exec would copy from a pipe the
	// orphaned router holds open, and Wait would hang until it exits.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer stderr.Close()

	cmd := exec.Command(exe, "-space", "-router", exe, "-c", "1", "-d", "50ms", "-rounds", "1")
	cmd.Env = append(os.Environ(), envMain+"=1", envPIDFile+"="+pidFile)
	cmd.Stdout, cmd.Stderr = w, stderr
	runErr := cmd.Run()
	errText, _ := os.ReadFile(stderr.Name())

	b, err := os.ReadFile(pidFile)
	require.NoErrorf(t, err, "the router never started; spacebench: %v; stderr:\n%s", runErr, errText)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	if err := syscall.Kill(pid, 0); err == nil {
		syscall.Kill(pid, syscall.SIGKILL) // ours: started by the spacebench this test ran
		t.Errorf("router pid %d still running after spacebench exited (%v); stderr:\n%s", pid, runErr, errText)
	} else {
		assert.ErrorIs(t, err, syscall.ESRCH, "signal 0 to router pid %d", pid)
	}
	var exit *exec.ExitError
	require.ErrorAsf(t, runErr, &exit, "spacebench could not write its report; stderr:\n%s", errText)
	assert.Equalf(t, 1, exit.ExitCode(), "exit status (-1: killed by a signal, %v); stderr:\n%s", exit, errText)
	assert.NotContains(t, string(errText), "writing the report", "a reader that went away is not reported")
}
