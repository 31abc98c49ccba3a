package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"vidmatte"
	"vidmatte/models/tfjs"
)

// tfjsModelsDir is where scripts/setup extracts the graph models.
func tfjsModelsDir() string { return filepath.Join(Home(), "tfjs", "models") }

// needTFJSModels skips (or fails) when the graph models are missing.
func needTFJSModels(t *testing.T) {
	t.Helper()
	for _, n := range []string{"rvm", "selfie", "meet"} {
		needAsset(t, filepath.Join(tfjsModelsDir(), n+".json"))
		needAsset(t, filepath.Join(tfjsModelsDir(), n+".bin"))
	}
}

// TestInstallConverted converts rvm, selfie and meet into a fresh models
// folder: each verifies, a second install does nothing, a converted file
// that changed is no longer verified and is converted again (alone), and a
// source that does not match its pin is refused. The manifests carry the
// licences and the hosted service's aliases.
func TestInstallConverted(t *testing.T) {
	needTFJSModels(t)
	r := testRegistry(t)
	for _, id := range []string{"rvm", "selfie", "meet"} {
		m, _ := r.Get(id)
		if st := r.Check(m); st.Present || st.Verified {
			t.Fatalf("%s before install: %+v", id, st)
		}
	}
	res, err := r.InstallConverted(tfjsModelsDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("results %+v", res)
	}
	for _, x := range res {
		if !x.Installed {
			t.Errorf("%s not installed on a fresh folder", x.ID)
		}
		m, _ := r.Get(x.ID)
		if st := r.Check(m); !st.Verified {
			t.Errorf("%s after install: %+v", x.ID, st)
		}
	}
	res, err = r.InstallConverted(tfjsModelsDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Installed {
			t.Errorf("%s converted again although verified", x.ID)
		}
	}

	selfie, _ := r.Get("selfie")
	f, err := os.OpenFile(r.Path(selfie), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	if st := r.Check(selfie); st.Verified || !st.Present {
		t.Fatalf("a changed file still verifies: %+v", st)
	}
	res, err = r.InstallConverted(tfjsModelsDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Installed != (x.ID == "selfie") {
			t.Errorf("second install: %s installed %v", x.ID, x.Installed)
		}
	}
	if st := r.Check(selfie); !st.Verified {
		t.Fatalf("selfie after reinstall: %+v", st)
	}

	// A source that is not the pinned one is refused before converting.
	bad := t.TempDir()
	for _, n := range []string{"meet.json", "meet.bin"} {
		data, err := os.ReadFile(filepath.Join(tfjsModelsDir(), n))
		if err != nil {
			t.Fatal(err)
		}
		if n == "meet.bin" {
			data[100] ^= 1
		}
		os.WriteFile(filepath.Join(bad, n), data, 0o644)
	}
	r2 := testRegistry(t)
	_, err = r2.InstallConverted(bad)
	if err == nil || !strings.Contains(err.Error(), "meet.bin has sha256") {
		t.Fatalf("install from a changed source: %v", err)
	}
	meet, _ := r2.Get("meet")
	if st := r2.Check(meet); st.Present {
		t.Fatalf("a refused source left a file: %+v", st)
	}

	for alias, want := range map[string]string{"human": "rvm", "light": "meet", "original": "isnet", "pro": "rvm", "default": "rvm"} {
		m, err := r.Get(alias)
		if err != nil || m.ID != want {
			t.Errorf("alias %s: %v %v, want %s", alias, m, err, want)
		}
	}
	for id, lic := range map[string]string{"rvm": "GPL-3.0", "selfie": "Apache-2.0", "meet": "Apache-2.0"} {
		m, _ := r.Get(id)
		if !strings.HasPrefix(m.License, lic) {
			t.Errorf("%s licence %q, want %s first", id, m.License, lic)
		}
	}
	rvm, _ := r.Get("rvm")
	if !strings.Contains(rvm.License, "PeterL1n/RobustVideoMatting") {
		t.Errorf("rvm licence does not name its upstream: %q", rvm.License)
	}
}

// TestImportTFJS converts a user's graph model (selfie's model.json) as
// a per-frame model: it runs, takes RGB in 0..1, and its manifest names
// the source files' sums. A graph that does not fit the signature is an
// invalid-request error.
func TestImportTFJS(t *testing.T) {
	needTFJSModels(t)
	rt := testRuntime(t)
	r := testRegistry(t)
	m, err := r.ImportTFJS(filepath.Join(tfjsModelsDir(), "selfie.json"), "isnet", "my-seg", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Input.Width != 256 || m.Input.Height != 256 || m.Input.Std[0] != 255 || m.Input.Mean[0] != 0 || !m.BatchDynamic {
		t.Fatalf("manifest input %+v", m.Input)
	}
	if !strings.Contains(m.Source, "selfie.bin sha256 8f57aaa7") || !strings.Contains(m.Source, "selfie.json sha256 8b7f5f95") {
		t.Fatalf("source %q", m.Source)
	}
	if st := r.Check(m); !st.Verified {
		t.Fatalf("imported: %+v", st)
	}
	again, err := r.ImportTFJS(filepath.Join(tfjsModelsDir(), "selfie.json"), "isnet", "my-seg", ImportOptions{})
	if err != nil || again.SHA256 != m.SHA256 {
		t.Fatalf("importing the same graph again: %v", err)
	}
	model, err := rt.Load(r, m, LoadOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	model.PrepareRGB(b.Slot(0), make([]byte, 3*256*256))
	if err := model.Run(context.Background(), b, 1, nil); err != nil {
		t.Fatal(err)
	}

	_, err = r.ImportTFJS(filepath.Join(tfjsModelsDir(), "rvm.json"), "isnet", "not-a-seg", ImportOptions{})
	var ve *vidmatte.Error
	if !errors.As(err, &ve) || ve.Code != vidmatte.CodeInvalid {
		t.Fatalf("rvm imported as a per-frame model: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "model.json")
	os.WriteFile(junk, []byte("{not json"), 0o644)
	if _, err := r.ImportTFJS(junk, "isnet", "junk", ImportOptions{}); !errors.As(err, &ve) || ve.Code != vidmatte.CodeInvalid {
		t.Fatalf("junk model.json: %v", err)
	}
}

// decodeRGB returns n frames of a video scaled to w×h as planar R, G, B
// bytes (what codec.RGBScaler gives PrepareRGB).
func decodeRGB(t *testing.T, path string, n, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-frames:v", fmt.Sprint(n),
		"-vf", fmt.Sprintf("scale=%d:%d:flags=bilinear", w, h), "-f", "rawvideo", "-pix_fmt", "gbrp", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	size := 3 * w * h
	if len(out) != n*size {
		t.Fatalf("ffmpeg gave %d bytes, want %d", len(out), n*size)
	}
	frames := make([][]byte, n)
	for k := range frames {
		g, b, r := out[k*size:k*size+w*h], out[k*size+w*h:k*size+2*w*h], out[k*size+2*w*h:(k+1)*size]
		frames[k] = append(append(append([]byte{}, r...), g...), b...)
	}
	return frames
}

// TestConvertedRVMState runs the installed rvm on real frames of
// vtest.avi through the Runtime: the ratio comes from the frame size
// (768×576 → 0.5) and an override below 1 is taken while 1 is refused;
// frame 6's matte depends on the frames before it (run after five frames
// it differs from frame 6 run alone), and a new State starts over (the
// first job's mattes come back exactly). fgr is RGB in 0..1.
func TestConvertedRVMState(t *testing.T) {
	video := filepath.Join(Home(), "media", "vtest.avi")
	needAsset(t, video)
	rt := testRuntime(t)
	r, err := NewRegistry(ModelsDir(Home()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Get("rvm")
	needAsset(t, r.Path(m))
	const w, h = 768, 576
	if _, err := rt.Load(r, m, LoadOptions{FrameWidth: w, FrameHeight: h, DownsampleRatio: 1}); err == nil {
		t.Fatal("ratio 1 accepted by the converted rvm")
	}
	over, err := rt.Load(r, m, LoadOptions{FrameWidth: w, FrameHeight: h, DownsampleRatio: 0.375})
	if err != nil {
		t.Fatal(err)
	}
	if over.DownsampleRatio() != 0.375 {
		t.Fatalf("override: ratio %g", over.DownsampleRatio())
	}
	over.Close()
	model, err := rt.Load(r, m, LoadOptions{Batch: 3, FrameWidth: w, FrameHeight: h})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if model.DownsampleRatio() != 0.5 || model.ForegroundKind() != MeaningForegroundRGB {
		t.Fatalf("ratio %g, foreground %q", model.DownsampleRatio(), model.ForegroundKind())
	}
	frames := decodeRGB(t, video, 6, w, h)
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	run := func(st *State, fs [][]byte) [][]float32 {
		var out [][]float32
		for len(fs) > 0 {
			n := min(len(fs), b.Size())
			for i := range n {
				model.PrepareRGB(b.Slot(i), fs[i])
			}
			if err := model.Run(ctx, b, n, st); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				out = append(out, append([]float32(nil), b.Alpha(i)...))
				for _, v := range b.ForegroundRGB(i) {
					if v < -1e-3 || v > 1+1e-3 || math.IsNaN(float64(v)) {
						t.Fatalf("fgr value %g outside 0..1", v)
					}
				}
			}
			fs = fs[n:]
		}
		return out
	}
	st := model.NewState()
	first := run(st, frames)
	st.Close()
	st = model.NewState()
	again := run(st, frames)
	st.Close()
	for k := range first {
		if d := maxDiff(first[k], again[k]); d > 1e-5 {
			t.Fatalf("frame %d differs by %g in a second job: the state was not reset", k, d)
		}
	}
	st = model.NewState()
	alone := run(st, frames[5:])
	st.Close()
	d, mean := maxDiff(first[5], alone[0]), meanDiff(first[5], alone[0])
	t.Logf("frame 6 after five frames vs alone: max |Δpha| %.3f, mean %.4f", d, mean)
	if d < 0.1 {
		t.Fatalf("frame 6's matte does not depend on the frames before it (max |Δ| %g)", d)
	}
}

func meanDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

// TestMeetAlphaIsPersonSoftmax: the converted meet's alpha is the
// softmax's person channel of the graph's own two scores, pixel for
// pixel, on a real frame (the graph converted without the head, run
// side by side in ONNX Runtime).
func TestMeetAlphaIsPersonSoftmax(t *testing.T) {
	needTFJSModels(t)
	testRuntime(t)
	video := filepath.Join(Home(), "media", "vtest.avi")
	needAsset(t, video)
	js := filepath.Join(tfjsModelsDir(), "meet.json")
	raw, _, err := tfjs.ConvertFile(js, tfjs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	head, err := ConvertTFJS(js, SignatureISNet, "meet", nil)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 256, 144
	planar := decodeRGB(t, video, 1, w, h)[0]
	in := make([]float32, 3*w*h)
	for i := range w * h {
		for c := range 3 {
			in[3*i+c] = float32(planar[c*w*h+i]) / 255
		}
	}
	run := func(data []byte, out string, ch int) []float32 {
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"input_1"}, []string{out}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		x, _ := ort.NewTensor(ort.NewShape(1, h, w, 3), in)
		defer x.Destroy()
		res := make([]float32, ch*w*h)
		y, _ := ort.NewTensor(ort.NewShape(1, h, w, int64(ch)), res)
		defer y.Destroy()
		if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
			t.Fatal(err)
		}
		return res
	}
	scores := run(raw, "segment", 2)
	alpha := run(head, "alpha", 1)
	var worst float64
	var person int
	for i := range w * h {
		b, p := float64(scores[2*i]), float64(scores[2*i+1])
		want := 1 / (1 + math.Exp(b-p))
		worst = max(worst, math.Abs(float64(alpha[i])-want))
		if want > 0.5 {
			person++
		}
	}
	t.Logf("max |Δ| %.2g from softmax; %d of %d pixels person", worst, person, w*h)
	if worst > 1e-5 {
		t.Fatalf("alpha differs from the softmax's person channel by %g", worst)
	}
	if person == 0 || person == w*h {
		t.Fatalf("%d of %d pixels person: not a real frame's segmentation", person, w*h)
	}
}
