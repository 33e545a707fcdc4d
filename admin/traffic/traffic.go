// Package traffic counts an app's requests of the last five minutes, by
// the minute, by status class and by H code: the last_5m of the admin
// API (SPEC.md section 13). The request path records each request with a
// few atomic adds, without a lock or an allocation; the admin API reads a
// snapshot.
//
// It imports only the standard library, errcodes and admin/view, so the
// router can keep a Window per app and hand snapshots to package admin
// through admin.Backend.
package traffic

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/errcodes"
)

// Minutes is how many whole minutes a snapshot covers.
const Minutes = 5

// maxCodes bounds errcodes.Code values counted (a test checks the table
// fits).
const maxCodes = 64

// Window counts one app's requests. The zero value is not ready: use New.
type Window struct {
	start time.Time // when counting began: the window is shorter before 5 minutes
	// mu serializes the reset of a bucket for a new minute; counting
	// itself takes no lock.
	mu      sync.Mutex
	buckets [Minutes + 1]bucket
}

// bucket is one minute's counts.
type bucket struct {
	minute   atomic.Int64 // Unix minute counted here
	requests atomic.Uint64
	statuses [5]atomic.Uint64 // 1xx..5xx
	codes    [maxCodes]atomic.Uint64
}

// New returns a Window counting from now.
func New(now time.Time) *Window {
	w := &Window{start: now}
	for i := range w.buckets {
		w.buckets[i].minute.Store(-1)
	}
	return w
}

// bucketAt returns the bucket of minute m, reset if it held an older
// minute. A request counted while another goroutine resets the bucket at
// a minute's turn may be lost: these are dashboard figures.
func (w *Window) bucketAt(m int64) *bucket {
	b := &w.buckets[m%int64(len(w.buckets))]
	if b.minute.Load() == m {
		return b
	}
	w.mu.Lock()
	if b.minute.Load() != m {
		b.requests.Store(0)
		for i := range b.statuses {
			b.statuses[i].Store(0)
		}
		for i := range b.codes {
			b.codes[i].Store(0)
		}
		b.minute.Store(m)
	}
	w.mu.Unlock()
	return b
}

// Record counts one request answered at now with status, and code when a
// router line carried one (errcodes.None when not).
func (w *Window) Record(now time.Time, status int, code errcodes.Code) {
	m := now.Unix() / 60
	if m < 0 {
		return
	}
	b := w.bucketAt(m)
	b.requests.Add(1)
	if c := status / 100; c >= 1 && c <= 5 {
		b.statuses[c-1].Add(1)
	}
	if code != errcodes.None && int(code) < maxCodes {
		b.codes[code].Add(1)
	}
}

// statusClasses are the keys of view.Traffic.Statuses.
var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Snapshot returns the counts of the last five minutes at now, the minute
// in progress last.
func (w *Window) Snapshot(now time.Time) view.Traffic {
	t := view.Traffic{PerMinute: make([]uint64, Minutes), Statuses: map[string]uint64{}, Codes: map[string]uint64{}}
	m := now.Unix() / 60
	for i := range Minutes {
		want := m - int64(Minutes-1-i)
		if want < 0 {
			continue
		}
		b := &w.buckets[want%int64(len(w.buckets))]
		if b.minute.Load() != want {
			continue
		}
		n := b.requests.Load()
		t.PerMinute[i] = n
		t.Requests += n
		for c := range b.statuses {
			if v := b.statuses[c].Load(); v > 0 {
				t.Statuses[statusClasses[c]] += v
			}
		}
		for c := range b.codes {
			if v := b.codes[c].Load(); v > 0 {
				t.Codes[errcodes.Code(c).Entry().H] += v
			}
		}
	}
	// The window runs from the start of the oldest minute shown (or from
	// when counting began, if later) to now.
	from := time.Unix((m-Minutes+1)*60, 0)
	if w.start.After(from) {
		from = w.start
	}
	t.WindowSeconds = max(1, int(now.Sub(from)/time.Second))
	return t
}
