package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// budgetEngine returns an engine on a Runtime of its own with the given
// memory budget, and the runtime.
func budgetEngine(t *testing.T, budget int64, batch int) (*Engine, *models.Runtime) {
	t.Helper()
	rt, err := models.NewRuntime(models.RuntimeOptions{MemoryBudget: budget, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	reg, err := models.NewRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Runtime: rt, Registry: reg, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	return e, rt
}

// TestJobOverMemoryBudgetRefused: a video whose job does not fit the
// budget even one frame at a time is refused with payload_too_large;
// no session, batch or output is made and no frame is left out.
func TestJobOverMemoryBudgetRefused(t *testing.T) {
	checkNoLeaks(t)
	in, _ := testmedia.GreenScreen(t, 320, 240, 6, false)
	e, rt := budgetEngine(t, 256<<10, 8)
	var loaded int
	open := e.openMatter
	e.openMatter = func(m *models.Manifest, o models.LoadOptions) (matter, error) {
		mt, err := open(m, o)
		if err == nil {
			loaded++
		}
		return mt, err
	}
	out := filepath.Join(t.TempDir(), "out.webm")
	_, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatWebM})
	if vidmatte.ErrorCode(err) != vidmatte.CodeTooLarge || !errors.Is(err, models.ErrOverMemoryBudget) {
		t.Fatalf("Process over budget: %v (code %q)", err, vidmatte.ErrorCode(err))
	}
	t.Logf("refused: %s", vidmatte.ErrorMessage(err))
	if st := rt.Stats(); st.Created != 0 || st.Live != 0 || loaded != 0 {
		t.Errorf("a refused job loaded a model: %+v, %d loads", st, loaded)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("a refused job left files: %v", entries)
	}
}

// TestJobBatchLoweredToBudget: asked for batch 8 on a budget that holds
// 2 frames of this video, the job runs at batch 2, and every frame comes
// out right.
func TestJobBatchLoweredToBudget(t *testing.T) {
	checkNoLeaks(t)
	in, truth := testmedia.GreenScreen(t, 160, 120, 10, false)
	info, err := codec.Probe(in)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := models.NewRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chroma, _ := reg.Get("chroma")
	two, err := models.EstimateMemory(chroma, models.LoadOptions{FrameWidth: info.Width, FrameHeight: info.Height, Frames: frameMemory(info)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := budgetEngine(t, two.Total, 8)
	var batch int
	open := e.openMatter
	e.openMatter = func(m *models.Manifest, o models.LoadOptions) (matter, error) {
		mt, err := open(m, o)
		if err == nil {
			batch = mt.Batch()
		}
		return mt, err
	}
	out := filepath.Join(t.TempDir(), "out.zip")
	res, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatPNGSequence})
	if err != nil {
		t.Fatal(err)
	}
	if batch != 2 {
		t.Errorf("batch %d, want 2 (estimate for 2: %s)", batch, models.FormatBytes(two.Total))
	}
	got := testmedia.ReadAlpha(t, out)
	if res.Frames != int64(len(truth)) || len(got) != len(truth) {
		t.Fatalf("%d frames processed, %d read back, want %d", res.Frames, len(got), len(truth))
	}
	for i := range truth {
		if d := meanAbsError(got[i], truth[i]); d > 0.03 {
			t.Errorf("frame %d: mean absolute alpha error %.4f", i, d)
		}
	}
}
