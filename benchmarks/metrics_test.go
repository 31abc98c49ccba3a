package benchmarks

import (
	"math"
	"testing"
)

func expectNear(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.6g, want %.6g (±%g)", what, got, want, tol)
	}
}

// pred = [0, .5, 1, 1], truth = [0, 1, 1, 0]:
// |d| = [0, .5, 0, 1], mean .375 → MAD 375;
// d² = [0, .25, 0, 1], mean .3125 → MSE 312.5.
func TestMADAndMSE(t *testing.T) {
	pred := []float64{0, 0.5, 1, 1}
	truth := []float64{0, 1, 1, 0}
	expectNear(t, "MAD", MAD(pred, truth), 375, 1e-9)
	expectNear(t, "MSE", MSE(pred, truth), 312.5, 1e-9)
	expectNear(t, "MAD(same)", MAD(truth, truth), 0, 0)
	expectNear(t, "MSE(same)", MSE(truth, truth), 0, 0)
}

// The filter for σ = 1.4 has half-size ceil(1.4·sqrt(−2·ln(sqrt(2π)·1.4·0.01)))
// = ceil(1.4·sqrt(−2·ln 0.035093)) = ceil(1.4·2.5883) = ceil(3.6236) = 4.
func TestGradKernel(t *testing.T) {
	if gradK.half != 4 || len(gradK.g) != 9 {
		t.Fatalf("half-size %d, %d taps; want 4, 9", gradK.half, len(gradK.g))
	}
	// g(0) = 1/(1.4·sqrt(2π)) = 1/3.50927 = 0.284959.
	expectNear(t, "g(0)", gradK.g[4], 0.284959, 1e-6)
}

// A vertical step edge (truth 0 left of column 10, 1 from it on) against a
// constant prediction (normalized to all zeros, so no gradient).
//
// With g(k) = exp(−k²/3.92)/3.50927 and dg(k) = −k·g(k)/1.96 for k = −4..4:
//
//	g  = .004810 .028686 .102713 .220797 .284959 .220797 .102713 .028686 .004810
//	dg = .009816 .043908 .104809 .112651 0 −.112651 −.104809 −.043908 −.009816
//
// Σg = 0.998971 (the y filter sums a column that does not change), and the
// 2-D norm is sqrt(Σg²·Σdg²) = sqrt(0.201505·0.051395) = 0.101768.
// At column x the x response is Σ dg(k) over the taps that land on the
// step, k ≥ 10−x: at x = 9 and 10 it is dg(1)+…+dg(4) = −0.271185; at 8
// and 11 −0.158533; at 7 and 12 −0.053724; at 6 and 13 −0.009816; 0
// further away. The y response is 0. So the truth's gradient magnitude
// per row is 0.998971/0.101768 × those: 2.661997 (twice), 1.556191
// (twice), 0.527368 (twice), 0.096360 (twice), whose squares sum to
// 2·(7.086226 + 2.421730 + 0.278117 + 0.009285) = 19.590716. With 6 rows:
// Grad = 6·19.590716/1000 = 0.117544.
func TestGradStepEdge(t *testing.T) {
	const w, h = 24, 6
	truth := make([]float64, w*h)
	for y := range h {
		for x := 10; x < w; x++ {
			truth[y*w+x] = 1
		}
	}
	pred := make([]float64, w*h)
	for i := range pred {
		pred[i] = 0.3 // constant: normalized to 0
	}
	expectNear(t, "Grad", Grad(pred, truth, w, h), 0.117544, 2e-6)
	// Symmetric in its arguments, and 0 for identical mattes.
	expectNear(t, "Grad swapped", Grad(truth, pred, w, h), 0.117544, 2e-6)
	expectNear(t, "Grad same", Grad(truth, truth, w, h), 0, 1e-12)
	// Min-max normalization: a matte scaled to 0..0.5 has the same
	// gradients as its 0..1 original after normalization.
	half := make([]float64, len(truth))
	for i, v := range truth {
		half[i] = v / 2
	}
	expectNear(t, "Grad scaled", Grad(half, truth, w, h), 0, 1e-12)
}

// One row of 6 pixels, truth all 1, pred = [1, 1, 1, 0, 1, .35].
// For t = .1, .2, .3 the pixels where both are ≥ t are {0,1,2} and {4,5};
// the largest component is {0,1,2}, so pixels 3, 4, 5 fall out at t = .1
// and get level 0. For t = .4 … 1.0 the components are {0,1,2} and {4}
// (pixel 5 is .35): {0,1,2} stays the largest; those pixels never fall
// out: level 1. So level = [1,1,1,0,0,0].
// truth − level = [0,0,0,1,1,1]  → φ(truth) = [1,1,1,0,0,0];
// pred − level = [0,0,0,0,1,.35] → φ(pred)  = [1,1,1,1,0,.65];
// Σ|φ(truth) − φ(pred)| = 1 + .65 = 1.65 → Conn = 0.00165.
func TestConnHandMade(t *testing.T) {
	truth := []float64{1, 1, 1, 1, 1, 1}
	pred := []float64{1, 1, 1, 0, 1, 0.35}
	expectNear(t, "Conn", Conn(pred, truth, 6, 1), 0.00165, 1e-12)
	expectNear(t, "Conn same", Conn(truth, truth, 6, 1), 0, 0)
}

// A 3×3 matte where the component must be 4-connected: truth all 1, pred
// 1 on a diagonal only (three components of one pixel each at every
// threshold; the first in raster order, pixel 0, is kept).
// Pixels 4 and 8 (and the zeros) fall out at t = .1: level 0; pixel 0
// keeps level 1.
// φ(truth): pixel 0: 1−(1−1)=1 (difference 0 < .15 → 1); others
// difference 1 → φ = 0. φ(pred): pixel 0 → 1; pixels 4, 8 → 0; the six
// zeros: difference 0 → 1. Σ|Δφ| = 6 → Conn = 0.006.
func TestConnFourConnectivity(t *testing.T) {
	truth := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}
	pred := []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}
	expectNear(t, "Conn", Conn(pred, truth, 3, 3), 0.006, 1e-12)
}

// Two 2×2 frames: pred changes by .1 at one pixel, truth does not change.
// Σ(Δpred − Δtruth)² = .01; / 4 = .0025; sqrt = .05; ×100 = 5.
// When pred follows truth exactly the error is 0.
func TestDtSSD(t *testing.T) {
	truth := []float64{0, 1, 1, 0}
	prev := []float64{0.2, 0.5, 0.5, 0.2}
	cur := []float64{0.3, 0.5, 0.5, 0.2}
	expectNear(t, "dtSSD", DtSSD(cur, prev, truth, truth), 5, 1e-9)
	truth2 := []float64{0.1, 1, 1, 0}
	expectNear(t, "dtSSD follows", DtSSD(cur, prev, truth2, []float64{0, 1, 1, 0}), 0, 1e-9)
}

// Luma: pixels 0–2 unchanged or within 3 levels, pixel 3 changed by 10.
// Alpha changes by .2 at pixel 0, by .5 at pixel 3 (which does not count).
// Still pixels: 3 of 4 (still = .75); mean |Δα| over them = .2/3 →
// flicker = 66.667.
func TestFlicker(t *testing.T) {
	lumaPrev := []byte{100, 50, 50, 50}
	luma := []byte{100, 53, 47, 60}
	prev := []float64{0.5, 1, 0, 0}
	cur := []float64{0.7, 1, 0, 0.5}
	f, still := Flicker(cur, prev, luma, lumaPrev)
	expectNear(t, "flicker", f, 200.0/3, 1e-9)
	expectNear(t, "still", still, 0.75, 1e-12)
	f, still = Flicker(cur, prev, []byte{0, 0, 0, 0}, []byte{255, 255, 255, 255})
	if f != 0 || still != 0 {
		t.Errorf("no still pixel: flicker %g still %g, want 0 0", f, still)
	}
}
