package engine

import (
	"context"
	"testing"
	"time"

	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// BenchmarkWriteChroma measures the chroma keyer's write of its corrected
// U and V into a decoded 1080p frame that is shared (as the decoder's
// frames are, with its reference pictures), per frame: "makewritable"
// copies the whole picture first (the way it was done), "ownchroma"
// replaces only the two chroma planes (the way refineOne does it).
func BenchmarkWriteChroma(b *testing.B) {
	const w, h = 1920, 1080
	path := testmedia.Clip(b, testmedia.ClipOptions{Width: w, Height: h, Duration: 200 * time.Millisecond})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := d.Next(context.Background())
	d.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	cw, ch := (w+1)/2, (h+1)/2
	fg := make([]byte, 2*cw*ch)
	for i := range fg {
		fg[i] = byte(i % 251)
	}
	for _, c := range []struct {
		name string
		own  func(*codec.Frame) error
	}{
		{"makewritable", (*codec.Frame).MakeWritable},
		{"ownchroma", (*codec.Frame).OwnChroma},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(w * h * 3 / 2))
			for b.Loop() {
				f, err := src.Ref()
				if err != nil {
					b.Fatal(err)
				}
				if err := c.own(f); err != nil {
					b.Fatal(err)
				}
				writeChroma(f, fg, cw, ch)
				f.Release()
			}
		})
	}
	if u, _ := src.Plane(1); u == nil {
		b.Fatal("the shared frame lost its planes")
	}
}
