package engine

import "vidmatte/codec"

// temporalFilter smooths a per-frame model's alpha in time without
// smearing motion: each pixel's alpha becomes the median of the model's
// alphas for the frame before, this frame and the frame after, wherever
// the picture stays still across the three (luma changes by at most
// stillLuma); where it moves, the model's alpha is kept as it is.
//
// A median of three removes a one-frame reversal (the model's flicker:
// a pixel that flips and flips back) and leaves every monotonic sequence
// exactly as it was, so an edge sweeping across a pixel, hard or soft,
// arrives on time: nothing lags and nothing trails behind motion.
//
// It needs the next frame's alpha, so it holds one frame back: push gives
// the previous frame out, finish gives the last one.
type temporalFilter struct {
	w, h int
	// The model's alphas and the luma of the frames before (prev) and at
	// (cur) the held frame, tightly packed copies.
	rawPrev, rawCur []byte
	yPrev, yCur     []byte
	// The held frame and its alpha plane (which it will be written to).
	holding    bool
	held       *codec.Frame
	heldAlpha  []byte
	heldStride int
}

// stillLuma is the largest luma change (0..255) between frames that still
// counts as the same picture: compression noise, not motion.
const stillLuma = 6

func newTemporalFilter(w, h int) *temporalFilter {
	n := w * h
	return &temporalFilter{
		w: w, h: h,
		rawPrev: make([]byte, n), rawCur: make([]byte, n),
		yPrev: make([]byte, n), yCur: make([]byte, n),
	}
}

// push takes the next frame, its luma plane and its model alpha
// (frame-sized, rows of stride as), and gives out the frame held until now
// with its smoothed alpha (ok is false for the first frame). The filter
// owns f and alpha until it gives them back.
func (t *temporalFilter) push(f *codec.Frame, y []byte, ys int, alpha []byte, as int) (out *codec.Frame, outAlpha []byte, ok bool) {
	if !t.holding {
		t.hold(f, alpha, as, y, ys)
		copy(t.rawPrev, t.rawCur)
		copy(t.yPrev, t.yCur)
		return nil, nil, false
	}
	out, outAlpha = t.held, t.heldAlpha
	t.smooth(outAlpha, t.heldStride, alpha, as, y, ys)
	t.rawPrev, t.rawCur = t.rawCur, t.rawPrev
	t.yPrev, t.yCur = t.yCur, t.yPrev
	t.hold(f, alpha, as, y, ys)
	return out, outAlpha, true
}

// finish gives out the frame still held, with its alpha as the model gave
// it (a median with nothing after it is the value itself); ok is false
// when nothing is held.
func (t *temporalFilter) finish() (f *codec.Frame, alpha []byte, ok bool) {
	f, alpha, ok = t.held, t.heldAlpha, t.holding
	t.held, t.heldAlpha, t.heldStride, t.holding = nil, nil, 0, false
	return f, alpha, ok
}

// hold keeps f and alpha as the frame to be given out next, with copies of
// its alpha and luma.
func (t *temporalFilter) hold(f *codec.Frame, alpha []byte, as int, y []byte, ys int) {
	t.held, t.heldAlpha, t.heldStride, t.holding = f, alpha, as, true
	for r := 0; r < t.h; r++ {
		copy(t.rawCur[r*t.w:(r+1)*t.w], alpha[r*as:r*as+t.w])
		copy(t.yCur[r*t.w:(r+1)*t.w], y[r*ys:r*ys+t.w])
	}
}

// smooth writes the held frame's smoothed alpha into dst (rows of ds),
// from the model's alphas and lumas before, at and after it (next and
// yNext, with their strides).
func (t *temporalFilter) smooth(dst []byte, ds int, next []byte, ns int, yNext []byte, ys int) {
	w := t.w
	for r := 0; r < t.h; r++ {
		o := r * w
		a0, a1, a2 := t.rawPrev[o:o+w], t.rawCur[o:o+w], next[r*ns:r*ns+w]
		y0, y1, y2 := t.yPrev[o:o+w], t.yCur[o:o+w], yNext[r*ys:r*ys+w]
		d := dst[r*ds : r*ds+w]
		a0, a1, a2 = a0[:len(d)], a1[:len(d)], a2[:len(d)]
		y0, y1, y2 = y0[:len(d)], y1[:len(d)], y2[:len(d)]
		for x := range d {
			// Branch-free, on ints whose sign bits make the masks: where
			// pixels move and where they stay still is as unpredictable as
			// the picture, and a mispredicted branch per pixel costs more
			// than all of this arithmetic.
			p0, p1, p2 := int32(y0[x]), int32(y1[x]), int32(y2[x])
			d01, d12 := p1-p0, p2-p1
			d01 = (d01 ^ (d01 >> 31)) - (d01 >> 31)
			d12 = (d12 ^ (d12 >> 31)) - (d12 >> 31)
			moved := (stillLuma - d01) | (stillLuma - d12) // negative where either exceeds
			v0, v1, v2 := int32(a0[x]), int32(a1[x]), int32(a2[x])
			lo, hi := imin(v0, v1), imax(v0, v1)
			med := imax(lo, imin(hi, v2))
			mask := moved >> 31 // all ones where the picture moved
			d[x] = byte(med ^ ((med ^ v1) & mask))
		}
	}
}

// release gives back what the filter holds when a run ends early: the
// frame, and with it its alpha plane.
func (t *temporalFilter) release() {
	if f, _, ok := t.finish(); ok {
		f.Release()
	}
}

// imin and imax are branch-free for values of −2^30..2^30.
func imin(a, b int32) int32 { d := a - b; return b + (d & (d >> 31)) }
func imax(a, b int32) int32 { d := a - b; return a - (d & (d >> 31)) }
