package benchmarks

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/models"
)

// harnessMedia returns the media folder, skipping the test when it is
// absent, unless VIDMATTE_ISNET is set (then a missing asset fails).
func harnessMedia(t *testing.T, file string) string {
	t.Helper()
	dir := filepath.Join(models.Home(), "media")
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		if os.Getenv("VIDMATTE_ISNET") != "" {
			t.Fatalf("VIDMATTE_ISNET is set but %s is missing: %v (run scripts/setup)", file, err)
		}
		t.Skipf("%s is not installed under %s (run scripts/setup)", file, dir)
	}
	return dir
}

func screenSpec(seed uint64) ClipSpec {
	return ClipSpec{Set: SetGreenscreen, Name: "shapes-green", Foreground: FgShapes, Backdrop: BackdropGreen,
		Width: 96, Height: 64, FPS: 10, Frames: 4, Seed: seed}
}

func framesEqual(a, b []Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].RGB, b[i].RGB) || !bytes.Equal(a[i].Alpha, b[i].Alpha) {
			return false
		}
	}
	return true
}

// The same seed gives the same frames and the same files, byte for byte;
// another seed gives others.
func TestGeneratorIsDeterministic(t *testing.T) {
	ctx := context.Background()
	a, err := Render(ctx, screenSpec(7), Sources{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(ctx, screenSpec(7), Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if !framesEqual(a, b) {
		t.Fatal("two renders with the same seed differ")
	}
	c, err := Render(ctx, screenSpec(8), Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if framesEqual(a, c) {
		t.Fatal("renders with seeds 7 and 8 are identical")
	}

	files := func(seed uint64) (clip, truth []byte) {
		cache := t.TempDir()
		cl, err := BuildClip(ctx, screenSpec(seed), Sources{}, "", cache)
		if err != nil {
			t.Fatal(err)
		}
		clip, err = os.ReadFile(cl.Video)
		if err != nil {
			t.Fatal(err)
		}
		truth, err = os.ReadFile(cl.truthPath)
		if err != nil {
			t.Fatal(err)
		}
		return clip, truth
	}
	c1, t1 := files(7)
	c2, t2 := files(7)
	if !bytes.Equal(c1, c2) || !bytes.Equal(t1, t2) {
		t.Fatal("two builds with the same seed wrote different files")
	}
	c3, t3 := files(8)
	if bytes.Equal(c1, c3) || bytes.Equal(t1, t3) {
		t.Fatal("builds with seeds 7 and 8 wrote identical files")
	}
}

// A video backdrop: the same seed picks the same stretch of the same
// video.
func TestGeneratorIsDeterministicOverVideo(t *testing.T) {
	media := harnessMedia(t, "tree.avi")
	spec := ClipSpec{Set: SetComposite, Name: "shapes-tree", Foreground: FgShapes, Backdrop: BackdropTree,
		Width: 96, Height: 72, FPS: 10, Frames: 3, Seed: 3}
	a, err := Render(context.Background(), spec, Sources{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(context.Background(), spec, Sources{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	if !framesEqual(a, b) {
		t.Fatal("two renders over tree.avi with the same seed differ")
	}
	checkComposite(t, a)
}

// checkComposite verifies the truth: compositing the true alpha with the
// known foreground colour over the backdrop reproduces every frame within
// the rounding of 8-bit values (the alpha's rounding moves a channel by at
// most half a level, the frame's own by another half).
func checkComposite(t *testing.T, frames []Frame) {
	t.Helper()
	var soft, opaque, checked int
	for fi, fr := range frames {
		for p, a8 := range fr.Alpha {
			if fr.Occluded != nil && fr.Occluded[p] {
				continue
			}
			a := float64(a8) / 255
			for c := range 3 {
				want := a*float64(fr.FG[3*p+c])*255 + (1-a)*float64(fr.Plate[3*p+c])
				if d := math.Abs(float64(fr.RGB[3*p+c]) - want); d > 1.0001 {
					t.Fatalf("frame %d pixel %d channel %d: frame %d, α·F+(1−α)·B = %.2f (α %d)", fi, p, c, fr.RGB[3*p+c], want, a8)
				}
			}
			checked++
			switch {
			case a8 == 255:
				opaque++
			case a8 > 0:
				soft++
			}
		}
	}
	if checked == 0 || opaque == 0 || soft == 0 {
		t.Fatalf("the clip has %d opaque and %d soft pixels of %d checked: want some of both", opaque, soft, checked)
	}
}

// Truth and composite agree on a green screen (with spill and uneven
// light) too, and the encoded clip shows the same frames within the loss
// of the RGB → YUV 4:2:0 conversion.
func TestTruthAndCompositeAgree(t *testing.T) {
	ctx := context.Background()
	spec := screenSpec(11)
	spec.Frames = 5
	frames, err := Render(ctx, spec, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	checkComposite(t, frames)

	clip, err := BuildClip(ctx, spec, Sources{}, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if clip.TruthSource != TruthSynthetic || !clip.HasTruth() {
		t.Fatalf("truth source %q, has truth %v", clip.TruthSource, clip.HasTruth())
	}
	truth, err := clip.Truth()
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) != spec.Frames {
		t.Fatalf("%d truth frames, want %d", len(truth), spec.Frames)
	}
	// The clip is FFV1, lossless in YUV 4:2:0: its luma is the render's
	// (BT.601) to rounding, its chroma the render's averaged over 2×2
	// blocks (FFmpeg's own downsampling filter, close to that average).
	w, h := spec.Width, spec.Height
	cw, ch := w/2, h/2
	decoded, err := readRawFrames(ctx, w*h+2*cw*ch, "-i", clip.Video, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(decoded) != spec.Frames {
		t.Fatalf("the clip decodes to %d frames, want %d", len(decoded), spec.Frames)
	}
	for i := range frames {
		if !bytes.Equal(truth[i], frames[i].Alpha) {
			t.Fatalf("frame %d: the stored truth differs from the rendered one", i)
		}
		y, u, v := rgbToYUV420(frames[i].RGB, w, h)
		maxY, sumY := 0.0, 0.0
		for p := range y {
			d := math.Abs(float64(decoded[i][p]) - float64(y[p]))
			maxY, sumY = math.Max(maxY, d), sumY+d
		}
		var sumC float64
		for p := range u {
			sumC += math.Abs(float64(decoded[i][w*h+p])-float64(u[p])) + math.Abs(float64(decoded[i][w*h+cw*ch+p])-float64(v[p]))
		}
		t.Logf("frame %d: luma max %.0f mean %.3f, chroma mean %.3f", i, maxY, sumY/float64(len(y)), sumC/float64(2*len(u)))
		if maxY > 2 || sumY/float64(len(y)) > 0.1 {
			t.Errorf("frame %d: luma differs from the render by up to %.0f (mean %.2f)", i, maxY, sumY/float64(len(y)))
		}
		if mc := sumC / float64(2*len(u)); mc > 0.6 {
			t.Errorf("frame %d: chroma differs from the render's 2×2 averages by %.2f on average", i, mc)
		}
	}
}

// Spill tints the foreground with the screen colour, most near its edges.
func TestSpillNearEdges(t *testing.T) {
	l := newLayer(40, 20)
	for y := range 20 {
		for x := 10; x < 30; x++ {
			l.over(y*40+x, [3]float32{1, 0, 1}, 1)
		}
	}
	spillLayer(l, [3]float32{0, 1, 0}, 0.3)
	edge, mid := l.pm[3*(10*40+10)+1], l.pm[3*(10*40+20)+1]
	if !(edge > mid && mid > 0) {
		t.Errorf("green after spill: edge %.3f, middle %.3f; want edge > middle > 0", edge, mid)
	}
	if l.pm[3*(10*40+5)+1] != 0 {
		t.Error("spill painted outside the foreground")
	}
}

// Specs of the sets: unknown names are errors, defaults are portrait,
// shapes and people, and backdrops follow the set.
func TestSetClips(t *testing.T) {
	specs, err := SetClips(SetComposite, nil, 64, 48, 10, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || specs[0].Backdrop != BackdropStreet || specs[1].Backdrop != BackdropTree ||
		specs[2].Foreground != FgPeople || specs[2].Backdrop != BackdropTree {
		t.Fatalf("composite set: %+v", specs)
	}
	if _, err := SetClips("nope", nil, 64, 48, 10, 4, 1); err == nil {
		t.Error("an unknown set was accepted")
	}
	if _, err := SetClips(SetGreenscreen, []string{"cat"}, 64, 48, 10, 4, 1); err == nil {
		t.Error("an unknown foreground was accepted")
	}
	if _, err := Render(context.Background(), ClipSpec{Set: SetGreenscreen, Foreground: FgShapes, Backdrop: BackdropGreen, Width: 15, Height: 16, FPS: 10, Frames: 2}, Sources{}); err == nil {
		t.Error("an odd width was accepted")
	}
}

// figure is a synthetic cut-out photo: an opaque upright ellipse (a
// standing figure) with a soft edge, on a transparent ground.
func figure(w, h int) *Photo {
	ph := &Photo{W: w, H: h, RGB: make([]byte, 3*w*h), Alpha: make([]float32, w*h)}
	for y := range h {
		for x := range w {
			dx, dy := (float64(x)+0.5-float64(w)/2)/(0.4*float64(w)), (float64(y)+0.5-float64(h)/2)/(0.45*float64(h))
			d := math.Sqrt(dx*dx + dy*dy)
			a := math.Min(math.Max((1.05-d)/0.1, 0), 1)
			ph.Alpha[y*w+x] = float32(a)
			ph.RGB[3*(y*w+x)], ph.RGB[3*(y*w+x)+1], ph.RGB[3*(y*w+x)+2] = 200, byte(x), byte(y)
		}
	}
	return ph
}

// The people foreground paints its members back to front: its alpha is
// the members' composited over each other (1 − Π(1 − aᵢ)), each member
// has the height its placement gives, and the clip's composite agrees
// with its truth.
func TestPeopleGroup(t *testing.T) {
	ctx := context.Background()
	spec := ClipSpec{Set: SetGreenscreen, Name: "people-green", Foreground: FgPeople, Backdrop: BackdropGreen,
		Width: 160, Height: 120, FPS: 10, Frames: 4, Seed: 3}
	photos := Sources{Photo: func(_ context.Context, fg string) (*Photo, error) {
		if fg == FgPortrait {
			return figure(60, 50), nil
		}
		return figure(30, 90), nil
	}}
	g, err := newGroup(ctx, spec, photos.Photo)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.members) != 3 {
		t.Fatalf("%d members, want 3", len(g.members))
	}
	const at = 1.5
	all := newLayer(spec.Width, spec.Height)
	g.render(at, all)
	want := make([]float64, spec.Width*spec.Height)
	for i := range want {
		want[i] = 1
	}
	// The members' heights as shares of the frame's, at most: the
	// placement's share with its jitter, and the sway of the zoom.
	heights := []float64{0.35, 0.55, 0.80}
	for i, m := range g.members {
		one := newLayer(spec.Width, spec.Height)
		m.render(at, one)
		top, bottom := spec.Height, -1
		for p, a := range one.a {
			want[p] *= 1 - float64(a)
			if a > 0.5 {
				top, bottom = min(top, p/spec.Width), max(bottom, p/spec.Width)
			}
		}
		if bottom < 0 {
			t.Fatalf("member %d is not in the frame at t=%g", i, at)
		}
		if share := float64(bottom-top+1) / float64(spec.Height); share > heights[i]*1.1 || share < 0.2 {
			t.Errorf("member %d is %.2f of the frame's height, want at most %.2f", i, share, heights[i]*1.1)
		}
	}
	var maxDiff float64
	for p, a := range all.a {
		maxDiff = math.Max(maxDiff, math.Abs(float64(a)-(1-want[p])))
	}
	if maxDiff > 1e-5 {
		t.Errorf("the group's alpha differs from its members' composited by up to %g", maxDiff)
	}
	frames, err := Render(ctx, spec, photos)
	if err != nil {
		t.Fatal(err)
	}
	checkComposite(t, frames)
	clip, err := BuildClip(ctx, spec, photos, "isnet", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if clip.TruthSource != TruthModel("isnet") || !strings.Contains(clip.Description, "three people") {
		t.Errorf("truth %q, description %q", clip.TruthSource, clip.Description)
	}
}
