package bench

import (
	"context"
	"errors"
	"fmt"
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
	// Duration stops the run this long after it starts; requests still in
	// flight then are abandoned and counted nowhere. Zero means no time
	// limit (Requests must be set).
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
	// Timeout bounds each connection attempt and each request. Default 10s.
	Timeout time.Duration
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
// status and body size, or the kind of transport error.
type client interface {
	do(ctx context.Context) (status int, n int64, kind string)
}

// workerStats is what one worker counted; merged into the Result at the end.
type workerStats struct {
	status map[int]int
	errors map[string]int
}

// loadRun is the shared state of one Run.
type loadRun struct {
	cfg    Config
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

// Run drives load at cfg.URL until cfg.Duration passes, cfg.Requests have
// been attempted, or ctx is done, and returns what it measured. progress, if
// not nil, is called about every 250 ms from a separate goroutine. If ctx is
// canceled, Run returns the partial result together with ctx's error.
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
	stats := make([]workerStats, len(clients))

	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithDeadline(ctx, start.Add(cfg.Duration))
	}
	defer cancel()

	var slots chan time.Time
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		slots = make(chan time.Time)
		wg.Go(func() { schedule(runCtx, start, cfg, slots) })
	}
	for i, c := range clients {
		stats[i] = workerStats{status: map[int]int{}, errors: map[string]int{}}
		wg.Go(func() { r.work(runCtx, c, &stats[i], &r.shards[i%len(r.shards)], slots) })
	}
	stopProgress := r.report(start, progress)
	wg.Wait()
	stopProgress()

	elapsed := time.Since(start)
	if cfg.Duration > 0 {
		elapsed = min(elapsed, cfg.Duration)
	}
	return r.result(stats, elapsed), ctx.Err()
}

// work is one worker: it owns client c and sends requests until the run ends.
// In the open loop it takes due times from slots; in the closed loop it sends
// back to back.
func (r *loadRun) work(ctx context.Context, c client, st *workerStats, sh *histShard, slots <-chan time.Time) {
	for {
		var begin time.Time
		if slots != nil {
			var ok bool
			select {
			case begin, ok = <-slots:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
		} else {
			if ctx.Err() != nil || (r.cfg.Requests > 0 && r.issued.Add(1) > int64(r.cfg.Requests)) {
				return
			}
			begin = time.Now()
		}
		status, n, kind := c.do(ctx)
		if kind != "" {
			if ctx.Err() != nil {
				return // abandoned because the run ended, not a failure
			}
			st.errors[kind]++
			r.errs.Add(1)
			if kind == KindConnect || kind == KindTLS {
				pause(ctx, connectBackoff)
			}
			continue
		}
		lat := time.Since(begin)
		sh.mu.Lock()
		sh.h.Record(lat)
		sh.mu.Unlock()
		st.status[status]++
		r.bytes.Add(n)
		r.done.Add(1)
	}
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

// schedule emits the due time of every open-loop request on slots: the i-th
// is due at start + i/Rate. A due time is emitted even when it is already
// past (all workers were busy), so the wait shows up in the latency.
func schedule(ctx context.Context, start time.Time, cfg Config, slots chan<- time.Time) {
	defer close(slots)
	interval := float64(time.Second) / cfg.Rate
	end := start.Add(cfg.Duration)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; cfg.Requests == 0 || i < cfg.Requests; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if cfg.Duration > 0 && !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case slots <- at:
		case <-ctx.Done():
			return
		}
	}
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
