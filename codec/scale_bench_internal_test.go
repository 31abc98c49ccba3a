package codec

import (
	"context"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"

	"vidmatte/internal/testmedia"
)

// msPerFrame reports the benchmark's time per iteration in ms.
func msPerFrame(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

// BenchmarkRGBScalerFormats measures swscale turning a decoded 1080p frame
// into a model's input, per frame, by what it writes: planar bytes (gbrp,
// an NCHW model's channels), packed bytes (rgb24, an NHWC model's pixels)
// or planar floats in 0..1 (gbrpf32le, the channels as an NCHW float
// model with mean 0 and std 255 takes them), at the frame's size (RVM) and
// at ISNet's 1024×1024.
func BenchmarkRGBScalerFormats(b *testing.B) {
	const w, h = 1920, 1080
	path := testmedia.Clip(b, testmedia.ClipOptions{Width: w, Height: h, Duration: 200 * time.Millisecond})
	d, err := OpenDecoder(path, DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f, err := d.Next(context.Background())
	d.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer f.Release()
	for _, size := range [][2]int{{w, h}, {1024, 1024}} {
		for _, c := range []struct {
			name string
			fmt  astiav.PixelFormat
			elem int
		}{{"gbrp", astiav.PixelFormatGbrp, 1}, {"rgb24", astiav.PixelFormatRgb24, 1}, {"gbrpf32", astiav.PixelFormatGbrpf32Le, 4}} {
			b.Run(fmt.Sprintf("%s-%dx%d", c.name, size[0], size[1]), func(b *testing.B) {
				s, err := newRGBScaler(w, h, size[0], size[1], c.fmt, c.elem)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				dst := make([]byte, 3*size[0]*size[1]*c.elem)
				for b.Loop() {
					if err := s.Scale(f, dst); err != nil {
						b.Fatal(err)
					}
				}
				msPerFrame(b)
			})
		}
	}
}

// BenchmarkGrayScalerFormats measures swscale writing a model's alpha into
// a 1080p alpha plane, per frame, from bytes (gray8: quantized before) or
// straight from the model's 0..1 floats (grayf32le), at the chroma
// keyer's 960×540, ISNet's 1024×1024 and the frame's size (RVM).
func BenchmarkGrayScalerFormats(b *testing.B) {
	const w, h = 1920, 1080
	dst := make([]byte, AlphaStride(w)*h)
	for _, size := range [][2]int{{960, 540}, {1024, 1024}, {w, h}} {
		for _, c := range []struct {
			name string
			fmt  astiav.PixelFormat
			elem int
		}{{"gray8", astiav.PixelFormatGray8, 1}, {"grayf32", astiav.PixelFormatGrayf32Le, 4}} {
			b.Run(fmt.Sprintf("%s-%dx%d", c.name, size[0], size[1]), func(b *testing.B) {
				s, err := newGrayScaler(size[0], size[1], c.fmt, w, h)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				src := make([]byte, size[0]*size[1]*c.elem)
				for b.Loop() {
					if err := s.scaleFrom(unsafe.Pointer(&src[0]), c.elem, dst, AlphaStride(w)); err != nil {
						b.Fatal(err)
					}
				}
				msPerFrame(b)
			})
		}
	}
}
