package models

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// greenScreenScene is a synthetic picture with a known matte: a screen of
// the given colour (with a darker band, as a shadow would make) and a
// foreground of several colours whose border carries key-colour spill.
type scene struct {
	w, h   int
	screen [3]float64
	spill  [3]float64 // a unit of cast added to foreground pixels near the edge
}

// Regions of the scene (in pixels).
const (
	fgX0, fgY0, fgX1, fgY1 = 60, 40, 200, 200 // the foreground rectangle
	spillBand              = 4                // spill-tinted border width
	blendX0, blendX1       = 230, 260         // a 50/50 mix of grey and screen
	shadowY0, shadowY1     = 205, 235         // screen at 70% brightness
	bounceX0, bounceX1     = 170, 190         // grey lit by the screen, from y 120
	bounceY1               = 190
)

// truth returns the pixel's colour and alpha.
func (s scene) truth(x, y int) ([3]float64, float64) {
	if x >= fgX0 && x < fgX1 && y >= fgY0 && y < fgY1 {
		var c [3]float64
		switch {
		case x < 100:
			c = [3]float64{0.85, 0.64, 0.52} // skin
		case x < 130:
			c = [3]float64{0.5, 0.5, 0.5} // grey
		case x < 160:
			c = [3]float64{0.08, 0.08, 0.1} // dark hair
		case y < 120:
			c = [3]float64{0.95, 0.95, 0.95} // white shirt
		case x >= bounceX0 && x < bounceX1 && y < bounceY1:
			// grey lit by the screen: 20% of the screen's light
			for i := range 3 {
				c[i] = 0.8*0.5 + 0.2*s.screen[i]
			}
		default:
			c = [3]float64{0.7, 0.15, 0.15} // red
		}
		edge := min(x-fgX0, fgX1-1-x, y-fgY0, fgY1-1-y)
		if edge < spillBand {
			for i := range 3 {
				c[i] += s.spill[i]
			}
		}
		return c, 1
	}
	if x >= blendX0 && x < blendX1 && y >= fgY0 && y < fgY1 {
		var c [3]float64
		for i := range 3 {
			c[i] = 0.5*0.5 + 0.5*s.screen[i]
		}
		return c, 0.5
	}
	c := s.screen
	if y >= shadowY0 && y < shadowY1 {
		for i := range 3 {
			c[i] *= 0.7
		}
	}
	return c, 0
}

// frame renders the scene with ±1.5% sensor-like noise per channel.
func (s scene) frame() *yuvFrame {
	return toYUV420(s.w, s.h, func(x, y int) [3]float64 {
		c, _ := s.truth(x, y)
		for i := range 3 {
			h := uint32(x*73856093) ^ uint32(y*19349663) ^ uint32(i*83492791)
			h ^= h >> 13
			h *= 0x5bd1e995
			h ^= h >> 15
			c[i] = min(max(c[i]+0.03*(float64(h%1001)/1000-0.5), 0), 1)
		}
		return c
	})
}

// TestChromaKeyer keys synthetic green- and blue-screen pictures with a
// known matte: the alpha error is small away from edges, a 50/50 mix gets
// a partial alpha, shadows on the screen stay transparent, and the
// key-colour cast on the foreground's border is removed.
func TestChromaKeyer(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	cases := []struct {
		id    string
		alias string
		sc    scene
	}{
		{"chroma", "greenscreen", scene{w: 320, h: 240, screen: [3]float64{0.12, 0.68, 0.25}, spill: [3]float64{-0.015, 0.05, -0.015}}},
		{"chroma-blue", "bluescreen", scene{w: 320, h: 240, screen: [3]float64{0.08, 0.24, 0.72}, spill: [3]float64{-0.015, -0.015, 0.05}}},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			m, err := r.Get(c.alias)
			if err != nil {
				t.Fatal(err)
			}
			if m.ID != c.id {
				t.Fatalf("%s is %s, want %s", c.alias, m.ID, c.id)
			}
			model, err := rt.Load(r, m, LoadOptions{Batch: 2, FrameWidth: c.sc.w, FrameHeight: c.sc.h})
			if err != nil {
				t.Fatal(err)
			}
			defer model.Close()
			if w, h := model.InputSize(); w != (c.sc.w+1)/2 || h != (c.sc.h+1)/2 || model.Color() != ColorUV || model.Batch() != 2 {
				t.Fatalf("model: %dx%d %s batch %d", w, h, model.Color(), model.Batch())
			}
			if model.ForegroundKind() != MeaningForegroundUV {
				t.Fatalf("ForegroundKind = %q", model.ForegroundKind())
			}
			b, err := model.NewBatch()
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			f := c.sc.frame()
			// The same frame in both slots: batching must not mix them.
			for i := range 2 {
				model.PrepareUV(b.Slot(i), f.u, f.uStride, f.v, f.vStride)
			}
			if err := model.Run(context.Background(), b, 2, nil); err != nil {
				t.Fatal(err)
			}
			a := b.Alpha(1)
			if dump := os.Getenv("VIDMATTE_TEST_DUMP"); dump != "" {
				writeGray(t, filepath.Join(dump, c.id+"-alpha.png"), a, (c.sc.w+1)/2, (c.sc.h+1)/2)
			}
			w := c.sc.w
			var sumErr, worst float64
			var wx, wy int
			var n int
			for y := range c.sc.h {
				for x := range w {
					if nearEdge(x, y) {
						continue
					}
					_, want := c.sc.truth(x, y)
					if want != 0 && want != 1 {
						continue
					}
					d := math.Abs(float64(atChroma(a, w, x, y)) - want)
					sumErr += d
					if d > worst {
						wx, wy = x, y
					}
					worst = max(worst, d)
					n++
				}
			}
			mean := sumErr / float64(n)
			blend := chromaRegionMean(a, w, blendX0+3, fgY0+3, blendX1-3, fgY1-3)
			shadow := chromaRegionMean(a, w, 10, shadowY0+3, 300, shadowY1-3)
			t.Logf("alpha: mean |error| %.4f, worst %.3f (at %d,%d) away from edges; 50/50 mix %.2f; shadow %.3f", mean, worst, wx, wy, blend, shadow)
			if mean > 0.01 || worst > 0.1 {
				t.Errorf("alpha error too large: mean %.4f, worst %.3f", mean, worst)
			}
			if blend < 0.25 || blend > 0.75 {
				t.Errorf("a 50/50 mix of grey and screen has alpha %.2f, want 0.25..0.75", blend)
			}
			bounce := chromaRegionMean(a, w, bounceX0+3, 123, bounceX1-3, bounceY1-3)
			t.Logf("grey lit by 20%% of the screen's light: alpha %.3f", bounce)
			if bounce < 0.97 {
				t.Errorf("a foreground lit by the screen is keyed: alpha %.3f", bounce)
			}
			if shadow > 0.02 {
				t.Errorf("the shadowed screen has alpha %.3f", shadow)
			}
			for i := range 2 {
				if d := maxDiff(b.Alpha(0), b.Alpha(1)); d != 0 {
					t.Fatalf("slot %d: the two identical frames got different alphas (max %g)", i, d)
				}
			}

			// Spill: on the grey part of the tinted top border (rows whose
			// chroma blocks and their neighbours lie inside the band), the
			// key colour's excess before and after.
			fg := b.Foreground(1)
			hw := ((w + 1) / 2) * ((c.sc.h + 1) / 2)
			k, _ := keyChannel(m.Chroma.Key)
			var before, after float64
			n = 0
			for _, y := range []int{fgY0 + 1, fgY0 + 2} {
				for x := 104; x < 126; x++ {
					in, _ := c.sc.truth(x, y)
					before += excess(in, k)
					Y := float64(f.y[y*f.yStride+x]) / 255
					out := rgbFromYUV(Y, float64(atChroma(fg, w, x, y)), float64(atChroma(fg[hw:], w, x, y)))
					after += excess(out, k)
					n++
				}
			}
			before /= float64(n)
			after /= float64(n)
			t.Logf("spill on the border: key excess %.3f before, %.3f after", before, after)
			if after > 0.005 || after > before/4 {
				t.Errorf("spill not removed: key-colour excess %.3f before, %.3f after", before, after)
			}
			// Away from the spill, the foreground's chroma is unchanged.
			x, y := 115, 100 // grey
			u := float64(f.u[(y/2)*f.uStride+x/2]) / 255
			if d := math.Abs(float64(atChroma(fg, w, x, y)) - u); d > 0.01 {
				t.Errorf("neutral grey's U changed by %.3f", d)
			}
		})
	}
}

// nearEdge reports whether (x, y) is within 3 px of a region boundary of
// the scene (where chroma subsampling mixes colours).
func nearEdge(x, y int) bool {
	const m = 3
	for _, ex := range []int{fgX0, fgX1, blendX0, blendX1} {
		if abs(x-ex) < m && y >= fgY0-m && y < fgY1+m {
			return true
		}
	}
	for _, ey := range []int{fgY0, fgY1} {
		if abs(y-ey) < m && ((x >= fgX0-m && x < fgX1+m) || (x >= blendX0-m && x < blendX1+m)) {
			return true
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// excess is the key channel minus the largest other channel, or 0.
func excess(c [3]float64, k int) float64 {
	other := math.Inf(-1)
	for i, v := range c {
		if i != k {
			other = max(other, v)
		}
	}
	return max(c[k]-other, 0)
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestChromaWithoutScreen: a frame with no screen at all stays opaque.
func TestChromaWithoutScreen(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m, _ := r.Get("chroma")
	model, err := rt.Load(r, m, LoadOptions{FrameWidth: 64, FrameHeight: 48})
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := toYUV420(64, 48, func(x, y int) [3]float64 {
		v := float64(x+y) / 120
		return [3]float64{0.3 + 0.5*v, 0.35 + 0.3*v, 0.3 + 0.2*v} // warm, slightly green-neutral
	})
	model.PrepareUV(b.Slot(0), f.u, f.uStride, f.v, f.vStride)
	if err := model.Run(context.Background(), b, 1, nil); err != nil {
		t.Fatal(err)
	}
	if mean := chromaRegionMean(b.Alpha(0), 64, 0, 0, 64, 48); mean < 0.99 {
		t.Errorf("a frame without a screen has mean alpha %.3f", mean)
	}
}

// TestPrepareUV checks the normalization of the chroma planes, on odd
// sizes and padded strides: the slot holds U then V at chroma resolution,
// as byte/255.
func TestPrepareUV(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m, _ := r.Get("chroma")
	for _, size := range [][2]int{{7, 5}, {16, 9}, {1, 1}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			w, h := size[0], size[1]
			model, err := rt.Load(r, m, LoadOptions{FrameWidth: w, FrameHeight: h})
			if err != nil {
				t.Fatal(err)
			}
			cw, ch := model.InputSize()
			if cw != (w+1)/2 || ch != (h+1)/2 {
				t.Fatalf("input size %dx%d for a %dx%d frame", cw, ch, w, h)
			}
			f := toYUV420(w, h, func(x, y int) [3]float64 {
				return [3]float64{float64(x) / float64(w), float64(y) / float64(h), float64((x*7+y*3)%5) / 5}
			})
			slot := make([]float32, 2*cw*ch)
			model.PrepareUV(slot, f.u, f.uStride, f.v, f.vStride)
			for c, p := range [][]byte{f.u, f.v} {
				stride := []int{f.uStride, f.vStride}[c]
				for y := range ch {
					for x := range cw {
						got, want := float64(slot[c*cw*ch+y*cw+x]), float64(p[y*stride+x])/255
						if math.Abs(got-want) > 1e-6 {
							t.Fatalf("plane %d (%d,%d) = %g, want %g", c+1, x, y, got, want)
						}
					}
				}
			}
		})
	}
}

// TestPrepareRGB checks ISNet's normalization, (v − 128) / 256, on a
// manifest-only model (no session needed for Prepare).
func TestPrepareRGB(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	path := filepath.Join(t.TempDir(), "rvm.onnx")
	if err := BuildRVMTestModel(path); err != nil {
		t.Fatal(err)
	}
	m, err := r.Import(path, "rvm", "rvm-test")
	if err != nil {
		t.Fatal(err)
	}
	model, err := rt.Load(r, m, LoadOptions{FrameWidth: 4, FrameHeight: 2})
	if err != nil {
		t.Fatal(err)
	}
	rgb := make([]byte, 3*8)
	for i := range rgb {
		rgb[i] = byte(i * 11)
	}
	slot := make([]float32, 3*8)
	model.PrepareRGB(slot, rgb)
	for i, v := range rgb {
		if want := float32(v) / 255; math.Abs(float64(slot[i]-want)) > 1e-6 {
			t.Fatalf("slot[%d] = %g, want %g", i, slot[i], want)
		}
	}
	isnet, _ := r.Get("isnet")
	lut := &Model{man: isnet, w: 4, h: 2}
	lut.initNormalization()
	lut.PrepareRGB(slot, rgb)
	if slot[0] != -0.5 || slot[23] != (float32(253)-128)/256 {
		t.Fatalf("isnet normalization: %g, %g", slot[0], slot[23])
	}
}
