package testmedia

import (
	"path/filepath"
	"testing"
	"time"
)

func TestGreenScreen(t *testing.T) {
	for _, blue := range []bool{false, true} {
		path, truth := GreenScreen(t, 96, 64, 6, blue)
		if len(truth) != 6 || len(truth[0]) != 96*64 {
			t.Fatalf("truth of %d frames of %d pixels", len(truth), len(truth[0]))
		}
		pics := ReadRGBA(t, path)
		if len(pics) != 6 {
			t.Fatalf("%d frames in the clip", len(pics))
		}
		for i, p := range pics {
			var back, fg, seenBack, seenFG int
			for y := 0; y < 64; y++ {
				for x := 0; x < 96; x++ {
					c := p.Pix[p.PixOffset(x, y):]
					r, g, b := int(c[0]), int(c[1]), int(c[2])
					switch truth[i][y*96+x] {
					case 0:
						seenBack++
						if (!blue && g > 150 && r < 40) || (blue && b > 150 && r < 40) {
							back++
						}
					case 255:
						seenFG++
						if r > g && r > b {
							fg++
						}
					}
				}
			}
			if seenBack == 0 || seenFG == 0 || back < seenBack*95/100 || fg < seenFG*95/100 {
				t.Fatalf("frame %d (blue %v): %d/%d backdrop pixels keyed colour, %d/%d foreground warm", i, blue, back, seenBack, fg, seenFG)
			}
		}
	}
}

func TestAnimatedWebPReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anim.webp")
	FFmpeg(t, "-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5,format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*4'",
		"-c:v", "libwebp_anim", "-lossless", "1", "-loop", "0", path)
	frames, dur, audio := Probe(t, path)
	if frames != 5 || audio || dur < 450*time.Millisecond || dur > 550*time.Millisecond {
		t.Fatalf("%d frames, %v, audio %v", frames, dur, audio)
	}
	alpha := ReadAlpha(t, path)
	if len(alpha) != 5 || len(alpha[0]) != 64*48 {
		t.Fatalf("%d mattes", len(alpha))
	}
	for _, a := range alpha {
		for y := 0; y < 48; y++ {
			for x := 0; x < 64; x++ {
				if want := min(255, 4*x); int(a[y*64+x]) != want {
					t.Fatalf("alpha at (%d,%d) is %d, want %d", x, y, a[y*64+x], want)
				}
			}
		}
	}
}
