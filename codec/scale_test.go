package codec_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// rgbAt is the RGB of pixel (x, y) of planar RGB of width w and height h.
func rgbAt(p []byte, w, h, x, y int) [3]int {
	n := w * h
	i := y*w + x
	return [3]int{int(p[i]), int(p[n+i]), int(p[2*n+i])}
}

func TestRGBScalerColours(t *testing.T) {
	colours := [][3]int{{200, 60, 40}, {30, 180, 90}, {40, 70, 210}}
	cases := []struct {
		name   string
		w, h   int
		matrix string
		tag    bool
		pixFmt string
	}{
		{"SD BT.601 untagged", 320, 240, "bt601", false, ""},
		{"SD BT.601 tagged", 320, 240, "bt601", true, ""},
		{"HD BT.709 untagged", 1280, 720, "bt709", false, ""},
		{"HD BT.709 tagged", 1280, 720, "bt709", true, ""},
		{"HD tagged BT.601", 1280, 720, "bt601", true, ""},
		{"SD full range", 320, 240, "bt601", false, "yuvj420p"},
		{"SD RGB source", 320, 240, "", false, "rgb24"},
		{"HD RGB source", 1280, 720, "", false, "rgb24"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, col := range colours {
				o := testmedia.ClipOptions{
					Width: c.w, Height: c.h, Duration: 80 * time.Millisecond, Lossless: true,
					Source:      fmt.Sprintf("color=c=0x%02x%02x%02x", col[0], col[1], col[2]),
					ColorMatrix: c.matrix, TagColor: c.tag, PixelFormat: c.pixFmt,
				}
				if c.pixFmt == "rgb24" {
					// Stored as RGB: the decoder converts it to YUV.
					o.Container, o.Codec, o.Lossless = "mov", "qtrle", false
				}
				path := testmedia.Clip(t, o)
				d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
				if err != nil {
					t.Fatal(err)
				}
				f, err := d.Next(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				const dw, dh = 96, 54
				s, err := codec.NewRGBScaler(f.Width(), f.Height(), dw, dh)
				if err != nil {
					t.Fatal(err)
				}
				dst := make([]byte, 3*dw*dh)
				if err := s.Scale(f, dst); err != nil {
					t.Fatal(err)
				}
				for _, pt := range [][2]int{{0, 0}, {dw / 2, dh / 2}, {dw - 1, dh - 1}} {
					got := rgbAt(dst, dw, dh, pt[0], pt[1])
					for ch := 0; ch < 3; ch++ {
						if d := got[ch] - col[ch]; d < -4 || d > 4 {
							t.Errorf("colour %v came out %v at %v", col, got, pt)
							break
						}
					}
				}
				s.Close()
				s.Close()
				f.Release()
				d.Close()
			}
		})
	}
}

// TestRGBScalerMatrixMatters checks that reading HD content with the SD
// matrix would be visibly wrong, so TestRGBScalerColours does tell the
// matrices apart.
func TestRGBScalerMatrixMatters(t *testing.T) {
	col := [3]int{30, 180, 90}
	path := testmedia.Clip(t, testmedia.ClipOptions{
		Width: 1280, Height: 720, Duration: 80 * time.Millisecond, Lossless: true,
		Source: fmt.Sprintf("color=c=0x%02x%02x%02x", col[0], col[1], col[2]), ColorMatrix: "bt601",
	})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	s, err := codec.NewRGBScaler(1280, 720, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dst := make([]byte, 3*16*16)
	if err := s.Scale(f, dst); err != nil {
		t.Fatal(err)
	}
	got := rgbAt(dst, 16, 16, 8, 8)
	worst := 0
	for ch := 0; ch < 3; ch++ {
		worst = max(worst, abs(got[ch]-col[ch]))
	}
	// Untagged HD is read as BT.709: BT.601 content comes out shifted.
	if worst < 10 {
		t.Fatalf("BT.601 content read as BT.709 gave %v for %v: the matrices are not told apart", got, col)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestRGBScalerChecks(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, Duration: 80 * time.Millisecond})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := codec.NewRGBScaler(32, 32, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Scale(f, make([]byte, 3*16*16)); err == nil {
		t.Error("scaling a 64x48 frame with a 32x32 scaler succeeded")
	}
	s.Close()
	s, _ = codec.NewRGBScaler(64, 48, 16, 16)
	defer s.Close()
	if err := s.Scale(f, make([]byte, 100)); err == nil {
		t.Error("scaling into a short buffer succeeded")
	}
	f.Release()
	if err := s.Scale(f, make([]byte, 3*16*16)); err == nil {
		t.Error("scaling a released frame succeeded")
	}
	if _, err := codec.NewRGBScaler(0, 48, 16, 16); err == nil {
		t.Error("a scaler from width 0 was made")
	}
}

func TestGrayScaler(t *testing.T) {
	const sw, sh, dw, dh = 1024, 1024, 1920, 1080
	s, err := codec.NewGrayScaler(sw, sh, dw, dh)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := make([]byte, sw*sh)
	dst := make([]byte, dw*dh)
	// Left half opaque, right half transparent: the extremes survive and
	// the edge stays where it was.
	for y := 0; y < sh; y++ {
		for x := 0; x < sw/2; x++ {
			src[y*sw+x] = 255
		}
	}
	if err := s.Scale(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, y := range []int{0, dh / 2, dh - 1} {
		if dst[y*dw] != 255 || dst[y*dw+dw/2-3] != 255 || dst[y*dw+dw/2+3] != 0 || dst[y*dw+dw-1] != 0 {
			t.Fatalf("row %d: %d %d | %d %d", y, dst[y*dw], dst[y*dw+dw/2-3], dst[y*dw+dw/2+3], dst[y*dw+dw-1])
		}
		edge := dst[y*dw+dw/2-1 : y*dw+dw/2+1]
		if edge[0] < edge[1] {
			t.Fatalf("row %d: the edge rises (%v)", y, edge)
		}
	}
	// A horizontal ramp stays a ramp: never decreasing, ends preserved.
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			src[y*sw+x] = byte(x * 255 / (sw - 1))
		}
	}
	if err := s.Scale(src, dst); err != nil {
		t.Fatal(err)
	}
	row := dst[dh/2*dw : dh/2*dw+dw]
	for x := 1; x < dw; x++ {
		if row[x] < row[x-1] {
			t.Fatalf("ramp decreases at %d: %d after %d", x, row[x], row[x-1])
		}
	}
	if row[0] > 1 || row[dw-1] < 254 {
		t.Fatalf("ramp ends %d..%d, want 0..255", row[0], row[dw-1])
	}
	if err := s.Scale(src[:10], dst); err == nil {
		t.Error("a short source was accepted")
	}
	down, err := codec.NewGrayScaler(dw, dh, 320, 180)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	small := make([]byte, 320*180)
	if err := down.Scale(dst, small); err != nil {
		t.Fatal(err)
	}
	if small[0] > 2 || small[319] < 253 {
		t.Fatalf("downscaled ramp ends %d..%d", small[0], small[319])
	}
}
