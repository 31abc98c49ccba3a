package codec_test

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
)

// decoded is what decodeAll learns about a file's frames.
type decoded struct {
	info   *codec.Info
	tb     codec.Rational
	count  int
	times  []time.Duration
	pts    []int64
	width  int
	height int
	err    error // what ended decoding: nil for io.EOF
}

// decodeAll decodes every frame of path, checking each one's size, and
// releases them.
func decodeAll(t *testing.T, path string) decoded {
	t.Helper()
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatalf("OpenDecoder(%s): %v", filepath.Base(path), err)
	}
	defer d.Close()
	out := decoded{info: d.Info(), tb: d.TimeBase()}
	for {
		f, err := d.Next(context.Background())
		if err != nil {
			if !errors.Is(err, io.EOF) {
				out.err = err
			}
			return out
		}
		if out.count == 0 {
			out.width, out.height = f.Width(), f.Height()
		} else if f.Width() != out.width || f.Height() != out.height {
			t.Errorf("frame %d is %dx%d, the first was %dx%d", out.count, f.Width(), f.Height(), out.width, out.height)
		}
		out.count++
		out.times = append(out.times, f.Time())
		out.pts = append(out.pts, f.PTS())
		f.Release()
	}
}

// alphaPattern draws frame i's test matte: a horizontal ramp on the left
// sixth, a soft-edged disc that moves right frame by frame, a hard-edged
// square that moves down, and transparency elsewhere.
func alphaPattern(dst []byte, w, h, i int) {
	cx, cy := float64(w)*(0.35+0.01*float64(i)), float64(h)/2
	r := float64(h) / 4
	sq := h / 6
	sx, sy := w*3/4, (h/8+2*i)%(h-sq)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var v float64
			switch {
			case x < w/6:
				v = float64(x) * 255 / float64(w/6)
			case x >= sx && x < sx+sq && y >= sy && y < sy+sq:
				v = 255
			default:
				d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
				v = 255 * (1 - (d-r)/6)
			}
			dst[y*w+x] = byte(math.Max(0, math.Min(255, math.Round(v))))
		}
	}
}

// alphaError compares mattes: mean absolute and largest error.
func alphaError(want, got []byte) (mae float64, maxErr int) {
	var sum float64
	for i := range want {
		e := int(want[i]) - int(got[i])
		if e < 0 {
			e = -e
		}
		sum += float64(e)
		maxErr = max(maxErr, e)
	}
	return sum / float64(len(want)), maxErr
}

// transcode decodes src and encodes it with opts (Width, Height, TimeBase
// and FrameRate are filled in from the decoder), writing alphaPattern as
// the matte through one reused buffer, and returns the output path and the
// mattes written.
func transcode(t *testing.T, src string, opts codec.EncoderOptions) (string, [][]byte) {
	t.Helper()
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatalf("OpenDecoder: %v", err)
	}
	defer d.Close()
	info := d.Info()
	opts.Width, opts.Height = info.Width, info.Height
	opts.TimeBase, opts.FrameRate = d.TimeBase(), info.FrameRate
	out := filepath.Join(t.TempDir(), "out"+opts.Format.Extension())
	e, err := codec.NewEncoder(out, opts)
	if err != nil {
		t.Fatalf("NewEncoder(%s): %v", opts.Format, err)
	}
	alpha := make([]byte, info.Width*info.Height)
	var written [][]byte
	for i := 0; ; i++ {
		f, err := d.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e.Abort()
			t.Fatalf("Next: %v", err)
		}
		alphaPattern(alpha, info.Width, info.Height, i)
		written = append(written, append([]byte(nil), alpha...))
		err = e.WriteFrame(f, alpha)
		// The encoder keeps its own references: release and scribble at once.
		f.Release()
		for j := range alpha {
			alpha[j] = 0x5A
		}
		if err != nil {
			e.Abort()
			t.Fatalf("WriteFrame(%s) %d: %v", opts.Format, i, err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close(%s): %v", opts.Format, err)
	}
	return out, written
}

// frameDur is one frame at rate r.
func frameDur(r codec.Rational) time.Duration {
	if !r.Valid() {
		return 40 * time.Millisecond
	}
	return time.Duration(float64(time.Second) / r.Float64())
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// wantCode checks err's sentinel and vocabulary code.
func wantCode(t *testing.T, err error, sentinel error, code vidmatte.Code) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v is not %v", err, sentinel)
	}
	if got := vidmatte.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %s, want %s", err, got, code)
	}
	if msg := vidmatte.ErrorMessage(err); msg == "" || msg == "internal error" {
		t.Fatalf("error %v has no client message", err)
	}
}
