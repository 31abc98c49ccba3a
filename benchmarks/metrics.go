// Package benchmarks owns vidmatte's speed and matte-quality harness: the
// generator of benchmark clips whose true alpha is known, the matting
// metrics (MAD, MSE, Grad, Conn, dtSSD and a flicker figure that needs no
// truth), the baselines a run is measured against (the naive
// "ffmpeg CLI + one model call per image file" pipeline, FFmpeg's own
// chromakey and colorkey filters, the engine without temporal smoothing),
// and the report: Markdown, SVG charts, a contact sheet and JSON results
// that two runs can be compared by.
//
// The package drives the engine and the models package through their
// public APIs and the ffmpeg command-line tool through os/exec; it imports
// neither go-astiav nor onnxruntime_go.
package benchmarks

import (
	"math"
)

// The metrics follow the definitions of the video-matting literature (the
// evaluation of Robust Video Matting on VideoMatte240K): alphas are in
// 0..1, MAD and MSE are reported ×1e3, Grad and Conn ÷1e3 (they are sums
// over the frame, so they grow with its size), dtSSD ×1e2.

// MAD is the mean absolute difference of pred and truth, ×1e3.
func MAD(pred, truth []float64) float64 {
	checkSameLen(pred, truth)
	if len(pred) == 0 {
		return 0
	}
	var s float64
	for i, p := range pred {
		s += math.Abs(p - truth[i])
	}
	return s / float64(len(pred)) * 1e3
}

// MSE is the mean squared difference of pred and truth, ×1e3.
func MSE(pred, truth []float64) float64 {
	checkSameLen(pred, truth)
	if len(pred) == 0 {
		return 0
	}
	var s float64
	for i, p := range pred {
		d := p - truth[i]
		s += d * d
	}
	return s / float64(len(pred)) * 1e3
}

// GradSigma is the standard deviation of the Gaussian-derivative filters
// Grad uses.
const GradSigma = 1.4

// gradKernel is the 1-D Gaussian g and its derivative dg of the Grad
// metric. The 2-D x filter is the outer product g(row)·dg(column) divided
// by its Frobenius norm; the y filter is its transpose. Half-size:
// ceil(σ·sqrt(−2·ln(sqrt(2π)·σ·ε))) with ε = 0.01, which is 4 for σ = 1.4.
type gradKernel struct {
	g, dg []float64
	half  int
}

var gradK = newGradKernel(GradSigma)

func newGradKernel(sigma float64) gradKernel {
	const eps = 1e-2
	half := int(math.Ceil(sigma * math.Sqrt(-2*math.Log(math.Sqrt(2*math.Pi)*sigma*eps))))
	g := make([]float64, 2*half+1)
	dg := make([]float64, 2*half+1)
	var sg, sdg float64
	for i := range g {
		x := float64(i - half)
		g[i] = math.Exp(-x*x/(2*sigma*sigma)) / (sigma * math.Sqrt(2*math.Pi))
		dg[i] = -x * g[i] / (sigma * sigma)
		sg += g[i] * g[i]
		sdg += dg[i] * dg[i]
	}
	// The 2-D filter's norm is sqrt(Σg²·Σdg²); fold it into dg.
	norm := math.Sqrt(sg * sdg)
	for i := range dg {
		dg[i] /= norm
	}
	return gradKernel{g: g, dg: dg, half: half}
}

// Grad is the gradient error: both mattes are min-max normalized to 0..1
// (a constant matte becomes all zeros), their gradient magnitudes are taken
// with Gaussian-derivative filters (σ = 1.4, replicated borders), and the
// squared differences of the magnitudes are summed, ÷1e3.
func Grad(pred, truth []float64, w, h int) float64 {
	checkSameLen(pred, truth)
	checkSize(pred, w, h)
	pg := gradMagnitude(minMaxNormalize(pred), w, h)
	tg := gradMagnitude(minMaxNormalize(truth), w, h)
	var s float64
	for i := range pg {
		d := pg[i] - tg[i]
		s += d * d
	}
	return s / 1e3
}

// minMaxNormalize returns a copy of a stretched to 0..1 (all zeros when a
// is constant), as OpenCV's NORM_MINMAX does.
func minMaxNormalize(a []float64) []float64 {
	out := make([]float64, len(a))
	if len(a) == 0 {
		return out
	}
	lo, hi := a[0], a[0]
	for _, v := range a {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo <= 2.220446049250313e-16 {
		return out
	}
	scale := 1 / (hi - lo)
	for i, v := range a {
		out[i] = (v - lo) * scale
	}
	return out
}

// gradMagnitude filters a with the x and y Gaussian-derivative filters
// (correlation, replicated borders) and returns sqrt(fx²+fy²).
func gradMagnitude(a []float64, w, h int) []float64 {
	k := gradK
	// fx = rows with dg (along x), then columns with g (along y).
	// fy = rows with g, then columns with dg.
	rowDG := correlateRows(a, w, h, k.dg, k.half)
	rowG := correlateRows(a, w, h, k.g, k.half)
	fx := correlateCols(rowDG, w, h, k.g, k.half)
	fy := correlateCols(rowG, w, h, k.dg, k.half)
	for i := range fx {
		fx[i] = math.Sqrt(fx[i]*fx[i] + fy[i]*fy[i])
	}
	return fx
}

func correlateRows(a []float64, w, h int, k []float64, half int) []float64 {
	out := make([]float64, len(a))
	for y := range h {
		row := a[y*w : (y+1)*w]
		dst := out[y*w : (y+1)*w]
		for x := range w {
			var s float64
			for j, kv := range k {
				xx := min(max(x+j-half, 0), w-1)
				s += kv * row[xx]
			}
			dst[x] = s
		}
	}
	return out
}

func correlateCols(a []float64, w, h int, k []float64, half int) []float64 {
	out := make([]float64, len(a))
	for y := range h {
		dst := out[y*w : (y+1)*w]
		for i, kv := range k {
			yy := min(max(y+i-half, 0), h-1)
			src := a[yy*w : (yy+1)*w]
			for x := range dst {
				dst[x] += kv * src[x]
			}
		}
	}
	return out
}

// ConnStep is the step of the threshold sweep of Conn.
const ConnStep = 0.1

// Conn is the connectivity error. For each threshold t = 0.1, 0.2, … 1.0
// it takes the largest 4-connected component of the pixels where both
// mattes are ≥ t; a pixel's level l is the last threshold before the one
// at which it first falls out of that component (1 when it never does).
// With φ(a) = 1 − (a−l) where a−l ≥ 0.15 and 1 elsewhere, Conn is
// Σ|φ(truth) − φ(pred)|, ÷1e3.
func Conn(pred, truth []float64, w, h int) float64 {
	checkSameLen(pred, truth)
	checkSize(pred, w, h)
	n := len(pred)
	level := make([]float64, n)
	for i := range level {
		level[i] = -1
	}
	mask := make([]bool, n)
	labels := make([]int32, n)
	var stack []int32
	steps := int(math.Round(1 / ConnStep))
	for i := 1; i <= steps; i++ {
		// The thresholds are i·0.1 in float64 (0.30000000000000004 and
		// so on), as numpy's arange makes them.
		t := float64(i) * ConnStep
		prev := float64(i-1) * ConnStep
		for p := range n {
			mask[p] = truth[p] >= t && pred[p] >= t
		}
		largest := largestComponent(mask, labels, w, h, &stack)
		for p := range n {
			if level[p] == -1 && (largest == 0 || labels[p] != largest) {
				level[p] = prev
			}
		}
	}
	var s float64
	for p := range n {
		l := level[p]
		if l == -1 {
			l = 1
		}
		s += math.Abs(connPhi(truth[p]-l) - connPhi(pred[p]-l))
	}
	return s / 1e3
}

func connPhi(d float64) float64 {
	if d >= 0.15 {
		return 1 - d
	}
	return 1
}

// largestComponent labels the 4-connected components of mask in raster
// order (1, 2, …) and returns the label of the largest, the first one
// found on a tie, or 0 when mask is empty.
func largestComponent(mask []bool, labels []int32, w, h int, stack *[]int32) int32 {
	for i := range labels {
		labels[i] = 0
	}
	var next, best int32
	bestSize := 0
	for start := range mask {
		if !mask[start] || labels[start] != 0 {
			continue
		}
		next++
		labels[start] = next
		size := 0
		st := append((*stack)[:0], int32(start))
		for len(st) > 0 {
			p := int(st[len(st)-1])
			st = st[:len(st)-1]
			size++
			x, y := p%w, p/w
			for _, q := range [4][3]int{{x - 1, y, p - 1}, {x + 1, y, p + 1}, {x, y - 1, p - w}, {x, y + 1, p + w}} {
				if q[0] < 0 || q[0] >= w || q[1] < 0 || q[1] >= h {
					continue
				}
				if mask[q[2]] && labels[q[2]] == 0 {
					labels[q[2]] = next
					st = append(st, int32(q[2]))
				}
			}
		}
		*stack = st
		if size > bestSize {
			best, bestSize = next, size
		}
	}
	return best
}

// DtSSD is the temporal coherence error between two consecutive frames:
// sqrt(Σ((pred_t − pred_t−1) − (truth_t − truth_t−1))² / N), ×1e2.
func DtSSD(pred, predPrev, truth, truthPrev []float64) float64 {
	checkSameLen(pred, truth)
	checkSameLen(pred, predPrev)
	checkSameLen(truth, truthPrev)
	if len(pred) == 0 {
		return 0
	}
	var s float64
	for i := range pred {
		d := (pred[i] - predPrev[i]) - (truth[i] - truthPrev[i])
		s += d * d
	}
	return math.Sqrt(s/float64(len(pred))) * 1e2
}

// FlickerStill is the largest luma difference (0..255) between two
// consecutive input frames at which a pixel counts as unchanged for
// Flicker.
const FlickerStill = 3

// Flicker measures what a viewer sees as flicker, without ground truth:
// the mean absolute alpha change between two consecutive frames over the
// pixels whose luma changed by at most FlickerStill (the picture did not
// change there, so the matte should not either), ×1e3 like MAD. still is
// the fraction of pixels that counted; with none, Flicker is 0.
func Flicker(alpha, alphaPrev []float64, luma, lumaPrev []byte) (flicker, still float64) {
	checkSameLen(alpha, alphaPrev)
	if len(luma) != len(alpha) || len(lumaPrev) != len(alpha) {
		panic("benchmarks: luma and alpha sizes differ")
	}
	var s float64
	var n int
	for i := range alpha {
		d := int(luma[i]) - int(lumaPrev[i])
		if d < -FlickerStill || d > FlickerStill {
			continue
		}
		s += math.Abs(alpha[i] - alphaPrev[i])
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return s / float64(n) * 1e3, float64(n) / float64(len(alpha))
}

// Alpha converts an 8-bit matte to 0..1.
func Alpha(b []byte) []float64 {
	out := make([]float64, len(b))
	for i, v := range b {
		out[i] = float64(v) / 255
	}
	return out
}

func checkSameLen(a, b []float64) {
	if len(a) != len(b) {
		panic("benchmarks: mattes of different sizes")
	}
}

func checkSize(a []float64, w, h int) {
	if w < 0 || h < 0 || len(a) != w*h {
		panic("benchmarks: matte size does not match its dimensions")
	}
}
