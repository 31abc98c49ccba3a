package codec_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// BenchmarkWebPFinish measures what joining costs the animated WebP,
// whose parts are lossless intermediates encoded once at the join: the
// whole path (parts written, then joined) against one WebP encode of the
// same frames, on 640×360 at 25 fps, 4 s.
//
//	go test -run '^$' -bench WebPFinish -benchtime 3x ./codec/
func BenchmarkWebPFinish(b *testing.B) {
	src := testmedia.Clip(b, testmedia.ClipOptions{Width: 640, Height: 360, Duration: 4 * time.Second})
	for _, mode := range []string{"continuous", "parts+join"} {
		b.Run(mode, func(b *testing.B) {
			var join time.Duration
			for i := 0; i < b.N; i++ {
				if mode == "continuous" {
					encodeWebPDirect(b, src)
					continue
				}
				f := vidmatte.FormatWebP
				cuts := []int{33, 66} // three parts
				parts, first, _, tb, info := encodeParts(b, src, f, cuts, codec.EncoderOptions{})
				offsets := make([]int64, len(parts))
				for k := range parts {
					offsets[k] = first[k] - first[0]
				}
				t0 := time.Now()
				_, err := codec.Join(context.Background(), filepath.Join(b.TempDir(), "out.webp"), codec.JoinOptions{
					Format: f, Parts: len(parts), Offsets: offsets, TimeBase: tb,
					Part:    func(k int) (string, func(), error) { return parts[k], func() {}, nil },
					Encoder: codec.EncoderOptions{Format: f, Width: info.Width, Height: info.Height, TimeBase: tb, FrameRate: info.FrameRate},
				})
				if err != nil {
					b.Fatal(err)
				}
				join += time.Since(t0)
			}
			if mode != "continuous" {
				b.ReportMetric(join.Seconds()/float64(b.N), "join-s/op")
			}
		})
	}
}

// encodeWebPDirect encodes src's frames with alphaPattern into one WebP.
func encodeWebPDirect(b *testing.B, src string) {
	b.Helper()
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	info := d.Info()
	e, err := codec.NewEncoder(filepath.Join(b.TempDir(), "out.webp"), codec.EncoderOptions{Format: vidmatte.FormatWebP,
		Width: info.Width, Height: info.Height, TimeBase: d.TimeBase(), FrameRate: info.FrameRate})
	if err != nil {
		b.Fatal(err)
	}
	alpha := make([]byte, info.Width*info.Height)
	for i := 0; ; i++ {
		f, err := d.Next(context.Background())
		if err != nil {
			break
		}
		alphaPattern(alpha, info.Width, info.Height, i)
		err = e.WriteFrame(f, alpha)
		f.Release()
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
}
