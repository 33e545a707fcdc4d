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

// TestWritePNGLegend: the PNG names its series (issue 9: its legend was
// colour swatches without text). Two plots of the same data differ only
// in the names, and only in the legend, right of the swatches.
func TestWritePNGLegend(t *testing.T) {
	t.Parallel()
	draw := func(names ...string) *image.RGBA {
		var series []Series
		for i, n := range names {
			series = append(series, Series{n, testHist(time.Duration(i+1) * time.Millisecond)})
		}
		var buf bytes.Buffer
		require.NoError(t, WritePNG(&buf, series...))
		img, err := png.Decode(&buf)
		require.NoError(t, err)
		return img.(*image.RGBA)
	}
	a, b := draw("direct", "router"), draw("A http://127.0.0.1:1/", "B http://127.0.0.1:2/")
	// The legend's box, from the swatches to the right end of the plot.
	legend := image.Rect(legendLeft-6, plotTop+2, plotRight, plotTop+10+2*legendRow)
	var inside, outside int
	for i := 0; i < len(a.Pix); i += 4 {
		if !bytes.Equal(a.Pix[i:i+4], b.Pix[i:i+4]) {
			if image.Pt(i/4%PlotWidth, i/4/PlotWidth).In(legend) {
				inside++
			} else {
				outside++
			}
		}
	}
	assert.Greater(t, inside, 100, "pixels of the legend that differ with the names")
	assert.Zero(t, outside, "pixels outside the legend that differ with the names")

	ink := 0
	for y := legend.Min.Y; y < legend.Max.Y; y++ {
		for x := legendText; x < legendText+textWidth("direct"); x++ {
			if a.RGBAAt(x, y) == plotInk {
				ink++
			}
		}
	}
	assert.Greater(t, ink, 2*5*fontScale*fontScale, "dots of \"direct\" in the legend")
}

func TestFont(t *testing.T) {
	t.Parallel()
	for r := rune(' '); r <= '~'; r++ {
		g, ok := font[r]
		if !assert.Truef(t, ok, "no glyph for %q", r) {
			continue
		}
		rows := strings.Split(g, " ")
		assert.Lenf(t, rows, fontH, "rows of %q", r)
		for _, row := range rows {
			assert.Regexpf(t, `^[#.]{5}$`, row, "row of %q", r)
		}
		if r != ' ' {
			assert.Containsf(t, g, "#", "glyph %q is empty", r)
		}
	}
	assert.Len(t, font, '~'-' '+1, "printable ASCII, nothing else")
	assert.Equal(t, 6*fontAdvance*fontScale-fontScale, textWidth("direct"))
	assert.Equal(t, "abc...", fitText("abcdefghijklmnop", textWidth("abcdef")))
	assert.Equal(t, "abc", fitText("abc", 1000))
}
