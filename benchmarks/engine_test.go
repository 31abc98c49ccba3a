package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/engine"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// The engine's benchmarks. Each reports figures as metrics; none asserts a
// time. Run them all once:
//
//	go test ./benchmarks -run '^$' -bench 'Engine|CodecOnly|PeakRSS' -benchtime 1x -timeout 60m
//
// ISNet cases run when its file is installed (scripts/setup) and are
// required when VIDMATTE_ISNET is set.

// engineFixture is a runtime, a registry and an engine over the installed
// models.
type engineFixture struct {
	rt  *models.Runtime
	reg *models.Registry
}

func newEngineFixture(b *testing.B) *engineFixture {
	b.Helper()
	rt, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		b.Fatal(err)
	}
	return &engineFixture{rt: rt, reg: reg}
}

func (f *engineFixture) engine(b *testing.B, batch int) *engine.Engine {
	b.Helper()
	e, err := engine.New(engine.Config{Runtime: f.rt, Registry: f.reg, Batch: batch})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// requireModel skips (or, with VIDMATTE_ISNET set, fails) when a model's
// file is not installed.
func (f *engineFixture) requireModel(b *testing.B, id string) *models.Manifest {
	b.Helper()
	m, err := f.reg.Get(id)
	if err != nil {
		b.Fatal(err)
	}
	if !m.Generated && !f.reg.Check(m).Present {
		if os.Getenv("VIDMATTE_ISNET") != "" {
			b.Fatalf("VIDMATTE_ISNET is set but %s is missing", f.reg.Path(m))
		}
		b.Skipf("%s is not installed (run scripts/setup)", id)
	}
	return m
}

// modelAloneFPS runs the model by itself on the first frame of the clip,
// prepared once, frames times in batches: ONNX Runtime in a loop, the
// ceiling the pipeline is compared with.
func (f *engineFixture) modelAloneFPS(b *testing.B, m *models.Manifest, clip string, batch, frames int) float64 {
	b.Helper()
	dec, err := codec.OpenDecoder(clip, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	info := dec.Info()
	model, err := f.rt.Load(f.reg, m, models.LoadOptions{Device: models.CPU, Batch: batch, FrameWidth: info.Width, FrameHeight: info.Height})
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	mb, err := model.NewBatch()
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	fr, err := dec.Next(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	w, h := model.InputSize()
	for i := range model.Batch() {
		if model.Color() == models.ColorUV {
			u, us := fr.Plane(1)
			v, vs := fr.Plane(2)
			model.PrepareUV(mb.Slot(i), u, us, v, vs)
			continue
		}
		sc, err := codec.NewRGBScaler(info.Width, info.Height, w, h)
		if err != nil {
			b.Fatal(err)
		}
		rgb := make([]byte, 3*w*h)
		if err := sc.Scale(fr, rgb); err != nil {
			b.Fatal(err)
		}
		sc.Close()
		model.PrepareRGB(mb.Slot(i), rgb)
	}
	fr.Release()
	st := model.NewState()
	// One run to warm the session up, as the pipeline's first batch does.
	if err := model.Run(context.Background(), mb, model.Batch(), st); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	done := 0
	for done < frames {
		n := min(model.Batch(), frames-done)
		if err := model.Run(context.Background(), mb, n, st); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	if st != nil {
		st.Close()
	}
	return float64(frames) / time.Since(start).Seconds()
}

// pipelineFPS runs the whole pipeline (decode → prepare → batch → infer →
// refine → encode) once to warm the model's session, then once measured.
func pipelineFPS(b *testing.B, e *engine.Engine, r engine.Request) (float64, *engine.Result) {
	b.Helper()
	if _, err := e.Process(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	res, err := e.Process(context.Background(), r)
	if err != nil {
		b.Fatal(err)
	}
	return float64(res.Frames) / res.Elapsed.Seconds(), res
}

// BenchmarkEngineOverhead compares, for one model and size, the frames per
// second of the model alone (ONNX Runtime in a loop) with the whole
// pipeline on the same number of frames. The ratio is what the engine
// keeps of the model's speed: decode, scaling, refine and encode overlap
// with inference, so it approaches 1 when the model dominates (target
// ≥ 0.9). For chroma at 1080p the encoder, not the model, dominates; its
// ratio is reported for completeness.
func BenchmarkEngineOverhead(b *testing.B) {
	f := newEngineFixture(b)
	cases := []struct {
		model  string
		w, h   int
		frames int
		batch  int
	}{
		{"isnet", 640, 360, 6, 1},
		{"isnet-small", 640, 360, 6, 1},
		{"chroma", 1920, 1080, 60, 1},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/%dx%d/batch%d", c.model, c.w, c.h, c.batch), func(b *testing.B) {
			m := f.requireModel(b, c.model)
			clip, _ := testmedia.GreenScreen(b, c.w, c.h, c.frames, false)
			out := filepath.Join(b.TempDir(), "out.webm")
			e := f.engine(b, c.batch)
			for range b.N {
				alone := f.modelAloneFPS(b, m, clip, c.batch, c.frames)
				whole, res := pipelineFPS(b, e, engine.Request{Input: clip, Output: out, Model: c.model, Format: vidmatte.FormatWebM})
				b.ReportMetric(alone, "model_fps")
				b.ReportMetric(whole, "pipeline_fps")
				b.ReportMetric(whole/alone, "ratio")
				b.ReportMetric(float64(res.InferTime.Milliseconds())/float64(res.Frames), "infer_ms/frame")
			}
		})
	}
}

// codecOnly is the path without a model: decode → an alpha plane given
// per frame → encode. It is what FFmpeg itself costs.
func codecOnly(b *testing.B, clip, out string, format vidmatte.OutputFormat, alphaOf func(i int) []byte) float64 {
	b.Helper()
	start := time.Now()
	dec, err := codec.OpenDecoder(clip, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	info := dec.Info()
	enc, err := codec.NewEncoder(out, codec.EncoderOptions{
		Format: format, Width: info.Width, Height: info.Height,
		TimeBase: dec.TimeBase(), FrameRate: info.FrameRate,
	})
	if err != nil {
		b.Fatal(err)
	}
	frames := 0
	for {
		fr, err := dec.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			enc.Abort()
			b.Fatal(err)
		}
		err = enc.WriteFrame(fr, alphaOf(frames))
		fr.Release()
		if err != nil {
			enc.Abort()
			b.Fatal(err)
		}
		frames++
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return float64(frames) / time.Since(start).Seconds()
}

// BenchmarkEngineChromaVsCodecOnly runs, in the same benchmark, the codec
// path alone (decode → constant alpha → VP9-alpha encode) and the whole
// engine with the chroma keyer on the same 1080p clip to webm. The ratio is
// what the engine adds to FFmpeg's own cost (target ≥ 0.9). A constant
// alpha plane is nearly free for VP9, a real matte is not: the codec path
// with the clip's true matte (what the keyer produces, near enough) is
// measured too, and ratio_real_alpha compares the engine with that.
func BenchmarkEngineChromaVsCodecOnly(b *testing.B) {
	f := newEngineFixture(b)
	clip, truth := testmedia.GreenScreen(b, 1920, 1080, 90, false)
	constant := make([]byte, 1920*1080)
	for i := range constant {
		constant[i] = 200
	}
	dir := b.TempDir()
	e := f.engine(b, 1)
	for range b.N {
		codecFPS := codecOnly(b, clip, filepath.Join(dir, "codec.webm"), vidmatte.FormatWebM, func(int) []byte { return constant })
		realFPS := codecOnly(b, clip, filepath.Join(dir, "real.webm"), vidmatte.FormatWebM, func(i int) []byte { return truth[i] })
		engineFPS, _ := pipelineFPS(b, e, engine.Request{Input: clip, Output: filepath.Join(dir, "engine.webm"), Model: "chroma", Format: vidmatte.FormatWebM})
		b.ReportMetric(codecFPS, "codec_fps")
		b.ReportMetric(realFPS, "codec_real_alpha_fps")
		b.ReportMetric(engineFPS, "engine_fps")
		b.ReportMetric(engineFPS/codecFPS, "ratio")
		b.ReportMetric(engineFPS/realFPS, "ratio_real_alpha")
	}
}

// BenchmarkEngineBatch runs the whole pipeline with batch sizes 1, 2 and 4
// (chroma at 720p; isnet at 1 and 2 when installed).
func BenchmarkEngineBatch(b *testing.B) {
	f := newEngineFixture(b)
	cases := []struct {
		model   string
		w, h    int
		frames  int
		batches []int
	}{
		{"chroma", 1280, 720, 60, []int{1, 2, 4}},
		{"isnet", 640, 360, 4, []int{1, 2}},
	}
	for _, c := range cases {
		for _, n := range c.batches {
			b.Run(fmt.Sprintf("%s/%dx%d/batch%d", c.model, c.w, c.h, n), func(b *testing.B) {
				f.requireModel(b, c.model)
				clip, _ := testmedia.GreenScreen(b, c.w, c.h, c.frames, false)
				e := f.engine(b, n)
				out := filepath.Join(b.TempDir(), "out.webm")
				for range b.N {
					fps, res := pipelineFPS(b, e, engine.Request{Input: clip, Output: out, Model: c.model, Format: vidmatte.FormatWebM})
					b.ReportMetric(fps, "fps")
					b.ReportMetric(float64(res.InferTime.Milliseconds())/float64(res.Frames), "infer_ms/frame")
				}
			})
		}
	}
}

// runPeakRSS runs cmd and returns its peak resident memory in bytes, read
// from /proc/PID/status (VmHWM) every 20 ms while it runs. (The rusage of
// a child is no use here: a child started from a large process inherits
// that process's peak.)
func runPeakRSS(cmd *exec.Cmd) (int64, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return 0, fmt.Errorf("%w\n%s", err, out.Bytes())
			}
			return peak, nil
		case <-tick.C:
			b, err := os.ReadFile(status)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb int64
					fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
					peak = max(peak, kb<<10)
				}
			}
		}
	}
}

// BenchmarkPeakRSS runs 'vidmatte run' as a process of its own on a 10 s
// and a 60 s clip and reports its peak resident memory: constant memory
// means the two are about the same.
func BenchmarkPeakRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "vidmatte")
	build := exec.Command("go", "build", "-o", bin, "vidmatte/cmd/vidmatte")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, seconds := range []int{10, 60} {
		b.Run(fmt.Sprintf("chroma/640x360/%ds", seconds), func(b *testing.B) {
			clip := testmedia.Clip(b, testmedia.ClipOptions{Width: 640, Height: 360, FPS: 25, Duration: time.Duration(seconds) * time.Second, Audio: true})
			out := filepath.Join(b.TempDir(), "out.webm")
			for range b.N {
				cmd := exec.Command(bin, "run", clip, "-o", out, "-model", "chroma", "-quiet")
				peak, err := runPeakRSS(cmd)
				if err != nil {
					b.Fatalf("vidmatte run: %v", err)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MB")
			}
		})
	}
}
