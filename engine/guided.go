package engine

// guidedFilter refines an alpha upscaled from a low-resolution model
// against the frame's full-resolution luma, with the box-filter machinery
// of the guided filter (He, Sun and Tang 2010; the fast, subsampled
// variant of He and Sun 2015). Within each window ω_k the upscaled alpha p
// is fitted as a linear function of the luma I,
//
//	a_k = cov_k(I, p) / (var_k(I) + ε)
//
// and the guided filter's output is q = Ā·I + mean(p)‾ − (a·Ī)‾ (bars: box
// means over the windows that cover a pixel). The blurred term mean(p)‾
// is what the plain filter keeps of the upscaled alpha; here the alpha
// itself is kept instead, and only the edge-aware term is added:
//
//	q = p + Ā·I − (a·Ī)‾
//
// Where p ramps across a luma edge (the upscaling's blur of a person's
// outline), a ≠ 0 and the added term is the luma edge scaled to the
// alpha's step: the ramp is pushed onto the edge, at the luma's
// resolution, and clamping to 0..1 keeps it there. Where p is flat (inside
// the person, in the background) cov(I, p) = 0, so a = 0 and q = p exactly:
// texture in the luma never leaks into a flat matte. Where the luma is flat
// (var(I) ≪ ε) a ≈ 0 too and p is left as it is, not blurred.
//
// a and a·Ī are computed on the frame subsampled by s (box means of s×s
// blocks) and upsampled bilinearly; every box filter is a running sum, O(1)
// a pixel whatever the radius. At full resolution only the bilinear
// upsampling and q = p + A·I − C remain.
type guidedFilter struct {
	w, h   int // the frame
	s      int // subsampling factor
	r      int // window radius at the subsampled size
	eps    float32
	sw, sh int // the subsampled size

	// Subsampled planes: guide, input, and the filter's intermediates.
	I, P, II, IP []float32
	a, b, tmp    []float32 // a, a·Ī (then their box means), scratch
	sums         []float32 // a row of column sums (box)
	// Upsampling: per frame column, the left sample and its weight; rows
	// of A and B interpolated between two subsampled rows.
	x0s        []int32
	fxs        []float32
	rowA, rowB []float32
}

// guidedEps is ε for luma and alpha in 0..1: a luma standard deviation of
// about 0.03 (8 grey levels) inside a window counts as an edge to follow;
// below that (compression noise, soft gradients) the filter only averages.
const guidedEps = 1e-3

// newGuidedFilter returns a filter for frames of w×h whose alpha comes
// from a model of inW×inH. The window's radius is two model pixels at
// frame resolution (the width of the upscaling's blur), and the
// subsampling is half a model pixel, so the fitted a and b still resolve
// the model's own detail.
func newGuidedFilter(w, h, inW, inH int) *guidedFilter {
	f := max(float64(w)/float64(max(inW, 1)), float64(h)/float64(max(inH, 1)), 1)
	radius := max(int(2*f+0.5), 2) // at frame resolution
	s := max(int(f/2), 1)
	g := &guidedFilter{w: w, h: h, s: s, r: max((radius+s/2)/s, 1), eps: guidedEps}
	g.sw, g.sh = (w+s-1)/s, (h+s-1)/s
	n := g.sw * g.sh
	for _, p := range []*[]float32{&g.I, &g.P, &g.II, &g.IP, &g.a, &g.b, &g.tmp} {
		*p = make([]float32, n)
	}
	g.sums = make([]float32, g.sw)
	g.rowA, g.rowB = make([]float32, g.sw), make([]float32, g.sw)
	g.x0s, g.fxs = make([]int32, w), make([]float32, w)
	inv := 1 / float32(s)
	for x := range w {
		fx := (float32(x)+0.5)*inv - 0.5
		x0 := int(fx)
		if fx < 0 {
			fx, x0 = 0, 0
		}
		if x0 >= g.sw-1 {
			x0, fx = g.sw-1, float32(g.sw-1)
		}
		g.x0s[x] = int32(x0)
		g.fxs[x] = fx - float32(x0)
	}
	return g
}

// apply refines alpha (w×h, rows of stride as) in place against the luma
// plane y (stride ys). Video-range luma is used as it is: a and b absorb
// any affine change of the guide.
func (g *guidedFilter) apply(alpha []byte, as int, y []byte, ys int) {
	g.subsample(g.I, y, ys)
	g.subsample(g.P, alpha, as)
	n := g.sw * g.sh
	for i := range n {
		g.II[i] = g.I[i] * g.I[i]
		g.IP[i] = g.I[i] * g.P[i]
	}
	mI, mP, mII, mIP := g.I, g.P, g.II, g.IP // box means, in place
	for _, p := range [][]float32{mI, mP, mII, mIP} {
		g.box(p)
	}
	for i := range n {
		v := mII[i] - mI[i]*mI[i]
		c := mIP[i] - mI[i]*mP[i]
		a := c / (max(v, 0) + g.eps)
		g.a[i] = a
		g.b[i] = a * mI[i]
	}
	g.box(g.a)
	g.box(g.b)
	g.upsampleApply(alpha, as, y, ys)
}

// subsample writes the s×s block means of src (w×h bytes, stride) into
// dst, scaled to 0..1.
func (g *guidedFilter) subsample(dst []float32, src []byte, stride int) {
	s := g.s
	for sy := range g.sh {
		y0, y1 := sy*s, min(sy*s+s, g.h)
		row := dst[sy*g.sw : (sy+1)*g.sw]
		clear(row)
		for y := y0; y < y1; y++ {
			line := src[y*stride : y*stride+g.w]
			if s == 1 {
				for x, v := range line {
					row[x] = float32(v)
				}
				continue
			}
			for sx := range row {
				var sum int
				for _, v := range line[sx*s : min(sx*s+s, g.w)] {
					sum += int(v)
				}
				row[sx] += float32(sum)
			}
		}
		for sx := range row {
			cnt := (y1 - y0) * (min(sx*s+s, g.w) - sx*s)
			row[sx] /= float32(cnt) * 255
		}
	}
}

// box replaces p (sw×sh) with its mean over (2r+1)² windows clipped to
// the plane: running sums along rows, then along columns.
func (g *guidedFilter) box(p []float32) {
	w, h, r := g.sw, g.sh, g.r
	t := g.tmp
	for y := range h {
		row, out := p[y*w:(y+1)*w], t[y*w:(y+1)*w]
		var sum float32
		for x := 0; x <= min(r, w-1); x++ {
			sum += row[x]
		}
		for x := range w {
			lo, hi := x-r, x+r
			out[x] = sum / float32(min(hi, w-1)-max(lo, 0)+1)
			if hi+1 < w {
				sum += row[hi+1]
			}
			if lo >= 0 {
				sum -= row[lo]
			}
		}
	}
	// Columns, several at a time for locality: a running sum per column.
	sums := g.sums
	clear(sums)
	for y := 0; y <= min(r, h-1); y++ {
		for x, v := range t[y*w : (y+1)*w] {
			sums[x] += v
		}
	}
	for y := range h {
		lo, hi := y-r, y+r
		inv := 1 / float32(min(hi, h-1)-max(lo, 0)+1)
		out := p[y*w : (y+1)*w]
		for x := range out {
			out[x] = sums[x] * inv
		}
		if hi+1 < h {
			for x, v := range t[(hi+1)*w : (hi+2)*w] {
				sums[x] += v
			}
		}
		if lo >= 0 {
			for x, v := range t[lo*w : (lo+1)*w] {
				sums[x] -= v
			}
		}
	}
}

// upsampleApply writes q = A·I + B at full resolution, A and B bilinear
// from the subsampled mean a and b (sample centres at the blocks'
// centres).
func (g *guidedFilter) upsampleApply(alpha []byte, as int, y []byte, ys int) {
	s := g.s
	if s == 1 {
		for py := range g.h {
			ar, br := g.a[py*g.w:(py+1)*g.w], g.b[py*g.w:(py+1)*g.w]
			yl := y[py*ys : py*ys+g.w]
			out := alpha[py*as : py*as+g.w]
			for x := range out {
				out[x] = toByte(float32(out[x]) + (ar[x]*float32(yl[x])/255-br[x])*255)
			}
		}
		return
	}
	inv := 1 / float32(s)
	x0s, fxs, rowA, rowB := g.x0s, g.fxs, g.rowA, g.rowB
	for py := range g.h {
		fy := (float32(py)+0.5)*inv - 0.5
		y0 := int(fy)
		if fy < 0 {
			fy, y0 = 0, 0
		}
		y1 := min(y0+1, g.sh-1)
		wy := fy - float32(y0)
		if y0 >= g.sh-1 {
			y0, y1, wy = g.sh-1, g.sh-1, 0
		}
		a0, a1 := g.a[y0*g.sw:(y0+1)*g.sw], g.a[y1*g.sw:(y1+1)*g.sw]
		b0, b1 := g.b[y0*g.sw:(y0+1)*g.sw], g.b[y1*g.sw:(y1+1)*g.sw]
		for i := range rowA {
			rowA[i] = a0[i] + wy*(a1[i]-a0[i])
			rowB[i] = b0[i] + wy*(b1[i]-b0[i])
		}
		yl := y[py*ys : py*ys+g.w]
		out := alpha[py*as : py*as+g.w]
		for x := range out {
			x0 := int(x0s[x])
			x1 := min(x0+1, g.sw-1)
			wx := fxs[x]
			A := rowA[x0] + wx*(rowA[x1]-rowA[x0])
			B := rowB[x0] + wx*(rowB[x1]-rowB[x0])
			out[x] = toByte(float32(out[x]) + (A*float32(yl[x])/255-B)*255)
		}
	}
}
