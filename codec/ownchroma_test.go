package codec_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"

	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// firstFrame decodes the first frame of a generated clip of w×h.
func firstFrame(t testing.TB, w, h int) *codec.Frame {
	t.Helper()
	return firstFrameOf(t, testmedia.Clip(t, testmedia.ClipOptions{Width: w, Height: h, Duration: 200 * time.Millisecond}))
}

func firstFrameOf(t testing.TB, path string) *codec.Frame {
	t.Helper()
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func planeRows(f *codec.Frame, i int) [][]byte {
	p, s := f.Plane(i)
	w, h := f.Width(), f.Height()
	if i > 0 {
		w, h = (w+1)/2, (h+1)/2
	}
	rows := make([][]byte, h)
	for y := range rows {
		rows[y] = append([]byte(nil), p[y*s:y*s+w]...)
	}
	return rows
}

func sameRows(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// OwnChroma on a frame shared with another reference: the chroma written
// afterwards shows in this frame only, the other keeps its own, Y is the
// same memory in both (not copied), a second call on the now unshared
// planes moves nothing, and both frames release once each.
func TestOwnChromaLeavesOtherReferencesAlone(t *testing.T) {
	base := codec.LiveFrames()
	f := firstFrame(t, 66, 50) // chroma planes of odd sizes, 33×25
	g, err := f.Ref()
	if err != nil {
		t.Fatal(err)
	}
	y0, _ := f.Plane(0)
	u0 := planeRows(f, 1)
	v0 := planeRows(f, 2)
	if err := f.OwnChroma(); err != nil {
		t.Fatal(err)
	}
	y1, _ := f.Plane(0)
	if &y1[0] != &y0[0] {
		t.Error("OwnChroma moved the Y plane")
	}
	if gy, _ := g.Plane(0); &gy[0] != &y0[0] {
		t.Error("the other reference's Y plane moved")
	}
	for i := 1; i <= 2; i++ {
		p, s := f.Plane(i)
		if gp, _ := g.Plane(i); &gp[0] == &p[0] {
			t.Fatalf("plane %d is still shared after OwnChroma", i)
		}
		for y := 0; y < 25; y++ {
			for x := 0; x < 33; x++ {
				p[y*s+x] = byte(i*40 + x + y)
			}
		}
	}
	if !sameRows(planeRows(g, 1), u0) || !sameRows(planeRows(g, 2), v0) {
		t.Error("writing the owned chroma changed the other reference's")
	}
	u1, _ := f.Plane(1)
	if err := f.OwnChroma(); err != nil {
		t.Fatal(err)
	}
	if u2, _ := f.Plane(1); &u2[0] != &u1[0] {
		t.Error("OwnChroma moved planes that were already the frame's own")
	}
	if r := planeRows(f, 2); r[3][5] != 80+8 {
		t.Errorf("V[3][5] = %d after a second OwnChroma, want %d", r[3][5], 88)
	}
	f.Release()
	g.Release()
	f.Release()
	if got := codec.LiveFrames() - base; got != 0 {
		t.Fatalf("LiveFrames counts %d after releasing both", got)
	}
	if err := f.OwnChroma(); err == nil {
		t.Error("OwnChroma on a released frame did not fail")
	}
	if _, err := f.Ref(); err == nil {
		t.Error("Ref of a released frame did not fail")
	}
}

// A frame whose chroma was replaced goes through the encoder like any
// other: the output decodes to the chroma written.
func TestOwnChromaFrameEncodes(t *testing.T) {
	f := firstFrame(t, 64, 48)
	defer f.Release()
	if err := f.OwnChroma(); err != nil {
		t.Fatal(err)
	}
	for i, val := range []byte{200, 60} {
		p, s := f.Plane(i + 1)
		for y := 0; y < 24; y++ {
			for x := 0; x < 32; x++ {
				p[y*s+x] = val
			}
		}
	}
	path := filepath.Join(t.TempDir(), "out.webm")
	e, err := codec.NewEncoder(path, codec.EncoderOptions{Format: vidmatte.FormatWebM, Width: 64, Height: 48, TimeBase: codec.Rational{Num: 1, Den: 25}, FrameRate: codec.Rational{Num: 25, Den: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFrame(f, bytes.Repeat([]byte{255}, 64*48)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	g := firstFrameOf(t, path)
	defer g.Release()
	for i, want := range []int{200, 60} {
		sum := 0
		for _, r := range planeRows(g, i+1) {
			for _, v := range r {
				sum += int(v)
			}
		}
		if mean := sum / (32 * 24); mean < want-4 || mean > want+4 {
			t.Errorf("plane %d decodes to a mean of %d, want %d", i+1, mean, want)
		}
	}
}
