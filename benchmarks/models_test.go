package benchmarks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vidmatte/models"
)

// BenchmarkModel measures the models alone: ONNX Runtime's Run in a loop
// on slots prepared once, reported as ms/frame (ns/op is per Run of a
// whole batch). chroma runs at 1080p; isnet at its 1024×1024 input with
// batch 1 and 2; rvm at 768×576 (ratio 0.5), 720p and 1080p (0.25); selfie and meet at their input sizes; each when its file
// is installed or VIDMATTE_ISNET is set. A recurrent model's state is
// carried from run to run, as in a job.
//
//	go test ./benchmarks -run '^$' -bench BenchmarkModel -benchtime 3x
func BenchmarkModel(b *testing.B) {
	lib := models.DefaultLibraryPath()
	if _, err := os.Stat(lib); err != nil {
		if os.Getenv("VIDMATTE_ISNET") != "" {
			b.Fatalf("VIDMATTE_ISNET is set but the ONNX Runtime library is missing: %v", err)
		}
		b.Skipf("no ONNX Runtime library at %s (run scripts/setup)", lib)
	}
	rt, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		id    string
		batch int
		w, h  int
	}{
		{"chroma", 1, 1920, 1080},
		{"chroma", 2, 1920, 1080},
		{"isnet", 1, 0, 0},
		{"isnet", 2, 0, 0},
		{"rvm", 1, 768, 576},
		{"rvm", 1, 1280, 720},
		{"rvm", 1, 1920, 1080},
		{"selfie", 1, 0, 0},
		{"meet", 1, 0, 0},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/batch%d", c.id, c.batch)
		if c.w > 0 && c.id != "chroma" {
			name = fmt.Sprintf("%s/%dx%d", c.id, c.w, c.h)
		}
		b.Run(name, func(b *testing.B) {
			m, err := reg.Get(c.id)
			if err != nil {
				b.Fatal(err)
			}
			if !m.Generated && !reg.Check(m).Present {
				if os.Getenv("VIDMATTE_ISNET") != "" {
					b.Fatalf("VIDMATTE_ISNET is set but %s is missing", reg.Path(m))
				}
				b.Skipf("%s is not installed", m.ID)
			}
			benchModel(b, rt, reg, m, c.batch, c.w, c.h)
		})
	}
}

func benchModel(b *testing.B, rt *models.Runtime, reg *models.Registry, m *models.Manifest, batch, fw, fh int) {
	model, err := rt.Load(reg, m, models.LoadOptions{Batch: batch, FrameWidth: fw, FrameHeight: fh})
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	mb, err := model.NewBatch()
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	w, h := model.InputSize()
	n := model.Batch()
	// A synthetic frame: a screen-coloured field with a lighter square,
	// prepared the way the engine prepares frames.
	for i := range n {
		switch model.Color() {
		case models.ColorUV:
			// w×h are the chroma planes' own size here.
			u, v := make([]byte, w*h), make([]byte, w*h)
			for j := range u {
				x, r := j%w, j/w
				if x > w/4 && x < 3*w/4 && r > h/4 && r < 3*h/4 {
					u[j], v[j] = 110, 150
				} else {
					u[j], v[j] = 60, 50
				}
			}
			model.PrepareUV(mb.Slot(i), u, w, v, w)
		default:
			rgb := make([]byte, 3*w*h)
			for j := range rgb {
				rgb[j] = byte(j/w + i*17)
			}
			model.PrepareRGB(mb.Slot(i), rgb)
		}
	}
	ctx := context.Background()
	st := model.NewState()
	defer st.Close()
	if err := model.Run(ctx, mb, n, st); err != nil { // warm-up
		b.Fatal(err)
	}
	runs := 0
	for b.Loop() {
		if err := model.Run(ctx, mb, n, st); err != nil {
			b.Fatal(err)
		}
		runs++
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(runs*n), "ms/frame")
	b.ReportMetric(float64(model.LoadTime())/float64(time.Millisecond), "load-ms")
}

// BenchmarkPrepare measures the hot path in front of the model: turning a
// prepared frame into a slot (rgb1024: ISNet's normalization of a
// 1024×1024 planar RGB frame; uv1080p: the chroma keyer's lookup of the
// U and V planes of a 1080p yuv420p frame), in ms/frame.
func BenchmarkPrepare(b *testing.B) {
	lib := models.DefaultLibraryPath()
	if _, err := os.Stat(lib); err != nil {
		b.Skipf("no ONNX Runtime library at %s (run scripts/setup)", lib)
	}
	rt, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	reg, err := models.NewRegistry(filepath.Join(b.TempDir(), "models"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("uv1080p", func(b *testing.B) {
		m, _ := reg.Get("chroma")
		model, err := rt.Load(reg, m, models.LoadOptions{FrameWidth: 1920, FrameHeight: 1080})
		if err != nil {
			b.Fatal(err)
		}
		w, h := model.InputSize() // the chroma planes of 1920×1080
		cs := w + 32              // strides padded as decoders pad them
		u, v := make([]byte, cs*h), make([]byte, cs*h)
		for i := range u {
			u[i], v[i] = byte(i*3), byte(i*5)
		}
		slot := make([]float32, 2*w*h)
		for b.Loop() {
			model.PrepareUV(slot, u, cs, v, cs)
		}
		b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/frame")
	})
	b.Run("rgb1024", func(b *testing.B) {
		// The RVM-signature test model prepares RGB through the same
		// lookup-table path as ISNet, without ISNet's file.
		path := filepath.Join(b.TempDir(), "rvm.onnx")
		if err := models.BuildRVMTestModel(path); err != nil {
			b.Fatal(err)
		}
		m, err := reg.Import(path, "rvm", "rvm-bench")
		if err != nil {
			b.Fatal(err)
		}
		model, err := rt.Load(reg, m, models.LoadOptions{FrameWidth: 1024, FrameHeight: 1024})
		if err != nil {
			b.Fatal(err)
		}
		rgb := make([]byte, 3*1024*1024)
		for i := range rgb {
			rgb[i] = byte(i)
		}
		slot := make([]float32, len(rgb))
		for b.Loop() {
			model.PrepareRGB(slot, rgb)
		}
		b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/frame")
	})
}
