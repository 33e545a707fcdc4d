package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout. Values are nanoseconds. Values below histSub are stored
// exactly; above it every power-of-two range is split into histHalf linear
// sub-buckets, so a bucket is never wider than 1/1024 of the values it holds
// (better than three significant digits, as in HdrHistogram).
const (
	histSubBits = 11
	histSub     = 1 << histSubBits // 2048 exact buckets for 0..2047 ns
	histHalf    = histSub / 2
	// histMaxBits bounds the trackable range: values up to 2^40 ns (about
	// 18 minutes) are bucketed; larger values land in the last bucket, while
	// Max still reports them exactly.
	histMaxBits = 40
	histLen     = histSub + (histMaxBits-histSubBits)*histHalf
)

// Hist is a fixed-size log-linear latency histogram in the style of
// HdrHistogram: recording is O(1) and allocation-free, memory is fixed (about
// 250 KiB), percentiles are accurate to 0.1 % of the value, and histograms
// merge by adding counts. The zero value is not usable; call [NewHist].
// A Hist is not safe for concurrent use.
type Hist struct {
	counts []int64
	count  int64
	sum    int64 // total of recorded values in ns, for Mean
	min    int64
	max    int64
}

// NewHist returns an empty histogram.
func NewHist() *Hist {
	return &Hist{counts: make([]int64, histLen), min: math.MaxInt64}
}

// histIndex returns the bucket of v (v >= 0).
func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits
	i := histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
	if i >= histLen {
		return histLen - 1
	}
	return i
}

// histUpper returns the highest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	m := int64((i-histSub)%histHalf + histHalf)
	return (m+1)<<shift - 1
}

// Record adds one value. Negative durations count as zero.
func (h *Hist) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)]++
	h.count++
	h.sum += v
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h.
func (h *Hist) Merge(o *Hist) {
	if o.count == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.count += o.count
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Hist) Count() int64 { return h.count }

// Min returns the smallest recorded value, or 0 if none.
func (h *Hist) Min() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max returns the largest recorded value exactly, or 0 if none.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact arithmetic mean, or 0 if nothing was recorded.
func (h *Hist) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / h.count)
}

// Percentile returns the value below or at which p percent (0..100) of the
// recorded values fall: the upper edge of the bucket holding that rank,
// clamped to [Min, Max]. It returns 0 for an empty histogram.
func (h *Hist) Percentile(p float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := int64(math.Ceil(p / 100 * float64(h.count)))
	rank = max(rank, 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(histUpper(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
