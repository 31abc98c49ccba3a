package tfjs

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"vidmatte/models/onnx"
)

// Builders of model.json nodes, as the tfjs converter writes them.

func ph(name string, dtype string, shape ...int64) map[string]any {
	a := map[string]any{"dtype": map[string]any{"type": dtype}}
	if shape != nil {
		dims := make([]map[string]any, len(shape))
		for i, d := range shape {
			dims[i] = map[string]any{"size": fmt.Sprint(d)}
		}
		a["shape"] = map[string]any{"shape": map[string]any{"dim": dims}}
	} else {
		a["shape"] = map[string]any{"shape": map[string]any{"unknownRank": true}}
	}
	return map[string]any{"name": name, "op": "Placeholder", "attr": a}
}

func cn(name, dtype string) map[string]any {
	return map[string]any{"name": name, "op": "Const", "attr": map[string]any{"dtype": map[string]any{"type": dtype}}}
}

func nd(name, op string, inputs []string, attrs map[string]any) map[string]any {
	if attrs == nil {
		attrs = map[string]any{}
	}
	if _, ok := attrs["T"]; !ok {
		attrs["T"] = aType("DT_FLOAT")
	}
	return map[string]any{"name": name, "op": op, "input": inputs, "attr": attrs}
}

func aI(v int64) map[string]any { return map[string]any{"i": fmt.Sprint(v)} }
func aB(v bool) map[string]any  { return map[string]any{"b": v} }
func aS(s string) map[string]any {
	return map[string]any{"s": base64.StdEncoding.EncodeToString([]byte(s))}
}
func aType(t string) map[string]any {
	return map[string]any{"type": t}
}
func aInts(v ...int64) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return map[string]any{"list": map[string]any{"i": s}}
}
func aStrs(v ...string) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = base64.StdEncoding.EncodeToString([]byte(x))
	}
	return map[string]any{"list": map[string]any{"s": s}}
}

func wF(name string, shape []int64, v []float32) testWeight {
	return testWeight{name: name, shape: shape, dtype: "float32", f: v}
}
func wI(name string, shape []int64, v ...int64) testWeight {
	return testWeight{name: name, shape: shape, dtype: "int32", i: v}
}

// opCase is a one-op (or few-op) graph, its inputs and the expected
// output computed in Go.
type opCase struct {
	name    string
	nodes   []map[string]any
	weights []testWeight
	inputs  map[string]tensor
	output  string // the node whose first output is the model's output
	opts    Options
	want    tensor
	tol     float64
}

// runCase writes the case's model.json and weights, converts it, runs
// the ONNX graph in ONNX Runtime and returns its output and node count.
func runCase(t *testing.T, c opCase) (tensor, int) {
	t.Helper()
	path := writeModel(t, t.TempDir(), c.nodes, c.weights, map[string]any{},
		map[string]any{"out": map[string]any{"name": c.output + ":0"}})
	data, nodes, err := ConvertFile(path, c.opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range c.inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	s := newSession(t, data, names, []string{"out"})
	return s.run(t, c.inputs)["out"], nodes
}

func checkCase(t *testing.T, c opCase) {
	t.Run(c.name, func(t *testing.T) {
		got, _ := runCase(t, c)
		tol := c.tol
		if tol == 0 {
			tol = 1e-5
		}
		if d := maxAbsDiff(t, c.name, got, c.want); d > tol {
			t.Errorf("max |Δ| = %g, above %g\n got %v\nwant %v", d, tol, head(got), head(c.want))
		}
	})
}

func head(t tensor) string {
	if t.i != nil {
		return fmt.Sprint(t.shape, t.i[:min(len(t.i), 8)])
	}
	return fmt.Sprint(t.shape, t.f[:min(len(t.f), 8)])
}

func it(shape []int64, v ...int64) tensor { return tensor{shape: shape, i: v} }

// TestElementwiseOps checks the arithmetic, comparison and activation
// ops on random inputs against Go.
func TestElementwiseOps(t *testing.T) {
	x := randTensor(1, 2, 3, 4, 5)
	y := randTensor(2, 2, 3, 4, 5)
	b := randTensor(3, 5)
	in := map[string]tensor{"x": x, "y": y}
	phs := []map[string]any{ph("x", "DT_FLOAT", -1, -1, -1, 5), ph("y", "DT_FLOAT", -1, -1, -1, 5)}
	bin := func(op string, f func(a, b float64) float64) opCase {
		return opCase{name: op, nodes: append(phs, nd("z", op, []string{"x", "y"}, nil)), inputs: in, output: "z", want: zipF(x, y, f)}
	}
	un := func(op string, f func(a float64) float64) opCase {
		return opCase{name: op, nodes: append(phs[:1:1], nd("z", op, []string{"x"}, nil)), inputs: map[string]tensor{"x": x}, output: "z", want: mapF(x, f)}
	}
	cases := []opCase{
		bin("Add", func(a, b float64) float64 { return a + b }),
		bin("AddV2", func(a, b float64) float64 { return a + b }),
		bin("Sub", func(a, b float64) float64 { return a - b }),
		bin("Mul", func(a, b float64) float64 { return a * b }),
		bin("RealDiv", func(a, b float64) float64 { return a / b }),
		bin("Minimum", math.Min),
		bin("Maximum", math.Max),
		bin("FloorMod", func(a, b float64) float64 { return a - math.Floor(a/b)*b }),
		un("Relu", func(a float64) float64 { return max(a, 0) }),
		un("Sigmoid", func(a float64) float64 { return 1 / (1 + math.Exp(-a)) }),
		un("Tanh", math.Tanh),
		un("Square", func(a float64) float64 { return a * a }),
		{name: "Relu6", nodes: append(phs[:1:1], cn("k", "DT_FLOAT"), nd("s", "Mul", []string{"x", "k"}, nil), nd("z", "Relu6", []string{"s"}, nil)),
			weights: []testWeight{wF("k", nil, []float32{10})}, inputs: map[string]tensor{"x": x}, output: "z",
			want: mapF(x, func(a float64) float64 { return min(max(10*a, 0), 6) })},
		{name: "BiasAdd", nodes: append(phs[:1:1], cn("b", "DT_FLOAT"), nd("z", "BiasAdd", []string{"x", "b"}, map[string]any{"data_format": aS("NHWC")})),
			weights: []testWeight{wF("b", []int64{5}, b.f)}, inputs: map[string]tensor{"x": x}, output: "z",
			want: zipF(x, b, func(a, b float64) float64 { return a + b })},
		{name: "AddN", nodes: append(phs, nd("z", "AddN", []string{"x", "y", "x"}, map[string]any{"N": aI(3)})), inputs: in, output: "z",
			want: zipF(x, y, func(a, b float64) float64 { return 2*a + b })},
	}
	// Equal, as 0/1 through Cast to float.
	eqX := ft([]int64{4}, []float32{1, 2, 3, 4})
	eqY := ft([]int64{4}, []float32{1, 0, 3, 0})
	cases = append(cases, opCase{name: "Equal+Cast(bool→float)",
		nodes: []map[string]any{ph("x", "DT_FLOAT", 4), ph("y", "DT_FLOAT", 4),
			nd("e", "Equal", []string{"x", "y"}, nil),
			nd("z", "Cast", []string{"e"}, map[string]any{"SrcT": aType("DT_BOOL"), "DstT": aType("DT_FLOAT")})},
		inputs: map[string]tensor{"x": eqX, "y": eqY}, output: "z", want: ft([]int64{4}, []float32{1, 0, 1, 0})})
	for _, c := range cases {
		checkCase(t, c)
	}
}

// TestConvolutionOps checks the convolutions, pools and resizes against
// Go, with weights stored as float32, uint8-quantized and float16.
func TestConvolutionOps(t *testing.T) {
	x := randTensor(10, 2, 9, 11, 3)
	xin := map[string]tensor{"x": x}
	// An even size with stride 2 pads one more row and column at the end
	// than at the start (SAME's asymmetric case).
	xe := randTensor(15, 1, 10, 12, 3)
	xph := ph("x", "DT_FLOAT", -1, -1, -1, 3)
	w3 := randFloats(11, 3*3*3*4)
	w3s := []int64{3, 3, 3, 4}
	bias := randFloats(12, 4)
	dw := randFloats(13, 3*3*3*2)
	dws := []int64{3, 3, 3, 2}
	dbias := randFloats(14, 6)
	conv := func(op, padding string, stride int64, extra map[string]any, ins ...string) map[string]any {
		a := map[string]any{"strides": aInts(1, stride, stride, 1), "padding": aS(padding), "data_format": aS("NHWC"),
			"dilations": aInts(1, 1, 1, 1), "explicit_paddings": aInts()}
		for k, v := range extra {
			a[k] = v
		}
		return nd("z", op, ins, a)
	}
	relu := func(t tensor) tensor { return mapF(t, func(a float64) float64 { return max(a, 0) }) }
	cases := []opCase{
		{name: "Conv2D SAME stride 2 uint8 weights",
			nodes:   []map[string]any{xph, cn("w", "DT_FLOAT"), conv("Conv2D", "SAME", 2, nil, "x", "w")},
			weights: []testWeight{{name: "w", shape: w3s, dtype: "float32", f: w3, quant: "uint8"}},
			inputs:  map[string]tensor{"x": xe}, output: "z", want: refConv(xe, dequantUint8(w3), w3s, false, 2, 1, true, nil)},
		{name: "_FusedConv2D VALID BiasAdd Relu",
			nodes: []map[string]any{xph, cn("w", "DT_FLOAT"), cn("b", "DT_FLOAT"),
				conv("_FusedConv2D", "VALID", 1, map[string]any{"fused_ops": aStrs("BiasAdd", "Relu"), "num_args": aI(1)}, "x", "w", "b")},
			weights: []testWeight{wF("w", w3s, w3), wF("b", []int64{4}, bias)},
			inputs:  xin, output: "z", want: relu(refConv(x, w3, w3s, false, 1, 1, false, bias))},
		{name: "_FusedConv2D SAME BiasAdd",
			nodes: []map[string]any{xph, cn("w", "DT_FLOAT"), cn("b", "DT_FLOAT"),
				conv("_FusedConv2D", "SAME", 1, map[string]any{"fused_ops": aStrs("BiasAdd"), "num_args": aI(1)}, "x", "w", "b")},
			weights: []testWeight{wF("w", w3s, w3), wF("b", []int64{4}, bias)},
			inputs:  xin, output: "z", want: refConv(x, w3, w3s, false, 1, 1, true, bias)},
		{name: "DepthwiseConv2dNative SAME multiplier 2 float16 weights",
			nodes:   []map[string]any{xph, cn("w", "DT_FLOAT"), conv("DepthwiseConv2dNative", "SAME", 1, nil, "x", "w")},
			weights: []testWeight{{name: "w", shape: dws, dtype: "float32", f: dw, quant: "float16"}},
			inputs:  xin, output: "z", want: refConv(x, dequantHalf(dw), dws, true, 1, 1, true, nil), tol: 1e-5},
		{name: "FusedDepthwiseConv2dNative VALID stride 2 BiasAdd Relu",
			nodes: []map[string]any{xph, cn("w", "DT_FLOAT"), cn("b", "DT_FLOAT"),
				conv("FusedDepthwiseConv2dNative", "VALID", 2, map[string]any{"fused_ops": aStrs("BiasAdd", "Relu"), "num_args": aI(1)}, "x", "w", "b")},
			weights: []testWeight{wF("w", dws, dw), wF("b", []int64{6}, dbias)},
			inputs:  xin, output: "z", want: relu(refConv(x, dw, dws, true, 2, 1, false, dbias))},
	}
	// Conv2DBackpropInput: 2×2 stride 2 (selfie's and meet's) and 3×3
	// stride 2, SAME.
	for _, k := range []int64{2, 3} {
		wt := randFloats(20+uint64(k), int(k*k*2*3))
		ws := []int64{k, k, 2, 3}
		cases = append(cases, opCase{name: fmt.Sprintf("Conv2DBackpropInput %dx%d stride 2 SAME", k, k),
			nodes: []map[string]any{xph, cn("sizes", "DT_INT32"), cn("w", "DT_FLOAT"),
				conv("Conv2DBackpropInput", "SAME", 2, nil, "sizes", "w", "x")},
			weights: []testWeight{wI("sizes", []int64{4}, 1, 18, 22, 2), wF("w", ws, wt)},
			inputs:  xin, output: "z", want: refConvTranspose(x, wt, ws, 2)})
	}
	pool := func(k, s int64, padding string) map[string]any {
		return nd("z", "AvgPool", []string{"x"}, map[string]any{"ksize": aInts(1, k, k, 1), "strides": aInts(1, s, s, 1),
			"padding": aS(padding), "data_format": aS("NHWC")})
	}
	cases = append(cases,
		opCase{name: "AvgPool 2x2 stride 2 SAME (odd size)", nodes: []map[string]any{xph, pool(2, 2, "SAME")}, inputs: xin, output: "z", want: refAvgPool(x, 2, 2, true)},
		opCase{name: "AvgPool 3x3 stride 1 SAME", nodes: []map[string]any{xph, pool(3, 1, "SAME")}, inputs: xin, output: "z", want: refAvgPool(x, 3, 1, true)},
		opCase{name: "AvgPool 3x3 stride 3 VALID", nodes: []map[string]any{xph, pool(3, 3, "VALID")}, inputs: xin, output: "z", want: refAvgPool(x, 3, 3, false)},
	)
	resize := func(align, half bool, h, w int64) opCase {
		return opCase{name: fmt.Sprintf("ResizeBilinear %dx%d align %v half %v", h, w, align, half),
			nodes: []map[string]any{xph, cn("size", "DT_INT32"),
				nd("z", "ResizeBilinear", []string{"x", "size"}, map[string]any{"align_corners": aB(align), "half_pixel_centers": aB(half)})},
			weights: []testWeight{wI("size", []int64{2}, h, w)},
			inputs:  xin, output: "z", want: refResize(x, int(h), int(w), align, half)}
	}
	cases = append(cases, resize(false, true, 18, 22), resize(false, true, 5, 4), resize(false, true, 1, 4), resize(true, false, 17, 21), resize(false, false, 18, 33))
	// The size computed from the input's shape, as RVM does: H·0.5, W·0.5.
	cases = append(cases, opCase{name: "ResizeBilinear size from Shape·ratio",
		nodes: []map[string]any{xph, ph("r", "DT_FLOAT"),
			cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"),
			nd("sh", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")}),
			nd("hw", "StridedSlice", []string{"sh", "b", "e", "s"}, map[string]any{"begin_mask": aI(0), "end_mask": aI(0), "shrink_axis_mask": aI(0), "ellipsis_mask": aI(0), "new_axis_mask": aI(0)}),
			nd("hwf", "Cast", []string{"hw"}, map[string]any{"SrcT": aType("DT_INT32"), "DstT": aType("DT_FLOAT")}),
			nd("m", "Mul", []string{"hwf", "r"}, nil),
			nd("size", "Cast", []string{"m"}, map[string]any{"SrcT": aType("DT_FLOAT"), "DstT": aType("DT_INT32")}),
			nd("z", "ResizeBilinear", []string{"x", "size"}, map[string]any{"align_corners": aB(false), "half_pixel_centers": aB(true)})},
		weights: []testWeight{wI("b", []int64{1}, 1), wI("e", []int64{1}, 3), wI("s", []int64{1}, 1)},
		inputs:  map[string]tensor{"x": x, "r": ft([]int64{1}, []float32{0.5})},
		opts:    Options{InputShapes: map[string][]int64{"r": {1}}},
		output:  "z", want: refResize(x, 4, 5, false, true)})
	for _, c := range cases {
		checkCase(t, c)
	}
}

// TestDilatedConvolution checks that SpaceToBatchND → depthwise
// convolution → BatchToSpaceND, with the paddings and crops computed from
// the input's shape as TensorFlow writes them, becomes one dilated
// convolution: the output matches a dilated convolution computed in Go,
// and none of the shape arithmetic is left in the graph.
func TestDilatedConvolution(t *testing.T) {
	x := randTensor(30, 1, 13, 10, 3)
	dw := randFloats(31, 3*3*3*1)
	dws := []int64{3, 3, 3, 1}
	// Pad by 2 (the rate), then the dilated VALID convolution: SAME in
	// effect, as RVM's encoder does.
	nodes := []map[string]any{ph("x", "DT_FLOAT", -1, -1, -1, 3), cn("p", "DT_INT32"), cn("w", "DT_FLOAT"),
		cn("block", "DT_INT32"), cn("two", "DT_INT32"), cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"), cn("zero", "DT_INT32"),
		nd("xp", "Pad", []string{"x", "p"}, map[string]any{"Tpaddings": aType("DT_INT32")}),
		// paddings = [[0, (−h) mod 2], [0, (−w) mod 2]] from the shape.
		nd("sh", "Shape", []string{"xp"}, map[string]any{"out_type": aType("DT_INT32")}),
		nd("hw", "StridedSlice", []string{"sh", "b", "e", "s"}, map[string]any{"begin_mask": aI(0), "end_mask": aI(0), "shrink_axis_mask": aI(0), "ellipsis_mask": aI(0), "new_axis_mask": aI(0)}),
		nd("neg", "Sub", []string{"zero", "hw"}, map[string]any{"T": aType("DT_INT32")}),
		nd("extra", "FloorMod", []string{"neg", "two"}, map[string]any{"T": aType("DT_INT32")}),
		nd("z2", "Pack", []string{"zero", "zero"}, map[string]any{"N": aI(2), "axis": aI(0), "T": aType("DT_INT32")}),
		nd("pads", "Pack", []string{"z2", "extra"}, map[string]any{"N": aI(2), "axis": aI(1), "T": aType("DT_INT32")}),
		nd("stb", "SpaceToBatchND", []string{"xp", "block", "pads"}, nil),
		nd("dc", "DepthwiseConv2dNative", []string{"stb", "w"}, map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aS("VALID"),
			"data_format": aS("NHWC"), "dilations": aInts(1, 1, 1, 1)}),
		nd("z", "BatchToSpaceND", []string{"dc", "block", "pads"}, nil),
	}
	weights := []testWeight{wI("p", []int64{4, 2}, 0, 0, 2, 2, 2, 2, 0, 0), wF("w", dws, dw), wI("block", []int64{2}, 2, 2),
		wI("two", nil, 2), wI("b", []int64{1}, 1), wI("e", []int64{1}, 3), wI("s", []int64{1}, 1), wI("zero", nil, 0)}
	c := opCase{name: "dilated", nodes: nodes, weights: weights, inputs: map[string]tensor{"x": x}, output: "z",
		want: refConv(x, dw, dws, true, 1, 2, true, nil)}
	got, nodeCount := runCase(t, c)
	if d := maxAbsDiff(t, "dilated", got, c.want); d > 1e-5 {
		t.Errorf("max |Δ| = %g\n got %v\nwant %v", d, head(got), head(c.want))
	}
	// Pad, Transpose, Conv, Transpose, Identity: the padding arithmetic
	// (Shape, Slice, Sub, Mod, Unsqueeze, Concat) is dead and not written.
	if nodeCount != 5 {
		t.Errorf("%d ONNX nodes, want 5 (Pad, Transpose, Conv, Transpose, Identity)", nodeCount)
	}
}

// TestClampBecomesOneClip checks that Minimum and Maximum against scalar
// constants (tf.clipByValue, RVM's clamp of its outputs) become one Clip,
// both orders, and stay exact; a Minimum of two tensors stays a Min.
func TestClampBecomesOneClip(t *testing.T) {
	x := randTensor(41, 1, 3, 4, 1)
	for i := range x.f {
		x.f[i] *= 3
	}
	xph := ph("x", "DT_FLOAT", -1, -1, -1, 1)
	ws := []testWeight{wF("lo", nil, []float32{0}), wF("hi", nil, []float32{1})}
	clamp := mapF(x, func(a float64) float64 { return min(max(a, 0), 1) })
	for _, c := range []struct {
		name         string
		inner, outer string
	}{
		{"Maximum(Minimum(x, 1), 0)", "Minimum", "Maximum"},
		{"Minimum(Maximum(x, 0), 1)", "Maximum", "Minimum"},
	} {
		innerK, outerK := "hi", "lo"
		if c.inner == "Maximum" {
			innerK, outerK = "lo", "hi"
		}
		oc := opCase{name: c.name, nodes: []map[string]any{xph, cn("lo", "DT_FLOAT"), cn("hi", "DT_FLOAT"),
			nd("a", c.inner, []string{innerK, "x"}, nil), nd("z", c.outer, []string{"a", outerK}, nil)},
			weights: ws, inputs: map[string]tensor{"x": x}, output: "z", want: clamp}
		got, nodes := runCase(t, oc)
		if d := maxAbsDiff(t, c.name, got, clamp); d != 0 {
			t.Errorf("%s: max |Δ| = %g, want 0", c.name, d)
		}
		// Clip, Identity.
		if nodes != 2 {
			t.Errorf("%s: %d ONNX nodes, want 2 (one Clip and the output's Identity)", c.name, nodes)
		}
	}
	y := randTensor(42, 1, 3, 4, 1)
	oc := opCase{name: "Minimum(x, y)", nodes: []map[string]any{xph, ph("y", "DT_FLOAT", -1, -1, -1, 1), nd("z", "Minimum", []string{"x", "y"}, nil)},
		inputs: map[string]tensor{"x": x, "y": y}, output: "z", want: zipF(x, y, math.Min)}
	got, _ := runCase(t, oc)
	if d := maxAbsDiff(t, oc.name, got, oc.want); d != 0 {
		t.Errorf("Minimum of two tensors: max |Δ| = %g", d)
	}
}

// TestConvOfConcatIsSplit checks that a convolution of a channel
// concatenation of odd width (8 channels from a convolution and a
// 3-channel input, 11 in all) is converted as one convolution per part,
// summed, without the concatenation, and computes the same.
func TestConvOfConcatIsSplit(t *testing.T) {
	x := randTensor(50, 1, 6, 7, 3)
	s := randTensor(51, 1, 6, 7, 3)
	w1s, w2s := []int64{3, 3, 3, 8}, []int64{3, 3, 11, 4}
	w1, w2, b2 := randFloats(52, 3*3*3*8), randFloats(53, 3*3*11*4), randFloats(54, 4)
	conv := func(name, op string, extra map[string]any, ins ...string) map[string]any {
		a := map[string]any{"strides": aInts(1, 1, 1, 1), "padding": aS("SAME"), "data_format": aS("NHWC"), "dilations": aInts(1, 1, 1, 1)}
		for k, v := range extra {
			a[k] = v
		}
		return nd(name, op, ins, a)
	}
	nodes := []map[string]any{ph("x", "DT_FLOAT", -1, -1, -1, 3), ph("s", "DT_FLOAT", -1, -1, -1, 3),
		cn("w1", "DT_FLOAT"), cn("w2", "DT_FLOAT"), cn("b2", "DT_FLOAT"), cn("axis", "DT_INT32"),
		conv("a", "Conv2D", nil, "x", "w1"),
		nd("r", "Relu", []string{"s"}, nil),
		nd("cat", "ConcatV2", []string{"a", "r", "axis"}, map[string]any{"N": aI(2)}),
		conv("z", "_FusedConv2D", map[string]any{"fused_ops": aStrs("BiasAdd", "Relu"), "num_args": aI(1)}, "cat", "w2", "b2")}
	weights := []testWeight{wF("w1", w1s, w1), wF("w2", w2s, w2), wF("b2", []int64{4}, b2), wI("axis", nil, -1)}
	// The reference: the concatenation, then the convolution.
	a := refConv(x, w1, w1s, false, 1, 1, true, nil)
	r := mapF(s, func(v float64) float64 { return max(v, 0) })
	cat := tensor{shape: []int64{1, 6, 7, 11}}
	for p := range 6 * 7 {
		cat.f = append(cat.f, a.f[p*8:(p+1)*8]...)
		cat.f = append(cat.f, r.f[p*3:(p+1)*3]...)
	}
	want := mapF(refConv(cat, w2, w2s, false, 1, 1, true, b2), func(v float64) float64 { return max(v, 0) })

	path := writeModel(t, t.TempDir(), nodes, weights, map[string]any{}, map[string]any{"out": map[string]any{"name": "z:0"}})
	data, _, err := ConvertFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	convs := 0
	for _, n := range m.Graph.Node {
		switch n.OpType {
		case "Concat":
			t.Errorf("the converted graph still concatenates (%s)", n.Name)
		case "Conv":
			convs++
		}
	}
	if convs != 3 {
		t.Errorf("%d convolutions, want 3 (the first, and one per part of the concatenation)", convs)
	}
	got := newSession(t, data, []string{"s", "x"}, []string{"out"}).run(t, map[string]tensor{"x": x, "s": s})["out"]
	if d := maxAbsDiff(t, "split", got, want); d > 1e-5 {
		t.Errorf("max |Δ| = %g\n got %v\nwant %v", d, head(got), head(want))
	}
}

// TestSplitPushedDown checks RVM's ending, split(resize(a) ·
// concat(x, mean(x)), [3, 1]), with the frame size read off the
// concatenation: the split is pushed below the resize, the
// full-size concatenation and split are gone, the one-channel part is
// resized as NCHW, and both parts and the shape are exact.
func TestSplitPushedDown(t *testing.T) {
	x := randTensor(60, 2, 8, 10, 3)
	a := randTensor(61, 2, 3, 4, 4)
	nodes := []map[string]any{ph("x", "DT_FLOAT", -1, -1, -1, 3), ph("a", "DT_FLOAT", -1, -1, -1, 4),
		cn("axis", "DT_INT32"), cn("ra", "DT_INT32"), cn("sizes", "DT_INT32"), cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("st", "DT_INT32"),
		nd("m", "Mean", []string{"x", "ra"}, map[string]any{"keep_dims": aB(true)}),
		nd("cat", "ConcatV2", []string{"x", "m", "axis"}, map[string]any{"N": aI(2)}),
		nd("shape", "Shape", []string{"cat"}, map[string]any{"out_type": aType("DT_INT32")}),
		nd("hw", "StridedSlice", []string{"shape", "b", "e", "st"}, map[string]any{"Index": aType("DT_INT32"), "T": aType("DT_INT32")}),
		nd("r", "ResizeBilinear", []string{"a", "hw"}, map[string]any{"align_corners": aB(false), "half_pixel_centers": aB(true)}),
		nd("y", "Mul", []string{"r", "cat"}, nil),
		nd("sp", "SplitV", []string{"y", "sizes", "axis"}, map[string]any{"num_split": aI(2)}),
		nd("rgb", "Identity", []string{"sp"}, nil), nd("alpha", "Identity", []string{"sp:1"}, nil),
		nd("dims", "Identity", []string{"shape"}, map[string]any{"T": aType("DT_INT32")})}
	weights := []testWeight{wI("axis", nil, -1), wI("ra", []int64{1}, -1), wI("sizes", []int64{2}, 3, 1),
		wI("b", []int64{1}, 1), wI("e", []int64{1}, 3), wI("st", []int64{1}, 1)}
	path := writeModel(t, t.TempDir(), nodes, weights, map[string]any{}, map[string]any{
		"rgb": map[string]any{"name": "rgb:0"}, "alpha": map[string]any{"name": "alpha:0"}, "dims": map[string]any{"name": "dims:0"}})
	data, _, err := ConvertFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Node {
		if n.OpType == "Split" {
			t.Errorf("the converted graph still splits (%s)", n.Name)
		}
		if a := onnx.NodeAttr(n, "axis"); n.OpType == "Concat" && a != nil && a.I != 0 {
			t.Errorf("the converted graph still concatenates tensors (%s)", n.Name)
		}
	}
	// The reference, in Go.
	r := refResize(a, 8, 10, false, true)
	var rgb, alpha tensor
	rgb.shape, alpha.shape = []int64{2, 8, 10, 3}, []int64{2, 8, 10, 1}
	for p := range 2 * 8 * 10 {
		mean := (float64(x.f[3*p]) + float64(x.f[3*p+1]) + float64(x.f[3*p+2])) / 3
		for k := range 3 {
			rgb.f = append(rgb.f, r.f[4*p+k]*x.f[3*p+k])
		}
		alpha.f = append(alpha.f, float32(float64(r.f[4*p+3])*mean))
	}
	got := newSession(t, data, []string{"a", "x"}, []string{"rgb", "alpha", "dims"}).run(t, map[string]tensor{"x": x, "a": a})
	if d := maxAbsDiff(t, "rgb", got["rgb"], rgb); d > 1e-5 {
		t.Errorf("rgb: max |Δ| = %g", d)
	}
	if d := maxAbsDiff(t, "alpha", got["alpha"], alpha); d > 1e-5 {
		t.Errorf("alpha: max |Δ| = %g", d)
	}
	if d := got["dims"]; fmt.Sprint(d.i) != "[2 8 10 4]" {
		t.Errorf("shape of the concatenation %v, want [2 8 10 4]", d.i)
	}
}

// TestShapeOps checks the ops of shape computations and tensor plumbing.
func TestShapeOps(t *testing.T) {
	x := randTensor(40, 2, 4, 6, 8)
	xph := ph("x", "DT_FLOAT", -1, -1, -1, 8)
	xin := map[string]tensor{"x": x}
	// gather returns x restricted to the index ranges given per axis.
	gather := func(x tensor, ranges [][3]int) tensor {
		var out tensor
		var idx func(axis, off int)
		for _, r := range ranges {
			out.shape = append(out.shape, int64((r[1]-r[0]+r[2]-1)/r[2]))
		}
		idx = func(axis, off int) {
			if axis == len(x.shape) {
				out.f = append(out.f, x.f[off])
				return
			}
			r := ranges[axis]
			for i := r[0]; i < r[1]; i += r[2] {
				idx(axis+1, off*int(x.shape[axis])+i)
			}
		}
		idx(0, 0)
		return out
	}
	ssAttr := func(bm, em, sm int64) map[string]any {
		return map[string]any{"begin_mask": aI(bm), "end_mask": aI(em), "shrink_axis_mask": aI(sm), "ellipsis_mask": aI(0), "new_axis_mask": aI(0)}
	}
	sliced := gather(x, [][3]int{{0, 2, 1}, {1, 3, 1}, {0, 6, 2}, {0, 8, 1}})
	// Concat along channels of x and 2x.
	cat := tensor{shape: []int64{2, 4, 6, 16}}
	for p := range 2 * 4 * 6 {
		cat.f = append(cat.f, x.f[p*8:p*8+8]...)
		for _, v := range x.f[p*8 : p*8+8] {
			cat.f = append(cat.f, 2*v)
		}
	}
	chans := func(lo, hi int) tensor { return gather(x, [][3]int{{0, 2, 1}, {0, 4, 1}, {0, 6, 1}, {lo, hi, 1}}) }
	meanHW := tensor{shape: []int64{2, 1, 1, 8}, f: make([]float32, 16)}
	for b := range 2 {
		for c := range 8 {
			var s float64
			for p := range 24 {
				s += float64(x.f[(b*24+p)*8+c])
			}
			meanHW.f[b*8+c] = float32(s / 24)
		}
	}
	padded := tensor{shape: []int64{2, 5, 9, 8}, f: make([]float32, 2*5*9*8)}
	for b := range 2 {
		for y := range 4 {
			for xx := range 6 {
				copy(padded.f[((b*5+y+1)*9+xx+1)*8:], x.f[((b*4+y)*6+xx)*8:((b*4+y)*6+xx)*8+8])
			}
		}
	}
	small := randTensor(41, 1, 1, 1, 8)
	bcast := tensor{shape: []int64{2, 4, 6, 8}}
	for range 48 {
		bcast.f = append(bcast.f, small.f...)
	}
	m2 := randTensor(42, 3, 5)
	k2 := randFloats(43, 4*5) // [4, 5], used transposed
	mm := tensor{shape: []int64{3, 4}, f: make([]float32, 12)}
	for i := range 3 {
		for j := range 4 {
			var s float64
			for k := range 5 {
				s += float64(m2.f[i*5+k]) * float64(k2[j*5+k])
			}
			mm.f[i*4+j] = float32(s)
		}
	}
	cases := []opCase{
		{name: "StridedSlice begin/end/stride", nodes: []map[string]any{xph, cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"),
			nd("z", "StridedSlice", []string{"x", "b", "e", "s"}, ssAttr(0b1001, 0b1001, 0))},
			weights: []testWeight{wI("b", []int64{4}, 5, 1, 0, 5), wI("e", []int64{4}, 0, 3, 6, 0), wI("s", []int64{4}, 1, 1, 2, 1)},
			inputs:  xin, output: "z", want: sliced},
		{name: "StridedSlice shrink of Shape, Cast", nodes: []map[string]any{xph, cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"),
			nd("sh", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")}),
			nd("w", "StridedSlice", []string{"sh", "b", "e", "s"}, ssAttr(0, 0, 1)),
			// A scalar cannot leave ONNX Runtime's Go binding: pack it.
			nd("p", "Pack", []string{"w"}, map[string]any{"N": aI(1), "axis": aI(0), "T": aType("DT_INT32")}),
			nd("z", "Cast", []string{"p"}, map[string]any{"SrcT": aType("DT_INT32"), "DstT": aType("DT_FLOAT")})},
			weights: []testWeight{wI("b", []int64{1}, 2), wI("e", []int64{1}, 3), wI("s", []int64{1}, 1)},
			inputs:  xin, output: "z", want: ft([]int64{1}, []float32{6})},
		{name: "Shape", nodes: []map[string]any{xph, nd("z", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")})},
			inputs: xin, output: "z", want: it([]int64{4}, 2, 4, 6, 8)},
		{name: "Pack of scalars, FloorMod int", nodes: []map[string]any{xph, cn("b", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"),
			cn("k", "DT_INT32"), cn("m", "DT_INT32"), cn("zero", "DT_INT32"),
			nd("sh", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")}),
			nd("w", "StridedSlice", []string{"sh", "b", "e", "s"}, ssAttr(0, 0, 1)),
			nd("neg", "Sub", []string{"zero", "w"}, map[string]any{"T": aType("DT_INT32")}),
			nd("r", "FloorMod", []string{"neg", "m"}, map[string]any{"T": aType("DT_INT32")}),
			nd("z", "Pack", []string{"k", "r", "k"}, map[string]any{"N": aI(3), "axis": aI(0), "T": aType("DT_INT32")})},
			weights: []testWeight{wI("b", []int64{1}, 2), wI("e", []int64{1}, 3), wI("s", []int64{1}, 1), wI("k", nil, 7), wI("m", nil, 4), wI("zero", nil, 0)},
			inputs:  xin, output: "z", want: it([]int64{3}, 7, 2, 7)},
		{name: "ConcatV2", nodes: []map[string]any{xph, cn("two", "DT_FLOAT"), cn("ax", "DT_INT32"),
			nd("x2", "Mul", []string{"x", "two"}, nil), nd("z", "ConcatV2", []string{"x", "x2", "ax"}, map[string]any{"N": aI(2)})},
			weights: []testWeight{wF("two", nil, []float32{2}), wI("ax", nil, -1)}, inputs: xin, output: "z", want: cat},
		{name: "Split second half", nodes: []map[string]any{xph, cn("ax", "DT_INT32"),
			nd("sp", "Split", []string{"ax", "x"}, map[string]any{"num_split": aI(2)}), nd("z", "Identity", []string{"sp:1"}, nil)},
			weights: []testWeight{wI("ax", nil, 3)}, inputs: xin, output: "z", want: chans(4, 8)},
		{name: "SplitV 3+5, second", nodes: []map[string]any{xph, cn("sz", "DT_INT32"), cn("ax", "DT_INT32"),
			nd("sp", "SplitV", []string{"x", "sz", "ax"}, map[string]any{"num_split": aI(2)}), nd("z", "Identity", []string{"sp:1"}, nil)},
			weights: []testWeight{wI("sz", []int64{2}, 3, 5), wI("ax", nil, -1)}, inputs: xin, output: "z", want: chans(3, 8)},
		{name: "Slice constant", nodes: []map[string]any{xph, cn("b", "DT_INT32"), cn("s", "DT_INT32"), nd("z", "Slice", []string{"x", "b", "s"}, nil)},
			weights: []testWeight{wI("b", []int64{4}, 0, 1, 0, 0), wI("s", []int64{4}, -1, 2, 6, -1)},
			inputs:  xin, output: "z", want: gather(x, [][3]int{{0, 2, 1}, {1, 3, 1}, {0, 6, 1}, {0, 8, 1}})},
		{name: "Slice computed size", nodes: []map[string]any{xph, cn("b", "DT_INT32"), cn("m1", "DT_INT32"), cn("two", "DT_INT32"), cn("bb", "DT_INT32"), cn("e", "DT_INT32"), cn("s", "DT_INT32"),
			nd("sh", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")}),
			nd("h", "StridedSlice", []string{"sh", "bb", "e", "s"}, ssAttr(0, 0, 1)),
			nd("hm", "Sub", []string{"h", "two"}, map[string]any{"T": aType("DT_INT32")}),
			nd("size", "Pack", []string{"m1", "hm", "m1", "m1"}, map[string]any{"N": aI(4), "axis": aI(0), "T": aType("DT_INT32")}),
			nd("z", "Slice", []string{"x", "b", "size"}, nil)},
			weights: []testWeight{wI("b", []int64{4}, 0, 1, 0, 0), wI("m1", nil, -1), wI("two", nil, 2), wI("bb", []int64{1}, 1), wI("e", []int64{1}, 2), wI("s", []int64{1}, 1)},
			inputs:  xin, output: "z", want: gather(x, [][3]int{{0, 2, 1}, {1, 3, 1}, {0, 6, 1}, {0, 8, 1}})},
		{name: "Mean over H, W", nodes: []map[string]any{xph, cn("ax", "DT_INT32"), nd("z", "Mean", []string{"x", "ax"}, map[string]any{"keep_dims": aB(true)})},
			weights: []testWeight{wI("ax", []int64{2}, 1, 2)}, inputs: xin, output: "z", want: meanHW},
		{name: "Pad", nodes: []map[string]any{xph, cn("p", "DT_INT32"), nd("z", "Pad", []string{"x", "p"}, nil)},
			weights: []testWeight{wI("p", []int64{4, 2}, 0, 0, 1, 0, 1, 2, 0, 0)}, inputs: xin, output: "z", want: padded},
		{name: "BroadcastTo Shape", nodes: []map[string]any{xph, ph("r", "DT_FLOAT"),
			nd("sh", "Shape", []string{"x"}, map[string]any{"out_type": aType("DT_INT32")}),
			nd("z", "BroadcastTo", []string{"r", "sh"}, nil)},
			inputs: map[string]tensor{"x": x, "r": small}, output: "z", want: bcast},
		{name: "Reshape, Squeeze", nodes: []map[string]any{ph("m", "DT_FLOAT", 3, 5), cn("s", "DT_INT32"),
			nd("r", "Reshape", []string{"m", "s"}, nil), nd("z", "Squeeze", []string{"r"}, map[string]any{"squeeze_dims": aInts(0, 2)})},
			weights: []testWeight{wI("s", []int64{4}, 1, 3, 1, 5)}, inputs: map[string]tensor{"m": m2}, output: "z", want: m2},
		{name: "MatMul transpose_b", nodes: []map[string]any{ph("m", "DT_FLOAT", 3, 5), cn("k", "DT_FLOAT"),
			nd("z", "MatMul", []string{"m", "k"}, map[string]any{"transpose_a": aB(false), "transpose_b": aB(true)})},
			weights: []testWeight{wF("k", []int64{4, 5}, k2)}, inputs: map[string]tensor{"m": m2}, output: "z", want: mm},
	}
	for _, c := range cases {
		checkCase(t, c)
	}
}

// controlFlowGraph is RVM's pattern: the branch taken depends on
// r == 1; the true branch doubles x, the false branch negates it.
func controlFlowGraph() ([]map[string]any, []testWeight) {
	return []map[string]any{ph("x", "DT_FLOAT", -1, 4), ph("r", "DT_FLOAT"), cn("one", "DT_FLOAT"), cn("two", "DT_FLOAT"),
			nd("eq", "Equal", []string{"r", "one"}, map[string]any{"incompatible_shape_error": aB(false)}),
			nd("pred", "Squeeze", []string{"eq"}, map[string]any{"T": aType("DT_BOOL"), "squeeze_dims": aInts()}),
			nd("sw", "Switch", []string{"x", "pred"}, nil),
			nd("then", "Mul", []string{"sw:1", "two"}, nil),
			nd("else", "Sub", []string{"one", "sw"}, nil),
			nd("mg", "Merge", []string{"then", "else"}, map[string]any{"N": aI(2)}),
			nd("z", "Identity", []string{"mg", "^sw"}, nil)},
		[]testWeight{wF("one", nil, []float32{1}), wF("two", nil, []float32{2})}
}

// TestSwitchMergeFolding checks that Switch/Merge fold to the branch
// Options.Below fixes, with no node of the other branch written, and that
// a predicate the options do not fix is an error naming the Switch.
func TestSwitchMergeFolding(t *testing.T) {
	nodes, weights := controlFlowGraph()
	x := randTensor(50, 3, 4)
	c := opCase{name: "folded", nodes: nodes, weights: weights, inputs: map[string]tensor{"x": x, "r": ft([]int64{1}, []float32{0.5})},
		opts: Options{Below: map[string]float64{"r": 1}}, output: "z", want: mapF(x, func(a float64) float64 { return 1 - a })}
	got, n := runCase(t, c)
	if d := maxAbsDiff(t, "folded", got, c.want); d > 1e-6 {
		t.Errorf("max |Δ| = %g: the false branch (1 − x) was not taken", d)
	}
	if n != 2 { // Sub and the output's Identity
		t.Errorf("%d ONNX nodes, want 2 (the untaken branch and the predicate are dead)", n)
	}
	path := writeModel(t, t.TempDir(), nodes, weights, map[string]any{}, map[string]any{"y": map[string]any{"name": "z:0"}})
	for _, opts := range []Options{{}, {Below: map[string]float64{"r": 2}}} {
		_, _, err := ConvertFile(path, opts)
		var e *Error
		if !errors.As(err, &e) || e.Node != "sw" || e.Op != "Switch" {
			t.Errorf("Below %v: error %v, want one naming Switch node sw", opts.Below, err)
		}
	}
}

// TestUnsupportedOpIsAnError checks that an op the converter does not
// map fails the conversion with an error naming the op and the node, and
// that an op in a dead branch does not matter.
func TestUnsupportedOpIsAnError(t *testing.T) {
	nodes := []map[string]any{ph("x", "DT_FLOAT", -1, 4), nd("weird", "Erfinv", []string{"x"}, nil), nd("z", "Relu", []string{"weird"}, nil)}
	path := writeModel(t, t.TempDir(), nodes, nil, map[string]any{}, map[string]any{"y": map[string]any{"name": "z:0"}})
	_, _, err := ConvertFile(path, Options{})
	var u *UnsupportedOpError
	if !errors.As(err, &u) || u.Op != "Erfinv" || u.Node != "weird" || !strings.Contains(err.Error(), `"Erfinv"`) || !strings.Contains(err.Error(), `"weird"`) {
		t.Fatalf("error %v, want an UnsupportedOpError naming Erfinv and node weird", err)
	}
	// The same op on a node no output needs is never converted.
	nodes = append(nodes, nd("z2", "Sigmoid", []string{"x"}, nil))
	path = writeModel(t, t.TempDir(), nodes, nil, map[string]any{}, map[string]any{"y": map[string]any{"name": "z2:0"}})
	if _, n, err := ConvertFile(path, Options{}); err != nil || n != 2 {
		t.Fatalf("converting around a dead unsupported node: %d nodes, %v", n, err)
	}
}

// TestOutputNamedLikeAnInput checks that an output whose name is taken by
// an input is an error, not an invalid ONNX file.
func TestOutputNamedLikeAnInput(t *testing.T) {
	nodes := []map[string]any{ph("x", "DT_FLOAT", -1, 4), nd("z", "Relu", []string{"x"}, nil)}
	path := writeModel(t, t.TempDir(), nodes, nil, map[string]any{}, map[string]any{"x": map[string]any{"name": "z:0"}})
	if _, _, err := ConvertFile(path, Options{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("error %v, want one naming output x", err)
	}
}

// TestLoadRejectsBadModels checks the structured errors of Load.
func TestLoadRejectsBadModels(t *testing.T) {
	dir := t.TempDir()
	path := writeModel(t, dir, []map[string]any{ph("x", "DT_FLOAT", 1), cn("k", "DT_FLOAT")},
		[]testWeight{wF("k", []int64{4}, []float32{1, 2, 3, 4})}, map[string]any{}, map[string]any{})
	// Truncate the weights: the manifest describes more than the shard.
	if err := os.Truncate(dir+"/weights.bin", 8); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `weight "k"`) {
		t.Errorf("truncated weights: %v", err)
	}
	if _, err := Load(dir + "/missing.json"); err == nil {
		t.Error("a missing file loaded")
	}
}
