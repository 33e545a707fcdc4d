package logging

import (
	"bytes"
	"sync"
	"sync/atomic"
)

var newline = []byte("\n")

// RecentLines is how many router lines a Recent keeps (SPEC.md section
// 13: GET /api/lines answers an app's last 1,000 lines).
const RecentLines = 1000

// maxRecentLine is the longest line a Recent keeps whole; a longer one
// (a huge request target) is cut there, so the ring's memory is bounded.
const maxRecentLine = 4 << 10

// Recent keeps the last router lines of one app for the admin API and
// feeds them to live subscribers. Adding a line copies it into a slot
// buffer that is reused (no allocation once the ring has gone round once,
// while nobody watches) and never waits for a subscriber. A nil *Recent
// keeps nothing.
type Recent struct {
	mu   sync.Mutex
	ring [][]byte
	next uint64 // how many lines were ever added
	subs map[*Subscription]struct{}
}

// NewRecent returns a Recent keeping the last n lines.
func NewRecent(n int) *Recent {
	if n < 1 {
		n = 1
	}
	return &Recent{ring: make([][]byte, n)}
}

// Add keeps a copy of line (one whole router line with its newline).
func (r *Recent) Add(line []byte) {
	if r == nil {
		return
	}
	if len(line) > maxRecentLine {
		line = line[:maxRecentLine]
	}
	r.mu.Lock()
	i := r.next % uint64(len(r.ring))
	r.ring[i] = append(r.ring[i][:0], line...)
	r.next++
	if len(r.subs) > 0 {
		l := string(bytes.TrimSuffix(line, newline)) // one copy for every reader
		for s := range r.subs {
			select {
			case s.ch <- l:
			default:
				s.dropped.Add(1)
			}
		}
	}
	r.mu.Unlock()
}

// Last returns up to n of the latest lines, oldest first, without their
// newlines.
func (r *Recent) Last(n int) []string {
	out := []string{}
	if r == nil || n <= 0 {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq := r.next - min(uint64(n), r.next, uint64(len(r.ring))); seq < r.next; seq++ {
		out = append(out, string(bytes.TrimSuffix(r.ring[seq%uint64(len(r.ring))], newline)))
	}
	return out
}

// SubscriberBuffer is how many lines a live reader may fall behind
// before lines are dropped for it.
const SubscriberBuffer = 256

// Subscription is one live reader of a Recent: each line added after it
// began, on a buffered channel; the lines it has no room for are dropped
// and counted, never waited for.
type Subscription struct {
	r       *Recent
	ch      chan string
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe starts a live reader at the next line added. Close it when
// done.
func (r *Recent) Subscribe() *Subscription {
	s := &Subscription{r: r, ch: make(chan string, SubscriberBuffer)}
	if r == nil {
		return s
	}
	r.mu.Lock()
	if r.subs == nil {
		r.subs = make(map[*Subscription]struct{})
	}
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// Lines delivers each line, without its newline. It is closed by Close.
func (s *Subscription) Lines() <-chan string { return s.ch }

// Dropped reports how many lines were dropped because the reader fell
// behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel; it may be called
// more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		if s.r != nil {
			s.r.mu.Lock()
			defer s.r.mu.Unlock()
			delete(s.r.subs, s)
		}
		close(s.ch) // under r.mu: Add never sends on a closed channel
	})
}

// Subscribers reports how many live readers r has.
func (r *Recent) Subscribers() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}
