package logging

import (
	"sync"
)

// RecentLines is how many router lines a Recent keeps (SPEC.md section
// 13: GET /api/lines answers an app's last 1,000 lines).
const RecentLines = 1000

// maxRecentLine is the longest line a Recent keeps whole; a longer one
// (a huge request target) is cut there, so the ring's memory is bounded.
const maxRecentLine = 4 << 10

// Recent keeps the last router lines of one app for the admin API and
// feeds them to live subscribers. Adding a line copies it into a slot
// buffer that is reused (no allocation once the ring has gone round once)
// and never waits for a subscriber: a subscriber is only woken, and reads
// the lines it missed itself; one that falls more than the ring behind
// loses the oldest and is told how many. A nil *Recent keeps nothing.
type Recent struct {
	mu   sync.Mutex
	ring [][]byte
	next uint64 // sequence number of the next line added
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
	for s := range r.subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// Last returns copies of up to n of the latest lines, oldest first, and
// the sequence number that follows the last of them.
func (r *Recent) Last(n int) (lines [][]byte, next uint64) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	from := r.next - min(uint64(n), r.next, uint64(len(r.ring)))
	return r.copyFrom(from), r.next
}

// copyFrom copies the lines from sequence number seq to the newest; r.mu
// is held and seq is within the ring.
func (r *Recent) copyFrom(seq uint64) [][]byte {
	out := make([][]byte, 0, r.next-seq)
	for ; seq < r.next; seq++ {
		out = append(out, append([]byte(nil), r.ring[seq%uint64(len(r.ring))]...))
	}
	return out
}

// Subscription is one live reader of a Recent.
type Subscription struct {
	r    *Recent
	wake chan struct{}
	seq  uint64
}

// Subscribe starts a live reader at the next line added. Close it when
// done.
func (r *Recent) Subscribe() *Subscription {
	s := &Subscription{r: r, wake: make(chan struct{}, 1)}
	if r == nil {
		return s
	}
	r.mu.Lock()
	if r.subs == nil {
		r.subs = make(map[*Subscription]struct{})
	}
	r.subs[s] = struct{}{}
	s.seq = r.next
	r.mu.Unlock()
	return s
}

// Wake is readable when lines were added since the last Next.
func (s *Subscription) Wake() <-chan struct{} { return s.wake }

// Next returns copies of the lines added since the last call, oldest
// first, and how many were lost because the reader fell more than the
// ring behind.
func (s *Subscription) Next() (lines [][]byte, lost uint64) {
	r := s.r
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if oldest := r.next - min(r.next, uint64(len(r.ring))); s.seq < oldest {
		lost = oldest - s.seq
		s.seq = oldest
	}
	lines = r.copyFrom(s.seq)
	s.seq = r.next
	return lines, lost
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s.r == nil {
		return
	}
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
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
