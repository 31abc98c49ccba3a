package models

import (
	"fmt"
	"os"
	"path/filepath"

	"vidmatte/models/onnx"
)

// RVMTestModel returns a small ONNX graph with exactly Robust Video
// Matting's signature whose behaviour proves the recurrent plumbing:
//
//	inputs:  src [B,3,H,W], r1i..r4i [*,*,*,*], downsample_ratio [1]
//	outputs: fgr [B,3,H,W], pha [B,1,H,W], r1o..r4o
//
// r1o is mean(r1i)+0.1 spread over [1,16,2,2], so it counts frames in
// tenths; pha is clamp(mean(r1o), 0, 1) everywhere, so the k-th frame of a
// job (k from 1) has alpha min(1, k/10) when state flows and resets as it
// should. fgr = src. r2o = mean(r2i)+1 over [1,20,3,3] (a frame counter),
// r3o = mean(r3i) over [1,40,2,2], r4o = downsample_ratio over
// [1,64,1,1]: like the real model's, the states' shapes change after the
// first frame.
func RVMTestModel() ([]byte, error) {
	g := onnx.NewBuilder("vidmatte_rvm_test")
	b, h, w := onnx.Symbolic("B"), onnx.Symbolic("H"), onnx.Symbolic("W")
	src := g.Input("src", onnx.Float, b, onnx.Fixed(3), h, w)
	var r [5]string
	for i := 1; i <= 4; i++ {
		r[i] = g.Input(fmt.Sprintf("r%di", i), onnx.Float,
			onnx.Symbolic(fmt.Sprintf("r%d_b", i)), onnx.Symbolic(fmt.Sprintf("r%d_c", i)),
			onnx.Symbolic(fmt.Sprintf("r%d_h", i)), onnx.Symbolic(fmt.Sprintf("r%d_w", i)))
	}
	ratio := g.Input("downsample_ratio", onnx.Float, onnx.Fixed(1))

	mean := func(x string) string {
		return g.Op("ReduceMean", []string{x}, onnx.IntAttr("keepdims", 1))
	}
	stateOut := func(name, value string, shape ...int64) {
		g.OpTo(name, "Expand", []string{value, g.Int64s(shape...)})
		g.Output(name, onnx.Float, onnx.Fixed(shape[0]), onnx.Fixed(shape[1]), onnx.Fixed(shape[2]), onnx.Fixed(shape[3]))
	}

	count := g.Op("Add", []string{mean(r[1]), g.Float(nil, 0.1)}) // [1,1,1,1]
	level := g.Op("Clip", []string{count, g.Float(nil, 0), g.Float(nil, 1)})
	zeros := g.Op("Mul", []string{
		g.Op("ReduceMean", []string{src}, onnx.IntsAttr("axes", 1), onnx.IntAttr("keepdims", 1)),
		g.Float(nil, 0),
	}) // [B,1,H,W]
	g.OpTo("fgr", "Identity", []string{src})
	g.Output("fgr", onnx.Float, b, onnx.Fixed(3), h, w)
	g.OpTo("pha", "Add", []string{zeros, level})
	g.Output("pha", onnx.Float, b, onnx.Fixed(1), h, w)

	stateOut("r1o", count, 1, 16, 2, 2)
	stateOut("r2o", g.Op("Add", []string{mean(r[2]), g.Float(nil, 1)}), 1, 20, 3, 3)
	stateOut("r3o", mean(r[3]), 1, 40, 2, 2)
	stateOut("r4o", g.Op("Reshape", []string{ratio, g.Int64s(1, 1, 1, 1)}), 1, 64, 1, 1)
	return onnx.Marshal(g.Model(17, "vidmatte", "rvm-test-1"))
}

// BuildRVMTestModel writes RVMTestModel to path (creating its folder),
// ready for Registry.Import(path, "rvm", id).
func BuildRVMTestModel(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := RVMTestModel()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
