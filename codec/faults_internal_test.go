package codec

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// watchComplete makes complete report the most video packets it read;
// onPacket, when set, sees each count.
func watchComplete(t *testing.T, onPacket func(n int64)) *int64 {
	t.Helper()
	var most int64
	completeHook = func(n int64) {
		most = max(most, n)
		if onPacket != nil {
			onPacket(n)
		}
	}
	t.Cleanup(func() { completeHook = nil })
	return &most
}

// Where the container declares the duration and the rate is constant, the
// frame count is duration × rate: exact, and read from the first
// vfrScanPackets packets only. A variable rate is still counted in full.
func TestFrameCountEstimated(t *testing.T) {
	for _, c := range []struct {
		name string
		opts testmedia.ClipOptions
	}{
		{"mkv", testmedia.ClipOptions{Container: "mkv", Audio: true}},
		{"webm", testmedia.ClipOptions{Container: "webm"}},
		{"avi", testmedia.ClipOptions{Container: "avi"}},
		{"mpegts", testmedia.ClipOptions{Container: "ts", Audio: true}},
		{"vfr mkv", testmedia.ClipOptions{Container: "mkv", VFR: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Width, c.opts.Height, c.opts.Duration = 64, 48, 30*time.Second
			if c.opts.VFR {
				c.opts.Duration = 45 * time.Second // about a third of the frames are dropped
			}
			path := testmedia.Clip(t, c.opts)
			frames, _, _ := testmedia.Probe(t, path)
			if frames <= vfrScanPackets {
				t.Fatalf("the clip has %d frames, not more than the %d scanned", frames, vfrScanPackets)
			}
			most := watchComplete(t, nil)
			info, err := Probe(path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if info.FrameCount != int64(frames) {
				t.Errorf("FrameCount %d, ffprobe counts %d", info.FrameCount, frames)
			}
			if info.VariableFrameRate != c.opts.VFR {
				t.Errorf("VariableFrameRate %v, want %v", info.VariableFrameRate, c.opts.VFR)
			}
			if c.opts.VFR {
				if *most != int64(frames) {
					t.Errorf("read %d video packets of a variable-rate file, want all %d", *most, frames)
				}
			} else if *most > vfrScanPackets {
				t.Errorf("read %d video packets, want at most %d", *most, vfrScanPackets)
			}
			t.Logf("%s: %d frames, %d packets read", c.name, info.FrameCount, *most)
		})
	}
}

// A context canceled while the packets are counted stops the reading
// within the demuxer's buffer, not at the end of the file.
func TestProbeInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.h264")
	testmedia.FFmpeg(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=30", "-c:v", "libx264", "-preset", "veryfast", "-f", "h264", path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two inputs are open while complete counts: the probe's and the
	// counting one. The hook waits until the cancel has raised both
	// flags (context.AfterFunc raises them on its own goroutine).
	raised := make(chan struct{}, 2)
	interruptHook = func() { raised <- struct{}{} }
	t.Cleanup(func() { interruptHook = nil })
	most := watchComplete(t, func(n int64) {
		if n == 10 {
			cancel()
			<-raised
			<-raised
		}
	})
	_, err := ProbeContext(ctx, path)
	if !errors.Is(err, context.Canceled) || vidmatte.ErrorCode(err) != vidmatte.CodeCanceled {
		t.Fatalf("ProbeContext: %v (code %s), want canceled", err, vidmatte.ErrorCode(err))
	}
	if *most >= 375 {
		t.Errorf("read %d of 750 packets after the cancel at 10", *most)
	}
	t.Logf("stopped after %d packets", *most)
}

// faultyDecoder wraps a real audio decoder: it refuses every other packet
// once with EAGAIN, or fails every frame.
type faultyDecoder struct {
	real       audioDecoder
	eagain     bool
	failFrames bool
	sends      int
	receives   int
}

func (d *faultyDecoder) SendPacket(p *astiav.Packet) error {
	d.sends++
	if d.eagain && p != nil && d.sends%3 == 1 {
		return astiav.ErrEagain
	}
	return d.real.SendPacket(p)
}

func (d *faultyDecoder) ReceiveFrame(f *astiav.Frame) error {
	d.receives++
	if d.failFrames {
		if d.receives > 1000 {
			// Far past any sane retry: end the loop so the test can fail.
			return astiav.ErrEagain
		}
		return astiav.ErrInvaliddata
	}
	return d.real.ReceiveFrame(f)
}

// transcodeAudio carries the audio of src into Opus through an audio track
// whose decoder wrap returns, and counts the samples written.
func transcodeAudio(t *testing.T, src string, wrap func(audioDecoder) audioDecoder) (int64, error) {
	t.Helper()
	ofc, err := astiav.AllocOutputFormatContext(nil, "webm", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ofc.Free()
	a, err := openAudio(src, vidmatte.FormatWebM, ofc, EncoderSettings{}.withDefaults(vidmatte.FormatWebM))
	if err != nil || a == nil || a.copy {
		t.Fatalf("openAudio: %v (%v)", err, a)
	}
	defer a.close()
	a.decoder = wrap(a.decoder)
	var samples int64
	write := func(p *astiav.Packet, _ *astiav.Stream, from astiav.Rational) error {
		samples += astiav.RescaleQ(p.Duration(), from, astiav.NewRational(1, 48000))
		p.Unref()
		return nil
	}
	err = a.finish(write)
	return samples, err
}

func TestAudioPacketRefusedIsNotLost(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, Duration: 2 * time.Second, Audio: true})
	clean, err := transcodeAudio(t, src, func(d audioDecoder) audioDecoder { return d })
	if err != nil {
		t.Fatal(err)
	}
	var fd *faultyDecoder
	flaky, err := transcodeAudio(t, src, func(d audioDecoder) audioDecoder {
		fd = &faultyDecoder{real: d, eagain: true}
		return fd
	})
	if err != nil {
		t.Fatal(err)
	}
	if clean < 90000 || flaky != clean {
		t.Errorf("%d samples with refused packets, %d without; want the same, about 96000", flaky, clean)
	}
	t.Logf("%d samples; %d sends", clean, fd.sends)
}

func TestAudioPersistentDecodeError(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, Duration: time.Second, Audio: true})
	var fd *faultyDecoder
	_, err := transcodeAudio(t, src, func(d audioDecoder) audioDecoder {
		fd = &faultyDecoder{real: d, failFrames: true}
		return fd
	})
	if vidmatte.ErrorCode(err) != vidmatte.CodeUnprocessable || !errors.Is(err, astiav.ErrInvaliddata) {
		t.Fatalf("persistent decoder error gave %v (code %s), want unprocessable", err, vidmatte.ErrorCode(err))
	}
	if fd.receives > maxAudioErrors {
		t.Errorf("%d frames asked for, want at most %d", fd.receives, maxAudioErrors)
	}
}
