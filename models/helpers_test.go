package models

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// isnetRequired reports whether the tests on installed assets must run
// (VIDMATTE_ISNET set): a missing asset is then a failure, not a skip.
func isnetRequired() bool {
	v := os.Getenv("VIDMATTE_ISNET")
	return v != "" && v != "0"
}

// needAsset skips (or, with VIDMATTE_ISNET set, fails) when path is
// missing.
func needAsset(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if isnetRequired() {
			t.Fatalf("VIDMATTE_ISNET is set but %s is missing (run scripts/setup): %v", path, err)
		}
		t.Skipf("%s is missing (run scripts/setup; set VIDMATTE_ISNET=1 to make this a failure)", path)
	}
}

var (
	sharedRuntimeOnce sync.Once
	sharedRuntime     *Runtime
	sharedRuntimeErr  error
)

// testRuntime returns the process's Runtime on the installed ONNX Runtime
// library.
func testRuntime(t testing.TB) *Runtime {
	t.Helper()
	needAsset(t, DefaultLibraryPath())
	sharedRuntimeOnce.Do(func() {
		sharedRuntime, sharedRuntimeErr = NewRuntime(RuntimeOptions{})
	})
	if sharedRuntimeErr != nil {
		t.Fatalf("NewRuntime: %v", sharedRuntimeErr)
	}
	return sharedRuntime
}

// testRegistry returns a registry on a fresh models folder.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := NewRegistry(filepath.Join(t.TempDir(), "models"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// loadPNG decodes a PNG file.
func loadPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// planarRGB scales img to w×h with bilinear interpolation (pixel centres
// aligned, as swscale and ISNet's authors do) and returns planar R, G, B
// bytes.
func planarRGB(img image.Image, w, h int) []byte {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := make([][3]float64, sw*sh)
	for y := range sh {
		for x := range sw {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			src[y*sw+x] = [3]float64{float64(r >> 8), float64(g >> 8), float64(bl >> 8)}
		}
	}
	out := make([]byte, 3*w*h)
	for y := range h {
		fy := (float64(y)+0.5)*float64(sh)/float64(h) - 0.5
		y0 := int(math.Floor(fy))
		dy := fy - float64(y0)
		y1 := min(max(y0+1, 0), sh-1)
		y0 = min(max(y0, 0), sh-1)
		for x := range w {
			fx := (float64(x)+0.5)*float64(sw)/float64(w) - 0.5
			x0 := int(math.Floor(fx))
			dx := fx - float64(x0)
			x1 := min(max(x0+1, 0), sw-1)
			x0 = min(max(x0, 0), sw-1)
			for c := range 3 {
				v := (1-dy)*((1-dx)*src[y0*sw+x0][c]+dx*src[y0*sw+x1][c]) +
					dy*((1-dx)*src[y1*sw+x0][c]+dx*src[y1*sw+x1][c])
				out[c*w*h+y*w+x] = byte(math.Round(min(max(v, 0), 255)))
			}
		}
	}
	return out
}

// yuvFrame is a yuv420p picture with padded strides, as a decoder gives.
type yuvFrame struct {
	w, h                      int
	y, u, v                   []byte
	yStride, uStride, vStride int
}

// toYUV420 converts an RGB picture (values 0..1, given per pixel) to
// full-range BT.709 yuv420p, averaging chroma over each 2×2 block.
func toYUV420(w, h int, rgb func(x, y int) [3]float64) *yuvFrame {
	f := &yuvFrame{w: w, h: h, yStride: w + 16, uStride: (w+1)/2 + 8, vStride: (w+1)/2 + 8}
	cw, ch := (w+1)/2, (h+1)/2
	f.y = make([]byte, f.yStride*h)
	f.u = make([]byte, f.uStride*ch)
	f.v = make([]byte, f.vStride*ch)
	cb := make([]float64, cw*ch)
	cr := make([]float64, cw*ch)
	cnt := make([]float64, cw*ch)
	for y := range h {
		for x := range w {
			p := rgb(x, y)
			Y := bt709Kr*p[0] + bt709Kg*p[1] + bt709Kb*p[2]
			f.y[y*f.yStride+x] = byte(math.Round(255 * Y))
			i := (y/2)*cw + x/2
			cb[i] += (p[2] - Y) / (2 * (1 - bt709Kb))
			cr[i] += (p[0] - Y) / (2 * (1 - bt709Kr))
			cnt[i]++
		}
	}
	for cy := range ch {
		for cx := range cw {
			i := cy*cw + cx
			f.u[cy*f.uStride+cx] = byte(math.Round(min(max(128+255*cb[i]/cnt[i], 0), 255)))
			f.v[cy*f.vStride+cx] = byte(math.Round(min(max(128+255*cr[i]/cnt[i], 0), 255)))
		}
	}
	return f
}

// rgbFromYUV converts full-range BT.709 Y, U, V (0..1 scale, chroma
// centred on 128/255) back to RGB.
func rgbFromYUV(y, u, v float64) [3]float64 {
	cb := u - chromaCenter
	cr := v - chromaCenter
	r := y + 2*(1-bt709Kr)*cr
	b := y + 2*(1-bt709Kb)*cb
	g := (y - bt709Kr*r - bt709Kb*b) / bt709Kg
	return [3]float64{r, g, b}
}

// writeGray writes a w×h matte as a PNG, for looking at a failure.
func writeGray(t testing.TB, path string, a []float32, w, h int) {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range a[:w*h] {
		img.SetGray(i%w, i/w, color.Gray{Y: uint8(math.Round(255 * min(max(float64(v), 0), 1)))})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	png.Encode(f, img)
}

// regionMean is the mean of a w-wide matte over the rectangle [x0,x1)×[y0,y1).
// atChroma is the value of a plane at chroma resolution (a "uv" model's
// output) under the frame pixel (x, y) of a frame w pixels wide.
func atChroma(a []float32, w, x, y int) float32 { return a[(y/2)*((w+1)/2)+x/2] }

// chromaRegionMean is regionMean of a chroma-resolution plane over a
// region given in frame pixels.
func chromaRegionMean(a []float32, w, x0, y0, x1, y1 int) float64 {
	var s float64
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			s += float64(atChroma(a, w, x, y))
		}
	}
	return s / float64((x1-x0)*(y1-y0))
}

func regionMean(a []float32, w, x0, y0, x1, y1 int) float64 {
	var s float64
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			s += float64(a[y*w+x])
		}
	}
	return s / float64((x1-x0)*(y1-y0))
}
