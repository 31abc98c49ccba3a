package models

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"vidmatte/models/onnx"
)

// quantizeRef is how the engine quantized a float alpha before byte I/O:
// round half up, clamped to 0..255.
func quantizeRef(v float32) byte {
	if v*255 >= 255 {
		return 255
	}
	return byte(max(int32(v*255+0.5), 0))
}

// byteDiffs compares bytes with the quantized floats: the largest
// difference and how many differ.
func byteDiffs(got []byte, want []float32) (worst, n int) {
	for i, g := range got {
		d := int(g) - int(quantizeRef(want[i]))
		if d < 0 {
			d = -d
		}
		worst = max(worst, d)
		if d != 0 {
			n++
		}
	}
	return worst, n
}

// byteIOMaxDiff and byteIODiffFraction say how far byte I/O may move a model's outputs from
// float I/O quantized afterwards: the inputs are the same floats (the
// graph's DequantizeLinear computes exactly the lookup table's values), so
// only the rounding differs, QuantizeLinear's half to even (of v divided
// by float32(1/255)) against the engine's half up of v·255: one level at
// most, on a value that falls within a rounding error of a half level.
const (
	byteIOMaxDiff      = 1
	byteIODiffFraction = 0.001 // of the samples
)

// loadPair loads m twice for the same options: with float I/O, and with
// byte outputs and, when in is set, a byte input.
func loadPair(t *testing.T, rt *Runtime, r *Registry, m *Manifest, o LoadOptions, in bool) (fl, by *Model, fb, bb *Batch) {
	t.Helper()
	fl, err := rt.Load(r, m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	o.ByteOutputs, o.ByteInput = true, in
	by, err = rt.Load(r, m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { by.Close() })
	if fl.ByteOutputs() || fl.ByteInput() || !by.ByteOutputs() || by.ByteInput() != in {
		t.Fatalf("ByteOutputs, ByteInput: %v %v and %v %v", fl.ByteOutputs(), fl.ByteInput(), by.ByteOutputs(), by.ByteInput())
	}
	if fb, err = fl.NewBatch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	if bb, err = by.NewBatch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bb.Close() })
	return fl, by, fb, bb
}

// checkBytes compares one output of the two runs against the tolerance.
func checkBytes(t *testing.T, what string, got []byte, want []float32) {
	t.Helper()
	checkBytesWithin(t, what, got, want, byteIODiffFraction)
}

func checkBytesWithin(t *testing.T, what string, got []byte, want []float32, fraction float64) {
	t.Helper()
	worst, n := byteDiffs(got, want)
	t.Logf("%s: %d of %d bytes differ from the quantized floats, by %d at most", what, n, len(got), worst)
	if worst > byteIOMaxDiff || float64(n) > fraction*float64(len(got)) {
		t.Errorf("%s: %d of %d bytes differ, by up to %d (tolerance: %d, on %.1f%% of them)", what, n, len(got), worst, byteIOMaxDiff, 100*byteIODiffFraction)
	}
}

// packRGB interleaves planar R, G, B bytes (NHWC).
func packRGB(planar []byte) []byte {
	n := len(planar) / 3
	out := make([]byte, len(planar))
	for i := range n {
		out[3*i], out[3*i+1], out[3*i+2] = planar[i], planar[n+i], planar[2*n+i]
	}
	return out
}

// byteModes are the byte I/O the tests compare with float I/O: byte
// outputs (what the engine uses), and byte input too.
var byteModes = []struct {
	name string
	in   bool
}{{"byte-outputs", false}, {"byte-input-and-outputs", true}}

// The chroma keyer with byte I/O gives the alpha and the corrected U and V
// of float I/O, quantized, within byteIOMaxDiff and byteIODiffFraction, on
// the synthetic green screen with its soft edges, blends and shadows.
func TestByteIOChroma(t *testing.T) {
	for _, mode := range byteModes {
		t.Run(mode.name, func(t *testing.T) { testByteIOChroma(t, mode.in) })
	}
}

func testByteIOChroma(t *testing.T, byteIn bool) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m, err := r.Get("chroma")
	if err != nil {
		t.Fatal(err)
	}
	sc := scene{w: 320, h: 240, screen: [3]float64{0.12, 0.68, 0.25}, spill: [3]float64{-0.015, 0.05, -0.015}}
	fl, by, fb, bb := loadPair(t, rt, r, m, LoadOptions{Batch: 2, FrameWidth: sc.w, FrameHeight: sc.h}, byteIn)
	f := sc.frame()
	grey := toYUV420(sc.w, sc.h, func(x, y int) [3]float64 { return [3]float64{0.5, 0.45, 0.4} })
	for i, fr := range []*yuvFrame{f, grey} {
		fl.PrepareUV(fb.Slot(i), fr.u, fr.uStride, fr.v, fr.vStride)
		if byteIn {
			by.PrepareUVBytes(bb.SlotBytes(i), fr.u, fr.uStride, fr.v, fr.vStride)
		} else {
			by.PrepareUV(bb.Slot(i), fr.u, fr.uStride, fr.v, fr.vStride)
		}
	}
	ctx := context.Background()
	if err := fl.Run(ctx, fb, 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := by.Run(ctx, bb, 2, nil); err != nil {
		t.Fatal(err)
	}
	var soft int
	for _, v := range fb.Alpha(0) {
		if v > 0.02 && v < 0.98 {
			soft++
		}
	}
	if soft < 100 {
		t.Fatalf("only %d soft alpha values: the comparison would not reach the rounding", soft)
	}
	for i := range 2 {
		checkBytes(t, "alpha", bb.AlphaBytes(i), fb.Alpha(i))
		checkBytes(t, "corrected chroma", bb.ForegroundBytes(i), fb.Foreground(i))
	}
	if bb.Foreground(0) != nil || fb.ForegroundBytes(0) != nil {
		t.Error("a batch gives its foreground in the other I/O's type")
	}
}

// RVM with byte I/O, on real frames with the state carried: the alpha
// within byteIOMaxDiff and byteIODiffFraction of float I/O's, quantized;
// fgr and the states, which stay floats, the same. The RVM-signature test
// model always; the installed rvm on vtest.avi when it is there.
func TestByteIORVM(t *testing.T) {
	for _, mode := range byteModes {
		t.Run(mode.name, func(t *testing.T) { testByteIORVM(t, mode.in) })
	}
}

func testByteIORVM(t *testing.T, byteIn bool) {
	rt := testRuntime(t)
	t.Run("test-model", func(t *testing.T) {
		r := testRegistry(t)
		m := importRVMTest(t, r)
		const w, h = 48, 32
		frames := make([][]byte, 5)
		for k := range frames {
			frames[k] = make([]byte, 3*w*h)
			for i := range frames[k] {
				frames[k][i] = byte(i*7 + k*31)
			}
		}
		// Its alpha is k/10 on the k-th frame, the same everywhere: 0.1,
		// 0.3, … are half levels (25.5, 76.5, …), where the two roundings
		// part, on the whole frame.
		compareRVM(t, rt, r, m, w, h, frames, 1, byteIn)
	})
	t.Run("rvm", func(t *testing.T) {
		video := filepath.Join(Home(), "media", "vtest.avi")
		needAsset(t, video)
		r, err := NewRegistry(ModelsDir(Home()))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := r.Get("rvm")
		needAsset(t, r.Path(m))
		const w, h = 768, 576
		compareRVM(t, rt, r, m, w, h, decodeRGB(t, video, 4, w, h), byteIODiffFraction, byteIn)
	})
}

func compareRVM(t *testing.T, rt *Runtime, r *Registry, m *Manifest, w, h int, frames [][]byte, fraction float64, byteIn bool) {
	t.Helper()
	fl, by, fb, bb := loadPair(t, rt, r, m, LoadOptions{Batch: 2, FrameWidth: w, FrameHeight: h}, byteIn)
	fs, bs := fl.NewState(), by.NewState()
	defer fs.Close()
	defer bs.Close()
	ctx := context.Background()
	for k, fr := range frames {
		fl.PrepareRGB(fb.Slot(0), fr)
		prepareBytesOrFloats(by, bb, fr)
		if err := fl.Run(ctx, fb, 1, fs); err != nil {
			t.Fatal(err)
		}
		if err := by.Run(ctx, bb, 1, bs); err != nil {
			t.Fatal(err)
		}
		checkBytesWithin(t, "alpha", bb.AlphaBytes(0), fb.Alpha(0), fraction)
		var d float64
		for i, v := range fb.ForegroundRGB(0) {
			d = math.Max(d, math.Abs(float64(v-bb.ForegroundRGB(0)[i])))
		}
		if d > 1e-6 {
			t.Errorf("frame %d: fgr differs by %g between float and byte I/O", k, d)
		}
	}
}

// prepareBytesOrFloats fills slot 0 of b from planar R, G, B bytes: as
// they are (packed for NHWC) with a byte input, else normalized.
func prepareBytesOrFloats(m *Model, b *Batch, rgb []byte) {
	if !m.ByteInput() {
		m.PrepareRGB(b.Slot(0), rgb)
		return
	}
	if m.Interleaved() {
		rgb = packRGB(rgb)
	}
	copy(b.SlotBytes(0), rgb)
}

// The TensorFlow.js conversions run with byte I/O as with float I/O:
// selfie (and meet, NHWC at 144×256) on a real photograph, and ISNet
// (NCHW, mean 128) when VIDMATTE_ISNET asks for the slow models.
func TestByteIOSegmenters(t *testing.T) {
	for _, mode := range byteModes {
		t.Run(mode.name, func(t *testing.T) { testByteIOSegmenters(t, mode.in) })
	}
}

func testByteIOSegmenters(t *testing.T, byteIn bool) {
	rt := testRuntime(t)
	photo := filepath.Join(Home(), "media", "astronaut.png")
	needAsset(t, photo)
	img := loadPNG(t, photo)
	r, err := NewRegistry(ModelsDir(Home()))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"selfie", "meet"}
	if isnetRequired() {
		ids = append(ids, "isnet")
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			m, err := r.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			needAsset(t, r.Path(m))
			fl, by, fb, bb := loadPair(t, rt, r, m, LoadOptions{Batch: 1}, byteIn)
			w, h := fl.InputSize()
			rgb := planarRGB(img, w, h)
			fl.PrepareRGB(fb.Slot(0), rgb)
			prepareBytesOrFloats(by, bb, rgb)
			ctx := context.Background()
			if err := fl.Run(ctx, fb, 1, nil); err != nil {
				t.Fatal(err)
			}
			if err := by.Run(ctx, bb, 1, nil); err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "alpha", bb.AlphaBytes(0), fb.Alpha(0))
		})
	}
}

// ByteImageIO's normalization gives the lookup table's floats
// (float32(v)·(1/std) − mean/std), for every byte of every channel: whole
// means per channel (DequantizeLinear along the channel axis, NCHW and
// NHWC: exactly where the mean is 0 or std a power of two, within two
// units in the last place of mean/std otherwise) and means that are not whole
// (ImageNet's: Cast, Mul and Add, exactly); and its quantization of 0..1
// values stays within one level of the engine's.
func TestByteImageIONormalizes(t *testing.T) {
	testRuntime(t)
	for _, c := range []struct {
		name      string
		nhwc      bool
		mean, std [3]float32
	}{
		{"whole-nchw", false, [3]float32{0, 128, 255}, [3]float32{255, 256, 57.5}},
		{"whole-nhwc", true, [3]float32{0, 128, 255}, [3]float32{255, 256, 57.5}},
		{"imagenet-nchw", false, [3]float32{123.675, 116.28, 103.53}, [3]float32{58.395, 57.12, 57.375}},
		{"imagenet-nhwc", true, [3]float32{123.675, 116.28, 103.53}, [3]float32{58.395, 57.12, 57.375}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// x → y = x (normalized), and z = a clamp of x/256 + 0.001
			// as a 0..1 output to quantize.
			g := onnx.NewBuilder("norm")
			dims := []onnx.Dim{onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(1), onnx.Fixed(256)}
			axis := 1
			if c.nhwc {
				dims = []onnx.Dim{onnx.Fixed(1), onnx.Fixed(1), onnx.Fixed(256), onnx.Fixed(3)}
				axis = 3
			}
			x := g.Input("x", onnx.Float, dims...)
			g.OpTo("y", "Identity", []string{x})
			g.Output("y", onnx.Float, dims...)
			z := g.Op("Add", []string{g.Op("Mul", []string{x, g.Float(nil, 1.0/256)}), g.Float(nil, 0.001)})
			g.OpTo("z", "Clip", []string{z, g.Float(nil, 0), g.Float(nil, 1)})
			g.Output("z", onnx.Float, dims...)
			model := g.Model(17, "vidmatte", "test")
			if err := onnx.ByteImageIO(model, onnx.ByteIO{Input: "x", Axis: axis, Mean: c.mean[:], Std: c.std[:], Outputs: []string{"z"}}); err != nil {
				t.Fatal(err)
			}
			data, err := onnx.Marshal(model)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y", "z"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Destroy()
			shape := ort.NewShape(1, 3, 1, 256)
			if c.nhwc {
				shape = ort.NewShape(1, 1, 256, 3)
			}
			in := make([]byte, 3*256)
			at := func(ch, v int) int {
				if c.nhwc {
					return 3*v + ch
				}
				return ch*256 + v
			}
			for ch := range 3 {
				for v := range 256 {
					in[at(ch, v)] = byte(v)
				}
			}
			xt, _ := ort.NewTensor(shape, in)
			yt, _ := ort.NewTensor(shape, make([]float32, 3*256))
			zt, _ := ort.NewTensor(shape, make([]byte, 3*256))
			defer xt.Destroy()
			defer yt.Destroy()
			defer zt.Destroy()
			if err := sess.Run([]ort.Value{xt}, []ort.Value{yt, zt}); err != nil {
				t.Fatal(err)
			}
			lut := prepModel(1, 1, ColorRGB, false, 0, 1)
			lut.man.Input.Mean, lut.man.Input.Std = c.mean, c.std
			lut.initNormalization()
			for ch := range 3 {
				for v := range 256 {
					got, want := yt.GetData()[at(ch, v)], lut.lut[ch][v]
					// (v − mean)·(1/std) is the table's v·(1/std) − mean/std
					// exactly when the mean is 0 or std a power of two (every
					// built-in model); else within two units in the last
					// place of the table's terms.
					frac, _ := math.Frexp(float64(c.std[ch]))
					exact := c.mean[ch] == 0 || frac == 0.5 || c.name[:8] == "imagenet"
					// The table's sum cancels: its error is that of its
					// larger term, mean/std.
					big := float32(math.Max(math.Abs(float64(want)), math.Abs(float64(c.mean[ch]/c.std[ch]))))
					ulp := float64(math.Nextafter32(big, float32(math.Inf(1))) - big)
					if d := math.Abs(float64(got - want)); (exact && d != 0) || d > 2*ulp {
						t.Fatalf("channel %d, byte %d: %v in the graph, %v from the table", ch, v, got, want)
					}
					zf := min(max(want/256+0.001, 0), 1)
					if d := int(zt.GetData()[at(ch, v)]) - int(quantizeRef(zf)); d < -1 || d > 1 {
						t.Fatalf("channel %d, byte %d: %v quantized to %d, want %d", ch, v, zf, zt.GetData()[at(ch, v)], quantizeRef(zf))
					}
				}
			}
		})
	}
}
