package engine

import (
	"math"
	"testing"
)

// lowResAlpha returns the matte a model of inW×inH would give for the
// true matte truth (w×h, 0..255): the area mean of each model pixel,
// upscaled back to w×h bilinearly (what the refine stage's scaler does),
// so that every edge of truth becomes a ramp about two model pixels wide.
func lowResAlpha(truth []byte, w, h, inW, inH int) []byte {
	small := make([]float64, inW*inH)
	for sy := range inH {
		for sx := range inW {
			x0, x1 := sx*w/inW, (sx+1)*w/inW
			y0, y1 := sy*h/inH, (sy+1)*h/inH
			var s float64
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					s += float64(truth[y*w+x])
				}
			}
			small[sy*inW+sx] = s / float64((x1-x0)*(y1-y0))
		}
	}
	out := make([]byte, w*h)
	for y := range h {
		fy := math.Max((float64(y)+0.5)*float64(inH)/float64(h)-0.5, 0)
		y0 := min(int(fy), inH-1)
		y1 := min(y0+1, inH-1)
		wy := fy - float64(y0)
		for x := range w {
			fx := math.Max((float64(x)+0.5)*float64(inW)/float64(w)-0.5, 0)
			x0 := min(int(fx), inW-1)
			x1 := min(x0+1, inW-1)
			wx := fx - float64(x0)
			top := small[y0*inW+x0]*(1-wx) + small[y0*inW+x1]*wx
			bot := small[y1*inW+x0]*(1-wx) + small[y1*inW+x1]*wx
			out[y*w+x] = byte(math.Round(top*(1-wy) + bot*wy))
		}
	}
	return out
}

// TestGuidedFilterSharpensEdges: a person (bright, right of x = 203) in
// front of a dark wall, the true matte following that luma edge, and the
// matte a low-resolution model gives (the edge blurred over two model
// pixels). The guided filter brings the matte back onto the luma edge:
// its error in the edge band falls to under a third; away from the edge
// the matte is flat and comes back unchanged, bit for bit, although the
// luma there is textured (a checkerboard inside the person, noise on the
// wall). Both the subsampled path (model 8× smaller) and the full-
// resolution one (2×) are checked, with a padded luma stride.
func TestGuidedFilterSharpensEdges(t *testing.T) {
	const w, h, edge = 320, 240, 203
	for _, tc := range []struct{ inW, inH int }{{40, 30}, {160, 120}} {
		ys := w + 16
		y := make([]byte, ys*h)
		truth := make([]byte, w*h)
		for py := range h {
			for px := range w {
				v := 50 + (px*7+py*13)%5 // a wall with a little noise
				if px >= edge {
					v = 180
					if px > 260 && py > 120 && ((px/6)+(py/6))%2 == 0 {
						v = 120 // texture inside the person
					}
					truth[py*w+px] = 255
				}
				y[py*ys+px] = byte(v)
			}
		}
		alpha := lowResAlpha(truth, w, h, tc.inW, tc.inH)
		before := append([]byte(nil), alpha...)
		g := newGuidedFilter(w, h, tc.inW, tc.inH)
		g.apply(alpha, w, y, ys)

		f := float64(w) / float64(tc.inW)
		band := int(3 * f)
		reach := 2*g.r*g.s + 2*g.s // how far the filter's windows see
		var errBefore, errAfter float64
		n := 0
		for py := range h {
			for px := range w {
				i := py*w + px
				d := px - edge
				if d < 0 {
					d = -d
				}
				if d <= band {
					errBefore += math.Abs(float64(before[i]) - float64(truth[i]))
					errAfter += math.Abs(float64(alpha[i]) - float64(truth[i]))
					n++
				}
				if d > band+reach && alpha[i] != before[i] {
					t.Fatalf("model %dx%d: flat matte changed at (%d,%d): %d → %d", tc.inW, tc.inH, px, py, before[i], alpha[i])
				}
			}
		}
		mb, ma := errBefore/float64(n)/255, errAfter/float64(n)/255
		t.Logf("model %dx%d (s=%d, r=%d): MAD in the edge band %.4f → %.4f", tc.inW, tc.inH, g.s, g.r, mb, ma)
		if mb < 0.02 {
			t.Fatalf("the low-resolution matte is not blurred enough to test (MAD %.4f)", mb)
		}
		if ma > mb/3 {
			t.Errorf("model %dx%d: MAD in the edge band %.4f → %.4f: not sharpened", tc.inW, tc.inH, mb, ma)
		}
	}
}

// TestGuidedFilterFlatLuma: where the luma has no edge, there is nothing
// to follow: the filter leaves the matte's ramp about where it was (no
// step invented, nothing pushed out of 0..255).
func TestGuidedFilterFlatLuma(t *testing.T) {
	const w, h = 160, 120
	y := make([]byte, w*h)
	truth := make([]byte, w*h)
	for i := range y {
		y[i] = 90
		if i%w >= 80 {
			truth[i] = 255
		}
	}
	alpha := lowResAlpha(truth, w, h, 20, 15)
	before := append([]byte(nil), alpha...)
	newGuidedFilter(w, h, 20, 15).apply(alpha, w, y, w)
	var d float64
	for i := range alpha {
		d = math.Max(d, math.Abs(float64(alpha[i])-float64(before[i])))
	}
	if d > 40 {
		t.Fatalf("flat luma: the matte moved by up to %.0f", d)
	}
}
