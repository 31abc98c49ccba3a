package codec

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// At the realtime deadline the VP9 encoder keeps no lookahead: each frame
// given to libvpx comes back as a packet at once (durations lists the
// frames given whose packets are still to come; the Encoder's own pending
// frame, held until the next one tells its duration, is not one). At the
// "good" deadline libvpx's lookahead holds frames back, which shows the
// count sees it.
func TestRealtimeWebMHoldsNoFramesBack(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, Duration: 2 * time.Second})
	for _, c := range []struct {
		deadline string
		most     int // frames held in the encoder at most
	}{
		{"realtime", 0},
		{"good", 1 << 30},
	} {
		t.Run(c.deadline, func(t *testing.T) {
			d, err := OpenDecoder(path, DecoderOptions{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			info := d.Info()
			e, err := NewEncoder(filepath.Join(t.TempDir(), "out.webm"), EncoderOptions{
				Format: vidmatte.FormatWebM, Width: info.Width, Height: info.Height, TimeBase: d.TimeBase(),
				Settings: EncoderSettings{VP9Deadline: c.deadline, Threads: 1},
			})
			if err != nil {
				t.Fatal(err)
			}
			alpha := make([]byte, info.Width*info.Height)
			held := 0
			for {
				f, err := d.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					e.Abort()
					t.Fatal(err)
				}
				err = e.WriteFrame(f, alpha)
				f.Release()
				if err != nil {
					e.Abort()
					t.Fatal(err)
				}
				held = max(held, len(e.durations))
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: at most %d frames held", c.deadline, held)
			if c.deadline == "realtime" && held > c.most {
				t.Errorf("the realtime encoder held up to %d frames back, want at most %d", held, c.most)
			}
			if c.deadline == "good" && held < 2 {
				t.Errorf("the good-deadline encoder held at most %d frames: the count does not see a lookahead", held)
			}
		})
	}
}
