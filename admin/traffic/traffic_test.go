package traffic

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/errcodes"
)

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 10, 0, time.UTC)
	w := New(t0)
	w.Record(t0, 200, errcodes.None)
	w.Record(t0.Add(time.Second), 503, errcodes.RequestTimeout)
	w.Record(t0.Add(2*time.Minute), 404, errcodes.None)
	w.Record(t0.Add(2*time.Minute), 400, errcodes.BadHeader)
	w.Record(t0.Add(2*time.Minute), 400, errcodes.BadChunk) // both H26
	s := w.Snapshot(t0.Add(2*time.Minute + 20*time.Second))
	assert.Equal(t, uint64(5), s.Requests)
	assert.Equal(t, []uint64{0, 0, 2, 0, 3}, s.PerMinute, "12:00 and 12:02, the minute in progress last")
	assert.Equal(t, map[string]uint64{"2xx": 1, "4xx": 3, "5xx": 1}, s.Statuses)
	assert.Equal(t, map[string]uint64{"H12": 1, "H26": 2}, s.Codes)
	assert.Equal(t, 140, s.WindowSeconds, "counting began at 12:00:10")

	later := t0.Add(6 * time.Minute) // 12:06:10: 12:00 and 12:01 have left the window
	w.Record(later, 200, errcodes.None)
	s = w.Snapshot(later)
	assert.Equal(t, []uint64{3, 0, 0, 0, 1}, s.PerMinute)
	assert.Equal(t, uint64(4), s.Requests)
	assert.Equal(t, map[string]uint64{"H26": 2}, s.Codes)
	assert.Equal(t, 4*60+10, s.WindowSeconds, "from 12:02:00")

	s = w.Snapshot(t0.Add(time.Hour))
	assert.Zero(t, s.Requests, "an hour later nothing is in the window")
	assert.Empty(t, s.Codes)
}

func TestCodesFit(t *testing.T) {
	for _, c := range errcodes.All() {
		require.Less(t, int(c), maxCodes, "errcodes.Code %v does not fit traffic's table: raise maxCodes", c)
	}
}

func TestWindowConcurrent(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	w := New(t0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				w.Record(t0.Add(time.Duration(g*1000+i)*time.Millisecond), 200, errcodes.None)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			w.Snapshot(t0.Add(3 * time.Second))
		}
	})
	wg.Wait()
	assert.Equal(t, uint64(4000), w.Snapshot(t0.Add(10*time.Second)).Requests)
}

func BenchmarkRecord(b *testing.B) {
	now := time.Now()
	w := New(now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(now, 200, errcodes.None)
		}
	})
}
