package engine

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// planeCheckingSink checks that every frame reaches the encoder with its
// alpha plane attached and writable until it is written, read-only after;
// and counts the planes out of their pools at the most.
type planeCheckingSink struct {
	sink
	t      *testing.T
	n      int
	peak   int64
	cancel func() // called after cancelAfter frames, when set
	after  int
}

func (s *planeCheckingSink) WriteFrame(f *codec.Frame, alpha []byte) error {
	s.n++
	if alpha != nil || !f.HasAlpha() {
		s.t.Errorf("frame %d: alpha bytes %v, plane attached %v: want the plane only", s.n, alpha != nil, f.HasAlpha())
	}
	if p, _ := f.Alpha(); p == nil {
		s.t.Errorf("frame %d: its plane is not writable before it is written", s.n)
	}
	err := s.sink.WriteFrame(f, alpha)
	if p, _ := f.Alpha(); err == nil && p != nil {
		s.t.Errorf("frame %d: its plane is still handed out for writing after the encoder took it", s.n)
	}
	s.peak = max(s.peak, codec.LiveAlphaPlanes())
	if s.cancel != nil && s.n == s.after {
		s.cancel()
	}
	return err
}

// The pipeline hands each frame's alpha plane to the encoder attached to
// the frame, never as a copy, and the planes out at any time stay bounded
// by the stages' depths (not the video's length). Run to the end, failed or
// canceled, every plane comes back to its pool and every pool's memory is
// freed (checkNoLeaks), with the temporal filter holding a frame (chroma,
// smoothing on) and with the RVM path that copies the frame before
// attaching (a recurrent model with a foreground).
func TestAlphaPlanesGoToTheEncoderAttached(t *testing.T) {
	reg := rvmTestRegistry(t)
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 150, Height: 100, FPS: 25, Duration: 2 * time.Second})
	for _, model := range []string{"chroma", "rvm-test"} {
		for _, end := range []string{"complete", "cancel", "fail"} {
			t.Run(model+"/"+end, func(t *testing.T) {
				checkNoLeaks(t)
				e := newEngineWith(t, reg, 2)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var sk atomic.Pointer[planeCheckingSink]
				open := e.openSink
				e.openSink = func(p string, o codec.EncoderOptions) (sink, error) {
					s, err := open(p, o)
					if err != nil {
						return nil, err
					}
					c := &planeCheckingSink{sink: s, t: t}
					switch end {
					case "cancel":
						c.cancel, c.after = cancel, 20
					case "fail":
						c.sink = &failingSink{sink: s, after: 20}
					}
					sk.Store(c)
					return c, nil
				}
				out := filepath.Join(t.TempDir(), "out.webm")
				res, err := e.Process(ctx, Request{Input: in, Output: out, Model: model, Smoothing: SmoothOn})
				s := sk.Load()
				switch end {
				case "complete":
					if err != nil {
						t.Fatal(err)
					}
					if res.Frames != 50 || s.n != 50 {
						t.Fatalf("%d frames processed, %d written, want 50", res.Frames, s.n)
					}
				case "cancel":
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("got %v, want context.Canceled", err)
					}
				case "fail":
					if err == nil || vidmatte.ErrorCode(err) == "" {
						t.Fatalf("got %v, want the sink's failure", err)
					}
				}
				// Planes: the refined queue's, the encoder's and the one it
				// holds back, the temporal filter's and the one refined.
				if limit := int64(refinedDepth + 4); s.peak > limit {
					t.Errorf("%d alpha planes out at once, want at most %d", s.peak, limit)
				}
				t.Logf("%d frames written, at most %d alpha planes out", s.n, s.peak)
			})
		}
	}
}
