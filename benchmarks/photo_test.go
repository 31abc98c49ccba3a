package benchmarks

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/models"
)

// An 8×3 matte: a solid block on the left with a soft fringe, a separate
// speck on the right.
//
//	in:  .02 .97 .97 .6   0  0  .8  0
//	     0   1   1   .3  .2  0  .9 .3
//	     0   1   1   0    0  0  0   0
//
// Snapping maps v to clamp((v−.04)/.92): .02 → 0, .97 → 1, .6 → .6087,
// .3 → .2826, .2 → .1739, .8 → .8261, .9 → .9348.
// The solid regions (≥ .5) are the block {x 1–3 of row 0, x 1–2 of rows 1,
// 2} (7 pixels) and the speck {x 6 of rows 0, 1} (2): the block is kept,
// with the soft pixels reachable from it (.2826 and .1739 in row 1); the
// speck and its fringe (.2826 at x 7) go.
func TestRefineCutout(t *testing.T) {
	in := []float32{
		0.02, 0.97, 0.97, 0.6, 0, 0, 0.8, 0,
		0, 1, 1, 0.3, 0.2, 0, 0.9, 0.3,
		0, 1, 1, 0, 0, 0, 0, 0,
	}
	want := []float32{
		0, 1, 1, 0.6087, 0, 0, 0, 0,
		0, 1, 1, 0.2826, 0.1739, 0, 0, 0,
		0, 1, 1, 0, 0, 0, 0, 0,
	}
	got := RefineCutout(in, 8, 3)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			t.Fatalf("pixel %d (x %d, y %d): %.4f, want %.4f\ngot %v", i, i%8, i/8, got[i], want[i], got)
		}
	}
}

// requireISNet skips unless VIDMATTE_ISNET=1; with it set, missing assets
// fail the test.
func requireISNet(t *testing.T) {
	t.Helper()
	if os.Getenv("VIDMATTE_ISNET") == "" {
		t.Skip("runs the ISNet model (seconds per frame): set VIDMATTE_ISNET=1")
	}
	harnessRuntime(t)
	if _, err := os.Stat(filepath.Join(models.Home(), "models", "isnet.onnx")); err != nil {
		t.Fatalf("VIDMATTE_ISNET is set but the ISNet model is missing: %v (run scripts/setup)", err)
	}
}

// ISNet cuts the astronaut out of astronaut.png: the suit is opaque, the
// matte is cached and read back the same.
func TestPhotoCutoutWithISNet(t *testing.T) {
	requireISNet(t)
	media := harnessMedia(t, "astronaut.png")
	rt, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	pm := &photoMatter{rt: rt, reg: reg, model: "isnet", media: media, cache: cache, dev: models.CPU}
	ph, err := pm.photo(context.Background(), FgPortrait)
	if err != nil {
		t.Fatal(err)
	}
	if ph.W != 512 || ph.H != 512 {
		t.Fatalf("photo %dx%d, want 512x512", ph.W, ph.H)
	}
	var opaque, clear int
	for _, a := range ph.Alpha {
		switch {
		case a >= 0.99:
			opaque++
		case a <= 0.01:
			clear++
		}
	}
	n := float64(len(ph.Alpha))
	t.Logf("astronaut cut-out: %.0f%% opaque, %.0f%% clear", 100*float64(opaque)/n, 100*float64(clear)/n)
	if float64(opaque)/n < 0.2 || float64(clear)/n < 0.1 {
		t.Errorf("the cut-out is %.0f%% opaque and %.0f%% clear: not a portrait's matte", 100*float64(opaque)/n, 100*float64(clear)/n)
	}
	// The middle of the suit, low in the picture.
	if a := ph.Alpha[400*512+256]; a < 0.9 {
		t.Errorf("alpha at the suit's middle is %.2f", a)
	}
	entries, err := os.ReadDir(filepath.Join(cache, "mattes"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("matte cache: %v %v", entries, err)
	}
	again := &photoMatter{rt: rt, reg: reg, model: "isnet", media: media, cache: cache, dev: models.CPU}
	ph2, err := again.photo(context.Background(), FgPortrait)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ph.Alpha {
		if ph.Alpha[i] != ph2.Alpha[i] {
			t.Fatal("the cached matte reads back differently")
		}
	}
}

// A small bench run with ISNet on a composite clip whose truth ISNet made:
// the clip says so, ISNet is not ranked on it, and its error is small.
func TestBenchISNetOnItsOwnCutout(t *testing.T) {
	requireISNet(t)
	harnessMedia(t, "vtest.avi")
	out := t.TempDir()
	res, err := Run(context.Background(), Options{
		Models: []string{"isnet"}, Sets: []string{SetComposite}, Foregrounds: []string{FgPortrait},
		Width: 480, Height: 360, Frames: 2, Out: out, Cache: t.TempDir(),
		NoSmoothingRuns: true, Naive: "none", NoKeyers: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Clips) != 1 || res.Clips[0].TruthSource != TruthModel("isnet") {
		t.Fatalf("clips %+v", res.Clips)
	}
	for _, s := range res.Summaries() {
		if s.Label == "isnet" && s.Rank != 0 {
			t.Errorf("isnet ranked %d on its own truth", s.Rank)
		}
	}
	run := res.Runs[0]
	if run.Error != "" || run.Quality == nil {
		t.Fatalf("isnet run: %+v", run)
	}
	// An empty matte's MAD is the truth's mean alpha (×1e3): ISNet must do
	// clearly better than that on the subject it cut out itself.
	truth, err := res.Clips[0].Truth()
	if err != nil {
		t.Fatal(err)
	}
	var empty float64
	for _, fr := range truth {
		empty += MAD(make([]float64, len(fr)), Alpha(fr))
	}
	empty /= float64(len(truth))
	t.Logf("isnet on its own cut-out: MAD %.2f (an empty matte: %.2f), %.0f ms/frame", run.Quality.MAD, empty, run.Speed.ModelMsPerFrame)
	if run.Quality.MAD > 0.7*empty {
		t.Errorf("isnet's MAD on its own cut-out is %.1f, an empty matte's %.1f", run.Quality.MAD, empty)
	}
	md, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "so the truth favours that model") {
		t.Error("the report does not say the truth came from isnet")
	}
}
