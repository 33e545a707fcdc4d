// Package lines keeps the recent router lines of each app and hands them
// to live viewers (the admin API's GET /api/lines, SPEC.md section 13)
// without ever making the request path wait: Publish copies the line into
// a ring of reused buffers and offers it to each viewer's buffered
// channel; a viewer that falls behind loses lines, which are counted.
//
// It imports only the standard library and admin/view, so the router can
// own a Hub and hand it to package admin through admin.Backend.
package lines

import (
	"sync"
	"sync/atomic"

	"github.com/spacerouter/spacerouter/admin/view"
)

// Defaults of New.
const (
	// DefaultKeep is how many lines of each app a Hub keeps (SPEC.md
	// section 13: the last 1,000).
	DefaultKeep = 1000
	// DefaultBuffer is how many lines a viewer may fall behind before
	// lines are dropped for it.
	DefaultBuffer = 256
	// maxLine is the longest line kept whole; the rest is cut (a router
	// line is far shorter, SPEC.md section 7).
	maxLine = 4096
)

// Hub holds the recent lines and the viewers of every app.
type Hub struct {
	keep, buffer int

	// mu guards apps.
	mu   sync.RWMutex
	apps map[string]*ring
}

// New returns a Hub keeping keep lines per app (0: DefaultKeep) with
// viewers buffered by buffer lines (0: DefaultBuffer).
func New(keep, buffer int) *Hub {
	if keep <= 0 {
		keep = DefaultKeep
	}
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{keep: keep, buffer: buffer, apps: map[string]*ring{}}
}

// ring is one app's recent lines and viewers.
type ring struct {
	// mu guards bufs, next, full and subs.
	mu   sync.Mutex
	bufs [][]byte // reused line buffers, oldest at next when full
	next int
	full bool
	subs []*sub
}

// app returns the ring of app, creating it.
func (h *Hub) app(app string) *ring {
	h.mu.RLock()
	r := h.apps[app]
	h.mu.RUnlock()
	if r != nil {
		return r
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r = h.apps[app]; r == nil {
		r = &ring{bufs: make([][]byte, h.keep)}
		h.apps[app] = r
	}
	return r
}

// Publish records one router line of app (without its newline) and offers
// it to the app's viewers. It never blocks on a viewer and, once the
// app's ring is warm and nobody watches, allocates nothing.
func (h *Hub) Publish(app string, line []byte) {
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	r := h.app(app)
	r.mu.Lock()
	r.bufs[r.next] = append(r.bufs[r.next][:0], line...)
	r.next++
	if r.next == len(r.bufs) {
		r.next, r.full = 0, true
	}
	if len(r.subs) > 0 {
		s := string(line) // one copy shared by every viewer
		for _, v := range r.subs {
			select {
			case v.ch <- s:
			default:
				v.dropped.Add(1)
			}
		}
	}
	r.mu.Unlock()
}

// Recent returns up to n of app's most recent lines, oldest first.
func (h *Hub) Recent(app string, n int) []string {
	h.mu.RLock()
	r := h.apps[app]
	h.mu.RUnlock()
	out := []string{}
	if r == nil || n <= 0 {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	count := r.next
	if r.full {
		count = len(r.bufs)
	}
	n = min(n, count)
	for i := range n {
		j := (r.next - n + i + len(r.bufs)) % len(r.bufs)
		out = append(out, string(r.bufs[j]))
	}
	return out
}

// Subscribe starts a live feed of app's lines; the caller must Close it.
func (h *Hub) Subscribe(app string) view.Subscription {
	r := h.app(app)
	v := &sub{r: r, ch: make(chan string, h.buffer)}
	r.mu.Lock()
	r.subs = append(r.subs, v)
	r.mu.Unlock()
	return v
}

// Viewers returns how many live feeds app has.
func (h *Hub) Viewers(app string) int {
	r := h.app(app)
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}

// sub is one live feed.
type sub struct {
	r       *ring
	ch      chan string
	dropped atomic.Uint64
	once    sync.Once
}

// Lines implements view.Subscription.
func (v *sub) Lines() <-chan string { return v.ch }

// Dropped implements view.Subscription.
func (v *sub) Dropped() uint64 { return v.dropped.Load() }

// Close implements view.Subscription. The channel is closed under the
// ring's lock, so Publish never sends on a closed channel.
func (v *sub) Close() {
	v.once.Do(func() {
		v.r.mu.Lock()
		defer v.r.mu.Unlock()
		for i, s := range v.r.subs {
			if s == v {
				v.r.subs = append(v.r.subs[:i:i], v.r.subs[i+1:]...)
				break
			}
		}
		close(v.ch)
	})
}
