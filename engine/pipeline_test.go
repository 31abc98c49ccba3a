package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
	"vidmatte/internal/tests3"
	"vidmatte/models"

	"go.uber.org/goleak"
)

var testRuntime *models.Runtime

func TestMain(m *testing.M) {
	rt, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine tests need the ONNX Runtime library (scripts/setup installs it):", err)
		os.Exit(1)
	}
	testRuntime = rt
	// Alpha planes the encoders hold are read-only: a stage that wrote a
	// plane after passing it on would fault.
	codec.GuardAlphaPlanes(true)
	code := m.Run()
	tests3.Stop()
	rt.Close()
	os.Exit(code)
}

// newTestEngine returns an engine over a registry in a fresh folder (the
// built-in models need no file).
func newTestEngine(t *testing.T, batch int) *Engine {
	t.Helper()
	reg, err := models.NewRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newEngineWith(t, reg, batch)
}

func newEngineWith(t *testing.T, reg *models.Registry, batch int) *Engine {
	t.Helper()
	e, err := New(Config{Runtime: testRuntime, Registry: reg, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkNoLeaks fails the test when frames or alpha planes are still out or
// goroutines did not end after the test.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if n := codec.LiveFrames(); n != 0 {
			t.Errorf("%d frames not released", n)
		}
		if n := codec.LiveAlphaPlanes(); n != 0 {
			t.Errorf("%d alpha planes not back in their pools", n)
		}
		if n := codec.MappedAlphaPlanes(); n != 0 {
			t.Errorf("%d alpha planes still mapped (a pool left open)", n)
		}
		goleak.VerifyNone(t, before)
	})
}

// meanAbsError is the mean absolute difference of two mattes in 0..1.
func meanAbsError(a, b []byte) float64 {
	var sum int64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a)) / 255
}

// The chroma keyer on a generated green-screen clip whose true alpha is
// known: the mean absolute alpha error over all frames stays under 0.03
// (3% of full scale; VP9's lossy alpha plane is part of that budget).
func TestChromaEndToEndAccuracy(t *testing.T) {
	checkNoLeaks(t)
	for _, blue := range []bool{false, true} {
		name, model := "green", "chroma"
		if blue {
			name, model = "blue", "chroma-blue"
		}
		t.Run(name, func(t *testing.T) {
			in, truth := testmedia.GreenScreen(t, 320, 240, 24, blue)
			out := filepath.Join(t.TempDir(), "out.webm")
			var calls atomic.Int64
			res, err := newTestEngine(t, 2).Process(context.Background(), Request{
				Input: in, Output: out, Model: model, Format: vidmatte.FormatWebM,
				Progress: func(Progress) { calls.Add(1) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != int64(len(truth)) {
				t.Fatalf("%d frames processed, the clip has %d", res.Frames, len(truth))
			}
			if calls.Load() == 0 {
				t.Error("progress was never reported")
			}
			got := testmedia.ReadAlpha(t, out)
			if len(got) != len(truth) {
				t.Fatalf("%d frames read back, want %d", len(got), len(truth))
			}
			var total float64
			for i := range truth {
				total += meanAbsError(got[i], truth[i])
			}
			mae := total / float64(len(truth))
			t.Logf("%s screen: mean absolute alpha error %.4f", name, mae)
			if mae > 0.03 {
				t.Errorf("mean absolute alpha error %.4f > 0.03", mae)
			}
		})
	}
}

// Every output format comes out of a run, complete and with every frame.
func TestEveryFormat(t *testing.T) {
	checkNoLeaks(t)
	in, truth := testmedia.GreenScreen(t, 160, 120, 12, false)
	e := newTestEngine(t, 1)
	for _, f := range vidmatte.OutputFormats {
		t.Run(string(f), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out"+f.Extension())
			bg := vidmatte.Background{Type: vidmatte.BackgroundTransparent}
			if f == vidmatte.FormatMP4 {
				c := [3]float64{1, 1, 1}
				bg = vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &c}
			}
			res, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: f, Background: bg})
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != int64(len(truth)) {
				t.Errorf("%d frames, want %d", res.Frames, len(truth))
			}
			if f == vidmatte.FormatMP4 {
				frames, _, _ := testmedia.Probe(t, out)
				if frames != len(truth) {
					t.Errorf("%d frames in the file, want %d", frames, len(truth))
				}
				return
			}
			got := testmedia.ReadAlpha(t, out)
			if len(got) != len(truth) {
				t.Fatalf("%d frames read back, want %d", len(got), len(truth))
			}
			mae := meanAbsError(got[len(got)/2], truth[len(got)/2])
			if mae > 0.06 {
				t.Errorf("middle frame's alpha error %.4f > 0.06", mae)
			}
		})
	}
}

// A transparent background with mp4 is refused before any work, as the
// contract says.
func TestTransparentMP4Refused(t *testing.T) {
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 10, Duration: time.Second})
	out := filepath.Join(t.TempDir(), "out.mp4")
	_, err := newTestEngine(t, 1).Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatMP4})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable {
		t.Fatalf("got %v, want unprocessable", err)
	}
}

// Batching changes nothing in the result: batch 4 gives the alpha of
// batch 1, frame for frame.
func TestBatchSizesAgree(t *testing.T) {
	checkNoLeaks(t)
	in, _ := testmedia.GreenScreen(t, 160, 120, 10, false)
	var results [][][]byte
	for _, b := range []int{1, 4} {
		out := filepath.Join(t.TempDir(), fmt.Sprintf("b%d.zip", b))
		if _, err := newTestEngine(t, b).Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatPNGSequence}); err != nil {
			t.Fatal(err)
		}
		results = append(results, testmedia.ReadAlpha(t, out))
	}
	for i := range results[0] {
		if d := meanAbsError(results[0][i], results[1][i]); d != 0 {
			t.Errorf("frame %d: batch 1 and 4 differ by %.5f", i, d)
		}
	}
}

// Temporal smoothing holds one frame back: every frame still comes out,
// in order, each with its own alpha (on a clean green-screen clip the
// keyer does not flicker, so smoothing changes almost nothing).
func TestSmoothingKeepsEveryFrameInOrder(t *testing.T) {
	checkNoLeaks(t)
	in, truth := testmedia.GreenScreen(t, 160, 120, 15, false)
	e := newTestEngine(t, 2)
	var got [2][][]byte
	for i, sm := range []Smoothing{SmoothOff, SmoothOn} {
		out := filepath.Join(t.TempDir(), "out.zip")
		res, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatPNGSequence, Smoothing: sm})
		if err != nil {
			t.Fatal(err)
		}
		if res.Frames != int64(len(truth)) {
			t.Fatalf("smoothing %q: %d frames, want %d", sm, res.Frames, len(truth))
		}
		got[i] = testmedia.ReadAlpha(t, out)
	}
	for k := range truth {
		off, on := meanAbsError(got[0][k], truth[k]), meanAbsError(got[1][k], truth[k])
		if on > off+0.005 {
			t.Errorf("frame %d: error %.4f with smoothing, %.4f without: frames out of step?", k, on, off)
		}
	}
}

// The recurrent plumbing, on a generated model with Robust Video Matting's
// signature whose alpha on the k-th frame of a job is k/10: the state flows
// from frame to frame (across batches) and starts again with each job.
func TestRecurrentStateFlowsAndResets(t *testing.T) {
	checkNoLeaks(t)
	reg := rvmTestRegistry(t)
	e := newEngineWith(t, reg, 3)
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, FPS: 10, Duration: 700 * time.Millisecond})
	for job := range 2 {
		out := filepath.Join(t.TempDir(), "out.zip")
		res, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "rvm-test", Format: vidmatte.FormatPNGSequence})
		if err != nil {
			t.Fatal(err)
		}
		frames := testmedia.ReadAlpha(t, out)
		if int64(len(frames)) != res.Frames || len(frames) != 7 {
			t.Fatalf("job %d: %d frames read back, %d processed, want 7", job, len(frames), res.Frames)
		}
		for k, a := range frames {
			want := math.Round(math.Min(1, float64(k+1)/10) * 255)
			for _, v := range []byte{a[0], a[len(a)/2], a[len(a)-1]} {
				if math.Abs(float64(v)-want) > 1 {
					t.Fatalf("job %d frame %d: alpha %d, want %.0f (the state did not flow or was not reset)", job, k+1, v, want)
				}
			}
		}
	}
}

// failingSink makes the encode stage fail after a few frames.
type failingSink struct {
	sink
	after int
	n     int
}

func (s *failingSink) WriteFrame(f *codec.Frame, alpha []byte) error {
	if s.n++; s.n > s.after {
		return errors.New("disk full")
	}
	return s.sink.WriteFrame(f, alpha)
}

// failingSource makes the decode stage fail after a few frames.
type failingSource struct {
	source
	after int
	n     int
}

func (s *failingSource) Next(ctx context.Context) (*codec.Frame, error) {
	if s.n++; s.n > s.after {
		return nil, errors.New("read error")
	}
	return s.source.Next(ctx)
}

// failingMatter makes the infer stage fail on its second batch.
type failingMatter struct {
	matter
	runs int
}

func (m *failingMatter) Run(ctx context.Context, b *models.Batch, n int, st *models.State) error {
	if m.runs++; m.runs > 1 {
		return errors.New("inference failed")
	}
	return m.matter.Run(ctx, b, n, st)
}

// A failing stage, wherever it is, ends the run with its error: no hang,
// no frame or goroutine left, no output file.
func TestFailingStageEndsTheRun(t *testing.T) {
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 25, Duration: 2 * time.Second})
	cases := map[string]struct {
		wrap func(e *Engine)
		want string
	}{
		"decode": {func(e *Engine) {
			open := e.openSource
			e.openSource = func(p string, th int) (source, error) {
				s, err := open(p, th)
				if err != nil {
					return nil, err
				}
				return &failingSource{source: s, after: 5}, nil
			}
		}, "read error"},
		"infer": {func(e *Engine) {
			open := e.openMatter
			e.openMatter = func(m *models.Manifest, o models.LoadOptions) (matter, error) {
				mt, err := open(m, o)
				if err != nil {
					return nil, err
				}
				return &failingMatter{matter: mt}, nil
			}
		}, "inference failed"},
		"encode": {func(e *Engine) {
			open := e.openSink
			e.openSink = func(p string, o codec.EncoderOptions) (sink, error) {
				s, err := open(p, o)
				if err != nil {
					return nil, err
				}
				return &failingSink{sink: s, after: 5}, nil
			}
		}, "disk full"},
		// Failing on the last frame leaves the end markers in flight.
		"encode at the end": {func(e *Engine) {
			open := e.openSink
			e.openSink = func(p string, o codec.EncoderOptions) (sink, error) {
				s, err := open(p, o)
				if err != nil {
					return nil, err
				}
				return &failingSink{sink: s, after: 49}, nil
			}
		}, "disk full"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			checkNoLeaks(t)
			e := newTestEngine(t, 2)
			c.wrap(e)
			dir := t.TempDir()
			out := filepath.Join(dir, "out.webm")
			// Smoothing on: the temporal filter holds a frame, which must be
			// given back too.
			_, err := e.Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Smoothing: SmoothOn})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			assertEmptyDir(t, dir)
		})
	}
}

// Cancelling mid-run returns promptly with the context's error and leaves
// nothing behind.
func TestCancelMidRun(t *testing.T) {
	checkNoLeaks(t)
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: 20 * time.Second})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.webm")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var canceledAt atomic.Int64
	start := time.Now()
	_, err := newTestEngine(t, 2).Process(ctx, Request{
		Input: in, Output: out, Model: "chroma", Smoothing: SmoothOn, ProgressEvery: time.Millisecond,
		Progress: func(p Progress) {
			if p.FramesDone >= 10 && canceledAt.Load() == 0 {
				canceledAt.Store(int64(time.Since(start)))
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if canceledAt.Load() == 0 {
		t.Fatal("the run ended before it was canceled")
	}
	assertEmptyDir(t, dir)
}

// Input that is not a video is refused with the codec's typed error, and
// nothing is written.
func TestNotAVideo(t *testing.T) {
	checkNoLeaks(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(in, []byte("these are not the frames you are looking for\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	_, err := newTestEngine(t, 1).Process(context.Background(), Request{Input: in, Output: filepath.Join(outDir, "out.webm"), Model: "chroma"})
	if code := vidmatte.ErrorCode(err); code != vidmatte.CodeUnsupportedMedia && code != vidmatte.CodeUnprocessable {
		t.Fatalf("got %v (code %q), want a media error", err, code)
	}
	assertEmptyDir(t, outDir)
}

// An unknown model is an invalid request that lists the valid ids.
func TestUnknownModel(t *testing.T) {
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 10, Duration: time.Second})
	_, err := newTestEngine(t, 1).Process(context.Background(), Request{Input: in, Output: filepath.Join(t.TempDir(), "o.webm"), Model: "nope"})
	if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid || !strings.Contains(err.Error(), "chroma") {
		t.Fatalf("got %v, want invalid_request listing the models", err)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

// The real ISNet model on a real photograph (NASA's astronaut portrait)
// looped into a short clip: the person is kept, the background removed.
// Checked against regions of the picture, not a hash.
func TestISNetRealPhoto(t *testing.T) {
	if os.Getenv("VIDMATTE_ISNET") == "" {
		t.Skip("VIDMATTE_ISNET is not set: the ISNet model test runs in CI and through scripts/test")
	}
	checkNoLeaks(t)
	home := testmedia.Home(t)
	photo := filepath.Join(home, "media", "astronaut.png")
	if _, err := os.Stat(photo); err != nil {
		t.Fatalf("the test media is missing (run scripts/setup): %v", err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "astronaut.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-loop", "1", "-i", photo,
		"-frames:v", "3", "-r", "10", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	reg, err := models.NewRegistry(models.ModelsDir(home))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.zip")
	res, err := newEngineWith(t, reg, 1).Process(context.Background(), Request{Input: in, Output: out, Model: "isnet", Format: vidmatte.FormatPNGSequence})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("isnet: %d frames at %.2f fps, model %.0f ms/frame", res.Frames, res.FPS, float64(res.InferTime.Milliseconds())/float64(res.Frames))
	frames := testmedia.ReadAlpha(t, out)
	if len(frames) != 3 {
		t.Fatalf("%d frames read back, want 3", len(frames))
	}
	// astronaut.png is 512×512: the face is around (190,90)..(260,160), the
	// orange suit below the collar around (140,300)..(220,340); the grey wall
	// between the head and the model shuttle, (310,20)..(360,70), is
	// background.
	a := frames[1]
	region := func(x0, y0, x1, y1 int) float64 {
		var s, n int
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				s += int(a[y*512+x])
				n++
			}
		}
		return float64(s) / float64(n) / 255
	}
	face, chest, wall := region(190, 90, 260, 160), region(140, 300, 220, 340), region(310, 20, 360, 70)
	t.Logf("mean alpha: face %.3f, chest %.3f, background %.3f", face, chest, wall)
	if face < 0.9 || chest < 0.9 {
		t.Errorf("the person is not kept: face %.3f, chest %.3f (want ≥ 0.9)", face, chest)
	}
	if wall > 0.1 {
		t.Errorf("the background is not removed: wall %.3f (want ≤ 0.1)", wall)
	}
}

func TestToByte(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, c := range []struct {
		v    float32
		want byte
	}{{-1e30, 0}, {-3, 0}, {-0.6, 0}, {0, 0}, {0.49, 0}, {0.5, 1}, {127.4, 127}, {127.5, 128}, {254.6, 255}, {255, 255}, {300, 255}, {1e30, 255}, {inf, 255}, {-inf, 0}, {nan, 0}} {
		if got := toByte(c.v); got != c.want {
			t.Errorf("toByte(%g) = %d, want %d", c.v, got, c.want)
		}
	}
}

// A video that runs on past the frames its reservation covers stops with
// unprocessable and leaves no output; at the cap it completes.
func TestFrameCapStopsAnUnreservedRun(t *testing.T) {
	checkNoLeaks(t)
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 10, Duration: 2 * time.Second})
	outDir := t.TempDir()
	e := newTestEngine(t, 2)
	_, err := e.Process(context.Background(), Request{Input: in, Output: filepath.Join(outDir, "out.webm"), Model: "chroma", MaxFrames: 7})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable || !strings.Contains(err.Error(), "7 frames") {
		t.Fatalf("past the cap: %v", err)
	}
	assertEmptyDir(t, outDir)
	res, err := e.Process(context.Background(), Request{Input: in, Output: filepath.Join(outDir, "out.webm"), Model: "chroma", MaxFrames: 20})
	if err != nil || res.Frames != 20 {
		t.Fatalf("at the cap: %v %+v", err, res)
	}
}

// The operator's limit on background images reaches the encoder: an image
// over it fails the request (unprocessable) before anything is written;
// within it, the same image is composited.
func TestBackgroundPixelLimitFromTheConfig(t *testing.T) {
	dir := t.TempDir()
	bg := filepath.Join(dir, "bg.png")
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	f, err := os.Create(bg)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 10, Duration: time.Second})
	reg, err := models.NewRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Input: in, Model: "chroma", Format: vidmatte.FormatMP4,
		Background: vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: bg}}
	for _, tc := range []struct {
		limit int
		ok    bool
	}{{40*30 - 1, false}, {40 * 30, true}} {
		e, err := New(Config{Runtime: testRuntime, Registry: reg, MaxBackgroundPixels: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		outDir := t.TempDir()
		req.Output = filepath.Join(outDir, "out.mp4")
		_, err = e.Process(context.Background(), req)
		if tc.ok && err != nil {
			t.Fatalf("limit %d: %v", tc.limit, err)
		}
		if !tc.ok {
			if vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable {
				t.Fatalf("limit %d: %v", tc.limit, err)
			}
			assertEmptyDir(t, outDir)
		}
	}
}

// rvmTestRegistry is a registry holding, as "rvm-test", the generated
// model with Robust Video Matting's signature whose alpha on the k-th
// frame of a job is k/10.
func rvmTestRegistry(t *testing.T) *models.Registry {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "rvm-test-source.onnx")
	if err := models.BuildRVMTestModel(file); err != nil {
		t.Fatal(err)
	}
	reg, err := models.NewRegistry(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Import(file, "rvm", "rvm-test"); err != nil {
		t.Fatal(err)
	}
	return reg
}
