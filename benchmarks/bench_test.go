package benchmarks

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/models"
)

// harnessRuntime skips the test when the ONNX Runtime library is not
// installed, unless VIDMATTE_ISNET is set (then it fails).
func harnessRuntime(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(models.DefaultLibraryPath()); err != nil {
		if os.Getenv("VIDMATTE_ISNET") != "" {
			t.Fatalf("VIDMATTE_ISNET is set but the ONNX Runtime library is missing: %v (run scripts/setup)", err)
		}
		t.Skipf("no ONNX Runtime library at %s (run scripts/setup)", models.DefaultLibraryPath())
	}
}

// A whole bench run, kept to a few seconds: the chroma model alone on one
// small green-screen clip, with every baseline. It writes the report with
// all its files, and the figures in it make sense.
func TestBenchEndToEndChroma(t *testing.T) {
	harnessRuntime(t)
	out := t.TempDir()
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{
		Models: []string{"chroma"}, Sets: []string{SetGreenscreen}, Foregrounds: []string{FgShapes},
		Width: 128, Height: 96, Frames: 6, Out: out, Cache: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, name := range []string{ReportFile, ResultsFile, ContactSheetFile, ScatterFile, BarsFile, SpeedupFile,
		errorOverTimeFile("greenscreen/shapes-green")} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, ".svg") {
			checkXML(t, filepath.Join(out, name))
		}
	}

	// The runs: vidmatte with its default smoothing and the other setting,
	// the naive pipeline, FFmpeg's two keyers; all measured.
	other := "chroma (smoothing on)"
	if man, err := mustRegistry(t).Get("chroma"); err == nil && man.PerFrame() {
		other = "chroma (no smoothing)"
	}
	want := map[string]bool{"chroma": false, other: false, "chroma naive": false, "ffmpeg-chromakey": false, "ffmpeg-colorkey": false}
	byLabel := map[string]*Measurement{}
	for _, r := range res.Runs {
		if r.Error != "" {
			t.Errorf("%s failed: %s", r.Label(), r.Error)
			continue
		}
		want[r.Label()] = true
		byLabel[r.Label()] = r
		if r.Frames != 6 || r.Quality == nil || math.IsNaN(r.Quality.MAD) || r.Speed.FPS <= 0 || r.Speed.OutputBytes <= 0 {
			t.Errorf("%s: frames %d, quality %+v, speed %+v", r.Label(), r.Frames, r.Quality, r.Speed)
		}
		if r.Quality != nil && len(r.Quality.PerFrameMAD) != 6 {
			t.Errorf("%s: %d per-frame MADs, want 6", r.Label(), len(r.Quality.PerFrameMAD))
		}
	}
	for l, ok := range want {
		if !ok {
			t.Errorf("no run %q", l)
		}
	}
	// The naive pipeline runs the same model without smoothing: its
	// mattes differ from the engine's only by the RGB → YUV conversion of
	// the script, so the errors are close.
	var noSmooth *Measurement
	for _, r := range res.Runs {
		if r.Pipeline == PipelineVidmatte && r.Smoothing == "off" {
			noSmooth = r
		}
	}
	if n, e := byLabel["chroma naive"], noSmooth; n != nil && e != nil && n.Quality != nil && e.Quality != nil {
		if math.Abs(n.Quality.MAD-e.Quality.MAD) > 0.25*e.Quality.MAD+1 {
			t.Errorf("naive MAD %.2f, engine without smoothing %.2f: the two should measure the same model", n.Quality.MAD, e.Quality.MAD)
		}
	}
	if v := byLabel["chroma"]; v != nil && v.Speed.ModelMsPerFrame <= 0 {
		t.Errorf("the engine run has no model time: %+v", v.Speed)
	}

	// results.json reads back into the same figures.
	back, err := ReadResults(filepath.Join(out, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != len(res.Runs) || back.Runs[0].Quality.MAD != res.Runs[0].Quality.MAD {
		t.Errorf("results.json does not read back the same runs")
	}
	if back.Versions.Go == "" || back.Versions.FFmpeg == "" || back.Versions.ONNXRuntime == "" || back.Machine.Cores == 0 {
		t.Errorf("machine or versions missing: %+v %+v", back.Machine, back.Versions)
	}

	md, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Headline", "## Ranking per set", "## Speed: vidmatte against the naive pipeline",
		"## Green screen", "## Temporal smoothing", "## Contact sheet", "## Clips", "## Machine, versions and settings",
		"chromakey=0x", "greenscreen/shapes-green", "synthetic", "(" + SpeedupFile + ")", "(" + ContactSheetFile + ")"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("the report lacks %q", s)
		}
	}

	f, err := os.Open(filepath.Join(out, ContactSheetFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Input, truth, chroma and the two keyers: five tiles of 128 px.
	if b := img.Bounds(); b.Dx() < 5*128 || b.Dy() < 2*96 {
		t.Errorf("contact sheet is %dx%d, too small for its tiles", b.Dx(), b.Dy())
	}

	// A comparison of a run with itself shows no change.
	cmp := CompareMarkdown(back, back)
	if !strings.Contains(cmp, "(+0%)") || strings.Contains(cmp, "Only in") {
		t.Errorf("self-comparison:\n%s", cmp)
	}
}

func mustRegistry(t *testing.T) *models.Registry {
	t.Helper()
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func checkXML(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Errorf("%s is not well-formed XML: %v", filepath.Base(path), err)
			return
		}
	}
}

// Comparing two result files pairs their runs, shows the changes and
// lists what only one of them has.
func TestCompareMarkdown(t *testing.T) {
	mk := func(mad, fps float64, extra bool) *Results {
		r := &Results{Schema: ResultsSchema, Machine: Machine{CPU: "cpu", Cores: 2},
			Clips: []*Clip{{ID: "greenscreen/shapes-green", Set: "greenscreen", Key: "k", TruthSource: TruthSynthetic}}}
		r.Runs = append(r.Runs, &Measurement{Model: "chroma", Clip: "greenscreen/shapes-green", Set: "greenscreen",
			Pipeline: PipelineVidmatte, Smoothing: "on", Default: true,
			Quality: &Quality{MAD: mad, DtSSD: 2, Flicker: 1}, Speed: Speed{FPS: fps, ModelMsPerFrame: 1}})
		if extra {
			r.Runs = append(r.Runs, &Measurement{Model: "isnet", Clip: "greenscreen/shapes-green", Set: "greenscreen", Pipeline: PipelineVidmatte, Smoothing: "on", Default: true})
		}
		return r
	}
	out := CompareMarkdown(mk(10, 20, false), mk(8, 30, true))
	for _, s := range []string{"10.0 → 8.00 (-20%)", "20.0 → 30.0 (+50%)", "Only in the new run: isnet on greenscreen/shapes-green"} {
		if !strings.Contains(out, s) {
			t.Errorf("comparison lacks %q:\n%s", s, out)
		}
	}
}

// Ranking: a model is not ranked on a set whose only truth came from it.
func TestRankingLeavesOutTheTruthModel(t *testing.T) {
	r := &Results{Clips: []*Clip{
		{ID: "composite/portrait-street", Set: "composite", TruthSource: TruthModel("isnet")},
	}}
	for _, m := range []struct {
		id  string
		mad float64
	}{{"isnet", 5}, {"isnet-small", 9}} {
		r.Runs = append(r.Runs, &Measurement{Model: m.id, Clip: "composite/portrait-street", Set: "composite",
			Pipeline: PipelineVidmatte, Smoothing: "on", Default: true, Quality: &Quality{MAD: m.mad}, Speed: Speed{FPS: 1}})
	}
	ranks := map[string]int{}
	for _, s := range r.Summaries() {
		ranks[s.Label] = s.Rank
	}
	if ranks["isnet"] != 0 || ranks["isnet-small"] != 1 {
		t.Errorf("ranks %v: isnet must not be ranked on its own truth alone", ranks)
	}
	// With a synthetic clip in the set, isnet is ranked (on the mean).
	r.Clips = append(r.Clips, &Clip{ID: "composite/shapes-tree", Set: "composite", TruthSource: TruthSynthetic})
	for _, m := range []struct {
		id  string
		mad float64
	}{{"isnet", 30}, {"isnet-small", 10}} {
		r.Runs = append(r.Runs, &Measurement{Model: m.id, Clip: "composite/shapes-tree", Set: "composite",
			Pipeline: PipelineVidmatte, Smoothing: "on", Default: true, Quality: &Quality{MAD: m.mad}, Speed: Speed{FPS: 1}})
	}
	ranks = map[string]int{}
	for _, s := range r.Summaries() {
		ranks[s.Label] = s.Rank
		if s.Label == "isnet" && (s.IndependentClips != 1 || s.IndependentMAD != 30 || s.MAD != 17.5) {
			t.Errorf("isnet summary %+v", s)
		}
	}
	if ranks["isnet-small"] != 1 || ranks["isnet"] != 2 {
		t.Errorf("ranks %v", ranks)
	}
}

// A bench run of a refined model (meet, installed by scripts/setup) on a
// small composite clip of generated shapes: it runs with its edge
// refinement (the default) and without, both measured, and the report
// compares the two.
func TestBenchRefinementRuns(t *testing.T) {
	harnessRuntime(t)
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := reg.Get("meet")
	if st := reg.Check(m); !st.Verified {
		t.Fatalf("meet is not installed (run scripts/setup): %+v", st)
	}
	out := t.TempDir()
	var log bytes.Buffer
	res, err := Run(context.Background(), Options{
		Models: []string{"meet"}, Sets: []string{SetComposite}, Foregrounds: []string{FgShapes},
		Width: 320, Height: 180, Frames: 4, Out: out, Cache: t.TempDir(), Log: &log,
		Naive: "none", NoSmoothingRuns: true,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	labels := map[string]*Measurement{}
	for _, r := range res.Runs {
		if r.Error != "" {
			t.Errorf("%s failed: %s", r.Label(), r.Error)
		}
		labels[r.Label()] = r
	}
	on, off := labels["meet"], labels["meet (no refinement)"]
	if on == nil || off == nil || len(res.Runs) != 2 {
		t.Fatalf("runs: %v", labels)
	}
	if on.Quality == nil || off.Quality == nil || off.Refine != "off" || on.Refine != "" || !on.Default || off.Default {
		t.Fatalf("runs: %+v / %+v", on, off)
	}
	if on.Quality.MAD == off.Quality.MAD && on.Quality.Grad == off.Quality.Grad {
		t.Errorf("refinement changed nothing: MAD %g, Grad %g", on.Quality.MAD, on.Quality.Grad)
	}
	report, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "## Edge refinement") || !strings.Contains(string(report), "| meet | composite/shapes-") {
		t.Errorf("the report has no refinement comparison:\n%s", report)
	}
}
