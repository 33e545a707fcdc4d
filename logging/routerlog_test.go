package logging

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// callWriter records every Write call separately and notices overlapping
// calls.
type callWriter struct {
	inFlight atomic.Int32
	overlap  atomic.Bool

	// mu guards calls.
	mu    sync.Mutex
	calls []string
}

func (w *callWriter) Write(p []byte) (int, error) {
	if w.inFlight.Add(1) > 1 {
		w.overlap.Store(true)
	}
	defer w.inFlight.Add(-1)
	w.mu.Lock()
	w.calls = append(w.calls, string(p))
	w.mu.Unlock()
	return len(p), nil
}

// lines returns the lines written so far, after rl wrote what it had:
// every Write call must carry whole lines.
func (w *callWriter) lines(t testing.TB, rl *RouterLog) []string {
	t.Helper()
	rl.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		require.True(t, strings.HasSuffix(c, "\n"), "a Write call ends mid-line: %.200q", c)
		for _, l := range strings.SplitAfter(c, "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestRouterLogWrite(t *testing.T) {
	t.Parallel()
	var w callWriter
	rl := NewRouterLog(&w, "heroku[router]", []string{"token"})
	l := with(func(l *Line) { l.Path = []byte("/x?token=secret&a=1") })
	before := l
	before.Path = bytes.Clone(l.Path)

	rl.Write(&l)

	calls := w.lines(t, rl)
	require.Len(t, calls, 1)
	assert.Equal(t, string(AppendLine(nil, &before, "heroku[router]", []string{"token"})), calls[0])
	assert.Contains(t, calls[0], `path="/x?token=REDACTED&a=1"`)
	assert.Equal(t, before, l, "Write changed the line")
	assert.Zero(t, rl.WriteErrors())
}

func TestRouterLogWriteZeroTimeIsNow(t *testing.T) {
	t.Parallel()
	var w callWriter
	rl := NewRouterLog(&w, "src", nil)
	l := baseLine()
	l.Time = time.Time{}

	start := time.Now().Truncate(time.Microsecond)
	rl.Write(&l)
	end := time.Now()

	assert.True(t, l.Time.IsZero(), "Write set l.Time")
	calls := w.lines(t, rl)
	require.Len(t, calls, 1)
	d, err := decodeLine(calls[0])
	require.NoError(t, err)
	got, err := time.Parse(time.RFC3339Nano, d.time)
	require.NoError(t, err)
	assert.False(t, got.Before(start) || got.After(end), "time %v not within [%v, %v]", got, start, end)
}

func TestRouterLogSetRedact(t *testing.T) {
	t.Parallel()
	var w callWriter
	names := []string{"token"}
	rl := NewRouterLog(&w, "src", names)
	names[0] = "changed" // the RouterLog keeps its own copy
	l := withPath("/x?token=a&password=b")

	rl.Write(&l)
	rl.SetRedact([]string{"password"})
	rl.Write(&l)
	rl.SetRedact(nil)
	rl.Write(&l)

	calls := w.lines(t, rl)
	require.Len(t, calls, 3)
	assert.Contains(t, calls[0], `path="/x?token=REDACTED&password=b"`)
	assert.Contains(t, calls[1], `path="/x?token=a&password=REDACTED"`)
	assert.Contains(t, calls[2], `path="/x?token=a&password=b"`)
}

// TestRouterLogConcurrent writes from many goroutines while the redaction
// list changes: every Write call carries exactly one whole line and no line
// is lost or duplicated.
func TestRouterLogConcurrent(t *testing.T) {
	t.Parallel()
	const goroutines, perG = 32, 200
	var w callWriter
	rl := NewRouterLog(&w, "heroku[router]", []string{"token"})

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := baseLine()
			// A long path makes a torn write visible.
			l.Path = []byte("/p?token=x&pad=" + strings.Repeat("abcdefgh", 600))
			for i := range perG {
				l.RequestID = []byte(strconv.Itoa(g) + "-" + strconv.Itoa(i))
				rl.Write(&l)
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			rl.SetRedact([]string{"token", strconv.Itoa(i)})
		}
	})
	wg.Wait()

	assert.False(t, w.overlap.Load(), "Write calls overlapped")
	calls := w.lines(t, rl)
	require.Len(t, calls, goroutines*perG)
	seen := make(map[string]bool, len(calls))
	for _, c := range calls {
		d, err := decodeLine(c)
		require.NoError(t, err, "line %.200q", c)
		id, _ := d.get("request_id")
		require.False(t, seen[id], "request_id %s written twice", id)
		seen[id] = true
		path, _ := d.get("path")
		require.True(t, strings.HasPrefix(path, "/p?token=REDACTED&pad=abcdefgh"), "path %.60q", path)
	}
}

func TestOpenRouterLogFileReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "router.log")
	rl, err := OpenRouterLog(path, "heroku[router]", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rl.Close() })

	first := baseLine()
	first.RequestID = []byte("first")
	rl.Write(&first)

	// logrotate: rename, then tell the router to reopen.
	rotated := path + ".1"
	require.NoError(t, os.Rename(path, rotated))
	second := baseLine()
	second.RequestID = []byte("second")
	rl.Write(&second) // still goes to the renamed file
	require.NoError(t, rl.Reopen())
	third := baseLine()
	third.RequestID = []byte("third")
	rl.Write(&third)
	require.NoError(t, rl.Close())

	old, err := os.ReadFile(rotated)
	require.NoError(t, err)
	cur, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(AppendLine(nil, &first, "heroku[router]", nil))+string(AppendLine(nil, &second, "heroku[router]", nil)), string(old))
	assert.Equal(t, string(AppendLine(nil, &third, "heroku[router]", nil)), string(cur))

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Zero(t, info.Mode().Perm()&^0o644, "mode %v of %s wider than 0644", info.Mode(), path)
	assert.Zero(t, rl.WriteErrors())
}

func TestOpenRouterLogAppends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "router.log")
	require.NoError(t, os.WriteFile(path, []byte("existing\n"), 0o644))
	rl, err := OpenRouterLog(path, "src", nil)
	require.NoError(t, err)
	l := baseLine()
	rl.Write(&l)
	require.NoError(t, rl.Close())

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "existing\n"+string(AppendLine(nil, &l, "src", nil)), string(got))
}

func TestOpenRouterLogErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "no", "such", "router.log")
		_, err := OpenRouterLog(path, "src", nil)
		require.Error(t, err)
		assert.ErrorIs(t, err, fs.ErrNotExist)
		assert.Contains(t, err.Error(), path)
	})
	t.Run("empty target", func(t *testing.T) {
		t.Parallel()
		_, err := OpenRouterLog("", "src", nil)
		require.Error(t, err)
	})
	t.Run("reopen fails keeps the old file", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "logs")
		require.NoError(t, os.Mkdir(dir, 0o755))
		path := filepath.Join(dir, "router.log")
		rl, err := OpenRouterLog(path, "src", nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rl.Close() })
		require.NoError(t, os.Rename(dir, dir+".old"))

		err = rl.Reopen()
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
		l := baseLine()
		rl.Write(&l)
		rl.Flush()
		assert.Zero(t, rl.WriteErrors())
		got, err := os.ReadFile(filepath.Join(dir+".old", "router.log"))
		require.NoError(t, err)
		assert.Equal(t, string(AppendLine(nil, &l, "src", nil)), string(got))
	})
}

func TestOpenRouterLogStd(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"stdout", "stderr"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			rl, err := OpenRouterLog(target, "src", nil)
			require.NoError(t, err)
			assert.NoError(t, rl.Reopen())
			assert.NoError(t, rl.Close())
			_, err = os.Stdout.Stat()
			assert.NoError(t, err, "Close closed stdout")
			_, err = os.Stderr.Stat()
			assert.NoError(t, err, "Close closed stderr")
		})
	}
}

func TestRouterLogClose(t *testing.T) {
	t.Parallel()
	rl, err := OpenRouterLog(filepath.Join(t.TempDir(), "router.log"), "src", nil)
	require.NoError(t, err)
	require.NoError(t, rl.Close())
	assert.NoError(t, rl.Close(), "second Close")
	assert.ErrorIs(t, rl.Reopen(), ErrClosed)
	l := baseLine()
	rl.Write(&l)
	assert.Equal(t, uint64(1), rl.WriteErrors(), "a line after Close is lost and counted")
}

// flakyWriter fails while fail is set and writes short while short is set.
type flakyWriter struct {
	fail, short bool
	buf         bytes.Buffer
}

var errDiskFull = errors.New("disk full")

func (w *flakyWriter) Write(p []byte) (int, error) {
	switch {
	case w.fail:
		return 0, errDiskFull
	case w.short:
		return w.buf.Write(p[:len(p)/2])
	}
	return w.buf.Write(p)
}

func TestRouterLogWriteErrors(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	w := &flakyWriter{}
	rl := NewRouterLog(w, "src", nil)
	rl.SetLogger(zap.New(core))
	l := baseLine()

	steps := []struct{ fail, short bool }{
		{false, false}, // ok
		{true, false},  // burst 1 starts: one error entry
		{true, false},
		{false, true},  // short write counts as a failure too
		{false, false}, // burst 1 ends: one warn entry, count=3
		{false, false},
		{true, false},  // burst 2 starts
		{false, false}, // burst 2 ends, count=1
	}
	for _, s := range steps {
		w.fail, w.short = s.fail, s.short
		rl.Write(&l)
		rl.Flush()
	}
	require.NoError(t, rl.Close()) // the writer goroutine has reported all

	assert.Equal(t, uint64(4), rl.WriteErrors())
	entries := logs.AllUntimed()
	require.Len(t, entries, 4, "log entries: %v", entries)
	wantLevels := []zapcore.Level{zapcore.ErrorLevel, zapcore.WarnLevel, zapcore.ErrorLevel, zapcore.WarnLevel}
	for i, e := range entries {
		assert.Equal(t, wantLevels[i], e.Level, "entry %d: %s", i, e.Message)
		assert.Equal(t, "writer", e.ContextMap()[KeyTarget], "entry %d", i)
	}
	assert.Equal(t, errDiskFull.Error(), entries[0].ContextMap()[KeyError])
	assert.Equal(t, uint64(3), entries[1].ContextMap()[KeyCount])
	assert.Equal(t, uint64(1), entries[3].ContextMap()[KeyCount])
}

func TestRouterLogWriteErrorsWithoutLogger(t *testing.T) {
	t.Parallel()
	rl := NewRouterLog(&flakyWriter{fail: true}, "src", nil)
	l := baseLine()
	rl.Write(&l)
	rl.Flush()
	rl.SetLogger(nil)
	rl.Write(&l)
	rl.Flush()
	assert.Equal(t, uint64(2), rl.WriteErrors())
}

func TestRouterLogNil(t *testing.T) {
	t.Parallel()
	var rl *RouterLog
	l := baseLine()
	assert.NotPanics(t, func() {
		rl.Write(&l)
		rl.SetRedact([]string{"x"})
		rl.SetLogger(zap.NewNop())
	})
	assert.Zero(t, rl.WriteErrors())
	assert.NoError(t, rl.Reopen())
	assert.NoError(t, rl.Close())

	// A nil *Line is ignored too.
	var w callWriter
	wl := NewRouterLog(&w, "src", nil)
	wl.Write(nil)
	assert.Empty(t, w.lines(t, wl))
}

func TestRouterLogHugeLine(t *testing.T) {
	t.Parallel()
	var w callWriter
	rl := NewRouterLog(&w, "src", nil)
	l := withPath("/" + strings.Repeat("x", 200<<10))
	rl.Write(&l)
	small := baseLine()
	rl.Write(&small)
	calls := w.lines(t, rl)
	require.Len(t, calls, 2)
	assert.Equal(t, string(AppendLine(nil, &l, "src", nil)), calls[0])
	assert.Equal(t, string(AppendLine(nil, &small, "src", nil)), calls[1])
}

func TestRouterLogWriteAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are unreliable under -short and -race")
	}
	rl := NewRouterLog(io.Discard, "heroku[router]", []string{"password"})
	l := with(func(l *Line) {
		l.Path = []byte("/login?user=bob&password=hunter2")
		l.TLS, l.TLSVersion = true, tls.VersionTLS13
	})
	rl.Write(&l) // warm the pool
	assert.Zero(t, testing.AllocsPerRun(100, func() { rl.Write(&l) }), "Write allocated")

	l.Time = time.Time{} // time.Now() path
	assert.Zero(t, testing.AllocsPerRun(100, func() { rl.Write(&l) }), "Write with zero Time allocated")
}

func BenchmarkRouterLogWrite(b *testing.B) {
	rl := NewRouterLog(io.Discard, "heroku[router]", []string{"password", "token"})
	l := with(func(l *Line) {
		l.Path = []byte("/login?user=bob&password=hunter2&q=some+search")
		l.TLS, l.TLSVersion = true, tls.VersionTLS13
	})
	b.ReportAllocs()
	for b.Loop() {
		rl.Write(&l)
	}
}

// gateWriter blocks every Write call until open is closed, and records the
// calls.
type gateWriter struct {
	callWriter
	entered chan struct{} // receives once per Write call, before it blocks
	open    chan struct{}
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 1024), open: make(chan struct{})}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.open
	return w.callWriter.Write(p)
}

// TestRouterLogBatchesBehindSlowWrite: while a write is slow, Write does
// not wait for it, and the lines that arrive meanwhile go out together in
// one write, whole and in order.
func TestRouterLogBatchesBehindSlowWrite(t *testing.T) {
	t.Parallel()
	w := newGateWriter()
	rl := NewRouterLog(w, "src", nil)
	t.Cleanup(func() { _ = rl.Close() })

	first := baseLine()
	first.RequestID = []byte("r0")
	rl.Write(&first)
	select {
	case <-w.entered: // the writer goroutine is now stuck in the first write
	case <-time.After(5 * time.Second):
		t.Fatal("a line was not handed to the writer without Flush")
	}
	const n = 100
	for i := 1; i <= n; i++ {
		l := baseLine()
		l.RequestID = []byte("r" + strconv.Itoa(i))
		rl.Write(&l) // must not block behind the stuck write
	}
	close(w.open)

	lines := w.lines(t, rl)
	require.Len(t, lines, n+1)
	for i, l := range lines {
		d, err := decodeLine(l)
		require.NoError(t, err)
		id, _ := d.get("request_id")
		assert.Equal(t, "r"+strconv.Itoa(i), id, "line %d out of order", i)
	}
	w.mu.Lock()
	calls := len(w.calls)
	w.mu.Unlock()
	assert.LessOrEqual(t, calls, 3, "the %d lines behind the slow write were not batched", n)
	assert.Zero(t, rl.WriteErrors())
}

// TestRouterLogBoundedWhileStalled: when the output stalls, pending lines
// are bounded: the Write that fills the batch waits for the stalled write
// instead of growing memory or dropping lines, and every line arrives once
// the output moves again.
func TestRouterLogBoundedWhileStalled(t *testing.T) {
	t.Parallel()
	w := newGateWriter()
	rl := NewRouterLog(w, "src", nil)
	t.Cleanup(func() { _ = rl.Close() })
	l := withPath("/" + strings.Repeat("p", 1000))
	rl.Write(&l)
	<-w.entered

	var written atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for range 2 * maxPending / 1000 {
			rl.Write(&l)
			written.Add(1)
		}
	}()
	// The writer holds back once maxPending bytes wait.
	require.Eventually(t, func() bool {
		rl.mu.Lock()
		defer rl.mu.Unlock()
		return len(rl.pend) >= maxPending
	}, 5*time.Second, time.Millisecond)
	select {
	case <-finished:
		t.Fatal("every Write returned while the output was stalled: pending lines are unbounded")
	case <-time.After(20 * time.Millisecond):
	}
	rl.mu.Lock()
	pending := len(rl.pend)
	rl.mu.Unlock()
	assert.Less(t, pending, maxPending+2*len(AppendLine(nil, &l, "src", nil)), "pending bytes beyond the bound")

	close(w.open)
	<-finished
	lines := w.lines(t, rl)
	assert.Len(t, lines, 1+int(written.Load()), "a line was lost or duplicated")
	assert.Zero(t, rl.WriteErrors())
}

// TestRouterLogWrittenAtRest: a lone line reaches the output without Flush
// or Close, promptly (no timer, no waiting for more lines).
func TestRouterLogWrittenAtRest(t *testing.T) {
	t.Parallel()
	var w callWriter
	rl := NewRouterLog(&w, "src", nil)
	t.Cleanup(func() { _ = rl.Close() })
	for i := range 3 {
		l := baseLine()
		rl.Write(&l)
		require.Eventually(t, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return len(w.calls) == i+1
		}, 5*time.Second, 100*time.Microsecond, "line %d not written at rest", i)
	}
}

// TestRouterLogCloseWritesPending: Close writes the lines still pending
// before it closes the file.
func TestRouterLogCloseWritesPending(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "router.log")
	rl, err := OpenRouterLog(path, "src", nil)
	require.NoError(t, err)
	var want strings.Builder
	for i := range 500 {
		l := baseLine()
		l.RequestID = []byte(strconv.Itoa(i))
		rl.Write(&l)
		want.Write(AppendLine(nil, &l, "src", nil))
	}
	require.NoError(t, rl.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want.String(), string(got))
}
