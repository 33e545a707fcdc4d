package bench

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testHist holds 1..1000 ms, so p50 is 500 ms and p99 990 ms.
func testHist(scale time.Duration) *Hist {
	h := NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * scale)
	}
	return h
}

func TestWritePNG(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 2} {
		series := []Series{{"a", testHist(time.Millisecond)}, {"b", testHist(2 * time.Millisecond)}}[:n]
		var buf bytes.Buffer
		require.NoError(t, WritePNG(&buf, series...))
		img, err := png.Decode(&buf)
		require.NoErrorf(t, err, "%d series", n)
		assert.Equal(t, image.Rect(0, 0, PlotWidth, PlotHeight), img.Bounds())
		rgba, ok := img.(*image.RGBA)
		require.Truef(t, ok, "decoded as %T", img)
		colored := map[[3]uint8]int{}
		for i := 0; i < len(rgba.Pix); i += 4 {
			r, g, b := rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2]
			if r != g || g != b { // not white or grey: a curve or a swatch
				colored[[3]uint8{r, g, b}]++
			}
		}
		assert.Lenf(t, colored, n, "curve colours with %d series", n)
		for c, k := range colored {
			assert.Greaterf(t, k, 300, "pixels of colour %v", c)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	t.Parallel()
	a, b := testHist(time.Millisecond), testHist(3*time.Millisecond)
	var buf bytes.Buffer
	require.NoError(t, WriteHTML(&buf, "x <y>", Series{"direct", a}, Series{"router & co", b}))
	out := buf.String()
	for _, want := range []string{"<svg", "</svg>", "<polyline", "<table>", "x &lt;y&gt;", "router &amp; co",
		fmtMS(a.Percentile(99)), fmtMS(b.Percentile(99)), "<td>990.", "<td>297", "99.99"} {
		assert.Containsf(t, out, want, "page of %d bytes, table:\n%s", len(out), out[strings.Index(out, "<table>"):])
	}
	assert.Equal(t, 2, strings.Count(out, "<polyline"))
	assert.NotContains(t, out, "<script")
	assert.NotContains(t, out, "src=")
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	h := testHist(time.Millisecond)
	h.Record(time.Hour)
	ps := []float64{0, 1, 50, 50, 90, 99, 99.9, 99.99, 100}
	got := h.percentiles(ps)
	for i, p := range ps {
		assert.Equalf(t, h.Percentile(p), got[i], "p%v", p)
	}
	assert.Equal(t, []time.Duration{0}, NewHist().percentiles([]float64{50}))
}

func TestYScale(t *testing.T) {
	t.Parallel()
	top, step := yScale([]Series{{"a", testHist(time.Millisecond)}})
	assert.Equal(t, 1000.0, top)
	assert.Equal(t, 200.0, step)
	top, step = yScale(nil)
	assert.Equal(t, 1.0, top)
	assert.InDelta(t, 0.2, step, 1e-12)
	assert.Equal(t, "0.4", tickLabel(0.4, 0.2))
	assert.Equal(t, "400", tickLabel(400, 200))
	assert.InDelta(t, 2.0, nines(99), 1e-9)
}
