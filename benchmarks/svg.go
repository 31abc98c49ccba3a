package benchmarks

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// The charts are plain SVG written here: no plotting library, no script,
// readable in any browser and on the code host's file view.

// palette is the series colours (colour-blind-safe, Okabe–Ito order).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999", "#F0E442"}

func seriesColor(i int) string { return palette[i%len(palette)] }

// svgDoc accumulates an SVG document.
type svgDoc struct {
	w, h int
	b    strings.Builder
}

func newSVG(w, h int) *svgDoc {
	d := &svgDoc{w: w, h: h}
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&d.b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	return d
}

func (d *svgDoc) String() string { return d.b.String() + "</svg>\n" }

func (d *svgDoc) text(x, y float64, anchor, s string, extra string) {
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, extra, html.EscapeString(s))
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string, width float64, extra string) {
	fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.2g" %s/>`+"\n", x1, y1, x2, y2, stroke, width, extra)
}

func (d *svgDoc) rect(x, y, w, h float64, fill string, extra string) {
	fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" %s/>`+"\n", x, y, w, h, fill, extra)
}

// axis maps data values to pixels, linearly or logarithmically.
type axis struct {
	lo, hi  float64 // data range
	p0, p1  float64 // pixel range
	log     bool
	label   string
	integer bool // ticks on whole numbers only
}

func (a axis) pos(v float64) float64 {
	if a.log {
		v, lo, hi := math.Log10(math.Max(v, 1e-12)), math.Log10(a.lo), math.Log10(a.hi)
		return a.p0 + (v-lo)/(hi-lo)*(a.p1-a.p0)
	}
	return a.p0 + (v-a.lo)/(a.hi-a.lo)*(a.p1-a.p0)
}

// ticks returns tick values: 1-2-5 steps for linear axes, decades (and
// 2, 5 within them when few) for log axes.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		mults := []float64{1, 2, 5}
		if math.Log10(a.hi/a.lo) > 3 {
			mults = []float64{1} // wide ranges: decades only
		}
		for e := math.Floor(math.Log10(a.lo)); e <= math.Ceil(math.Log10(a.hi)); e++ {
			for _, m := range mults {
				v := m * math.Pow(10, e)
				if v >= a.lo*0.999 && v <= a.hi*1.001 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 5)
	if a.integer {
		step = math.Max(math.Round(step), 1)
	}
	for v := math.Ceil(a.lo/step) * step; v <= a.hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= raw {
			return m * e
		}
	}
	return 10 * e
}

// linearRange returns a linear axis range from 0 (or the data's minimum
// when it is negative) to a nice value above the maximum.
func linearRange(vals []float64) (lo, hi float64) {
	lo, hi = 0, 0
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	return math.Floor(lo/step) * step, math.Ceil(hi*1.05/step) * step
}

// logRange returns a log axis range covering the positive values, widened
// to whole 1-2-5 steps.
func logRange(vals []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v > 0 && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi*1.01)))
	return lo, hi
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 10000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%.0fk", v/1000)
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return trimZeros(fmt.Sprintf("%.1f", v))
	case math.Abs(v) >= 1:
		return trimZeros(fmt.Sprintf("%.2f", v))
	default:
		return trimZeros(fmt.Sprintf("%.3f", v))
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// frame draws the plot area's grid, ticks and axis labels.
func (d *svgDoc) frame(x, y axis, xCategorical bool) {
	left, right := x.p0, x.p1
	bottom, top := y.p0, y.p1
	for _, t := range y.ticks() {
		py := y.pos(t)
		d.line(left, py, right, py, "#e5e5e5", 1, "")
		d.text(left-6, py+4, "end", fmtTick(t), `fill="#444"`)
	}
	if !xCategorical {
		for _, t := range x.ticks() {
			px := x.pos(t)
			d.line(px, bottom, px, top, "#e5e5e5", 1, "")
			d.text(px, bottom+16, "middle", fmtTick(t), `fill="#444"`)
		}
	}
	d.line(left, bottom, right, bottom, "#333", 1, "")
	d.line(left, bottom, left, top, "#333", 1, "")
	d.text((left+right)/2, bottom+34, "middle", x.label, "")
	fmt.Fprintf(&d.b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", left-48, (top+bottom)/2, html.EscapeString(y.label))
}

func (d *svgDoc) title(s, sub string) {
	d.text(float64(d.w)/2, 22, "middle", s, `font-size="15" font-weight="bold"`)
	if sub != "" {
		d.text(float64(d.w)/2, 40, "middle", sub, `fill="#555"`)
	}
}

// legend draws coloured entries in a column at (x, y).
func (d *svgDoc) legend(x, y float64, names []string, colors []string, markers []string) {
	for i, n := range names {
		yy := y + float64(i)*18
		m := "circle"
		if i < len(markers) {
			m = markers[i]
		}
		d.marker(x+6, yy-4, m, colors[i], 5)
		d.text(x+16, yy, "start", n, "")
	}
}

// marker draws a point: circle, square, triangle or diamond.
func (d *svgDoc) marker(x, y float64, kind, color string, r float64) {
	switch kind {
	case "square":
		d.rect(x-r, y-r, 2*r, 2*r, color, `stroke="#222" stroke-width="0.6"`)
	case "triangle":
		fmt.Fprintf(&d.b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s" stroke="#222" stroke-width="0.6"/>`+"\n", x, y-r*1.2, x-r*1.1, y+r*0.8, x+r*1.1, y+r*0.8, color)
	case "diamond":
		fmt.Fprintf(&d.b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s" stroke="#222" stroke-width="0.6"/>`+"\n", x, y-r*1.3, x+r*1.1, y, x, y+r*1.3, x-r*1.1, y, color)
	default:
		fmt.Fprintf(&d.b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s" stroke="#222" stroke-width="0.6"/>`+"\n", x, y, r, color)
	}
}

// scatterPoint is one point of a scatter chart.
type scatterPoint struct {
	X, Y  float64
	Color string
	Group int    // marker
	Label string // drawn beside the point
}

// scatterChart draws points with a log x axis and a linear y axis.
// series and colors are the legend's entries, groups the markers'.
func scatterChart(title, sub, xLabel, yLabel string, pts []scatterPoint, series, colors, groups []string) string {
	const W, H = 800, 460
	d := newSVG(W, H)
	d.title(title, sub)
	var xs, ys []float64
	for _, p := range pts {
		xs, ys = append(xs, p.X), append(ys, p.Y)
	}
	xlo, xhi := logRange(xs)
	ylo, yhi := linearRange(ys)
	logY := false
	if lo, hi := logRange(ys); hi/lo > 100 {
		// Errors spanning orders of magnitude: a log axis keeps the good
		// ones apart.
		ylo, yhi, logY = lo, hi, true
		yLabel += ", log scale"
	}
	x := axis{lo: xlo, hi: xhi, p0: 80, p1: W - 220, log: true, label: xLabel}
	y := axis{lo: ylo, hi: yhi, p0: H - 60, p1: 56, log: logY, label: yLabel}
	d.frame(x, y, false)
	markers := []string{"circle", "square", "triangle", "diamond"}
	for _, p := range pts {
		if p.X <= 0 || math.IsNaN(p.Y) {
			continue
		}
		px, py := x.pos(p.X), y.pos(p.Y)
		d.marker(px, py, markers[p.Group%len(markers)], p.Color, 6)
		if p.Label != "" {
			d.text(px+9, py-7, "start", p.Label, `font-size="10" fill="#333"`)
		}
	}
	d.legend(W-205, 70, series, colors, nil)
	gm := make([]string, len(groups))
	gc := make([]string, len(groups))
	for i := range groups {
		gm[i] = markers[i%len(markers)]
		gc[i] = "#bbb"
	}
	d.legend(W-205, 90+18*float64(len(series)), groups, gc, gm)
	return d.String()
}

// barChart draws grouped vertical bars: one group per category, one bar
// per series (in its colour); NaN values are left out. ref, unless NaN,
// draws a dashed reference line at that value.
func barChart(title, sub, yLabel string, categories, series, colors []string, values [][]float64, ref float64) string {
	W := max(800, 300+len(categories)*max(150, 20+18*len(series)))
	const H = 450
	d := newSVG(W, H)
	d.title(title, sub)
	var all []float64
	for _, row := range values {
		all = append(all, row...)
	}
	// An outlier (say, a keyer on footage without a screen) would flatten
	// every other bar: the axis stops at a cap and taller bars are cut,
	// marked, and labelled with their value.
	capped := outlierCap(all)
	shown := make([]float64, 0, len(all))
	for _, v := range all {
		shown = append(shown, math.Min(v, capped))
	}
	ylo, yhi := linearRange(shown)
	right := float64(W - 220)
	x := axis{lo: 0, hi: 1, p0: 80, p1: right, label: ""}
	y := axis{lo: ylo, hi: yhi, p0: H - 80, p1: 56, label: yLabel}
	d.frame(x, y, true)
	if !math.IsNaN(ref) && ref >= ylo && ref <= yhi {
		d.line(80, y.pos(ref), right, y.pos(ref), "#444", 1, `stroke-dasharray="5,4"`)
	}
	groupW := (right - 80) / float64(max(len(categories), 1))
	barW := math.Min(28, (groupW-16)/float64(max(len(series), 1)))
	for ci, c := range categories {
		gx := 80 + groupW*float64(ci)
		start := gx + (groupW-barW*float64(len(series)))/2
		for si := range series {
			v := values[ci][si]
			if math.IsNaN(v) {
				continue
			}
			cut := v > yhi
			top, base := y.pos(math.Max(math.Min(v, yhi), 0)), y.pos(math.Max(ylo, 0))
			bx := start + barW*float64(si)
			d.rect(bx, top, barW-2, base-top, colors[si], "")
			if cut {
				// A white zigzag across the bar says it is cut.
				fmt.Fprintf(&d.b, `<polyline points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="white" stroke-width="2"/>`+"\n",
					bx, top+14, bx+(barW-2)/2, top+8, bx+barW-2, top+14)
			}
			if barW >= 14 || cut {
				d.text(bx+barW/2-1, top-3, "middle", fmtTick(roundSig(v, 3)), `font-size="9" fill="#333"`)
			}
		}
		// "set/name" on two lines: the name, then the set.
		if set, name, ok := strings.Cut(c, "/"); ok {
			d.text(gx+groupW/2, float64(H-80)+16, "middle", name, `font-size="11"`)
			d.text(gx+groupW/2, float64(H-80)+30, "middle", set, `font-size="10" fill="#666"`)
		} else {
			d.text(gx+groupW/2, float64(H-80)+16, "middle", c, `font-size="11"`)
		}
	}
	markers := make([]string, len(series))
	for i := range series {
		markers[i] = "square"
	}
	d.legend(right+15, 70, series, colors, markers)
	return d.String()
}

// outlierCap returns the value above which bars are cut: three times the
// upper quartile when the largest value exceeds that, +Inf otherwise.
func outlierCap(vals []float64) float64 {
	var v []float64
	for _, x := range vals {
		if !math.IsNaN(x) && !math.IsInf(x, 0) && x > 0 {
			v = append(v, x)
		}
	}
	if len(v) < 4 {
		return math.Inf(1)
	}
	sort.Float64s(v)
	q := v[(3*len(v))/4]
	if limit := 3 * q; v[len(v)-1] > limit {
		return limit
	}
	return math.Inf(1)
}

// lineChart draws one line per series (in its colour) over frame numbers.
// Series far above the others (a keyer on footage without a screen) are
// left out, so the others stay readable; the subtitle names them.
func lineChart(title, sub, xLabel, yLabel string, series, colors []string, values [][]float64) string {
	const W, H = 800, 400
	peaks := make([]float64, len(values))
	for i, s := range values {
		peaks[i] = math.Inf(-1)
		for _, v := range s {
			if !math.IsNaN(v) {
				peaks[i] = math.Max(peaks[i], v)
			}
		}
	}
	limit := math.Inf(1)
	if len(peaks) >= 3 {
		sorted := append([]float64(nil), peaks...)
		sort.Float64s(sorted)
		limit = 5 * sorted[len(sorted)/2]
	}
	var keptS, keptC, dropped []string
	var keptV [][]float64
	for i, s := range values {
		if peaks[i] > limit && limit > 0 {
			dropped = append(dropped, fmt.Sprintf("%s (up to %s)", series[i], fmtTick(roundSig(peaks[i], 3))))
			continue
		}
		keptS, keptC, keptV = append(keptS, series[i]), append(keptC, colors[i]), append(keptV, s)
	}
	series, colors, values = keptS, keptC, keptV
	if len(dropped) > 0 {
		sub += "; off the chart: " + strings.Join(dropped, ", ")
	}
	d := newSVG(W, H)
	d.title(title, sub)
	n := 0
	var all []float64
	for _, s := range values {
		n = max(n, len(s))
		all = append(all, s...)
	}
	ylo, yhi := linearRange(all)
	x := axis{lo: 0, hi: math.Max(float64(n-1), 1), p0: 80, p1: W - 220, label: xLabel, integer: true}
	y := axis{lo: ylo, hi: yhi, p0: H - 60, p1: 56, label: yLabel}
	d.frame(x, y, false)
	for si, s := range values {
		var pts []string
		for i, v := range s {
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x.pos(float64(i)), y.pos(v)))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&d.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[si])
		}
	}
	markers := make([]string, len(series))
	for i := range series {
		markers[i] = "square"
	}
	d.legend(W-205, 70, series, colors, markers)
	return d.String()
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
