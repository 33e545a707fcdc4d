package bench

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within asserts got is within rel (relative) of want.
func within(t *testing.T, want, got time.Duration, rel float64, msg string) {
	t.Helper()
	diff := float64(got - want)
	if diff < 0 {
		diff = -diff
	}
	assert.LessOrEqualf(t, diff, rel*float64(want), "%s: want %v ± %.2f%%, got %v", msg, want, rel*100, got)
}

func TestHistIndex(t *testing.T) {
	t.Parallel()
	// Every value must land in a bucket whose bounds contain it, and the
	// bucket must be no wider than 1/1024 of the value.
	for _, v := range []int64{0, 1, 2047, 2048, 2049, 4095, 4096, 1e6, 20e6, 123456789, 1 << 39, 1<<40 - 1} {
		i := histIndex(v)
		up := histUpper(i)
		lo := int64(0)
		if i > 0 {
			lo = histUpper(i-1) + 1
		}
		require.LessOrEqualf(t, lo, v, "value %d bucket %d [%d,%d]", v, i, lo, up)
		require.GreaterOrEqualf(t, up, v, "value %d bucket %d [%d,%d]", v, i, lo, up)
		require.LessOrEqualf(t, float64(up-lo), float64(v)/1024+1, "value %d bucket too wide [%d,%d]", v, lo, up)
	}
	assert.Equal(t, histLen-1, histIndex(1<<50), "values past the range clamp to the last bucket")
}

func TestHist(t *testing.T) {
	t.Parallel()
	t.Run("empty", func(t *testing.T) {
		h := NewHist()
		assert.Zero(t, h.Count())
		assert.Zero(t, h.Percentile(50))
		assert.Zero(t, h.Min())
		assert.Zero(t, h.Max())
		assert.Zero(t, h.Mean())
	})
	t.Run("constant", func(t *testing.T) {
		h := NewHist()
		for range 1000 {
			h.Record(20 * time.Millisecond)
		}
		assert.EqualValues(t, 1000, h.Count())
		for _, p := range []float64{0, 50, 99, 99.9, 100} {
			assert.Equalf(t, 20*time.Millisecond, h.Percentile(p), "p%v of a constant", p)
		}
		assert.Equal(t, 20*time.Millisecond, h.Min())
		assert.Equal(t, 20*time.Millisecond, h.Max())
		assert.Equal(t, 20*time.Millisecond, h.Mean())
	})
	t.Run("uniform", func(t *testing.T) {
		// 1..100000 µs, each once: pN is N% of 100 ms.
		h := NewHist()
		for i := 1; i <= 100000; i++ {
			h.Record(time.Duration(i) * time.Microsecond)
		}
		for _, p := range []float64{1, 10, 50, 90, 99, 99.9} {
			want := time.Duration(p * float64(time.Millisecond))
			within(t, want, h.Percentile(p), 0.001, "uniform")
		}
		assert.Equal(t, time.Microsecond, h.Min())
		assert.Equal(t, 100*time.Millisecond, h.Max())
		within(t, 50*time.Millisecond, h.Mean(), 0.001, "uniform mean")
	})
	t.Run("bimodal", func(t *testing.T) {
		// 90 % at 1 ms, 10 % at 300 ms, shuffled.
		h := NewHist()
		r := rand.New(rand.NewPCG(1, 2))
		vals := make([]time.Duration, 0, 10000)
		for i := range 10000 {
			if i%10 == 0 {
				vals = append(vals, 300*time.Millisecond)
			} else {
				vals = append(vals, time.Millisecond)
			}
		}
		r.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
		for _, v := range vals {
			h.Record(v)
		}
		within(t, time.Millisecond, h.Percentile(50), 0.001, "bimodal p50")
		within(t, time.Millisecond, h.Percentile(90), 0.001, "bimodal p90")
		within(t, 300*time.Millisecond, h.Percentile(91), 0.001, "bimodal p91")
		within(t, 300*time.Millisecond, h.Percentile(99), 0.001, "bimodal p99")
		assert.Equal(t, 300*time.Millisecond, h.Max())
	})
	t.Run("merge", func(t *testing.T) {
		a, b, all := NewHist(), NewHist(), NewHist()
		for i := 1; i <= 5000; i++ {
			d := time.Duration(i) * 7 * time.Microsecond
			all.Record(d)
			if i%2 == 0 {
				a.Record(d)
			} else {
				b.Record(d)
			}
		}
		a.Merge(b)
		a.Merge(NewHist())
		assert.Equal(t, all.Count(), a.Count())
		assert.Equal(t, all.Min(), a.Min())
		assert.Equal(t, all.Max(), a.Max())
		assert.Equal(t, all.Mean(), a.Mean())
		for _, p := range []float64{50, 90, 99, 99.9} {
			assert.Equalf(t, all.Percentile(p), a.Percentile(p), "merged p%v", p)
		}
	})
	t.Run("huge value", func(t *testing.T) {
		h := NewHist()
		h.Record(time.Hour)
		h.Record(-time.Second)
		assert.Equal(t, time.Hour, h.Max(), "max is exact past the bucketed range")
		assert.Equal(t, time.Duration(0), h.Min(), "negative values count as zero")
	})
}

func BenchmarkHistRecord(b *testing.B) {
	h := NewHist()
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d += 997
		h.Record(d % (50 * time.Millisecond))
	}
}
