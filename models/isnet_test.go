package models

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestISNet runs the real ISNet model (gated on the installed assets;
// required when VIDMATTE_ISNET=1): the batch-dynamic derivative at batch 2
// gives the same alpha as the verified original run one frame at a time,
// and on a real portrait the alpha is high on the person and low on the
// backdrop. Four 1024² inferences in all.
func TestISNet(t *testing.T) {
	rt := testRuntime(t)
	dir := ModelsDir(Home())
	needAsset(t, filepath.Join(dir, "isnet.onnx"))
	astronautPNG := filepath.Join(Home(), "media", "astronaut.png")
	coffeePNG := filepath.Join(Home(), "media", "coffee.png")
	needAsset(t, astronautPNG)
	needAsset(t, coffeePNG)

	r, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Get("original")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "isnet" {
		t.Fatalf("the \"original\" model is %s, want isnet", m.ID)
	}
	if st := r.Check(m); !st.Verified {
		t.Fatalf("isnet.onnx is not verified: %+v", st)
	}

	one, err := rt.Load(r, m, LoadOptions{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	two, err := rt.Load(r, m, LoadOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	if two.Batch() != 2 {
		t.Fatalf("batch 2 load gave Batch() = %d", two.Batch())
	}
	if w, h := two.InputSize(); w != 1024 || h != 1024 || two.Color() != ColorRGB || !two.PerFrame() || two.Recurrent() {
		t.Fatalf("unexpected model shape: %dx%d %s perFrame=%v", w, h, two.Color(), two.PerFrame())
	}
	if _, err := os.Stat(r.BatchPath(m)); err != nil {
		t.Fatalf("the batch-dynamic file was not written: %v", err)
	}
	t.Logf("load: batch 1 %v, batch 2 %v (derivation included)", one.LoadTime(), two.LoadTime())

	frames := [][]byte{
		planarRGB(loadPNG(t, astronautPNG), 1024, 1024),
		planarRGB(loadPNG(t, coffeePNG), 1024, 1024),
	}
	ctx := context.Background()
	b1, err := one.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	var single [2][]float32
	for i, f := range frames {
		one.PrepareRGB(b1.Slot(0), f)
		if err := one.Run(ctx, b1, 1, nil); err != nil {
			t.Fatal(err)
		}
		single[i] = append([]float32(nil), b1.Alpha(0)...)
	}
	b2, err := two.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for i, f := range frames {
		two.PrepareRGB(b2.Slot(i), f)
	}
	if err := two.Run(ctx, b2, 2, nil); err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		var worst float64
		for j, v := range b2.Alpha(i) {
			worst = max(worst, math.Abs(float64(v-single[i][j])))
		}
		t.Logf("frame %d: batch 2 vs batch 1 max |Δalpha| = %.2g", i, worst)
		if worst > 1e-3 {
			t.Errorf("frame %d: batch-2 alpha differs from the batch-1 alpha by up to %g", i, worst)
		}
	}

	a := single[0]
	if dump := os.Getenv("VIDMATTE_TEST_DUMP"); dump != "" {
		writeGray(t, filepath.Join(dump, "isnet-astronaut.png"), a, 1024, 1024)
	}
	// Regions in the 1024² input (the 512² photo doubled): her face,
	// her suit's chest, and the backdrop's top-left corner.
	face := regionMean(a, 1024, 400, 140, 520, 300)
	chest := regionMean(a, 1024, 300, 620, 520, 800)
	corner := regionMean(a, 1024, 0, 0, 120, 60)
	t.Logf("astronaut alpha: face %.3f, chest %.3f, top-left corner %.3f", face, chest, corner)
	if face < 0.9 || chest < 0.9 {
		t.Errorf("alpha on the person is low: face %.3f, chest %.3f (want >= 0.9)", face, chest)
	}
	if corner > 0.1 {
		t.Errorf("alpha on the backdrop's corner is %.3f (want <= 0.1)", corner)
	}
}

// TestISNetSmallInstalled checks the small ISNet's file against its
// manifest (no inference: it is as slow as the medium one here).
func TestISNetSmallInstalled(t *testing.T) {
	dir := ModelsDir(Home())
	needAsset(t, filepath.Join(dir, "isnet-small.onnx"))
	r, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Get("small")
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Check(m); !st.Verified {
		t.Fatalf("isnet-small.onnx is not verified: %+v", st)
	}
}
