package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"vidmatte"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// box is a rectangle of a 768×576 vtest.avi frame, [x0,x1)×[y0,y1).
type box struct{ x0, y0, x1, y1 int }

func (b box) contains(x, y, pad int) bool {
	return x >= b.x0-pad && x < b.x1+pad && y >= b.y0-pad && y < b.y1+pad
}

// The people in vtest.avi around its frame 30 (read off the frames
// themselves): two walking side by side on the right, and on the left one
// standing behind a sign and one walking past him. Frames 29–31 are
// checked; in 0.1 s nobody moves more than a few pixels, and the boxes
// are drawn around each silhouette with those pixels to spare.
var vtestPeople = []box{
	{374, 172, 434, 300}, // the pair on the left (behind and beside the sign)
	{624, 244, 702, 358}, // the pair on the right
}

// vtestClip writes the first n frames of vtest.avi (768×576, 10 fps,
// people walking in a street) as a near-lossless H.264 clip and returns it.
func vtestClip(t *testing.T, skip, n int) string {
	t.Helper()
	home := testmedia.Home(t)
	src := filepath.Join(home, "media", "vtest.avi")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("the test media is missing (run scripts/setup): %v", err)
	}
	out := filepath.Join(t.TempDir(), fmt.Sprintf("vtest-%d-%d.mp4", skip, n))
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", src,
		"-vf", fmt.Sprintf("select=gte(n\\,%d),setpts=N/10/TB", skip), "-r", "10",
		"-frames:v", fmt.Sprint(n), "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// installedEngine returns an engine over the installed models, failing
// when the converted ones are missing.
func installedEngine(t *testing.T, batch int, ids ...string) *Engine {
	t.Helper()
	reg, err := models.NewRegistry(models.ModelsDir(testmedia.Home(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m, err := reg.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if st := reg.Check(m); !st.Verified {
			t.Fatalf("%s is not installed and verified (run scripts/setup, or 'vidmatte models install'): %+v", id, st)
		}
	}
	return newEngineWith(t, reg, batch)
}

// peopleScores returns a matte's mean inside the people's boxes and
// outside them (a margin of pad pixels around the boxes left out).
func peopleScores(a []byte, w, h, pad int) (in, out float64) {
	var si, so, ni, no int
	for y := range h {
		for x := range w {
			v := int(a[y*w+x])
			inside, near := false, false
			for _, b := range vtestPeople {
				inside = inside || b.contains(x, y, 0)
				near = near || b.contains(x, y, pad)
			}
			switch {
			case inside:
				si += v
				ni++
			case !near:
				so += v
				no++
			}
		}
	}
	return float64(si) / float64(ni) / 255, float64(so) / float64(no) / 255
}

// runModel runs one model over a clip into a PNG sequence and returns
// the mattes.
func runModel(t *testing.T, e *Engine, in string, r Request) [][]byte {
	t.Helper()
	r.Input = in
	r.Output = filepath.Join(t.TempDir(), r.Model+".zip")
	r.Format = vidmatte.FormatPNGSequence
	res, err := e.Process(context.Background(), r)
	if err != nil {
		t.Fatalf("%s: %v", r.Model, err)
	}
	t.Logf("%s (refine %q): %d frames at %.1f fps, model %.1f ms/frame", r.Model, r.Refine, res.Frames, res.FPS,
		float64(res.InferTime.Microseconds())/1000/float64(res.Frames))
	return testmedia.ReadAlpha(t, r.Output)
}

// TestModelsFindPeople runs rvm, selfie and meet through the engine on
// vtest.avi's first 32 frames: on frames 29–31 each matte is high where
// the people are and low elsewhere (lamp post, tripod, sign, grass and
// road included). RVM, the matting model, is held to a tight bound; the
// segmenters, made for people near the camera, see these small distant
// people as coarse blobs and are held to a looser one. The segmenters run
// with their edge refinement; with it their matte agrees better with
// RVM's (the reference for where the outlines are) near the people.
func TestModelsFindPeople(t *testing.T) {
	checkNoLeaks(t)
	e := installedEngine(t, 2, "rvm", "selfie", "meet")
	in := vtestClip(t, 0, 32)
	const w, h = 768, 576
	mattes := map[string][][]byte{}
	for _, tc := range []struct {
		model string
		// Mean alpha inside the boxes at least minIn, outside at most
		// maxOut, and inside at least contrast times outside. The boxes
		// hold the space between and around the people too: a matte
		// that fills the silhouettes exactly averages about 0.4 in them.
		minIn, maxOut, contrast float64
	}{
		{"rvm", 0.3, 0.005, 100},
		{"selfie", 0.2, 0.01, 20},
		{"meet", 0.15, 0.01, 20},
	} {
		got := runModel(t, e, in, Request{Model: tc.model})
		if len(got) != 32 {
			t.Fatalf("%s: %d frames read back", tc.model, len(got))
		}
		mattes[tc.model] = got
		for _, k := range []int{29, 30, 31} {
			inside, outside := peopleScores(got[k], w, h, 24)
			t.Logf("%s frame %d: mean alpha inside the people's boxes %.3f, elsewhere %.4f", tc.model, k, inside, outside)
			if inside < tc.minIn || outside > tc.maxOut || inside < tc.contrast*outside {
				t.Errorf("%s frame %d: inside %.3f (want ≥ %.2f and %g× elsewhere), elsewhere %.4f (want ≤ %.3f)",
					tc.model, k, inside, tc.minIn, tc.contrast, outside, tc.maxOut)
			}
		}
	}
	// Near the people, the refined segmenter mattes sit closer to RVM's
	// than the same mattes without refinement.
	for _, model := range []string{"selfie", "meet"} {
		plain := runModel(t, e, in, Request{Model: model, Refine: RefineOff})
		var dOn, dOff float64
		for _, k := range []int{29, 30, 31} {
			dOn += boxMAD(mattes[model][k], mattes["rvm"][k], w)
			dOff += boxMAD(plain[k], mattes["rvm"][k], w)
		}
		t.Logf("%s: MAD from rvm inside the people's boxes: refined %.4f, plain %.4f", model, dOn/3, dOff/3)
		if dOn >= dOff {
			t.Errorf("%s: refinement did not bring the matte closer to rvm's outlines (%.4f vs %.4f)", model, dOn/3, dOff/3)
		}
	}
}

// boxMAD is the mean |Δ| of two mattes inside the people's boxes.
func boxMAD(a, b []byte, w int) float64 {
	var s, n int
	for _, bx := range vtestPeople {
		for y := bx.y0; y < bx.y1; y++ {
			for x := bx.x0; x < bx.x1; x++ {
				d := int(a[y*w+x]) - int(b[y*w+x])
				s += max(d, -d)
				n++
			}
		}
	}
	return float64(s) / float64(n) / 255
}

// TestRVMStateThroughEngine: rvm's matte of a frame depends on the frames
// before it in the job (frame 29 of a job from frame 0 differs from the
// same frame as the first of a job), and each job starts from a fresh
// state (the same clip twice gives the same mattes). A downsample ratio
// of 1, which the converted graph cannot take, is refused as invalid.
func TestRVMStateThroughEngine(t *testing.T) {
	checkNoLeaks(t)
	e := installedEngine(t, 3, "rvm")
	long := vtestClip(t, 20, 12) // frames 20..31
	short := vtestClip(t, 29, 3) // frames 29..31
	a := runModel(t, e, long, Request{Model: "human"})
	b := runModel(t, e, long, Request{Model: "rvm"})
	for k := range a {
		if d := meanAbsError(a[k], b[k]); d != 0 {
			t.Fatalf("frame %d differs between two jobs on the same clip (MAD %.5f): state leaked across jobs", k, d)
		}
	}
	c := runModel(t, e, short, Request{Model: "rvm"})
	d := meanAbsError(a[9], c[0])
	var most int
	for i := range c[0] {
		most = max(most, absInt(int(a[9][i])-int(c[0][i])))
	}
	t.Logf("frame 29 after 9 frames vs first of a job: MAD %.4f, max |Δ| %d/255", d, most)
	if most < 32 {
		t.Fatalf("frame 29's matte does not depend on the frames before it (max |Δ| %d)", most)
	}
	_, err := e.Process(context.Background(), Request{Input: short, Output: filepath.Join(t.TempDir(), "x.zip"),
		Model: "rvm", Format: vidmatte.FormatPNGSequence, DownsampleRatio: 1})
	if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
		t.Fatalf("ratio 1: %v", err)
	}
}

func absInt(v int) int { return max(v, -v) }
