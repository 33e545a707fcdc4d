package bench

import (
	"bufio"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Series is one named latency distribution to plot.
type Series struct {
	// Name labels the curve in the legend of the PNG and of the HTML page.
	Name string
	// Hist holds the latencies.
	Hist *Hist
}

// Plot geometry, shared by the PNG and the SVG so they look alike.
const (
	// PlotWidth and PlotHeight are the size in pixels of the PNG and the SVG.
	PlotWidth  = 800
	PlotHeight = 480

	plotLeft   = 86 // room for 6-character tick labels in the PNG's font
	plotRight  = PlotWidth - 24
	plotTop    = 24
	plotBottom = PlotHeight - 44
	plotNines  = 4   // the x axis runs from percentile 0 to 99.99
	plotSteps  = 400 // samples per curve
)

// plotColors are the curve colours in series order: blue, orange, green, red.
var plotColors = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

// plotTicks are the x ticks, in nines: percentile 0, 90, 99, 99.9, 99.99.
var plotTicks = []string{"0", "90", "99", "99.9", "99.99"}

// nines maps percentile p to the x axis: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3.
func nines(p float64) float64 { return -math.Log10(1 - min(p, 99.9999)/100) }

// curve samples the percentile curve of h: x in nines, y in milliseconds.
func curve(h *Hist) (xs, ys []float64) {
	ps := make([]float64, plotSteps+1)
	for i := range ps {
		x := plotNines * float64(i) / plotSteps
		xs = append(xs, x)
		ps[i] = 100 * (1 - math.Pow(10, -x))
	}
	for _, d := range h.percentiles(ps) {
		ys = append(ys, ms(d))
	}
	return xs, ys
}

// percentiles returns h.Percentile of each of ps, which must be ascending,
// in one pass over the buckets instead of one pass each.
func (h *Hist) percentiles(ps []float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if h.count == 0 {
		return out
	}
	i, seen := 0, int64(0)
	for j, p := range ps {
		rank := max(int64(math.Ceil(min(max(p, 0), 100)/100*float64(h.count))), 1)
		for i < len(h.counts)-1 && seen+h.counts[i] < rank {
			seen += h.counts[i]
			i++
		}
		out[j] = time.Duration(min(max(histUpper(i), h.min), h.max))
	}
	return out
}

// yScale returns the top of the y axis and the tick step, in milliseconds:
// round numbers (1, 2 or 5 × 10^k) covering every series up to p99.99.
func yScale(series []Series) (top, step float64) {
	var hi float64
	for _, s := range series {
		hi = max(hi, ms(s.Hist.Percentile(100*(1-math.Pow(10, -plotNines)))))
	}
	if hi <= 0 {
		hi = 1
	}
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Ceil(hi/step-1e-9) * step, step
}

// tickLabel formats a y tick with as many decimals as step needs.
func tickLabel(v, step float64) string {
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// plotX and plotY map data to pixel coordinates.
func plotX(x float64) float64 { return plotLeft + x/plotNines*(plotRight-plotLeft) }
func plotY(y, top float64) float64 {
	return plotBottom - y/top*(plotBottom-plotTop)
}

// WritePNG draws the percentile curves of series (at most four colours,
// then they repeat) as a PlotWidth × PlotHeight PNG: x is the percentile on
// a "nines" scale (0, 90, 99, 99.9, 99.99), y the latency in ms. A legend
// at the top left names each series next to its colour.
func WritePNG(w io.Writer, series ...Series) error {
	img := image.NewRGBA(image.Rect(0, 0, PlotWidth, PlotHeight))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	grid := color.RGBA{225, 225, 225, 255}
	top, step := yScale(series)
	for i := range plotTicks {
		x := int(plotX(float64(i)))
		line(img, x, plotTop, x, plotBottom, grid, 1)
		line(img, x, plotBottom, x, plotBottom+5, plotInk, 1)
		lbl := plotTicks[i]
		text(img, lbl, min(x-textWidth(lbl)/2, PlotWidth-2-textWidth(lbl)), plotBottom+10, plotInk, false)
	}
	text(img, "percentile (%)", (plotLeft+plotRight)/2, plotBottom+26, plotInk, true)
	for v := 0.0; v <= top+step/2; v += step {
		y := int(plotY(v, top))
		line(img, plotLeft, y, plotRight, y, grid, 1)
		line(img, plotLeft-5, y, plotLeft, y, plotInk, 1)
		lbl := tickLabel(v, step)
		text(img, lbl, plotLeft-10-textWidth(lbl), y-fontH*fontScale/2, plotInk, false)
	}
	text(img, "latency (ms)", plotLeft+6, plotTop-19, plotInk, false)
	line(img, plotLeft, plotTop, plotLeft, plotBottom, plotInk, 1)
	line(img, plotLeft, plotBottom, plotRight, plotBottom, plotInk, 1)
	for i, s := range series {
		c := plotColors[i%len(plotColors)]
		xs, ys := curve(s.Hist)
		for j := 1; j < len(xs); j++ {
			line(img, int(plotX(xs[j-1])), int(plotY(ys[j-1], top)), int(plotX(xs[j])), int(plotY(ys[j], top)), c, 2)
		}
	}
	legendPNG(img, series)
	return png.Encode(w, img)
}

// plotInk is the colour of the PNG's axes and text.
var plotInk = color.RGBA{40, 40, 40, 255}

// PNG legend geometry: swatches start at legendLeft, names at legendText,
// one row every legendRow pixels from plotTop+8.
const (
	legendLeft = plotLeft + 12
	legendText = legendLeft + 26
	legendRow  = (fontLine + 2) * fontScale
)

// legendPNG draws the legend of WritePNG on a white box over the curves:
// per series, in order, a swatch of its colour and its name.
func legendPNG(img *image.RGBA, series []Series) {
	if len(series) == 0 {
		return
	}
	wide := 0
	for _, s := range series {
		wide = max(wide, textWidth(fitText(s.Name, plotRight-legendText)))
	}
	box := image.Rect(legendLeft-6, plotTop+2, min(legendText+wide+6, plotRight), plotTop+10+len(series)*legendRow)
	draw.Draw(img, box, image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, s := range series {
		y := plotTop + 8 + i*legendRow
		sw := image.Rect(legendLeft, y+2, legendLeft+20, y+12)
		draw.Draw(img, sw, image.NewUniform(plotColors[i%len(plotColors)]), image.Point{}, draw.Src)
		text(img, fitText(s.Name, plotRight-legendText), legendText, y, plotInk, false)
	}
}

// line draws a line of the given thickness (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, thick int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		for i := range thick {
			for j := range thick {
				img.SetRGBA(x0+i, y0+j, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// tablePercentiles are the rows of the HTML table.
var tablePercentiles = []struct {
	name string
	p    float64
}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"p99.99", 99.99}}

// WriteHTML writes a self-contained HTML page (no scripts, no external
// resources) with title, an inline SVG of the same percentile curves as
// WritePNG and a table of percentiles in ms, one column per series.
func WriteHTML(w io.Writer, title string, series ...Series) error {
	bw := bufio.NewWriter(w)
	t := html.EscapeString(title)
	fmt.Fprintf(bw, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n", t)
	bw.WriteString("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}" +
		"td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}</style></head><body>\n")
	fmt.Fprintf(bw, "<h1>%s</h1>\n", t)
	writeSVG(bw, series)
	bw.WriteString("<table>\n<tr><th>latency (ms)</th>")
	for _, s := range series {
		fmt.Fprintf(bw, "<th>%s</th>", html.EscapeString(s.Name))
	}
	bw.WriteString("</tr>\n")
	row := func(name string, f func(*Hist) string) {
		fmt.Fprintf(bw, "<tr><th>%s</th>", name)
		for _, s := range series {
			fmt.Fprintf(bw, "<td>%s</td>", f(s.Hist))
		}
		bw.WriteString("</tr>\n")
	}
	for _, tp := range tablePercentiles {
		row(tp.name, func(h *Hist) string { return fmtMS(h.Percentile(tp.p)) })
	}
	row("max", func(h *Hist) string { return fmtMS(h.Max()) })
	row("requests", func(h *Hist) string { return strconv.FormatInt(h.Count(), 10) })
	bw.WriteString("</table>\n</body></html>\n")
	return bw.Flush()
}

// fmtMS formats d in milliseconds with three decimals.
func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(ms(d), 'f', 3, 64)
}

// writeSVG writes the <svg> element of WriteHTML.
func writeSVG(w *bufio.Writer, series []Series) {
	fmt.Fprintf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "+
		"font-family=\"sans-serif\" font-size=\"12\">\n", PlotWidth, PlotHeight, PlotWidth, PlotHeight)
	fmt.Fprintf(w, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", PlotWidth, PlotHeight)
	top, step := yScale(series)
	for i, lbl := range plotTicks {
		x := plotX(float64(i))
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e1e1e1\"/>", x, plotTop, x, plotBottom)
		fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, plotBottom+18, lbl)
	}
	fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile (%%)</text>\n",
		(plotLeft+plotRight)/2, plotBottom+36)
	for v := 0.0; v <= top+step/2; v += step {
		y := plotY(v, top)
		fmt.Fprintf(w, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e1e1e1\"/>", plotLeft, y, plotRight, y)
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", plotLeft-8, y+4, tickLabel(v, step))
	}
	fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">ms</text>\n", plotLeft-8, plotTop-8)
	fmt.Fprintf(w, "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#282828\"/>\n", plotLeft, plotTop, plotBottom, plotRight)
	for i, s := range series {
		c := plotColors[i%len(plotColors)]
		hex := fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
		xs, ys := curve(s.Hist)
		var pts strings.Builder
		for j := range xs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", plotX(xs[j]), plotY(ys[j], top))
		}
		fmt.Fprintf(w, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", hex, strings.TrimSpace(pts.String()))
		y := plotTop + 14 + 18*i
		fmt.Fprintf(w, "<rect x=\"%d\" y=\"%d\" width=\"20\" height=\"10\" fill=\"%s\"/>", plotLeft+12, y-9, hex)
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\">%s</text>\n", plotLeft+38, y, html.EscapeString(s.Name))
	}
	w.WriteString("</svg>\n")
}
