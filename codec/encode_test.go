package codec_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// alphaTolerance is how closely each format gives back the matte written:
// the largest mean absolute error and the largest single error, in 0..255.
var alphaTolerance = map[vidmatte.OutputFormat]struct {
	mae    float64
	maxErr int
}{
	vidmatte.FormatWebM:        {1.5, 96}, // lossy VP9 on the alpha plane
	vidmatte.FormatMOV:         {0.1, 1},  // 10-bit alpha, read back at 8 bits
	vidmatte.FormatWebP:        {0.5, 8},  // libwebp keeps alpha losslessly by default
	vidmatte.FormatPNGSequence: {0, 0},    // exact
	vidmatte.FormatMask:        {1.0, 32}, // H.264 CRF 12 on the luma
}

// opaqueRed is a colour background for formats that need one.
var opaqueRed = vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &[3]float64{1, 0, 0}}

func TestEncodeEveryFormat(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Audio: true, Width: 320, Height: 240})
	srcFrames, _, _ := testmedia.Probe(t, src)
	srcVideo, _ := testmedia.Spans(t, src)
	step := 40 * time.Millisecond
	for _, f := range vidmatte.OutputFormats {
		t.Run(string(f), func(t *testing.T) {
			opts := codec.EncoderOptions{Format: f, AudioFrom: src}
			if f == vidmatte.FormatMP4 {
				opts.Background = opaqueRed
			}
			out, written := transcode(t, src, opts)
			if len(written) != srcFrames {
				t.Fatalf("wrote %d frames of %d", len(written), srcFrames)
			}
			frames, dur, hasAudio := testmedia.Probe(t, out)
			if frames != srcFrames {
				t.Errorf("output has %d frames, input %d", frames, srcFrames)
			}
			carriesAudio := f == vidmatte.FormatWebM || f == vidmatte.FormatMOV || f == vidmatte.FormatMP4 || f == vidmatte.FormatMask
			if hasAudio != carriesAudio {
				t.Errorf("output has audio: %v, want %v", hasAudio, carriesAudio)
			}
			if f != vidmatte.FormatPNGSequence && absDur(dur-srcVideo.Duration()) > step {
				t.Errorf("output lasts %v, input video %v", dur, srcVideo.Duration())
			}
			if carriesAudio {
				checkSync(t, src, out, step)
			}
			checkAlpha(t, f, out, written)
		})
	}
	if n := codec.LiveFrames(); n != 0 {
		t.Errorf("%d frames still live", n)
	}
}

// checkSync checks the output's audio and video start together, and that
// each lasts as long as in the input, within tolerance.
func checkSync(t *testing.T, src, out string, tolerance time.Duration) {
	t.Helper()
	inVideo, inAudio := testmedia.Spans(t, src)
	video, audio := testmedia.Spans(t, out)
	if !video.Present || !audio.Present {
		t.Fatalf("video %v, audio %v present", video.Present, audio.Present)
	}
	if d := absDur(video.Start - audio.Start); d > tolerance {
		t.Errorf("audio starts at %v, video at %v", audio.Start, video.Start)
	}
	if d := absDur(video.Duration() - inVideo.Duration()); d > tolerance {
		t.Errorf("video lasts %v, %v in the input", video.Duration(), inVideo.Duration())
	}
	if d := absDur(audio.Duration() - inAudio.Duration()); d > tolerance {
		t.Errorf("audio lasts %v, %v in the input", audio.Duration(), inAudio.Duration())
	}
}

// checkAlpha reads the output back and compares its mattes with those
// written, within the format's tolerance.
func checkAlpha(t *testing.T, f vidmatte.OutputFormat, path string, written [][]byte) {
	t.Helper()
	if f == vidmatte.FormatMP4 {
		checkComposited(t, path, written)
		return
	}
	back := testmedia.ReadAlpha(t, path)
	if len(back) != len(written) {
		t.Fatalf("read back %d mattes, wrote %d", len(back), len(written))
	}
	if f == vidmatte.FormatGIF {
		// One bit of transparency: below half is transparent.
		wrong, total := 0, 0
		for i := range written {
			for j, a := range written[i] {
				if (a >= 128) != (back[i][j] >= 128) {
					wrong++
				}
				total++
			}
		}
		frac := float64(wrong) / float64(total)
		t.Logf("gif: %.3f%% of pixels on the wrong side of the threshold", 100*frac)
		if frac > 0.001 {
			t.Errorf("%.3f%% of pixels have the wrong transparency", 100*frac)
		}
		return
	}
	tol := alphaTolerance[f]
	var worstMAE float64
	worstMax := 0
	for i := range written {
		if len(back[i]) != len(written[i]) {
			t.Fatalf("frame %d: matte of %d bytes, wrote %d", i, len(back[i]), len(written[i]))
		}
		mae, m := alphaError(written[i], back[i])
		worstMAE = math.Max(worstMAE, mae)
		worstMax = max(worstMax, m)
	}
	t.Logf("%s: alpha error per frame at worst: mean %.3f, max %d", f, worstMAE, worstMax)
	if worstMAE > tol.mae || worstMax > tol.maxErr {
		t.Errorf("alpha read back with mean error %.3f (max %d), tolerance %.3f (%d)", worstMAE, worstMax, tol.mae, tol.maxErr)
	}
}

// checkComposited checks an mp4 made over opaqueRed: transparent pixels
// are red, opaque ones are not.
func checkComposited(t *testing.T, path string, written [][]byte) {
	t.Helper()
	pics := testmedia.ReadRGBA(t, path)
	if len(pics) != len(written) {
		t.Fatalf("read back %d pictures, wrote %d", len(pics), len(written))
	}
	for i := 0; i < len(pics); i += 7 {
		p := pics[i]
		w := p.Rect.Dx()
		red, redOK, fg, fgRed := 0, 0, 0, 0
		for y := 0; y < p.Rect.Dy(); y++ {
			for x := 0; x < w; x++ {
				c := p.Pix[p.PixOffset(x, y):]
				isRed := c[0] > 200 && c[1] < 60 && c[2] < 60
				// Away from edges, where chroma subsampling blends.
				switch a := written[i][y*w+x]; {
				case a == 0 && calm(written[i], w, x, y):
					red++
					if isRed {
						redOK++
					}
				case a == 255 && calm(written[i], w, x, y):
					fg++
					if isRed {
						fgRed++
					}
				}
			}
		}
		if red == 0 || float64(redOK) < 0.99*float64(red) {
			t.Errorf("frame %d: %d of %d transparent pixels show the red background", i, redOK, red)
		}
		if fg == 0 || float64(fgRed) > 0.25*float64(fg) {
			t.Errorf("frame %d: %d of %d opaque pixels are red", i, fgRed, fg)
		}
	}
}

// calm reports whether the 5x5 neighbourhood of (x, y) has one alpha value.
func calm(a []byte, w, x, y int) bool {
	h := len(a) / w
	v := a[y*w+x]
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			xx, yy := x+dx, y+dy
			if xx < 0 || yy < 0 || xx >= w || yy >= h || a[yy*w+xx] != v {
				return false
			}
		}
	}
	return true
}

func TestEncodeWithoutAudio(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, Duration: 400 * time.Millisecond})
	for _, f := range []vidmatte.OutputFormat{vidmatte.FormatWebM, vidmatte.FormatMOV, vidmatte.FormatMask} {
		out, _ := transcode(t, src, codec.EncoderOptions{Format: f, AudioFrom: src})
		if _, _, hasAudio := testmedia.Probe(t, out); hasAudio {
			t.Errorf("%s: an output of a silent input has an audio stream", f)
		}
	}
}

// TestEncodeInputs carries the audio of each input container (AAC, MP3,
// Opus) into outputs that copy it or transcode it.
func TestEncodeInputs(t *testing.T) {
	inputs := []testmedia.ClipOptions{
		{Container: "mkv", Audio: true},
		{Container: "webm", Audio: true},
		{Container: "avi", Audio: true},
		{Container: "mov", Audio: true},
	}
	for _, in := range inputs {
		in.Width, in.Height, in.Duration = 160, 120, 600*time.Millisecond
		src := testmedia.Clip(t, in)
		for _, f := range []vidmatte.OutputFormat{vidmatte.FormatWebM, vidmatte.FormatMP4, vidmatte.FormatMOV} {
			t.Run(in.Container+"_to_"+string(f), func(t *testing.T) {
				opts := codec.EncoderOptions{Format: f, AudioFrom: src}
				if f == vidmatte.FormatMP4 {
					opts.Background = opaqueRed
				}
				out, written := transcode(t, src, opts)
				frames, _, hasAudio := testmedia.Probe(t, out)
				if frames != len(written) || !hasAudio {
					t.Fatalf("%d frames (wrote %d), audio %v", frames, len(written), hasAudio)
				}
				checkSync(t, src, out, 40*time.Millisecond)
			})
		}
	}
}

func TestEncodeVariableFrameRate(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{VFR: true, Audio: true, FPS: 30, Width: 160, Height: 120})
	in := decodeAll(t, src)
	for _, f := range []vidmatte.OutputFormat{vidmatte.FormatWebM, vidmatte.FormatMP4, vidmatte.FormatMOV} {
		t.Run(string(f), func(t *testing.T) {
			opts := codec.EncoderOptions{Format: f, AudioFrom: src}
			if f == vidmatte.FormatMP4 {
				opts.Background = opaqueRed
			}
			out, _ := transcode(t, src, opts)
			got := decodeAll(t, out)
			if got.count != in.count {
				t.Fatalf("%d frames, input %d", got.count, in.count)
			}
			for i := range in.times {
				// WebM keeps milliseconds.
				if d := absDur((got.times[i] - got.times[0]) - (in.times[i] - in.times[0])); d > 2*time.Millisecond {
					t.Fatalf("frame %d at %v, input at %v: the timing was not kept", i, got.times[i]-got.times[0], in.times[i]-in.times[0])
				}
			}
			checkSync(t, src, out, 34*time.Millisecond)
		})
	}
}

func TestEncodeOddSize(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 641, Height: 361, Container: "webm", Duration: 200 * time.Millisecond})
	for f, want := range map[vidmatte.OutputFormat][2]int{
		vidmatte.FormatWebM: {641, 361},
		vidmatte.FormatMOV:  {641, 361},
		vidmatte.FormatMP4:  {640, 360}, // H.264 4:2:0 takes even sizes only
		vidmatte.FormatMask: {640, 360},
		vidmatte.FormatGIF:  {641, 361},
	} {
		opts := codec.EncoderOptions{Format: f}
		if f == vidmatte.FormatMP4 {
			opts.Background = opaqueRed
		}
		out, written := transcode(t, src, opts)
		back := decodeAll(t, out)
		if back.width != want[0] || back.height != want[1] || back.count != len(written) {
			t.Errorf("%s: %d frames of %dx%d, want %d of %dx%d", f, back.count, back.width, back.height, len(written), want[0], want[1])
		}
		if f == vidmatte.FormatMask {
			// The matte is cut, not scaled: the first row and column agree.
			a := testmedia.ReadAlpha(t, out)[0]
			mae, _ := alphaError(cropPlane(written[0], 641, 640, 360), a)
			if mae > 1 {
				t.Errorf("mask of an odd-sized input: mean error %.2f", mae)
			}
		}
	}
}

// cropPlane keeps the top-left w x h of a plane of width stride.
func cropPlane(p []byte, stride, w, h int) []byte {
	out := make([]byte, 0, w*h)
	for y := 0; y < h; y++ {
		out = append(out, p[y*stride:y*stride+w]...)
	}
	return out
}

func TestEncodeRotatedInput(t *testing.T) {
	plain := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 96, Duration: 200 * time.Millisecond, Lossless: true})
	rotated := testmedia.Rotate(t, plain, 90)
	out, _ := transcode(t, rotated, codec.EncoderOptions{Format: vidmatte.FormatPNGSequence})
	got := testmedia.ReadRGBA(t, out)
	want := testmedia.ReadRGBA(t, plain)
	if got[0].Rect.Dx() != 96 || got[0].Rect.Dy() != 160 {
		t.Fatalf("output is %v, want 96x160", got[0].Rect)
	}
	// Upright: the output is the plain picture turned a quarter clockwise.
	// Compare luma (chroma siting differs between the two conversions to
	// RGB); the other quarter turn must differ clearly.
	luma := func(p []byte) float64 { return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2]) }
	w, h := 160, 96
	var right, wrong float64
	for y := 0; y < w; y++ {
		for x := 0; x < h; x++ {
			g := luma(got[0].Pix[got[0].PixOffset(x, y):])
			right += math.Abs(g - luma(want[0].Pix[want[0].PixOffset(y, h-1-x):]))
			wrong += math.Abs(g - luma(want[0].Pix[want[0].PixOffset(w-1-y, x):]))
		}
	}
	right /= float64(w * h)
	wrong /= float64(w * h)
	t.Logf("luma difference: %.2f upright, %.2f turned the other way", right, wrong)
	if right > 3 || wrong < 5*right {
		t.Fatalf("the output is not the upright input: difference %.2f (%.2f the other way)", right, wrong)
	}
}

func TestEncodeBackgroundsAndComposition(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, Duration: 200 * time.Millisecond})
	bgImage := filepath.Join(t.TempDir(), "backdrop.png")
	testmedia.FFmpeg(t, "-f", "lavfi", "-i", "color=c=0x2040c0:s=90x60", "-frames:v", "1", bgImage)
	blue := [3]int{0x20, 0x40, 0xc0}

	t.Run("color under webm is opaque", func(t *testing.T) {
		out, _ := transcode(t, src, codec.EncoderOptions{Format: vidmatte.FormatWebM, Background: opaqueRed})
		for _, a := range testmedia.ReadAlpha(t, out) {
			for _, v := range a {
				if v != 255 {
					t.Fatalf("a webm over a colour has alpha %d", v)
				}
			}
		}
	})
	t.Run("image under mp4", func(t *testing.T) {
		out, written := transcode(t, src, codec.EncoderOptions{Format: vidmatte.FormatMP4,
			Background: vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: bgImage}})
		p := testmedia.ReadRGBA(t, out)[0]
		// A fully transparent spot shows the (scaled-up) image.
		x, y := findCalm(written[0], 160, 0)
		c := p.Pix[p.PixOffset(x, y):]
		for ch := 0; ch < 3; ch++ {
			if d := int(c[ch]) - blue[ch]; d < -8 || d > 8 {
				t.Fatalf("background pixel %v, want the image's %v", c[:3], blue)
			}
		}
	})
	t.Run("blur under gif", func(t *testing.T) {
		out, written := transcode(t, src, codec.EncoderOptions{Format: vidmatte.FormatGIF,
			Background: vidmatte.Background{Type: vidmatte.BackgroundBlur}})
		for i, a := range testmedia.ReadAlpha(t, out) {
			for _, v := range a {
				if v != 255 {
					t.Fatalf("frame %d of a gif over a blur has transparency", i)
				}
			}
		}
		if len(written) == 0 {
			t.Fatal("nothing written")
		}
	})
	// The foreground is 80x60 with its top-left corner at (110, 36) on a
	// transparent 200x100 canvas; the mask follows the same placement.
	comp := &vidmatte.Composition{
		Canvas:     &vidmatte.Canvas{Width: 200, Height: 100},
		Foreground: &vidmatte.ForegroundPlacement{Anchor: vidmatte.AnchorBottomRight, Scale: 0.5, Offset: &vidmatte.Offset{X: -10, Y: -4}},
	}
	for f, tol := range map[vidmatte.OutputFormat][2]float64{
		vidmatte.FormatPNGSequence: {12, 0},
		vidmatte.FormatWebM:        {12, 2},
		vidmatte.FormatMask:        {12, 2},
	} {
		t.Run("transparent canvas "+string(f), func(t *testing.T) {
			out, written := transcode(t, src, codec.EncoderOptions{Format: f, Composition: comp})
			back := testmedia.ReadAlpha(t, out)
			for i := range back {
				if len(back[i]) != 200*100 {
					t.Fatalf("canvas of %d pixels", len(back[i]))
				}
				var inside, outside float64
				for y := 0; y < 100; y++ {
					for x := 0; x < 200; x++ {
						a := float64(back[i][y*200+x])
						if x >= 110 && x < 190 && y >= 36 && y < 96 {
							want := float64(written[i][(y-36)*2*160+(x-110)*2])
							inside += math.Abs(a - want)
						} else {
							outside += a
						}
					}
				}
				inside /= 80 * 60
				outside /= 200*100 - 80*60
				if inside > tol[0] || outside > tol[1] {
					t.Fatalf("frame %d: the placed matte differs by %.2f on average, %.2f outside it", i, inside, outside)
				}
			}
		})
	}
	t.Run("transparent mp4 is refused", func(t *testing.T) {
		_, err := codec.NewEncoder(filepath.Join(t.TempDir(), "x.mp4"), codec.EncoderOptions{Format: vidmatte.FormatMP4, Width: 16, Height: 16, TimeBase: codec.Rational{Num: 1, Den: 25}})
		if vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable {
			t.Fatalf("mp4 without a background: %v", err)
		}
	})
	t.Run("placement outside the canvas is refused", func(t *testing.T) {
		comp := &vidmatte.Composition{Foreground: &vidmatte.ForegroundPlacement{Offset: &vidmatte.Offset{X: 5000}}}
		_, err := codec.NewEncoder(filepath.Join(t.TempDir(), "x.webm"), codec.EncoderOptions{Format: vidmatte.FormatWebM, Width: 16, Height: 16, TimeBase: codec.Rational{Num: 1, Den: 25}, Composition: comp})
		if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
			t.Fatalf("foreground off the canvas: %v", err)
		}
	})
}

// findCalm finds a pixel whose 5x5 neighbourhood has alpha v.
func findCalm(a []byte, w int, v byte) (int, int) {
	h := len(a) / w
	for y := 2; y < h-2; y++ {
		for x := 2; x < w-2; x++ {
			if a[y*w+x] == v && calm(a, w, x, y) {
				return x, y
			}
		}
	}
	return 0, 0
}

func TestEncoderMisuse(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, Duration: 200 * time.Millisecond})
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f1, _ := d.Next(context.Background())
	f2, _ := d.Next(context.Background())
	defer f1.Release()
	defer f2.Release()
	alpha := make([]byte, 64*48)
	newEnc := func(name string) (*codec.Encoder, string) {
		path := filepath.Join(t.TempDir(), name)
		e, err := codec.NewEncoder(path, codec.EncoderOptions{Format: vidmatte.FormatWebM, Width: 64, Height: 48, TimeBase: d.TimeBase(), FrameRate: d.Info().FrameRate})
		if err != nil {
			t.Fatal(err)
		}
		return e, path
	}

	e, path := newEnc("short.webm")
	if err := e.WriteFrame(f1, alpha[:10]); err == nil {
		t.Error("a short alpha plane was accepted")
	}
	if err := e.WriteFrame(f2, alpha); err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFrame(f1, alpha); err == nil {
		t.Error("a frame before the previous one was accepted")
	}
	e.Abort()
	e.Abort()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Abort left %s behind: %v", path, err)
	}
	if err := e.WriteFrame(f1, alpha); err == nil {
		t.Error("WriteFrame after Abort succeeded")
	}

	e, path = newEnc("empty.webm")
	if err := e.Close(); vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable {
		t.Errorf("Close without frames: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an encoder closed without frames left %s behind", path)
	}

	e, path = newEnc("ok.webm")
	if err := e.WriteFrame(f1, alpha); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e.Abort() // after a successful Close, Abort keeps the file
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the finished file is gone: %v", err)
	}

	_, err = codec.NewEncoder(filepath.Join(t.TempDir(), "x"), codec.EncoderOptions{Format: "avi", Width: 64, Height: 48, TimeBase: d.TimeBase()})
	if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
		t.Errorf("an unknown format: %v", err)
	}
	_, err = codec.NewEncoder(filepath.Join(t.TempDir(), "x.mp4"), codec.EncoderOptions{Format: vidmatte.FormatMP4, Width: 64, Height: 48, TimeBase: d.TimeBase(),
		Background: vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: src + ".missing.png"}})
	if err == nil {
		t.Fatal("a missing background image was accepted")
	}
}
