package testmedia

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// GreenScreen writes a clip (25 fps, H.264 without loss over 4:2:0, BT.709
// tagged) of a soft-edged, moving, textured foreground in warm colours
// (neither green nor blue) over an even green backdrop, or blue when blue
// is set, and returns its path and the true alpha of every frame (w*h
// bytes each, 0 = backdrop, 255 = foreground, in between on the soft
// edges). The foreground is an ellipse that drifts and bobs, with a
// rectangle attached that gives it corners.
func GreenScreen(t testing.TB, w, h, frames int, blue bool) (path string, truth [][]byte) {
	t.Helper()
	if w < 16 || h < 16 || frames < 1 {
		t.Fatalf("testmedia: green screen of %dx%d, %d frames is too small", w, h, frames)
	}
	bg := [3]float64{0, 177, 64}
	if blue {
		bg = [3]float64{0, 71, 187}
	}
	raw := make([]byte, 0, w*h*3*frames)
	truth = make([][]byte, frames)
	for i := 0; i < frames; i++ {
		alpha := greenScreenAlpha(w, h, i, frames)
		truth[i] = alpha
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				a := float64(alpha[y*w+x]) / 255
				fx, fy, ft := float64(x), float64(y), float64(i)
				fg := [3]float64{
					170 + 60*math.Sin(fx*0.21+fy*0.13+ft*0.2),
					70 + 40*math.Sin(fx*0.07-fy*0.17+ft*0.1),
					60 + 50*math.Cos(fx*0.11+fy*0.05-ft*0.15),
				}
				for c := 0; c < 3; c++ {
					v := fg[c]*a + bg[c]*(1-a)
					raw = append(raw, byte(math.Round(math.Max(0, math.Min(255, v)))))
				}
			}
		}
	}
	path = filepath.Join(t.TempDir(), fmt.Sprintf("greenscreen_%dx%d.mp4", w, h))
	args := []string{
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", w, h), "-r", "25", "-i", "-",
		"-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-qp", "0",
		"-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
		path,
	}
	run(t, raw, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	return path, truth
}

// greenScreenAlpha draws frame i's matte: an ellipse and a rectangle, each
// with a linear soft edge about three pixels wide.
func greenScreenAlpha(w, h, i, frames int) []byte {
	alpha := make([]byte, w*h)
	fw, fh := float64(w), float64(h)
	progress := float64(i) / math.Max(1, float64(frames-1))
	cx := fw * (0.35 + 0.3*progress)
	cy := fh*0.5 + fh*0.08*math.Sin(float64(i)*0.5)
	rx, ry := fw*0.18, fh*0.3
	// The rectangle hangs below-right of the ellipse.
	x0, x1 := cx+rx*0.3, cx+rx*1.4
	y0, y1 := cy-ry*0.2, cy+ry*0.5
	const edge = 3.0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			dx, dy := (px-cx)/rx, (py-cy)/ry
			d := math.Sqrt(dx*dx + dy*dy)
			// Approximate signed distance to the ellipse, in pixels.
			sdE := (d - 1) * math.Min(rx, ry)
			// Signed distance to the rectangle (negative inside).
			sdR := math.Max(math.Max(x0-px, px-x1), math.Max(y0-py, py-y1))
			sd := math.Min(sdE, sdR)
			a := 0.5 - sd/edge
			a = math.Max(0, math.Min(1, a))
			alpha[y*w+x] = byte(math.Round(a * 255))
		}
	}
	return alpha
}
