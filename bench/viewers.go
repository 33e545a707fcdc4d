package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ViewersConfig describes dashboard viewers of a router's admin API
// (SPEC.md section 13), for measuring what watching costs the request path.
type ViewersConfig struct {
	// Admin is the admin listener's base URL, e.g. "http://127.0.0.1:9000".
	Admin string
	// Token is the bearer ID token every viewer sends.
	Token string
	// App is the app whose live lines each viewer streams.
	App string
	// N is how many viewers.
	N int
	// Poll is how often each viewer reloads the dashboard's data
	// (/api/apps and /api/tls/summary, as the page's refresh does every
	// 10 s); 0: never.
	Poll time.Duration
	// Client sends the requests; nil: a client of its own.
	Client *http.Client
}

// Viewers are dashboards kept open on a router: each loaded the page and its
// assets once, streams one app's live router lines over server-sent events
// and reads them as they come, and reloads the page's data every Poll.
type Viewers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events atomic.Int64 // "data:" lines read, over all viewers
	bytes  atomic.Int64 // stream bytes read
	polls  atomic.Int64
	mu     sync.Mutex
	err    error // the first failure after the start
}

// StartViewers opens cfg.N viewers and returns once every stream has its
// response header (the admin API subscribes before it answers it), so the
// router fans its lines out to all of them from then on. Close ends them.
func StartViewers(ctx context.Context, cfg ViewersConfig) (*Viewers, error) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.N + 1}}
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &Viewers{cancel: cancel}
	get := func(path, accept string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", cfg.Admin+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		req.Header.Set("Accept", accept)
		resp, err := cfg.Client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return resp, nil
	}
	load := func(paths ...string) error {
		for _, p := range paths {
			resp, err := get(p, "*/*")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil
	}
	for range cfg.N {
		if err := load("/", "/static/app.js", "/static/app.css", "/api/apps", "/api/tls/summary"); err != nil {
			v.Close()
			return nil, fmt.Errorf("viewer: the dashboard: %w", err)
		}
		resp, err := get("/api/lines?app="+cfg.App, "text/event-stream")
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("viewer: the live lines: %w", err)
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			defer resp.Body.Close()
			v.read(ctx, resp.Body)
		}()
		if cfg.Poll > 0 {
			v.wg.Add(1)
			go func() {
				defer v.wg.Done()
				t := time.NewTicker(cfg.Poll)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					if err := load("/api/apps", "/api/tls/summary"); err != nil {
						v.fail(ctx, err)
						return
					}
					v.polls.Add(1)
				}
			}()
		}
	}
	return v, nil
}

// read counts a stream's events until it ends.
func (v *Viewers) read(ctx context.Context, body io.Reader) {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		v.bytes.Add(int64(len(line)))
		if bytes.HasPrefix(line, []byte("data: ")) {
			v.events.Add(1)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			v.fail(ctx, fmt.Errorf("viewer: the live lines ended: %w", err))
			return
		}
	}
}

func (v *Viewers) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // closed
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err == nil {
		v.err = err
	}
}

// Events reports how many line events the viewers have read in all.
func (v *Viewers) Events() int64 { return v.events.Load() }

// Bytes reports how many stream bytes the viewers have read in all.
func (v *Viewers) Bytes() int64 { return v.bytes.Load() }

// Polls reports how many data reloads the viewers made in all.
func (v *Viewers) Polls() int64 { return v.polls.Load() }

// Err reports the first failure of a viewer since the start (a stream
// that ended, a reload refused), or nil.
func (v *Viewers) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Close ends every viewer and waits for them.
func (v *Viewers) Close() {
	v.cancel()
	v.wg.Wait()
}
