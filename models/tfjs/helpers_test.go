package tfjs

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"vidmatte/internal/home"

	ort "github.com/yalue/onnxruntime_go"
)

// assetsRequired reports whether tests on installed assets must run
// (VIDMATTE_ISNET set, as scripts/test does): a missing asset is then a
// failure, not a skip.
func assetsRequired() bool {
	v := os.Getenv("VIDMATTE_ISNET")
	return v != "" && v != "0"
}

func needAsset(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if assetsRequired() {
			t.Fatalf("VIDMATTE_ISNET is set but %s is missing (run scripts/setup): %v", path, err)
		}
		t.Skipf("%s is missing (run scripts/setup; set VIDMATTE_ISNET=1 to make this a failure)", path)
	}
}

var ortOnce sync.Once
var ortErr error

// initORT loads the installed ONNX Runtime library once per process.
func initORT(t testing.TB) {
	t.Helper()
	lib := home.LibraryPath()
	needAsset(t, lib)
	ortOnce.Do(func() {
		if ort.IsInitialized() {
			return
		}
		ort.SetSharedLibraryPath(lib)
		ortErr = ort.InitializeEnvironment(ort.WithLogLevelFatal())
	})
	if ortErr != nil {
		t.Fatalf("ONNX Runtime: %v", ortErr)
	}
}

// tensor is a test tensor: float32 data, or int64 when I is set.
type tensor struct {
	shape []int64
	f     []float32
	i     []int64
}

func ft(shape []int64, v []float32) tensor { return tensor{shape: shape, f: v} }

func (t tensor) size() int {
	n := 1
	for _, d := range t.shape {
		n *= int(d)
	}
	return n
}

// session is a converted model loaded in ONNX Runtime (2 intra-op
// threads, all optimizations).
type session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

func newSession(t testing.TB, data []byte, inputs, outputs []string) *session {
	t.Helper()
	initORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(2); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inputs, outputs, opts)
	if err != nil {
		t.Fatalf("ONNX Runtime rejects the converted model: %v", err)
	}
	t.Cleanup(func() { s.Destroy() })
	return &session{s: s, inputs: inputs, outputs: outputs}
}

// run runs the session on in (by input name) and returns every output.
func (s *session) run(t testing.TB, in map[string]tensor) map[string]tensor {
	t.Helper()
	vals := make([]ort.Value, len(s.inputs))
	for i, name := range s.inputs {
		x, ok := in[name]
		if !ok {
			t.Fatalf("no value for input %q", name)
		}
		var v ort.Value
		var err error
		if x.i != nil {
			v, err = ort.NewTensor(ort.NewShape(x.shape...), x.i)
		} else {
			v, err = ort.NewTensor(ort.NewShape(x.shape...), x.f)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer v.Destroy()
		vals[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(vals, outs); err != nil {
		t.Fatalf("ONNX Runtime run: %v", err)
	}
	res := map[string]tensor{}
	for i, o := range outs {
		defer o.Destroy()
		switch v := o.(type) {
		case *ort.Tensor[float32]:
			res[s.outputs[i]] = tensor{shape: v.GetShape(), f: append([]float32{}, v.GetData()...)}
		case *ort.Tensor[int64]:
			res[s.outputs[i]] = tensor{shape: v.GetShape(), i: append([]int64{}, v.GetData()...)}
		case *ort.Tensor[bool]:
			d := v.GetData()
			iv := make([]int64, len(d))
			for k, b := range d {
				if b {
					iv[k] = 1
				}
			}
			res[s.outputs[i]] = tensor{shape: v.GetShape(), i: iv}
		default:
			t.Fatalf("output %q: unexpected type %T", s.outputs[i], o)
		}
	}
	return res
}

// maxAbsDiff returns the largest |a − b|; shapes must match.
func maxAbsDiff(t testing.TB, what string, a, b tensor) float64 {
	t.Helper()
	if len(a.shape) != len(b.shape) {
		t.Fatalf("%s: shape %v, want %v", what, a.shape, b.shape)
	}
	for i := range a.shape {
		if a.shape[i] != b.shape[i] {
			t.Fatalf("%s: shape %v, want %v", what, a.shape, b.shape)
		}
	}
	var m float64
	if a.i != nil || b.i != nil {
		for k := range a.i {
			m = max(m, math.Abs(float64(a.i[k]-b.i[k])))
		}
		return m
	}
	for k := range a.f {
		d := math.Abs(float64(a.f[k]) - float64(b.f[k]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}

func writeF32(t testing.TB, path string, v []float32) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// writeModel writes a graph model into dir: model.json with the given
// nodes and signature, and weights.bin with the constants (float32
// unquantized, or uint8/float16-quantized as quant says).
type testWeight struct {
	name  string
	shape []int64
	dtype string    // "float32", "int32", "bool"
	f     []float32 // float32 values
	i     []int64   // int32 values
	quant string    // "", "uint8", "float16"
}

func writeModel(t testing.TB, dir string, nodes []map[string]any, weights []testWeight, inputs, outputs map[string]any) string {
	t.Helper()
	var blob []byte
	var specs []map[string]any
	for _, w := range weights {
		spec := map[string]any{"name": w.name, "shape": w.shape, "dtype": w.dtype}
		switch {
		case w.dtype == "int32":
			for _, x := range w.i {
				blob = binary.LittleEndian.AppendUint32(blob, uint32(int32(x)))
			}
		case w.dtype == "bool":
			for _, x := range w.i {
				blob = append(blob, byte(x))
			}
		case w.quant == "uint8":
			lo, hi := w.f[0], w.f[0]
			for _, x := range w.f {
				lo, hi = min(lo, x), max(hi, x)
			}
			scale := float64(hi-lo) / 255
			if scale == 0 {
				scale = 1
			}
			for _, x := range w.f {
				blob = append(blob, byte(math.Round(float64(x-lo)/scale)))
			}
			spec["quantization"] = map[string]any{"dtype": "uint8", "min": float64(lo), "scale": scale, "original_dtype": "float32"}
		case w.quant == "float16":
			for _, x := range w.f {
				blob = binary.LittleEndian.AppendUint16(blob, floatToHalf(x))
			}
			spec["quantization"] = map[string]any{"dtype": "float16", "original_dtype": "float32"}
		default:
			for _, x := range w.f {
				blob = binary.LittleEndian.AppendUint32(blob, math.Float32bits(x))
			}
		}
		specs = append(specs, spec)
	}
	m := map[string]any{
		"format":          "graph-model",
		"generatedBy":     "vidmatte test",
		"convertedBy":     "vidmatte test",
		"modelTopology":   map[string]any{"node": nodes, "library": map[string]any{}, "versions": map[string]any{"producer": 1}},
		"signature":       map[string]any{"inputs": inputs, "outputs": outputs},
		"weightsManifest": []map[string]any{{"paths": []string{"weights.bin"}, "weights": specs}},
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// floatToHalf rounds f to IEEE 754 half precision (normal range only, as
// the tests use it).
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	if exp <= 0 {
		return sign
	}
	// Round to nearest, ties to even.
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}
