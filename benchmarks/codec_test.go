package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// codecSizes are the picture sizes the codec benchmarks run at.
var codecSizes = []struct {
	name string
	w, h int
}{{"720p", 1280, 720}, {"1080p", 1920, 1080}}

// codecBenchClip generates the benchmarks' input: 2 s of testsrc2 at 25 fps
// (H.264, with a sine tone), once per size and benchmark.
func codecBenchClip(b *testing.B, w, h int) string {
	b.Helper()
	return testmedia.Clip(b, testmedia.ClipOptions{Width: w, Height: h, FPS: 25, Duration: 2 * time.Second, Audio: true})
}

// BenchmarkDecode measures decoding into codec.Frame (yuv420p, pooled).
func BenchmarkDecode(b *testing.B) {
	for _, s := range codecSizes {
		clip := codecBenchClip(b, s.w, s.h)
		b.Run(s.name, func(b *testing.B) {
			frames := 0
			start := time.Now()
			for i := 0; i < b.N; i++ {
				frames += decodeAllFrames(b, clip, func(*codec.Frame) {})
			}
			b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "fps")
		})
	}
}

// BenchmarkDecodeToRGB measures decoding plus scaling each frame to a
// 1024x576 planar RGB model input with codec.RGBScaler.
func BenchmarkDecodeToRGB(b *testing.B) {
	for _, s := range codecSizes {
		clip := codecBenchClip(b, s.w, s.h)
		b.Run(s.name, func(b *testing.B) {
			sc, err := codec.NewRGBScaler(s.w, s.h, 1024, 576)
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			rgb := make([]byte, 3*1024*576)
			frames := 0
			start := time.Now()
			for i := 0; i < b.N; i++ {
				frames += decodeAllFrames(b, clip, func(f *codec.Frame) {
					if err := sc.Scale(f, rgb); err != nil {
						b.Fatal(err)
					}
				})
			}
			b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "fps")
		})
	}
}

// BenchmarkRGBScaler measures codec.RGBScaler alone, from a decoded frame
// of each size to ISNet's 1024x1024 input.
func BenchmarkRGBScaler(b *testing.B) {
	for _, s := range codecSizes {
		clip := codecBenchClip(b, s.w, s.h)
		b.Run(s.name, func(b *testing.B) {
			d, err := codec.OpenDecoder(clip, codec.DecoderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			f, err := d.Next(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer f.Release()
			sc, err := codec.NewRGBScaler(s.w, s.h, 1024, 1024)
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			rgb := make([]byte, 3*1024*1024)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := sc.Scale(f, rgb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
		})
	}
}

// BenchmarkGrayScaler measures scaling a 1024x1024 matte up to each size.
func BenchmarkGrayScaler(b *testing.B) {
	for _, s := range codecSizes {
		b.Run(s.name, func(b *testing.B) {
			sc, err := codec.NewGrayScaler(1024, 1024, s.w, s.h)
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			src := make([]byte, 1024*1024)
			codecBenchMatte(src, 1024, 1024, 0)
			dst := make([]byte, s.w*s.h)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := sc.Scale(src, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
		})
	}
}

// BenchmarkEncode measures each output format's encoder: the input's
// frames are decoded beforehand and held, then written with a moving matte
// (and, for mp4, over a colour background) and the file closed. Audio is
// left out: this is the video path.
func BenchmarkEncode(b *testing.B) {
	formats := append([]vidmatte.OutputFormat(nil), vidmatte.OutputFormats...)
	for _, s := range codecSizes {
		clip := codecBenchClip(b, s.w, s.h)
		d, err := codec.OpenDecoder(clip, codec.DecoderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var frames []*codec.Frame
		for {
			f, err := d.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			frames = append(frames, f)
		}
		tb, rate := d.TimeBase(), d.Info().FrameRate
		d.Close()
		mattes := make([][]byte, 8)
		for i := range mattes {
			mattes[i] = make([]byte, s.w*s.h)
			codecBenchMatte(mattes[i], s.w, s.h, i)
		}
		for _, f := range formats {
			b.Run(fmt.Sprintf("%s/%s", f, s.name), func(b *testing.B) {
				opts := codec.EncoderOptions{Format: f, Width: s.w, Height: s.h, TimeBase: tb, FrameRate: rate}
				if f == vidmatte.FormatMP4 {
					opts.Background = vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &[3]float64{0, 0.7, 0.3}}
				}
				written := 0
				start := time.Now()
				for i := 0; i < b.N; i++ {
					e, err := codec.NewEncoder(filepath.Join(b.TempDir(), "out"+f.Extension()), opts)
					if err != nil {
						b.Fatal(err)
					}
					for j, fr := range frames {
						if err := e.WriteFrame(fr, mattes[j%len(mattes)]); err != nil {
							b.Fatal(err)
						}
					}
					if err := e.Close(); err != nil {
						b.Fatal(err)
					}
					written += len(frames)
				}
				b.ReportMetric(float64(written)/time.Since(start).Seconds(), "fps")
			})
		}
		for _, fr := range frames {
			fr.Release()
		}
	}
}

// BenchmarkDecodeEncodeWebM measures the fast path without a model:
// decode, attach a matte, encode VP9 with alpha, one goroutine.
func BenchmarkDecodeEncodeWebM(b *testing.B) {
	for _, s := range codecSizes {
		clip := codecBenchClip(b, s.w, s.h)
		matte := make([]byte, s.w*s.h)
		codecBenchMatte(matte, s.w, s.h, 0)
		b.Run(s.name, func(b *testing.B) {
			frames := 0
			start := time.Now()
			for i := 0; i < b.N; i++ {
				d, err := codec.OpenDecoder(clip, codec.DecoderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				e, err := codec.NewEncoder(filepath.Join(b.TempDir(), "out.webm"), codec.EncoderOptions{
					Format: vidmatte.FormatWebM, Width: s.w, Height: s.h, TimeBase: d.TimeBase(), FrameRate: d.Info().FrameRate, AudioFrom: clip})
				if err != nil {
					b.Fatal(err)
				}
				for {
					f, err := d.Next(context.Background())
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					err = e.WriteFrame(f, matte)
					f.Release()
					if err != nil {
						b.Fatal(err)
					}
					frames++
				}
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
			b.ReportMetric(float64(frames)/time.Since(start).Seconds(), "fps")
		})
	}
}

// decodeAllFrames decodes a file, calling use on each frame before
// releasing it, and returns the number of frames.
func decodeAllFrames(b *testing.B, path string, use func(*codec.Frame)) int {
	b.Helper()
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	n := 0
	for {
		f, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		use(f)
		f.Release()
		n++
	}
}

// codecBenchMatte draws a soft-edged disc, placed by i, as a matte.
func codecBenchMatte(dst []byte, w, h, i int) {
	cx, cy := float64(w)*(0.3+0.05*float64(i)), float64(h)*0.55
	r := float64(h) * 0.3
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 255 * (1 - (math.Hypot(float64(x)-cx, float64(y)-cy)-r)/4)
			dst[y*w+x] = byte(math.Max(0, math.Min(255, v)))
		}
	}
}
