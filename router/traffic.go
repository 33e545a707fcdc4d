package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
)

// TrafficMinutes is how many minutes of an app's requests the admin API
// counts (SPEC.md section 13: the last 5 minutes).
const TrafficMinutes = 5

// minuteCounts counts an app's requests of one minute.
type minuteCounts struct {
	minute   atomic.Int64 // Unix time / 60 of the minute counted; 0 before use
	requests atomic.Uint64
	classes  [6]atomic.Uint64 // by status class, 0 for none of 1xx–5xx
	codes    [numCodeSlots]atomic.Uint64
}

// traffic counts an app's requests by the minute, over the last
// TrafficMinutes minutes. Counting is a few atomic adds; a lock is taken
// only by the first request of a minute, to clear the slot it reuses.
type traffic struct {
	mu    sync.Mutex
	slots [TrafficMinutes + 1]minuteCounts
	start time.Time
}

func newTraffic(start time.Time) *traffic { return &traffic{start: start} }

// add counts one request answered at the time at.
func (t *traffic) add(at time.Time, class int, code errcodes.Code) {
	m := at.Unix() / 60
	s := &t.slots[m%int64(len(t.slots))]
	if s.minute.Load() != m {
		t.begin(s, m)
	}
	s.requests.Add(1)
	s.classes[class].Add(1)
	if code != errcodes.None && int(code) < numCodeSlots {
		s.codes[code].Add(1)
	}
}

// begin clears slot s for minute m, unless another request did already.
// A slot holds a minute at least TrafficMinutes old when it is cleared.
func (t *traffic) begin(s *minuteCounts, m int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.minute.Load() >= m {
		return
	}
	s.requests.Store(0)
	for i := range s.classes {
		s.classes[i].Store(0)
	}
	for i := range s.codes {
		s.codes[i].Store(0)
	}
	s.minute.Store(m)
}

// TrafficCounts are an app's requests of the last TrafficMinutes minutes.
type TrafficCounts struct {
	// Window is the time the counts cover: TrafficMinutes minutes, or
	// less while the router has run for less.
	Window time.Duration
	// PerMinute counts the requests of each minute, oldest first; the
	// last is the minute in progress.
	PerMinute [TrafficMinutes]uint64
	Requests  uint64
	// Classes counts by status class ("2xx"); Codes by H code ("H12").
	// Classes and codes not seen are left out.
	Classes map[string]uint64
	Codes   map[string]uint64
}

var classNames = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// counts sums the minutes of the window ending at now.
func (t *traffic) counts(now time.Time) TrafficCounts {
	c := TrafficCounts{Window: min(now.Sub(t.start), TrafficMinutes*time.Minute),
		Classes: map[string]uint64{}, Codes: map[string]uint64{}}
	c.Window = max(c.Window, 0)
	m := now.Unix() / 60
	for i := range TrafficMinutes {
		minute := m - int64(TrafficMinutes-1-i)
		s := &t.slots[minute%int64(len(t.slots))]
		if s.minute.Load() != minute {
			continue
		}
		n := s.requests.Load()
		c.PerMinute[i] = n
		c.Requests += n
		for k := 1; k < len(s.classes); k++ {
			if v := s.classes[k].Load(); v > 0 {
				c.Classes[classNames[k]] += v
			}
		}
		for k := range s.codes {
			if v := s.codes[k].Load(); v > 0 {
				c.Codes[errcodes.Code(k).String()] += v
			}
		}
	}
	return c
}
