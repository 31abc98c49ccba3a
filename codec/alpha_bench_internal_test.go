package codec

import (
	"context"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

// BenchmarkAttachAlpha measures what WriteFrame does to put a 1080p frame
// and its alpha into the yuva420p frame the encoder gets, per frame:
// "copy" copies alpha bytes into a buffer of the encoder's pool (alpha
// given as bytes), "attached" references the plane attached to the frame
// (the pipeline's way: an AlphaPool plane taken, attached, referenced and
// given back, as each frame's does). Run with the tests' TestMain, which
// turns the guard on.
func BenchmarkAttachAlpha(b *testing.B) {
	const w, h = 1920, 1080
	path := testmedia.Clip(b, testmedia.ClipOptions{Width: w, Height: h, Duration: 200 * time.Millisecond})
	d, err := OpenDecoder(path, DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := d.Next(context.Background())
	d.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer src.Release()
	stride := AlphaStride(w)
	encPool := newEncoderAlphaPool(w, h)
	defer freeEncoderAlphaPool(encPool)
	planes, err := NewAlphaPool(w, h)
	if err != nil {
		b.Fatal(err)
	}
	defer planes.Close()
	alpha := make([]byte, w*h)
	for i := range alpha {
		alpha[i] = byte(i)
	}
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(w * h)
		for b.Loop() {
			f, err := src.Ref()
			if err != nil {
				b.Fatal(err)
			}
			yuva, err := withAlpha(f, f.avFrame(), alpha, encPool, stride)
			if err != nil {
				b.Fatal(err)
			}
			putShell(yuva)
			f.Release()
		}
	})
	// The guard (tests turn it on) adds two mprotect calls a frame: measured
	// apart, off as in production.
	for _, guard := range []bool{false, true} {
		name := "attached"
		if guard {
			name += "+guard"
		}
		b.Run(name, func(b *testing.B) {
			GuardAlphaPlanes(guard)
			defer GuardAlphaPlanes(true)
			b.ReportAllocs()
			for b.Loop() {
				f, err := src.Ref()
				if err != nil {
					b.Fatal(err)
				}
				a, err := planes.Get()
				if err != nil {
					b.Fatal(err)
				}
				if err := f.AttachAlpha(a); err != nil {
					b.Fatal(err)
				}
				yuva, err := withAlpha(f, f.avFrame(), nil, nil, 0)
				if err != nil {
					b.Fatal(err)
				}
				putShell(yuva)
				f.Release()
			}
		})
	}
}
