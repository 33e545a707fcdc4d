package router

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spacerouter/spacerouter/errcodes"
)

func TestTrafficCountsTheLastFiveMinutes(t *testing.T) {
	start := time.Date(2026, 12, 6, 10, 0, 30, 0, time.UTC)
	tr := newTraffic(start)

	c := tr.counts(start)
	assert.Zero(t, c.Window)
	assert.Zero(t, c.Requests)

	tr.add(start, 2, errcodes.None)
	tr.add(start.Add(10*time.Second), 5, errcodes.RequestTimeout)
	tr.add(start.Add(70*time.Second), 5, errcodes.RequestTimeout)
	tr.add(start.Add(75*time.Second), 4, errcodes.None)

	now := start.Add(80 * time.Second)
	c = tr.counts(now)
	assert.Equal(t, 80*time.Second, c.Window, "the window is the time run while under 5 minutes")
	assert.Equal(t, uint64(4), c.Requests)
	assert.Equal(t, [TrafficMinutes]uint64{0, 0, 0, 2, 2}, c.PerMinute)
	assert.Equal(t, map[string]uint64{"2xx": 1, "4xx": 1, "5xx": 2}, c.Classes)
	assert.Equal(t, map[string]uint64{"H12": 2}, c.Codes)

	// Four minutes on, the first minute has left the window, and the slot
	// it used is cleared before the minute that reuses it counts.
	now = start.Add(5*time.Minute + 5*time.Second)
	tr.add(now, 2, errcodes.None)
	c = tr.counts(now)
	assert.Equal(t, TrafficMinutes*time.Minute, c.Window)
	assert.Equal(t, uint64(3), c.Requests)
	assert.Equal(t, [TrafficMinutes]uint64{2, 0, 0, 0, 1}, c.PerMinute)
	assert.Equal(t, map[string]uint64{"H12": 1}, c.Codes)

	now = start.Add(6*time.Minute + 5*time.Second)
	tr.add(now, 2, errcodes.None)
	c = tr.counts(now)
	assert.Equal(t, [TrafficMinutes]uint64{0, 0, 0, 1, 1}, c.PerMinute)
	assert.Equal(t, map[string]uint64{"2xx": 2}, c.Classes)
	assert.Empty(t, c.Codes)

	// Much later, nothing of before is counted.
	c = tr.counts(start.Add(time.Hour))
	assert.Zero(t, c.Requests)
}
