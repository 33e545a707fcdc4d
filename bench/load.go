package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one load run. Zero fields take the defaults named in
// their comments (applied by Run); Validate reports what cannot be run.
type Config struct {
	// URL is the target, http:// or https://. Required.
	URL string
	// Method is the request method. Default GET.
	Method string
	// Headers are sent with every request. A "Host" entry overrides the
	// Host header (and the :authority of HTTP/2).
	Headers http.Header
	// Body is sent with every request; nil sends none. A Content-Length is
	// sent when Body is set or the method is POST, PUT or PATCH.
	Body []byte
	// Conns is the number of TCP connections. Default 1.
	Conns int
	// Duration stops sending this long after the run starts. Requests
	// still in flight then get up to Timeout more to complete; those that
	// do not are counted as timeouts (Result.EndTimeouts). Zero means no
	// time limit (Requests must be set).
	Duration time.Duration
	// Requests stops the run after this many attempts (responses plus
	// transport errors). Zero means no count limit (Duration must be set).
	Requests int
	// Rate, in requests per second, selects the open loop: requests are due
	// at fixed intervals of 1/Rate from the start, and latency is measured
	// from the due time, so a stalled server cannot hide behind a waiting
	// client (coordinated omission). Zero selects the closed loop: each
	// connection (or stream) sends its next request when the last completes.
	Rate float64
	// HTTP2 speaks HTTP/2: over TLS (ALPN h2) for https, prior knowledge
	// (h2c) for http. Default HTTP/1.1 with keep-alive.
	HTTP2 bool
	// Streams is the number of concurrent requests per HTTP/2 connection.
	// Default 1; ignored for HTTP/1.1, which has one request in flight per
	// connection.
	Streams int
	// Insecure skips verification of the server's certificate.
	Insecure bool
	// SNI is the TLS server name sent and verified. Default the URL's host.
	SNI string
	// ClientCert and ClientKey are PEM files of a client certificate (with
	// the chain after it) and its private key, presented to a TLS server
	// that asks for one (mutual TLS; spacerouter's apps with mtls). Both or
	// neither; "" presents none. Unused for http://.
	ClientCert string
	ClientKey  string
	// Timeout bounds each connection attempt and each request, and the wait
	// for requests in flight when Duration ends. Default 10s.
	Timeout time.Duration
	// Local is the source IP connections are made from (""
	// the system's choice): on loopback, 127.0.0.2 is another client to a
	// router that counts per client address.
	Local string
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Conns == 0 {
		c.Conns = 1
	}
	if c.Streams == 0 {
		c.Streams = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// Validate reports the first field that makes c impossible to run.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return fmt.Errorf("url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url: scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("url: %q has no host", c.URL)
	case c.Conns < 0:
		return fmt.Errorf("conns: %d is negative", c.Conns)
	case c.Streams < 0:
		return fmt.Errorf("streams: %d is negative", c.Streams)
	case c.Duration < 0:
		return fmt.Errorf("duration: %v is negative", c.Duration)
	case c.Requests < 0:
		return fmt.Errorf("requests: %d is negative", c.Requests)
	case c.Duration == 0 && c.Requests == 0:
		return errors.New("duration: neither a duration nor a request count is set")
	case c.Rate < 0:
		return fmt.Errorf("rate: %v is negative", c.Rate)
	case c.Timeout < 0:
		return fmt.Errorf("timeout: %v is negative", c.Timeout)
	case c.ClientCert != "" && c.ClientKey == "":
		return fmt.Errorf("client key: the client certificate %s needs its key", c.ClientCert)
	case c.ClientKey != "" && c.ClientCert == "":
		return fmt.Errorf("client certificate: the client key %s needs its certificate", c.ClientKey)
	}
	return nil
}

// Snapshot is the progress of a running load, passed to Run's progress
// callback.
type Snapshot struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Requests is the number of responses received so far.
	Requests int64
	// Errors is the number of transport errors so far.
	Errors int64
	// Bytes is the number of response body bytes received so far.
	Bytes int64
}

// progressEvery is how often Run reports a Snapshot (about 4 times a second,
// often enough for a progress bar, rare enough to cost nothing).
const progressEvery = 250 * time.Millisecond

// client sends one request at a time and reads the response. do returns the
// status and body size, or an error: a *requestError naming the kind of
// transport error and its cause.
type client interface {
	do(ctx context.Context) (status int, n int64, err error)
}

// requestError is a transport error of one request. Error is the cause's
// message, so the report can quote it ("x509: certificate signed by unknown
// authority").
type requestError struct {
	kind string // KindConnect, KindTLS, ...
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// worker is one client with what it counted; the counts are merged into the
// Result at the end.
type worker struct {
	c           client
	shard       *histShard
	status      map[int]int
	errors      map[string]int
	first       map[string]error // the first error of each kind
	sent        int64
	endTimeouts int
}

// loadRun is the shared state of one Run.
type loadRun struct {
	cfg    Config
	end    time.Time    // when sending stops: start + Duration, zero without
	issued atomic.Int64 // closed-loop attempts started, for Requests
	done   atomic.Int64
	errs   atomic.Int64
	bytes  atomic.Int64
	shards []histShard
}

// histShard lets a few workers share one Hist, so memory stays bounded with
// hundreds of connections while contention stays low.
type histShard struct {
	mu sync.Mutex // guards h
	h  *Hist
}

// Causes of the two ends of a run with a Duration (see runContexts).
var (
	errDurationEnded = errors.New("the run's duration ended")
	errInFlightLimit = errors.New("no response within the timeout after the run's duration ended")
)

// Run drives load at cfg.URL until cfg.Duration passes, cfg.Requests have
// been attempted, or ctx is done, and returns what it measured. When
// cfg.Duration passes, Run sends no more requests and waits up to
// cfg.Timeout for those in flight; the ones that do not complete count as
// timeouts. progress, if not nil, is called about every 250 ms from a
// separate goroutine. If ctx is canceled, Run returns the partial result
// together with ctx's error; requests cut off by the cancel count nowhere.
func Run(ctx context.Context, cfg Config, progress func(Snapshot)) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := newTarget(cfg)
	if err != nil {
		return nil, err
	}
	clients, closeAll, err := t.clients(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()

	r := &loadRun{cfg: cfg, shards: make([]histShard, min(len(clients), 2*runtime.GOMAXPROCS(0)))}
	for i := range r.shards {
		r.shards[i].h = NewHist()
	}
	workers := make([]*worker, len(clients))
	for i, c := range clients {
		workers[i] = &worker{c: c, shard: &r.shards[i%len(r.shards)],
			status: map[int]int{}, errors: map[string]int{}, first: map[string]error{}}
	}

	start := time.Now()
	if cfg.Duration > 0 {
		r.end = start.Add(cfg.Duration)
	}
	sendCtx, reqCtx, cancel := runContexts(ctx, start, cfg)
	defer cancel()

	var slots chan time.Time
	var sched sendLog
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		slots = make(chan time.Time)
		wg.Go(func() { sched = schedule(ctx, sendCtx, start, cfg, slots) })
	}
	for _, w := range workers {
		wg.Go(func() { r.work(sendCtx, reqCtx, w, slots) })
	}
	stopProgress := r.report(start, progress)
	wg.Wait()
	stopProgress()
	return r.result(workers, sched, time.Since(start)), ctx.Err()
}

// runContexts returns the two ends of a run. sendCtx ends when no more
// requests are to be sent: at cfg.Duration. reqCtx ends when requests still
// in flight are cut off: cfg.Timeout later, with cause errInFlightLimit.
// Both end when ctx does; without a Duration both are ctx.
func runContexts(ctx context.Context, start time.Time, cfg Config) (sendCtx, reqCtx context.Context, cancel func()) {
	if cfg.Duration == 0 {
		return ctx, ctx, func() {}
	}
	end := start.Add(cfg.Duration)
	sendCtx, cancelSend := context.WithDeadlineCause(ctx, end, errDurationEnded)
	reqCtx, cancelReq := context.WithDeadlineCause(ctx, end.Add(cfg.Timeout), errInFlightLimit)
	return sendCtx, reqCtx, func() { cancelSend(); cancelReq() }
}

// work is one worker: it sends requests on w.c until the run ends. In the
// open loop it takes due times from slots until schedule closes it; in the
// closed loop it sends back to back until sendCtx ends. Requests run under
// reqCtx, so those in flight when sendCtx ends may still complete.
func (r *loadRun) work(sendCtx, reqCtx context.Context, w *worker, slots <-chan time.Time) {
	for {
		var begin time.Time
		if slots != nil {
			var ok bool
			if begin, ok = <-slots; !ok {
				return
			}
		} else {
			begin = time.Now()
			if r.ended(sendCtx, begin) || (r.cfg.Requests > 0 && r.issued.Add(1) > int64(r.cfg.Requests)) {
				return
			}
		}
		w.sent++
		status, n, err := w.c.do(reqCtx)
		if err != nil {
			if !r.failed(sendCtx, reqCtx, w, err) {
				return
			}
			continue
		}
		lat := time.Since(begin)
		w.shard.mu.Lock()
		w.shard.h.Record(lat)
		w.shard.mu.Unlock()
		w.status[status]++
		r.bytes.Add(n)
		r.done.Add(1)
	}
}

// failed counts the transport error err of one of w's requests. It reports
// false when the caller canceled the run: a request cut off by that is no
// failure of the target, and the worker stops. A request cut off because
// it was still in flight Timeout after the run's duration counts as a
// timeout.
func (r *loadRun) failed(sendCtx, reqCtx context.Context, w *worker, err error) bool {
	kind := KindRead
	if re, ok := errors.AsType[*requestError](err); ok {
		kind = re.kind
	}
	switch cause := context.Cause(reqCtx); {
	case errors.Is(cause, errInFlightLimit):
		kind = KindTimeout
	case cause != nil:
		return false
	}
	w.errors[kind]++
	if w.first[kind] == nil {
		w.first[kind] = err
	}
	if kind == KindTimeout && r.ended(sendCtx, time.Now()) {
		w.endTimeouts++ // in flight when the duration ended
	}
	r.errs.Add(1)
	if kind == KindConnect || kind == KindTLS {
		pause(sendCtx, connectBackoff)
	}
	return true
}

// ended reports whether sending has ended at now. The clock decides, not
// only sendCtx: on a loaded machine its timer can fire late, and requests
// sent meanwhile would run past Duration.
func (r *loadRun) ended(sendCtx context.Context, now time.Time) bool {
	return sendCtx.Err() != nil || (!r.end.IsZero() && !now.Before(r.end))
}

// connectBackoff keeps a worker whose target refuses connections from
// spinning: without it a dead target would be hammered with SYNs.
const connectBackoff = 10 * time.Millisecond

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sendLog is what schedule did: how many requests were due, how many it
// handed to a worker, and the time it spent sending: up to the last
// handover plus one interval, and at least Duration unless canceled.
type sendLog struct {
	due, sent int64
	window    time.Duration
}

// dueCount is the number of open-loop requests due in a run of cfg: the
// i-th is due at dueAt(i, interval), for every i before Duration and below
// Requests.
func dueCount(cfg Config) int64 {
	n := int64(math.MaxInt64)
	if cfg.Duration > 0 {
		interval := float64(time.Second) / cfg.Rate
		// An estimate, then exact by the same arithmetic as schedule's.
		n = int64(math.Ceil(float64(cfg.Duration) / interval))
		for n > 0 && dueAt(n-1, interval) >= cfg.Duration {
			n--
		}
		for dueAt(n, interval) < cfg.Duration {
			n++
		}
	}
	if cfg.Requests > 0 {
		n = min(n, int64(cfg.Requests))
	}
	return n
}

// dueAt is when the i-th open-loop request is due, from the start of the
// run, with interval nanoseconds between requests.
func dueAt(i int64, interval float64) time.Duration {
	return time.Duration(float64(i) * interval)
}

// schedule hands the due time of every open-loop request to a worker on
// slots: the i-th is due at start + i/Rate. A due time is handed over even
// when it is already past (all workers were busy), so the wait shows up in
// the latency. When sendCtx ends with every worker still busy, the
// requests due before its end that were never handed over are the
// difference of due and sent. slots is closed on return.
func schedule(ctx, sendCtx context.Context, start time.Time, cfg Config, slots chan<- time.Time) (out sendLog) {
	defer close(slots)
	interval := float64(time.Second) / cfg.Rate
	var last time.Time
	defer func() {
		if out.sent > 0 {
			out.window = last.Sub(start) + time.Duration(interval)
		}
		if ctx.Err() == nil {
			out.window = max(out.window, cfg.Duration)
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	out.due = dueCount(cfg)
	for ; out.sent < out.due; out.sent++ {
		at := start.Add(dueAt(out.sent, interval))
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				out.due = out.sent // canceled: nothing after this was due
				return out
			}
		}
		// An idle worker takes the request even if sendCtx ended a moment
		// ago: it was due before the end. Only when every worker is busy
		// does the end of sendCtx leave it unsent.
		select {
		case slots <- at:
			last = time.Now()
			continue
		default:
		}
		select {
		case slots <- at:
			last = time.Now()
		case <-sendCtx.Done():
			if ctx.Err() != nil {
				out.due = out.sent
			}
			return out
		}
	}
	return out
}

// report calls progress every progressEvery until the returned stop is
// called; stop waits for the reporting goroutine to exit.
func (r *loadRun) report(start time.Time, progress func(Snapshot)) (stop func()) {
	if progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				progress(Snapshot{
					Elapsed:  time.Since(start),
					Requests: r.done.Load(),
					Errors:   r.errs.Load(),
					Bytes:    r.bytes.Load(),
				})
			case <-quit:
				return
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
