package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrClosed is the error of a write to, or Reopen of, a closed RouterLog.
var ErrClosed = errors.New("router log closed")

// Buffer sizes of the line pool. A line is usually a few hundred bytes; a
// buffer that grew past maxLineBuf for one huge request target is dropped
// rather than pooled, so it does not pin memory.
const (
	lineBufSize = 1024
	maxLineBuf  = 64 << 10
)

// linePool holds *[]byte line buffers for RouterLog.Write.
var linePool = sync.Pool{
	New: func() any {
		b := make([]byte, 0, lineBufSize)
		return &b
	},
}

// Batching bounds. A batch is written when the writer goroutine gets its
// turn; while a write is slow (a stalled pipe, a slow disk), Write callers
// add to the next batch until it holds maxPending bytes, and then wait for
// the write in progress: memory stays bounded and no line is dropped.
const (
	maxPending = 256 << 10
	maxSpare   = 64 << 10 // a bigger batch buffer is not kept for reuse
)

// RouterLog writes router lines to one target. Each line is rendered into a
// pooled buffer and added to a batch; a writer goroutine writes the batch
// with one Write call as soon as it gets its turn, after the goroutines
// that were ready to run have run, so under load one write carries the
// lines of many requests and at rest a line is written at once. Lines are
// whole and in the order of the Write calls. It is safe for concurrent use,
// and a nil *RouterLog discards everything. Close (or Flush) writes what
// is pending.
type RouterLog struct {
	source string
	// path is the file a file target reopens; "" for stdout, stderr and
	// writers given to NewRouterLog.
	path   string
	redact atomic.Pointer[[]string]
	logger atomic.Pointer[zap.Logger]
	errs   atomic.Uint64

	// mu guards pend, pendLines, closed and started.
	mu        sync.Mutex
	pend      []byte // whole lines not yet handed to w
	pendLines uint64
	closed    bool
	started   bool // the writer goroutine runs

	wake chan struct{} // cap 1: pend became non-empty
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer goroutine ends

	// wmu serializes writes to w and guards w, f, burst and spare. It is
	// taken before mu, never while holding mu.
	wmu   sync.Mutex
	w     io.Writer // nil once closed
	f     *os.File  // the open file of a file target, else nil
	burst uint64    // failed writes since the last successful one
	spare []byte    // the batch buffer not in use
}

// NewRouterLog returns a RouterLog that writes lines to w, with source as
// the token after the time ("heroku[router]") and the values of the query
// parameters named in redact written as REDACTED. Close does not close w.
// w is written from one goroutine at a time.
func NewRouterLog(w io.Writer, source string, redact []string) *RouterLog {
	rl := &RouterLog{
		source: source, w: w,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	rl.SetRedact(redact)
	return rl
}

// OpenRouterLog returns a RouterLog for the log.router target of the config:
// "stdout", "stderr" or a file path. A file is opened for appending and
// created (mode 0644) if missing; Reopen opens the path again after the
// file has been rotated. The error names the path.
func OpenRouterLog(target, source string, redact []string) (*RouterLog, error) {
	switch target {
	case "stdout":
		return NewRouterLog(os.Stdout, source, redact), nil
	case "stderr":
		return NewRouterLog(os.Stderr, source, redact), nil
	case "":
		return nil, errors.New("opening router log: empty target (want stdout, stderr or a file path)")
	}
	f, err := openLogFile(target)
	if err != nil {
		return nil, err
	}
	rl := NewRouterLog(f, source, redact)
	rl.path, rl.f = target, f
	return rl, nil
}

// openLogFile opens path for appending router lines.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		// err is an *os.PathError, which names the path.
		return nil, fmt.Errorf("opening router log: %w", err)
	}
	return f, nil
}

// SetRedact replaces the names of the query parameters whose values are
// written as REDACTED. It is safe to call while lines are being written; a
// line uses either the old or the new list.
func (rl *RouterLog) SetRedact(names []string) {
	if rl == nil {
		return
	}
	cp := append([]string(nil), names...)
	rl.redact.Store(&cp)
}

// SetLogger sets the operational logger that reports write failures, once
// per run of consecutive failures; nil turns reporting off.
func (rl *RouterLog) SetLogger(l *zap.Logger) {
	if rl == nil {
		return
	}
	rl.logger.Store(l)
}

// WriteErrors returns how many lines could not be written.
func (rl *RouterLog) WriteErrors() uint64 {
	if rl == nil {
		return 0
	}
	return rl.errs.Load()
}

// Write adds the router line of l to the output. l is only read, and only
// during the call; a zero l.Time is written as the current time. A failed
// write is counted (WriteErrors, one per line lost) and reported to the
// logger set by SetLogger once per run of failures. Write does not
// allocate in steady state.
func (rl *RouterLog) Write(l *Line) {
	if rl == nil || l == nil {
		return
	}
	t := l.Time
	if t.IsZero() {
		t = time.Now()
	}
	var redact []string
	if p := rl.redact.Load(); p != nil {
		redact = *p
	}
	bp := linePool.Get().(*[]byte)
	b := appendLine((*bp)[:0], l, t, rl.source, redact)
	l.Recent.Add(b)
	rl.mu.Lock()
	closed := rl.closed
	first := len(rl.pend) == 0
	if !closed {
		rl.pend = append(rl.pend, b...)
		rl.pendLines++
	}
	full := len(rl.pend) >= maxPending
	start := first && !rl.started && !closed
	if start {
		rl.started = true
	}
	rl.mu.Unlock()
	if cap(b) <= maxLineBuf {
		*bp = b[:0]
		linePool.Put(bp)
	}
	switch {
	case closed:
		rl.wmu.Lock()
		began, recovered := rl.failed(1)
		rl.wmu.Unlock()
		rl.report(began, recovered, ErrClosed)
	case full:
		rl.Flush() // the writer is behind: wait for it, then write
	case start:
		go rl.run()
		fallthrough
	case first:
		select {
		case rl.wake <- struct{}{}:
		default:
		}
	}
}

// run is the writer goroutine: it writes each batch when it gets its turn.
func (rl *RouterLog) run() {
	defer close(rl.done)
	for {
		select {
		case <-rl.wake:
		case <-rl.stop:
			rl.Flush()
			return
		}
		// Let the goroutines that are ready run first: the lines of the
		// requests they finish join this batch.
		runtime.Gosched()
		rl.Flush()
	}
}

// Flush writes the pending lines now and returns when they are written
// (or counted lost).
func (rl *RouterLog) Flush() {
	if rl == nil {
		return
	}
	rl.wmu.Lock()
	began, recovered, err := rl.flushLocked()
	rl.wmu.Unlock()
	if began || recovered > 0 {
		rl.report(began, recovered, err)
	}
}

// flushLocked writes the pending batch with one Write call; wmu is held.
// began reports that this failure starts a run of failures; recovered is
// the length of the run this success ends.
func (rl *RouterLog) flushLocked() (began bool, recovered uint64, err error) {
	rl.mu.Lock()
	b, lines := rl.pend, rl.pendLines
	rl.pend, rl.pendLines = rl.spare[:0], 0
	rl.mu.Unlock()
	defer func() {
		if cap(b) <= maxSpare {
			rl.spare = b[:0]
		} else {
			rl.spare = nil
		}
	}()
	if len(b) == 0 {
		return false, 0, nil
	}
	if rl.w == nil {
		err = ErrClosed
	} else {
		var n int
		n, err = rl.w.Write(b)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
	}
	if err != nil {
		began, recovered = rl.failed(lines)
		return began, recovered, err
	}
	recovered, rl.burst = rl.burst, 0
	return false, recovered, nil
}

// failed counts lines lost to a failed write; wmu is held.
func (rl *RouterLog) failed(lines uint64) (began bool, recovered uint64) {
	rl.errs.Add(lines)
	rl.burst++
	return rl.burst == 1, 0
}

// report logs the start or the end of a run of write failures.
func (rl *RouterLog) report(began bool, recovered uint64, err error) {
	lg := rl.logger.Load()
	if lg == nil {
		return
	}
	target := rl.path
	if target == "" {
		target = "writer"
	}
	if began {
		lg.Error("writing router lines; lines are lost until a write succeeds",
			zap.String(KeyTarget, target), zap.Error(err))
		return
	}
	lg.Warn("writing router lines again",
		zap.String(KeyTarget, target), zap.Uint64(KeyCount, recovered))
}

// Reopen opens the file target again and writes the following lines to it,
// for log rotation: after logrotate renames the file, Reopen creates a new
// one at the path. Lines written before Reopen go to the old file. On error
// the old file stays in use. For stdout, stderr and NewRouterLog writers
// Reopen does nothing.
func (rl *RouterLog) Reopen() error {
	if rl == nil || rl.path == "" {
		return nil
	}
	f, err := openLogFile(rl.path)
	if err != nil {
		return err
	}
	rl.wmu.Lock()
	if rl.w == nil {
		rl.wmu.Unlock()
		_ = f.Close() // never written to
		return ErrClosed
	}
	began, recovered, werr := rl.flushLocked() // the lines of the old file
	old := rl.f
	rl.f, rl.w = f, f
	rl.wmu.Unlock()
	if began || recovered > 0 {
		rl.report(began, recovered, werr)
	}
	if err := old.Close(); err != nil {
		return fmt.Errorf("closing rotated router log: %w", err)
	}
	return nil
}

// Close writes the pending lines and stops writing: later lines are
// counted as write errors. It closes the file of a file target; stdout,
// stderr and NewRouterLog writers stay open. Closing twice is not an error.
func (rl *RouterLog) Close() error {
	if rl == nil {
		return nil
	}
	rl.mu.Lock()
	was, started := rl.closed, rl.started
	rl.closed = true
	rl.mu.Unlock()
	if !was {
		close(rl.stop)
		if started {
			<-rl.done
		}
	}
	rl.Flush()
	rl.wmu.Lock()
	f := rl.f
	rl.w, rl.f = nil, nil
	rl.wmu.Unlock()
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing router log: %w", err)
	}
	return nil
}
