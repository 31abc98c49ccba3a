package models

import (
	"fmt"
	"math"

	"vidmatte/models/onnx"
)

// BT.709 luma weights, used to express R, G and B differences in terms of
// the chroma planes alone.
const (
	bt709Kr = 0.2126
	bt709Kb = 0.0722
	bt709Kg = 1 - bt709Kr - bt709Kb
)

// chromaCoeffs returns, for each of R, G and B, the coefficients (a, b) of
// that channel minus luma as a function of chroma: X − Y = a·Cb + b·Cr.
func chromaCoeffs() [3][2]float64 {
	cr := 2 * (1 - bt709Kr) // R = Y + cr·Cr
	cb := 2 * (1 - bt709Kb) // B = Y + cb·Cb
	return [3][2]float64{
		{0, cr},
		{-bt709Kb * cb / bt709Kg, -bt709Kr * cr / bt709Kg},
		{cb, 0},
	}
}

// keyChannel returns the RGB channel of a key colour.
func keyChannel(key string) (int, error) {
	switch key {
	case "green":
		return 1, nil
	case "blue":
		return 2, nil
	}
	return 0, fmt.Errorf("models: unknown chroma key colour %q (valid: green, blue)", key)
}

// chromaCenter is the chroma planes' neutral value in the 0..1 scale
// PrepareUV produces (byte/255).
const chromaCenter = 128.0 / 255.0

// BuildChroma returns the ONNX graph of the chroma keyer with parameters p
// (see ChromaKey). Input "uv" [N,2,H,W]: the U and V planes of a yuv420p
// frame at their own resolution, as byte/255. The key colour's excess over
// the other two channels is a function of chroma alone (luma cancels out),
// so the chroma planes carry everything the keyer needs, and keying them
// where they are sampled is exact where keying upsampled chroma would only
// interpolate. Outputs "alpha" [N,1,H,W] in 0..1 (the engine scales it to
// the frame) and "fgr" [N,2,H,W], the despilled U and V in the input's
// scale (not clamped), which replace the frame's chroma planes as they
// are. N, H and W are dynamic.
//
// Per chroma sample it costs two 1×1 convolutions of the two planes, a
// minimum and seven elementwise operations; the screen estimate runs on
// every second sample of every second row. Run it without ONNX Runtime's
// NCHWc layout transform (optimization level "extended"), which slows such
// thin convolutions down.
func BuildChroma(p ChromaKey) ([]byte, error) {
	k, err := keyChannel(p.Key)
	if err != nil {
		return nil, err
	}
	if !(p.Outer > p.Inner) || p.Inner < 0 {
		return nil, fmt.Errorf("models: chroma thresholds need 0 <= inner < outer (got %g, %g)", p.Inner, p.Outer)
	}
	if p.Despill < 0 || p.Despill > 1 || p.MinScreen <= 0 || p.PriorWeight < 0 {
		return nil, fmt.Errorf("models: invalid chroma parameters %+v", p)
	}
	co := chromaCoeffs()
	// The two differences key − other, as weights on (U, V) and a bias
	// that removes the chroma offset.
	var w [2 * 2]float32
	var bias [2]float32
	j := 0
	for o := range 3 {
		if o == k {
			continue
		}
		a := co[k][0] - co[o][0]
		b := co[k][1] - co[o][1]
		w[2*j] = float32(a)
		w[2*j+1] = float32(b)
		bias[j] = float32(-(a + b) * chromaCenter)
		j++
	}
	// Moving chroma by q per unit of excess lowers both differences by
	// one unit: q is minus the chroma of the pure key primary.
	keyY := [3]float64{bt709Kr, bt709Kg, bt709Kb}[k]
	var q [2]float64
	switch k {
	case 1: // green: R = B = 0, G = 1
		q = [2]float64{keyY / (2 * (1 - bt709Kb)), keyY / (2 * (1 - bt709Kr))}
	case 2: // blue: R = G = 0, B = 1
		q = [2]float64{-(1 - keyY) / (2 * (1 - bt709Kb)), keyY / (2 * (1 - bt709Kr))}
	}

	g := onnx.NewBuilder("vidmatte_chroma_" + p.Key)
	n, h, wd := onnx.Symbolic("N"), onnx.Symbolic("H"), onnx.Symbolic("W")
	x := g.Input("uv", onnx.Float, n, onnx.Fixed(2), h, wd)
	// Two single-channel 1×1 convolutions and an elementwise minimum:
	// in ONNX Runtime this is twice as fast as one two-channel
	// convolution and a reduction over channels.
	d1 := g.Op("Conv", []string{x, g.Float([]int64{1, 2, 1, 1}, w[0:2]...), g.Float([]int64{1}, bias[0])},
		onnx.IntsAttr("kernel_shape", 1, 1))
	d2 := g.Op("Conv", []string{x, g.Float([]int64{1, 2, 1, 1}, w[2:4]...), g.Float([]int64{1}, bias[1])},
		onnx.IntsAttr("kernel_shape", 1, 1))
	e := g.Op("Min", []string{d1, d2})

	// The screen's excess, estimated on a 1/4 subsample: the mean excess
	// of pixels above Detect, then of pixels above 0.7 of that, each pulled
	// towards Prior as if PriorWeight of the frame were screen of that
	// excess.
	big := int64(math.MaxInt32)
	es := g.Op("Slice", []string{e, g.Int64s(0, 0), g.Int64s(big, big), g.Int64s(2, 3), g.Int64s(2, 2)})
	priorMass := g.Float(nil, p.Prior*p.PriorWeight)
	priorWeight := g.Float(nil, p.PriorWeight)
	estimate := func(threshold string) string {
		mask := g.Op("Cast", []string{g.Op("Greater", []string{es, threshold})}, onnx.IntAttr("to", int64(onnx.Float)))
		sum := g.Op("ReduceMean", []string{g.Op("Mul", []string{es, mask})}, onnx.IntsAttr("axes", 2, 3), onnx.IntAttr("keepdims", 1))
		cnt := g.Op("ReduceMean", []string{mask}, onnx.IntsAttr("axes", 2, 3), onnx.IntAttr("keepdims", 1))
		return g.Op("Div", []string{g.Op("Add", []string{sum, priorMass}), g.Op("Add", []string{cnt, priorWeight})})
	}
	s1 := estimate(g.Float(nil, p.Detect))
	s2 := estimate(g.Op("Mul", []string{s1, g.Float(nil, 0.7)}))
	screen := g.Op("Max", []string{s2, g.Float(nil, p.MinScreen)})

	// alpha = clamp((Outer − e/screen) / (Outer − Inner)), as e·k + b.
	span := p.Outer - p.Inner
	slope := g.Op("Div", []string{g.Float(nil, -1/span), screen})
	lin := g.Op("Add", []string{g.Op("Mul", []string{e, slope}), g.Float(nil, p.Outer/span)})
	alpha := g.OpTo("alpha", "Clip", []string{lin, g.Float(nil, 0), g.Float(nil, 1)})
	g.Output(alpha, onnx.Float, n, onnx.Fixed(1), h, wd)

	// Spill suppression: chroma += max(e, 0)·Despill·q. Not clamped (a
	// clamp costs as much as the rest of this branch): moving towards
	// neutral keeps the chroma in range but for rounding, and consumers
	// clamp when they write bytes.
	shift := g.Op("Mul", []string{g.Op("Relu", []string{e}),
		g.Float([]int64{1, 2, 1, 1}, float32(q[0])*p.Despill, float32(q[1])*p.Despill)})
	fgr := g.OpTo("fgr", "Add", []string{x, shift})
	g.Output(fgr, onnx.Float, n, onnx.Fixed(2), h, wd)

	return onnx.Marshal(g.Model(17, "vidmatte", "chroma-1"))
}
