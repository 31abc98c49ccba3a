package codec_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

func TestMain(m *testing.M) {
	// Every plane an encoder references is read-only while it does: a
	// write to a passed plane anywhere in these tests faults.
	codec.GuardAlphaPlanes(true)
	os.Exit(m.Run())
}

// fillAlpha writes frame i's pattern into a plane (rows of stride s) and
// returns it tightly packed.
func fillAlpha(p []byte, s, w, h, i int) []byte {
	packed := make([]byte, w*h)
	alphaPattern(packed, w, h, i)
	for y := range h {
		copy(p[y*s:y*s+w], packed[y*w:(y+1)*w])
		for x := w; x < s; x++ {
			p[y*s+x] = 0xEE // padding: never part of the picture
		}
	}
	return packed
}

// Planes from an AlphaPool go to the encoder attached to their frames:
// the encoder references them (a plane stays out of its pool after the
// frame is released, until the encoder has done with it), nothing is
// copied, and what comes out is exactly what was written. Every plane is
// back once the encoder is closed.
func TestAttachedAlphaIsReferenced(t *testing.T) {
	const w, h = 90, 60 // a stride (128) wider than the picture
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: w, Height: h, FPS: 10, Duration: time.Second})
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pool, err := codec.NewAlphaPool(w, h)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	base := codec.LiveAlphaPlanes()
	out := filepath.Join(t.TempDir(), "out.zip")
	e, err := codec.NewEncoder(out, codec.EncoderOptions{Format: vidmatte.FormatPNGSequence, Width: w, Height: h,
		TimeBase: d.TimeBase(), FrameRate: d.Info().FrameRate})
	if err != nil {
		t.Fatal(err)
	}
	var written [][]byte
	for i := 0; ; i++ {
		f, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a, err := pool.Get()
		if err != nil {
			t.Fatal(err)
		}
		p, s := a.Plane()
		if s != codec.AlphaStride(w) || s != 128 {
			t.Fatalf("stride %d, want %d", s, codec.AlphaStride(w))
		}
		written = append(written, fillAlpha(p, s, w, h, i))
		if err := f.AttachAlpha(a); err != nil {
			t.Fatal(err)
		}
		if got, gs := f.Alpha(); &got[0] != &p[0] || gs != s {
			t.Fatal("the frame's alpha plane is not the one attached")
		}
		if err := e.WriteFrame(f, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.Alpha(); got != nil {
			t.Fatal("the frame still hands out its alpha plane for writing after it was passed to the encoder")
		}
		f.Release()
		// The encoder holds the frame back one step (for its duration): its
		// plane is still out, referenced, not copied.
		if n := codec.LiveAlphaPlanes() - base; n < 1 {
			t.Fatalf("frame %d: %d planes out after the frame was released, want the encoder's", i, n)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if n := codec.LiveAlphaPlanes() - base; n != 0 {
		t.Fatalf("%d alpha planes still out after Close", n)
	}
	got := testmedia.ReadAlpha(t, out)
	if len(got) != len(written) {
		t.Fatalf("%d frames read back, %d written", len(got), len(written))
	}
	for i := range got {
		if string(got[i]) != string(written[i]) {
			t.Fatalf("frame %d: the alpha read back differs from the plane written", i)
		}
	}
}

// A plane passed to the encoder is read-only to Go: writing through a
// slice kept from before the pass faults (a panic here, with
// SetPanicOnFault) instead of changing a picture the encoder is still to
// read; once the encoder has released it, its pool hands it out writable
// again. A spent handle panics when used.
func TestWriteAfterPassFaults(t *testing.T) {
	const w, h = 64, 48
	f := firstFrame(t, w, h)
	pool, err := codec.NewAlphaPool(w, h)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	a, err := pool.Get()
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := a.Plane()
	for i := range stale {
		stale[i] = 200
	}
	if err := f.AttachAlpha(a); err != nil {
		t.Fatal(err)
	}
	mustPanic(t, "Plane of an attached handle", func() { a.Plane() })
	mustPanic(t, "Release of an attached handle", a.Release)
	e, err := codec.NewEncoder(filepath.Join(t.TempDir(), "out.webm"), codec.EncoderOptions{Format: vidmatte.FormatWebM,
		Width: w, Height: h, TimeBase: codec.Rational{Num: 1, Den: 25}, FrameRate: codec.Rational{Num: 25, Den: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Abort()
	if err := e.WriteFrame(f, nil); err != nil {
		t.Fatal(err)
	}
	f.Release()
	v := writeFaults(t, stale)
	if v == nil {
		t.Fatal("a write to a plane the encoder holds went through")
	}
	// A fault, at the address written (SetPanicOnFault's errors carry it).
	fault, ok := v.(interface {
		runtime.Error
		Addr() uintptr
	})
	if !ok || fault.Addr() != uintptr(unsafe.Pointer(&stale[len(stale)/2])) {
		t.Fatalf("the write panicked with %v, want a memory fault at the plane", v)
	}
	if stale[0] != 200 {
		t.Fatalf("the passed plane changed to %d", stale[0])
	}
	e.Abort() // the encoder drops the frame it held: the plane is back in the pool
	if n := codec.LiveAlphaPlanes(); n != 0 {
		t.Fatalf("%d alpha planes out after Abort", n)
	}
	b, err := pool.Get()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Plane()
	if v := writeFaults(t, p); v != nil {
		t.Fatalf("a plane back in the pool is still read-only: %v", v)
	}
	b.Release()
	mustPanic(t, "a second Release", b.Release)
}

// writeFaults writes into p and returns what the write panicked with.
func writeFaults(t *testing.T, p []byte) (v any) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { v = recover() }()
	p[len(p)/2] = 7
	return nil
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	fn()
}

// A frame goes to an encoder with its alpha one way: attached, or as
// bytes; a plane must fit the frame; a frame with a plane attached keeps
// its chroma and pixels as they are (MakeWritable and OwnChroma are
// refused: they would move the planes the plane's holder may write).
func TestAttachAlphaRules(t *testing.T) {
	const w, h = 64, 48
	f := firstFrame(t, w, h)
	defer f.Release()
	small, err := codec.NewAlphaPool(w/2, h)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	pool, err := codec.NewAlphaPool(w, h)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	e, err := codec.NewEncoder(filepath.Join(t.TempDir(), "out.webm"), codec.EncoderOptions{Format: vidmatte.FormatWebM,
		Width: w, Height: h, TimeBase: codec.Rational{Num: 1, Den: 25}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Abort()
	if err := e.WriteFrame(f, nil); err == nil {
		t.Error("a frame with no alpha at all was accepted")
	}
	wrong, err := small.Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AttachAlpha(wrong); err == nil {
		t.Error("a plane of another size was attached")
	}
	wrong.Release()
	a, err := pool.Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AttachAlpha(a); err != nil {
		t.Fatal(err)
	}
	b, err := pool.Get()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AttachAlpha(b); err == nil {
		t.Error("a second plane was attached")
	}
	b.Release()
	if err := f.MakeWritable(); err == nil {
		t.Error("MakeWritable with a plane attached")
	}
	if err := f.OwnChroma(); err == nil {
		t.Error("OwnChroma with a plane attached")
	}
	if err := e.WriteFrame(f, make([]byte, w*h)); err == nil {
		t.Error("alpha bytes for a frame with its own plane were accepted")
	}
}
