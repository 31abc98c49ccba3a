package codec_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// encodeParts decodes src and writes its frames into parts cut before the
// frames at cuts (each part a file of its own, as a segment of a job
// makes one), with alphaPattern as the matte. It returns the parts, each
// part's first PTS, the mattes, and the PTS of every frame.
func encodeParts(t testing.TB, src string, f vidmatte.OutputFormat, cuts []int, opts codec.EncoderOptions) (parts []string, first []int64, written [][]byte, tb codec.Rational, info *codec.Info) {
	t.Helper()
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info = d.Info()
	tb = d.TimeBase()
	opts.Format, opts.Width, opts.Height, opts.TimeBase, opts.FrameRate = f, info.Width, info.Height, tb, info.FrameRate
	opts.AudioFrom = ""
	type part interface {
		WriteFrame(*codec.Frame, []byte) error
		Close() error
		Abort()
	}
	var cur part
	open := func() {
		ext := f.Extension()
		if !codec.JoinsByCopy(f) {
			ext = codec.IntermediateExtension
		}
		p := filepath.Join(t.TempDir(), "part"+strconv.Itoa(len(parts))+ext)
		var err error
		if codec.JoinsByCopy(f) {
			cur, err = codec.NewEncoder(p, opts)
		} else {
			cur, err = codec.NewIntermediate(p, info.Width, info.Height, tb, info.FrameRate)
		}
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	alpha := make([]byte, info.Width*info.Height)
	for i := 0; ; i++ {
		fr, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cur == nil || (len(cuts) > 0 && i == cuts[0]) {
			if cur != nil {
				if err := cur.Close(); err != nil {
					t.Fatal(err)
				}
				cuts = cuts[1:]
			}
			open()
			first = append(first, fr.PTS())
		}
		alphaPattern(alpha, info.Width, info.Height, i)
		written = append(written, append([]byte(nil), alpha...))
		err = cur.WriteFrame(fr, alpha)
		fr.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	return parts, first, written, tb, info
}

// Parts joined without re-encoding make one output with every frame, the
// frames' timestamps of a continuous encode, the alpha, and the input's
// audio in sync over the whole duration, in every format.
func TestJoinParts(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Audio: true, Width: 320, Height: 240, Duration: 2 * time.Second})
	srcFrames, _, _ := testmedia.Probe(t, src)
	step := 40 * time.Millisecond
	for _, f := range vidmatte.OutputFormats {
		t.Run(string(f), func(t *testing.T) {
			opts := codec.EncoderOptions{Format: f}
			if f == vidmatte.FormatMP4 {
				opts.Background = opaqueRed
			}
			parts, first, written, tb, info := encodeParts(t, src, f, []int{17, 34}, opts)
			if len(parts) != 3 || len(written) != srcFrames {
				t.Fatalf("%d parts, %d frames of %d", len(parts), len(written), srcFrames)
			}
			offsets := make([]int64, len(parts))
			for i := range parts {
				offsets[i] = first[i] - first[0]
			}
			out := filepath.Join(t.TempDir(), "joined"+f.Extension())
			enc := opts
			enc.Format, enc.Width, enc.Height, enc.TimeBase, enc.FrameRate = f, info.Width, info.Height, tb, info.FrameRate
			start := time.Now()
			n, err := codec.Join(context.Background(), out, codec.JoinOptions{
				Format: f, Parts: len(parts), Offsets: offsets, TimeBase: tb,
				Part:      func(i int) (string, func(), error) { return parts[i], func() {}, nil },
				AudioFrom: src, Origin: first[0], Encoder: enc,
			})
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			t.Logf("%s: joined %d frames in %v", f, n, time.Since(start))
			if n != int64(srcFrames) {
				t.Errorf("Join counted %d frames, want %d", n, srcFrames)
			}
			frames, dur, hasAudio := testmedia.Probe(t, out)
			if frames != srcFrames {
				t.Errorf("joined output has %d frames, want %d", frames, srcFrames)
			}
			carriesAudio := f == vidmatte.FormatWebM || f == vidmatte.FormatMOV || f == vidmatte.FormatMP4 || f == vidmatte.FormatMask
			if hasAudio != carriesAudio {
				t.Errorf("joined output has audio: %v, want %v", hasAudio, carriesAudio)
			}
			if carriesAudio {
				checkSync(t, src, out, step)
			} else if f != vidmatte.FormatPNGSequence && absDur(dur-2*time.Second) > step {
				t.Errorf("joined output lasts %v, want 2s", dur)
			}
			if f != vidmatte.FormatPNGSequence && f != vidmatte.FormatWebP {
				// The frames' times are those of one continuous encode.
				wo := opts
				wo.AudioFrom = src
				whole, _ := transcode(t, src, wo)
				if got, want := decodeAll(t, out).pts, decodeAll(t, whole).pts; !reflect.DeepEqual(got, want) {
					t.Errorf("joined frames' PTS %v, a continuous encode's %v", got, want)
				}
			}
			checkAlpha(t, f, out, written)
		})
	}
	if n := codec.LiveFrames(); n != 0 {
		t.Errorf("%d frames still live", n)
	}
}

// A decoder sought to a frame goes on from the keyframe before it: the
// frames from there on are those of a decode from the start.
func TestDecoderSeekTo(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Duration: 3 * time.Second})
	all := decodeAll(t, src)
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, target := range []int{50, 3, 70} {
		if err := d.SeekTo(all.pts[target]); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for {
			f, err := d.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.PTS() >= all.pts[target] {
				got = append(got, f.PTS())
			} else if f.PTS() < all.pts[0] {
				t.Errorf("a frame at %d before the stream's first %d", f.PTS(), all.pts[0])
			}
			f.Release()
		}
		if !reflect.DeepEqual(got, all.pts[target:]) {
			t.Errorf("after a seek to frame %d: %d frames %v, want %v", target, len(got), got, all.pts[target:])
		}
	}
}
