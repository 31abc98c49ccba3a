package models

import (
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"vidmatte/models/onnx"
)

// msPerFrame reports the benchmark's time per iteration in ms.
func msPerFrame(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

// prepModel is a Model with only what PrepareRGB and PrepareUV read.
func prepModel(w, h int, color string, nhwc bool, mean, std float32) *Model {
	m := &Model{man: &Manifest{ID: "bench", Input: Input{Color: color,
		Mean: [3]float32{mean, mean, mean}, Std: [3]float32{std, std, std}}}, w: w, h: h, nhwc: nhwc}
	m.initNormalization()
	return m
}

// BenchmarkPrepare measures the Go side of filling a float input slot from
// bytes, per frame, through the lookup tables: an NHWC RGB model at 1080p
// (RVM), an NCHW one at 1024×1024 (ISNet) and the chroma keyer's two
// 960×540 planes.
func BenchmarkPrepare(b *testing.B) {
	for _, c := range []struct {
		name string
		m    *Model
	}{
		{"rgb-nhwc-1920x1080", prepModel(1920, 1080, ColorRGB, true, 0, 255)},
		{"rgb-nchw-1024x1024", prepModel(1024, 1024, ColorRGB, false, 128, 256)},
	} {
		hw := c.m.w * c.m.h
		rgb := make([]byte, 3*hw)
		for i := range rgb {
			rgb[i] = byte(i * 7)
		}
		slot := make([]float32, 3*hw)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.m.PrepareRGB(slot, rgb)
			}
			msPerFrame(b)
		})
	}
	m := prepModel(960, 540, ColorUV, false, 0, 255)
	u := make([]byte, 960*540)
	slot := make([]float32, 2*960*540)
	b.Run("uv-960x540", func(b *testing.B) {
		for b.Loop() {
			m.PrepareUV(slot, u, 960, u, 960)
		}
		msPerFrame(b)
	})
}

// graphCase is a one-input, one-output graph to time.
type graphCase struct {
	name    string
	in, out onnx.DataType
	shape   []int64
	build   func(g *onnx.Builder, x string) string
}

// BenchmarkNormalizeInGraph measures the same work done by ONNX Runtime
// inside a graph, per frame, on the same sizes: bytes in, normalized
// floats out (Cast, Mul and Add, or one DequantizeLinear), and the alpha
// out as bytes (one QuantizeLinear, or Mul, Add, Clip and Cast).
func BenchmarkNormalizeInGraph(b *testing.B) {
	testRuntime(b)
	zp := func(g *onnx.Builder, v byte) string { return g.Const(onnx.RawTensor("", onnx.Uint8, nil, []byte{v})) }
	var cases []graphCase
	for _, s := range []struct {
		name      string
		shape     []int64
		mean, std float32
	}{
		{"rgb-nhwc-1920x1080", []int64{1, 1080, 1920, 3}, 0, 255},
		{"rgb-nchw-1024x1024", []int64{1, 3, 1024, 1024}, 128, 256},
		{"uv-960x540", []int64{1, 2, 540, 960}, 0, 255},
	} {
		cases = append(cases, graphCase{"cast-mul-add/" + s.name, onnx.Uint8, onnx.Float, s.shape, func(g *onnx.Builder, x string) string {
			f := g.Op("Cast", []string{x}, onnx.IntAttr("to", int64(onnx.Float)))
			f = g.Op("Mul", []string{f, g.Float(nil, 1/s.std)})
			if s.mean != 0 {
				f = g.Op("Add", []string{f, g.Float(nil, -s.mean/s.std)})
			}
			return f
		}}, graphCase{"dequantize/" + s.name, onnx.Uint8, onnx.Float, s.shape, func(g *onnx.Builder, x string) string {
			return g.Op("DequantizeLinear", []string{x, g.Float(nil, 1/s.std), zp(g, byte(s.mean))})
		}})
	}
	for _, s := range []struct {
		name  string
		shape []int64
	}{{"alpha-nchw-1920x1080", []int64{1, 1, 1080, 1920}}, {"alpha-nchw-960x540", []int64{1, 1, 540, 960}}} {
		cases = append(cases, graphCase{"quantize/" + s.name, onnx.Float, onnx.Uint8, s.shape, func(g *onnx.Builder, x string) string {
			return g.Op("QuantizeLinear", []string{x, g.Float(nil, 1.0/255), zp(g, 0)})
		}}, graphCase{"mul-add-clip-cast/" + s.name, onnx.Float, onnx.Uint8, s.shape, func(g *onnx.Builder, x string) string {
			y := g.Op("Mul", []string{x, g.Float(nil, 255)})
			y = g.Op("Add", []string{y, g.Float(nil, 0.5)})
			y = g.Op("Clip", []string{y, g.Float(nil, 0), g.Float(nil, 255)})
			return g.Op("Cast", []string{y}, onnx.IntAttr("to", int64(onnx.Uint8)))
		}})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			g := onnx.NewBuilder("bench")
			var dims []onnx.Dim
			n := 1
			for _, d := range c.shape {
				dims = append(dims, onnx.Fixed(d))
				n *= int(d)
			}
			y := c.build(g, g.Input("x", c.in, dims...))
			g.OpTo("y", "Identity", []string{y})
			g.Output("y", c.out, dims...)
			data, err := onnx.Marshal(g.Model(17, "vidmatte", "bench"))
			if err != nil {
				b.Fatal(err)
			}
			// The Runtime's thread pool settings: no spinning between runs.
			opts, err := ort.NewSessionOptions()
			if err != nil {
				b.Fatal(err)
			}
			defer opts.Destroy()
			if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
				b.Fatal(err)
			}
			sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Destroy()
			in, out := benchTensor(b, c.in, c.shape, n), benchTensor(b, c.out, c.shape, n)
			defer in.Destroy()
			defer out.Destroy()
			for b.Loop() {
				if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
					b.Fatal(err)
				}
			}
			msPerFrame(b)
		})
	}
}

func benchTensor(b *testing.B, t onnx.DataType, shape []int64, n int) ort.Value {
	var v ort.Value
	var err error
	if t == onnx.Uint8 {
		v, err = ort.NewTensor(ort.NewShape(shape...), make([]uint8, n))
	} else {
		v, err = ort.NewTensor(ort.NewShape(shape...), make([]float32, n))
	}
	if err != nil {
		b.Fatal(fmt.Errorf("tensor %v: %w", shape, err))
	}
	return v
}
