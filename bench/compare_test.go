package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	// 20 ms per request makes throughput latency-bound, so CPU contention
	// on a loaded machine (a benchmark running beside the tests) barely
	// moves the ratio; 1 ms made it swing from 0.65 to 1.9.
	a := newServer(t, "h1", delayHandler(20*time.Millisecond))
	b := newServer(t, "h1", delayHandler(20*time.Millisecond))
	cfg := func(url string) Config { return Config{URL: url, Conns: 4, Duration: 200 * time.Millisecond} }
	cmp, err := Compare(t.Context(), cfg(a.URL), cfg(b.URL), 4)
	require.NoError(t, err)
	require.Len(t, cmp.Rounds, 4)
	for i, r := range cmp.Rounds {
		assert.Equalf(t, i%2 == 0, r.AFirst, "round %d order", i)
		assert.Equal(t, a.URL, r.A.URL)
		assert.Equal(t, b.URL, r.B.URL)
		assert.InDelta(t, r.B.RPS/r.A.RPS, r.Ratio, 1e-9)
	}
	// Identical targets: near 1, with room for a noisy 2-core machine.
	assert.GreaterOrEqual(t, cmp.Median, 0.7, "median ratio of identical targets")
	assert.LessOrEqual(t, cmp.Median, 1.4, "median ratio of identical targets")

	total := cmp.Total(true)
	var sum int64
	for _, r := range cmp.Rounds {
		sum += r.A.Requests
	}
	assert.Equal(t, sum, total.Requests)
	assert.Equal(t, sum, total.Latency.Count())

	b2, err := json.Marshal(cmp.Summary())
	require.NoError(t, err)
	var got ComparisonSummary
	require.NoError(t, json.Unmarshal(b2, &got))
	assert.Len(t, got.Rounds, 4)
	assert.Equal(t, cmp.Median, got.MedianRatio)
	assert.Equal(t, sum, got.A.Requests)
}

func TestCompareArgs(t *testing.T) {
	t.Parallel()
	_, err := Compare(t.Context(), Config{URL: "http://x", Requests: 1}, Config{URL: "http://y", Requests: 1}, 0)
	assert.Error(t, err, "zero rounds")
	_, err = Compare(t.Context(), Config{URL: "http://x", Requests: 1}, Config{URL: "gopher://y", Requests: 1}, 1)
	assert.Error(t, err, "bad config B")
}

func TestMedian(t *testing.T) {
	t.Parallel()
	rs := func(xs ...float64) []Round {
		var out []Round
		for _, x := range xs {
			out = append(out, Round{Ratio: x})
		}
		return out
	}
	assert.Zero(t, median(nil))
	assert.Equal(t, 2.0, median(rs(3, 1, 2)))
	assert.Equal(t, 2.5, median(rs(4, 1, 3, 2)))
}
