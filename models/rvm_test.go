package models

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// importRVMTest builds the RVM-signature test model and imports it as a
// user would.
func importRVMTest(t *testing.T, r *Registry) *Manifest {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rvm_test.onnx")
	if err := BuildRVMTestModel(path); err != nil {
		t.Fatal(err)
	}
	m, err := r.Import(path, "rvm", "rvm-test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRVMStateFlowsAndResets drives the RVM-signature test model through
// two jobs of 13 frames in uneven batches: the k-th frame of each job has
// alpha min(1, k/10) (state flows from frame to frame and across Run
// calls, and a new State starts over), fgr is the source, and the
// downsample ratio reaches the model.
func TestRVMStateFlowsAndResets(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m := importRVMTest(t, r)
	if m.Signature != SignatureRVM || m.Kind != Recurrent || m.PerFrame() {
		t.Fatalf("imported manifest: %+v", m)
	}
	const w, h = 48, 32
	model, err := rt.Load(r, m, LoadOptions{Batch: 4, FrameWidth: w, FrameHeight: h})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if !model.Recurrent() || model.PerFrame() || model.Batch() != 4 || model.Color() != ColorRGB {
		t.Fatalf("model: recurrent %v, batch %d, colour %s", model.Recurrent(), model.Batch(), model.Color())
	}
	if model.ForegroundKind() != MeaningForegroundRGB || model.DownsampleRatio() != 1 {
		t.Fatalf("foreground %q, ratio %g", model.ForegroundKind(), model.DownsampleRatio())
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	rgb := make([]byte, 3*w*h)
	for job := range 2 {
		st := model.NewState()
		k := 0
		for _, n := range []int{4, 3, 4, 2} {
			for i := range n {
				for j := range rgb {
					rgb[j] = byte(j + 7*(k+i) + 50*job)
				}
				model.PrepareRGB(b.Slot(i), rgb)
			}
			if err := model.Run(ctx, b, n, st); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				k++
				want := math.Min(1, float64(k)/10)
				for j, a := range b.Alpha(i) {
					if math.Abs(float64(a)-want) > 1e-5 {
						t.Fatalf("job %d frame %d: alpha[%d] = %g, want %g", job, k, j, a, want)
					}
				}
				if b.Foreground(i) != nil {
					t.Fatal("RVM's RGB foreground offered as corrected chroma")
				}
				if d := maxDiff(b.ForegroundRGB(i), b.Slot(i)); d != 0 {
					t.Fatalf("job %d frame %d: fgr differs from src by %g", job, k, d)
				}
			}
		}
		if st.Frames() != 13 {
			t.Fatalf("state saw %d frames", st.Frames())
		}
		st.Close()
	}
}

// TestRVMDownsampleRatio checks the ratio formula and that a 1080p job
// feeds 0.25 to the model (the test model echoes it as its fourth state).
func TestRVMDownsampleRatio(t *testing.T) {
	d := DownsampleRatio{Input: "downsample_ratio", MaxSide: 512}
	for _, c := range []struct {
		w, h int
		want float32
	}{
		{1920, 1080, 0.25}, {1080, 1920, 0.25}, {3840, 2160, 0.125}, {1280, 720, 0.25},
		{640, 480, 0.5}, {512, 288, 1}, {300, 200, 1}, {7680, 4320, 0.0625},
	} {
		got := d.Ratio(c.w, c.h)
		if got != c.want {
			t.Errorf("Ratio(%d, %d) = %g, want %g", c.w, c.h, got, c.want)
		}
		if long := float32(max(c.w, c.h)) * got; max(c.w, c.h) > 512 && (long <= 256 || long > 512) {
			t.Errorf("Ratio(%d, %d): long side %g is outside (256, 512]", c.w, c.h, long)
		}
	}

	rt := testRuntime(t)
	r := testRegistry(t)
	m := importRVMTest(t, r)
	model, err := rt.Load(r, m, LoadOptions{FrameWidth: 1920, FrameHeight: 1080})
	if err != nil {
		t.Fatal(err)
	}
	if model.DownsampleRatio() != 0.25 {
		t.Fatalf("1080p ratio %g", model.DownsampleRatio())
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := model.NewState()
	defer st.Close()
	for range 2 {
		if err := model.Run(context.Background(), b, 1, st); err != nil {
			t.Fatal(err)
		}
	}
	r4 := st.in[3].(*ort.Tensor[float32])
	if shape := r4.GetShape(); !shape.Equals(ort.NewShape(1, 64, 1, 1)) {
		t.Fatalf("r4 state shape %v", shape)
	}
	if v := r4.GetData()[0]; v != 0.25 {
		t.Fatalf("the model saw downsample_ratio %g, want 0.25", v)
	}
}

// TestRunMisuse: wrong state, wrong batch, bad n, cancelled context.
func TestRunMisuse(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m := importRVMTest(t, r)
	model, err := rt.Load(r, m, LoadOptions{Batch: 2, FrameWidth: 8, FrameHeight: 8})
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := model.Run(ctx, b, 1, nil); err == nil {
		t.Error("a recurrent model ran without a state")
	}
	if err := model.Run(ctx, b, 3, model.NewState()); err == nil {
		t.Error("ran 3 frames on a batch of 2")
	}
	chroma, _ := r.Get("chroma")
	other, err := rt.Load(r, chroma, LoadOptions{FrameWidth: 8, FrameHeight: 8})
	if err != nil {
		t.Fatal(err)
	}
	if st := other.NewState(); st != nil {
		t.Error("a per-frame model returned a state")
	}
	if err := other.Run(ctx, b, 1, nil); err == nil {
		t.Error("ran a batch made by another model")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := model.Run(cctx, b, 1, model.NewState()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	// A state left with only its initial tensors (as a failed first run
	// leaves it) still starts at frame 1.
	retry := model.NewState()
	defer retry.Close()
	if err := retry.init(); err != nil {
		t.Fatal(err)
	}
	if err := model.Run(ctx, b, 1, retry); err != nil {
		t.Fatal(err)
	}
	if a := b.Alpha(0)[0]; math.Abs(float64(a)-0.1) > 1e-6 {
		t.Fatalf("first frame after a failed start: alpha %g", a)
	}
	// A context that is live during the run goes through the
	// cancellation plumbing and still runs.
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	st := model.NewState()
	defer st.Close()
	if err := model.Run(lctx, b, 2, st); err != nil {
		t.Fatal(err)
	}
	if a := b.Alpha(1)[0]; math.Abs(float64(a)-0.2) > 1e-6 {
		t.Fatalf("second frame alpha %g", a)
	}
}
