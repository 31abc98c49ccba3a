package engine

import (
	"math"
	"testing"
)

// TestDecontaminate: a red foreground estimate over a picture whose
// chroma is the old background's (greenish): chroma samples under a half
// matte take red's chroma (BT.601 and BT.709, video and full range), those
// under an opaque or a transparent matte keep theirs exactly.
func TestDecontaminate(t *testing.T) {
	const w, h = 12, 6
	cw, ch := w/2, h/2
	alpha := make([]byte, w*h)
	for y := range h {
		for x := range w {
			switch {
			case x >= 8:
				alpha[y*w+x] = 255
			case x >= 4:
				alpha[y*w+x] = 128
			}
		}
	}
	planar := make([]float32, 3*w*h)
	interleaved := make([]float32, 3*w*h)
	for i := range w * h {
		planar[i] = 1 // R; G and B stay 0
		interleaved[3*i] = 1
	}
	for _, tc := range []struct {
		bt709, full, interleaved bool
		kr, kb                   float64
		scale                    float64
	}{{false, false, false, 0.299, 0.114, 224}, {true, false, true, 0.2126, 0.0722, 224}, {true, true, false, 0.2126, 0.0722, 255}} {
		fg := planar
		if tc.interleaved {
			fg = interleaved
		}
		us := cw + 3
		u := make([]byte, us*ch)
		v := make([]byte, us*ch)
		for i := range u {
			u[i], v[i] = 70, 60
		}
		decontaminatePlanes(u, us, v, us, fg, tc.interleaved, alpha, w, w, h, tc.bt709, tc.full)
		wantU := 128 + tc.scale*(0-tc.kr)/(2*(1-tc.kb))
		wantV := 128 + tc.scale*(1-tc.kr)/(2*(1-tc.kr))
		for cy := range ch {
			for cx := range cw {
				gu, gv := float64(u[cy*us+cx]), float64(v[cy*us+cx])
				switch {
				case cx >= 2 && cx < 4: // under the half matte
					if math.Abs(gu-wantU) > 1.5 || math.Abs(gv-wantV) > 1.5 {
						t.Errorf("%+v: half matte at %d,%d: U,V %v,%v, want %.1f,%.1f", tc, cx, cy, gu, gv, wantU, wantV)
					}
				default:
					if gu != 70 || gv != 60 {
						t.Errorf("%+v: opaque or transparent at %d,%d: U,V changed to %v,%v", tc, cx, cy, gu, gv)
					}
				}
			}
		}
	}
}
