package engine

// temporalFilter smooths a per-frame model's alpha in time, pixel by pixel,
// without smearing motion. Where the picture did not change since the last
// frame (small luma difference), the alpha moves only part of the way from
// its previous value towards the model's new one, which removes flicker;
// where the picture changed, the model's alpha is taken as it is, so moving
// edges stay sharp. Between the two, the step grows with the change.
type temporalFilter struct {
	w, h  int
	prevY []byte
	prevA []byte
	have  bool
}

// Smoothing constants. lumaStill and lumaMoving bound the luma difference
// (0..255) between "the same picture" (compression noise) and "motion";
// stillStep is the fraction (of 256) of the way a still pixel's alpha moves
// towards the model's each frame (about a 3-frame time constant).
const (
	lumaStill  = 4
	lumaMoving = 20
	stillStep  = 96
)

// stepTable maps a luma difference to the fraction (of 256) of the way the
// alpha moves.
var stepTable = func() (t [256]int32) {
	for d := range t {
		switch {
		case d <= lumaStill:
			t[d] = stillStep
		case d >= lumaMoving:
			t[d] = 256
		default:
			t[d] = stillStep + int32((256-stillStep)*(d-lumaStill)/(lumaMoving-lumaStill))
		}
	}
	return t
}()

func newTemporalFilter(w, h int) *temporalFilter {
	return &temporalFilter{w: w, h: h, prevY: make([]byte, w*h), prevA: make([]byte, w*h)}
}

// apply smooths alpha (w×h, tightly packed) in place, given the frame's
// luma plane, and remembers both for the next frame.
func (t *temporalFilter) apply(alpha, y []byte, yStride int) {
	w := t.w
	for r := 0; r < t.h; r++ {
		yr := y[r*yStride : r*yStride+w]
		pyr := t.prevY[r*w : (r+1)*w]
		ar := alpha[r*w : (r+1)*w]
		par := t.prevA[r*w : (r+1)*w]
		if t.have {
			for x, yv := range yr {
				d := int32(yv) - int32(pyr[x])
				if d < 0 {
					d = -d
				}
				step := stepTable[d]
				prev := int32(par[x])
				diff := int32(ar[x]) - prev
				// The step's size is rounded up, so the alpha always reaches
				// the model's value when that stays put.
				if diff >= 0 {
					ar[x] = byte(prev + (diff*step+255)>>8)
				} else {
					ar[x] = byte(prev - ((-diff)*step+255)>>8)
				}
			}
		}
		copy(pyr, yr)
		copy(par, ar)
	}
	t.have = true
}
