package tfjs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"vidmatte/internal/home"
)

// oracleTolerance bounds max |Δ| between ONNX Runtime on the converted
// graph and TensorFlow.js on the original, on every output. Both compute
// in float32 from the same dequantized weights, so they differ only by
// rounding: each convolution sums hundreds of products in a different
// order (MLAS's blocked kernels against tfjs's plain loops), which costs a
// few ulps (~1e-7 relative) per layer; over RVM's ~60 convolutions and
// its recurrent state, carried from frame to frame, and with activations
// of order 1–10, that grows to about 1e-4. Outputs are in 0..1 (pha, fgr,
// the states are tanh/sigmoid mixes in −1..1, the segmenters' scores are
// sigmoids or logits of order 10), so 1e-3 is a tenth of a grey level in
// 8-bit video, far below anything visible, while any wrong mapping (a
// transposed kernel, an off-by-one pad, a wrong resize convention, a
// dropped bias) moves outputs by 1e-2 or more.
const oracleTolerance = 1e-3

// tfjsHome is where scripts/setup puts the graph models and the oracle.
func tfjsHome() string { return filepath.Join(home.Dir(), "tfjs") }

// decodeFrames returns n consecutive frames of a video as RGB floats in
// 0..1, NHWC, scaled to w×h with FFmpeg's bilinear scaler.
func decodeFrames(t *testing.T, path string, n, w, h int) [][]float32 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-frames:v", fmt.Sprint(n),
		"-vf", fmt.Sprintf("scale=%d:%d:flags=bilinear", w, h), "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decoding %s: %v", path, err)
	}
	size := w * h * 3
	if len(out) != n*size {
		t.Fatalf("ffmpeg gave %d bytes, want %d frames of %d", len(out), n, size)
	}
	frames := make([][]float32, n)
	for k := range frames {
		f := make([]float32, size)
		for i := range f {
			f[i] = float32(out[k*size+i]) / 255
		}
		frames[k] = f
	}
	return frames
}

// oracleStep is one run of the original graph.
type oracleStep struct {
	MS      float64 `json:"ms"`
	Outputs map[string]struct {
		Shape []int64 `json:"shape"`
		File  string  `json:"file"`
	} `json:"outputs"`
}

// runOracle runs the original graph model in TensorFlow.js (CPU backend)
// through oracle/run.js, feeding state outputs back as inputs, and returns
// the outputs of every step.
func runOracle(t *testing.T, model string, outputs []string, state map[string]string, steps []map[string]tensor) ([]map[string]tensor, []float64) {
	t.Helper()
	oracle := filepath.Join(tfjsHome(), "oracle", "node_modules")
	needAsset(t, filepath.Join(oracle, "@tensorflow", "tfjs", "package.json"))
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (scripts/setup installs npm and Node): %v", err)
	}
	dir := t.TempDir()
	type spec struct {
		Shape []int64 `json:"shape"`
		DType string  `json:"dtype"`
		File  string  `json:"file"`
	}
	var reqSteps []map[string]map[string]spec
	for k, in := range steps {
		s := map[string]spec{}
		for name, x := range in {
			file := filepath.Join(dir, fmt.Sprintf("in%d_%s.bin", k, name))
			writeF32(t, file, x.f)
			s[name] = spec{x.shape, "float32", file}
		}
		reqSteps = append(reqSteps, map[string]map[string]spec{"inputs": s})
	}
	req := map[string]any{"model": model, "outdir": dir, "outputs": outputs, "state": state, "steps": reqSteps}
	js, _ := json.Marshal(req)
	reqPath := filepath.Join(dir, "request.json")
	if err := os.WriteFile(reqPath, js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join("oracle", "run.js"), reqPath)
	cmd.Env = append(os.Environ(), "NODE_PATH="+oracle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tfjs oracle: %v\n%s", err, out)
	}
	var res struct {
		Backend string       `json:"backend"`
		Version string       `json:"version"`
		Steps   []oracleStep `json:"steps"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Backend != "cpu" || len(res.Steps) != len(steps) {
		t.Fatalf("oracle ran on backend %q, %d steps", res.Backend, len(res.Steps))
	}
	var all []map[string]tensor
	var ms []float64
	for _, s := range res.Steps {
		m := map[string]tensor{}
		for name, o := range s.Outputs {
			m[name] = ft(o.Shape, readF32(t, o.File))
		}
		all = append(all, m)
		ms = append(ms, s.MS)
	}
	return all, ms
}

// TestConvertedModelsMatchTFJS converts rvm, selfie and meet and runs
// consecutive real frames of vtest.avi (people walking) through the
// converted graph in ONNX Runtime and the original in TensorFlow.js, RVM's
// recurrent state carried in both; every output of every frame agrees
// within oracleTolerance.
func TestConvertedModelsMatchTFJS(t *testing.T) {
	video := filepath.Join(home.Dir(), "media", "vtest.avi")
	needAsset(t, video)
	cases := []struct {
		name    string
		w, h    int
		frames  int
		ratio   float32 // RVM's downsample ratio; 0 for the per-frame models
		input   string
		outputs []string
	}{
		{name: "selfie", w: 256, h: 256, frames: 4, input: "input_1", outputs: []string{"activation_10:0"}},
		{name: "meet", w: 256, h: 144, frames: 4, input: "input_1", outputs: []string{"segment:0"}},
		{name: "rvm", w: 384, h: 288, frames: 6, ratio: 0.5, input: "src", outputs: []string{"fgr", "pha", "r1o", "r2o", "r3o", "r4o"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			model := filepath.Join(tfjsHome(), "models", tc.name+".json")
			needAsset(t, model)
			data, nodes, err := ConvertFile(model, Options{Name: tc.name, Below: map[string]float64{"downsample_ratio": 1},
				InputShapes: map[string][]int64{"downsample_ratio": {1}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d ONNX nodes, %d bytes", tc.name, nodes, len(data))
			frames := decodeFrames(t, video, tc.frames, tc.w, tc.h)
			shape := []int64{1, int64(tc.h), int64(tc.w), 3}
			var steps []map[string]tensor
			state := map[string]string{}
			inputs := []string{tc.input}
			onnxOut := make([]string, len(tc.outputs))
			for i, o := range tc.outputs {
				onnxOut[i] = strings.TrimSuffix(o, ":0")
			}
			for k, f := range frames {
				in := map[string]tensor{tc.input: ft(shape, f)}
				if tc.ratio > 0 {
					in["downsample_ratio"] = ft([]int64{1}, []float32{tc.ratio})
					if k == 0 {
						for i := 1; i <= 4; i++ {
							in[fmt.Sprintf("r%di", i)] = ft([]int64{1, 1, 1, 1}, []float32{0})
						}
					}
				}
				steps = append(steps, in)
			}
			if tc.ratio > 0 {
				inputs = []string{"src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"}
				for i := 1; i <= 4; i++ {
					state[fmt.Sprintf("r%do", i)] = fmt.Sprintf("r%di", i)
				}
			}
			want, tfjsMS := runOracle(t, model, tc.outputs, state, steps)

			s := newSession(t, data, inputs, onnxOut)
			worst := map[string]float64{}
			var ortMS []float64
			carried := map[string]tensor{}
			for k, in := range steps {
				for o, i := range state {
					if v, ok := carried[o]; ok {
						in[i] = v
					}
				}
				start := time.Now()
				got := s.run(t, in)
				ortMS = append(ortMS, float64(time.Since(start).Microseconds())/1000)
				for i, o := range tc.outputs {
					d := maxAbsDiff(t, fmt.Sprintf("frame %d %s", k, o), got[onnxOut[i]], want[k][o])
					worst[o] = max(worst[o], d)
				}
				for o := range state {
					carried[o] = got[o]
				}
			}
			if tc.ratio == 0 {
				// The per-frame models were exported for batch 1; the
				// converted graph takes any batch: frames 0 and 1 as one
				// batch of 2 give each frame's own result.
				both := ft([]int64{2, int64(tc.h), int64(tc.w), 3}, append(append([]float32{}, frames[0]...), frames[1]...))
				got := s.run(t, map[string]tensor{tc.input: both})[onnxOut[0]]
				one := want[0][tc.outputs[0]]
				n := len(one.f)
				for k := range 2 {
					part := tensor{shape: one.shape, f: got.f[k*n : (k+1)*n]}
					if got.shape[0] != 2 {
						t.Fatalf("batch of 2 gave shape %v", got.shape)
					}
					if d := maxAbsDiff(t, "batch", part, want[k][tc.outputs[0]]); d > oracleTolerance {
						t.Errorf("%s: frame %d in a batch of 2: max |Δ| %.3g from tfjs", tc.name, k, d)
					}
				}
			}
			t.Logf("%s %dx%d: max |Δ| over %d frames: %v; ONNX Runtime ms per frame (2 threads) %.1f; tfjs ms %.0f",
				tc.name, tc.w, tc.h, len(frames), worst, ortMS, tfjsMS)
			for o, d := range worst {
				if d > oracleTolerance {
					t.Errorf("%s: max |Δ%s| = %.3g over %d frames, above %g", tc.name, o, d, len(frames), oracleTolerance)
				}
			}
		})
	}
}

// TestInstalledModelsUseOnlyMappedOps lists the ops of rvm, selfie and
// meet and checks that the converter maps each one.
func TestInstalledModelsUseOnlyMappedOps(t *testing.T) {
	mapped := map[string]bool{}
	for _, op := range Ops() {
		mapped[op] = true
	}
	for _, name := range []string{"rvm", "selfie", "meet"} {
		path := filepath.Join(tfjsHome(), "models", name+".json")
		needAsset(t, path)
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]int{}
		for _, n := range m.Nodes {
			ops[n.Op]++
			if !mapped[n.Op] {
				t.Errorf("%s: op %s (node %q) is not mapped", name, n.Op, n.Name)
			}
		}
		t.Logf("%s: %d nodes, ops %v", name, len(m.Nodes), ops)
	}
}
