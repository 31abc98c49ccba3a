package codec_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

func TestProbeAndDecodeContainers(t *testing.T) {
	cases := []struct {
		name      string
		opts      testmedia.ClipOptions
		container string
		audio     string
	}{
		{"mp4", testmedia.ClipOptions{Audio: true}, "mov,mp4,m4a,3gp,3g2,mj2", "aac"},
		{"mov", testmedia.ClipOptions{Container: "mov"}, "mov,mp4,m4a,3gp,3g2,mj2", ""},
		{"mkv", testmedia.ClipOptions{Container: "mkv", Audio: true}, "matroska,webm", "aac"},
		{"webm", testmedia.ClipOptions{Container: "webm", Audio: true}, "matroska,webm", "opus"},
		{"avi", testmedia.ClipOptions{Container: "avi", Audio: true}, "avi", "mp3"},
		{"odd size", testmedia.ClipOptions{Width: 641, Height: 361, Container: "webm", Duration: 400 * time.Millisecond}, "matroska,webm", ""},
		{"yuv444p", testmedia.ClipOptions{Container: "mkv", PixelFormat: "yuv444p", Duration: 400 * time.Millisecond}, "matroska,webm", ""},
		{"10-bit", testmedia.ClipOptions{Container: "mkv", PixelFormat: "yuv420p10le", Duration: 400 * time.Millisecond}, "matroska,webm", ""},
		{"vfr", testmedia.ClipOptions{VFR: true, Audio: true, FPS: 30}, "mov,mp4,m4a,3gp,3g2,mj2", "aac"},
		{"rgb qtrle", testmedia.ClipOptions{Container: "mov", Codec: "qtrle", PixelFormat: "rgb24", Duration: 400 * time.Millisecond}, "mov,mp4,m4a,3gp,3g2,mj2", ""},
		{"full-range mjpeg", testmedia.ClipOptions{Container: "avi", Codec: "mjpeg", PixelFormat: "yuvj420p", Duration: 400 * time.Millisecond}, "avi", ""},
		{"animated gif", testmedia.ClipOptions{Container: "gif", Codec: "gif", PixelFormat: "rgb8", FPS: 10}, "gif", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := testmedia.Clip(t, c.opts)
			wantFrames, wantDur, wantAudio := testmedia.Probe(t, path)
			info, err := codec.Probe(path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			w, h := c.opts.Width, c.opts.Height
			if w == 0 {
				w, h = 320, 240
			}
			if info.Width != w || info.Height != h || info.CodedWidth != w || info.CodedHeight != h {
				t.Errorf("size %dx%d (coded %dx%d), want %dx%d", info.Width, info.Height, info.CodedWidth, info.CodedHeight, w, h)
			}
			if info.Container != c.container {
				t.Errorf("container %q, want %q", info.Container, c.container)
			}
			if info.HasAudio != wantAudio || info.AudioCodec != c.audio {
				t.Errorf("audio %v %q, want %v %q", info.HasAudio, info.AudioCodec, wantAudio, c.audio)
			}
			if info.HasAudio && (info.AudioSampleRate != 48000 || info.AudioChannels != 1) {
				t.Errorf("audio %d Hz, %d channels, want 48000 Hz mono", info.AudioSampleRate, info.AudioChannels)
			}
			if info.FrameCount != int64(wantFrames) {
				t.Errorf("FrameCount %d, ffprobe counts %d", info.FrameCount, wantFrames)
			}
			if info.VariableFrameRate != c.opts.VFR {
				t.Errorf("VariableFrameRate %v, want %v", info.VariableFrameRate, c.opts.VFR)
			}
			if absDur(info.Duration-wantDur) > time.Millisecond {
				t.Errorf("Duration %v, ffprobe says %v", info.Duration, wantDur)
			}
			if info.Size <= 0 || info.VideoCodec == "" || !info.TimeBase.Valid() || !info.FrameRate.Valid() || info.PixelFormat == "" {
				t.Errorf("incomplete info: %+v", info)
			}

			got := decodeAll(t, path)
			if got.err != nil {
				t.Fatalf("decoding ended with %v", got.err)
			}
			if got.count != wantFrames {
				t.Errorf("decoded %d frames, ffprobe counts %d", got.count, wantFrames)
			}
			if got.width != w || got.height != h {
				t.Errorf("frames are %dx%d, want %dx%d", got.width, got.height, w, h)
			}
			for i := 1; i < len(got.pts); i++ {
				if got.pts[i] <= got.pts[i-1] {
					t.Fatalf("PTS not increasing at frame %d: %d after %d", i, got.pts[i], got.pts[i-1])
				}
			}
			if c.opts.VFR {
				// The dropped frames leave gaps of two and three frames.
				step := time.Second / time.Duration(c.opts.FPS)
				longest := time.Duration(0)
				for i := 1; i < len(got.times); i++ {
					longest = max(longest, got.times[i]-got.times[i-1])
				}
				if longest < 2*step-time.Millisecond {
					t.Errorf("largest gap between frames is %v: the variable rate was lost", longest)
				}
			}
		})
	}
	if n := codec.LiveFrames(); n != 0 {
		t.Errorf("%d frames still live", n)
	}
}

func TestRealMedia(t *testing.T) {
	for _, name := range []string{"vtest.avi", "tree.avi", "Megamind.avi"} {
		t.Run(name, func(t *testing.T) {
			path := testmedia.Media(t, name)
			info, err := codec.Probe(path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			frames, _, _ := testmedia.Probe(t, path)
			got := decodeAll(t, path)
			if got.err != nil {
				t.Fatalf("decoding ended with %v", got.err)
			}
			if got.count != frames || got.width != info.Width || got.height != info.Height {
				t.Errorf("decoded %d frames of %dx%d; ffprobe counts %d, Probe says %dx%d", got.count, got.width, got.height, frames, info.Width, info.Height)
			}
		})
	}
}

// upright rotates a w x h plane the way a player shows a picture whose
// display matrix says "turn deg degrees clockwise".
func upright(src []byte, w, h, deg int) (dst []byte, dw, dh int) {
	switch deg {
	case 90, 270:
		dw, dh = h, w
	default:
		dw, dh = w, h
	}
	dst = make([]byte, len(src))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch deg {
			case 90:
				sx, sy = y, h-1-x
			case 180:
				sx, sy = w-1-x, h-1-y
			case 270:
				sx, sy = w-1-y, x
			default:
				sx, sy = x, y
			}
			dst[y*dw+x] = src[sy*w+sx]
		}
	}
	return dst, dw, dh
}

// firstLuma decodes the first frame of path and returns its Y plane,
// tightly packed.
func firstLuma(t *testing.T, path string) ([]byte, int, int) {
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
	defer f.Release()
	y, stride := f.Plane(0)
	w, h := f.Width(), f.Height()
	out := make([]byte, w*h)
	for r := 0; r < h; r++ {
		copy(out[r*w:(r+1)*w], y[r*stride:])
	}
	return out, w, h
}

func TestRotation(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 96, Duration: 200 * time.Millisecond, Lossless: true})
	plain, w, h := firstLuma(t, src)
	for _, deg := range []int{90, 180, 270} {
		t.Run(strconv.Itoa(deg), func(t *testing.T) {
			path := testmedia.Rotate(t, src, deg)
			info, err := codec.Probe(path)
			if err != nil {
				t.Fatal(err)
			}
			want, ww, wh := upright(plain, w, h, deg)
			if info.Rotation != deg || info.Width != ww || info.Height != wh || info.CodedWidth != w || info.CodedHeight != h {
				t.Fatalf("Probe: rotation %d, %dx%d coded %dx%d; want %d, %dx%d coded %dx%d",
					info.Rotation, info.Width, info.Height, info.CodedWidth, info.CodedHeight, deg, ww, wh, w, h)
			}
			got, gw, gh := firstLuma(t, path)
			if gw != ww || gh != wh {
				t.Fatalf("frame is %dx%d, want %dx%d", gw, gh, ww, wh)
			}
			if mae, maxErr := alphaError(want, got); maxErr != 0 {
				t.Fatalf("upright picture differs from the rotated original: mean %.2f, max %d", mae, maxErr)
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	type want struct {
		sentinel error
		code     vidmatte.Code
	}
	expect := map[testmedia.BadKind]want{
		testmedia.BadEmpty:      {codec.ErrEmpty, vidmatte.CodeUnprocessable},
		testmedia.BadText:       {codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia},
		testmedia.BadImage:      {codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia},
		testmedia.BadAudioOnly:  {codec.ErrNoVideo, vidmatte.CodeUnsupportedMedia},
		testmedia.BadTruncated:  {codec.ErrTruncated, vidmatte.CodeUnprocessable},
		testmedia.BadMidFrame:   {codec.ErrTruncated, vidmatte.CodeUnprocessable},
		testmedia.BadDimensions: {codec.ErrDimensions, vidmatte.CodeUnprocessable},
		testmedia.BadGarbage:    {codec.ErrCorrupt, vidmatte.CodeUnprocessable},
	}
	files := testmedia.BadFiles(t)

	// One pass checking every outcome.
	for _, b := range files {
		t.Run(string(b.Kind), func(t *testing.T) {
			_, perr := codec.Probe(b.Path)
			d, oerr := codec.OpenDecoder(b.Path, codec.DecoderOptions{})
			var derr error
			frames := 0
			if oerr == nil {
				for {
					f, err := d.Next(context.Background())
					if err != nil {
						derr = err
						break
					}
					frames++
					f.Release()
				}
				if _, err := d.Next(context.Background()); err != derr {
					t.Errorf("Next after the end gave %v, then %v", derr, err)
				}
				d.Close()
			}
			switch b.Kind {
			case testmedia.BadMidFrame:
				// Probe refuses it; a Decoder reads the frames before the cut.
				wantCode(t, perr, codec.ErrTruncated, vidmatte.CodeUnprocessable)
				if oerr != nil {
					t.Fatalf("OpenDecoder: %v", oerr)
				}
				if frames == 0 {
					t.Errorf("no frame decoded before the cut")
				}
				wantCode(t, derr, codec.ErrTruncated, vidmatte.CodeUnprocessable)
			case testmedia.BadCorruptMiddle:
				if perr != nil || oerr != nil {
					t.Fatalf("Probe: %v, OpenDecoder: %v", perr, oerr)
				}
				if frames == 0 {
					t.Errorf("no frame decoded around the damage")
				}
				if !errors.Is(derr, io.EOF) {
					wantCode(t, derr, codec.ErrCorrupt, vidmatte.CodeUnprocessable)
				}
			default:
				w := expect[b.Kind]
				wantCode(t, perr, w.sentinel, w.code)
				wantCode(t, oerr, w.sentinel, w.code)
			}
		})
	}

	// Many passes (run under -race too) checking nothing leaks: frames,
	// C memory or Go memory.
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	pass := func() {
		for _, b := range files {
			if info, err := codec.Probe(b.Path); err == nil && info == nil {
				t.Fatal("Probe returned neither info nor error")
			}
			d, err := codec.OpenDecoder(b.Path, codec.DecoderOptions{})
			if err != nil {
				continue
			}
			for {
				f, err := d.Next(context.Background())
				if err != nil {
					break
				}
				f.Release()
			}
			d.Close()
		}
	}
	for i := 0; i < 5; i++ {
		pass()
	}
	before := rssKiB(t)
	for i := 0; i < rounds; i++ {
		pass()
	}
	after := rssKiB(t)
	if n := codec.LiveFrames(); n != 0 {
		t.Errorf("%d frames live after the loop", n)
	}
	t.Logf("RSS %d KiB before %d rounds, %d KiB after", before, rounds, after)
	// Each round opens ~20 demuxers and decoders; a leak of even one small
	// C object per open shows as megabytes here.
	if growth := after - before; growth > 8*1024 {
		t.Errorf("RSS grew by %d KiB over %d rounds", growth, rounds)
	}
}

// rssKiB is the resident set size of this process after a collection.
func rssKiB(t *testing.T) int {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", sc.Text(), err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func TestMissingFile(t *testing.T) {
	_, err := codec.Probe("/nonexistent/clip.mp4")
	if !errors.Is(err, os.ErrNotExist) || vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
		t.Fatalf("Probe of a missing file: %v", err)
	}
}

func TestDimensionLimits(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Duration: 200 * time.Millisecond})
	_, err := codec.OpenDecoder(path, codec.DecoderOptions{MaxWidth: 300, MaxHeight: 300})
	wantCode(t, err, codec.ErrDimensions, vidmatte.CodeUnprocessable)
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{MaxWidth: 320, MaxHeight: 240, Threads: 1})
	if err != nil {
		t.Fatalf("a 320x240 clip within a 320x240 limit: %v", err)
	}
	d.Close()
}

func TestNextHonoursContext(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Duration: 200 * time.Millisecond})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := d.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	cancel()
	if _, err := d.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
}

func TestFrameOwnership(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Duration: 200 * time.Millisecond, Width: 64, Height: 48})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := codec.LiveFrames()
	var frames []*codec.Frame
	for {
		f, err := d.Next(context.Background())
		if err != nil {
			break
		}
		frames = append(frames, f)
	}
	if got := codec.LiveFrames() - base; got != int64(len(frames)) {
		t.Fatalf("LiveFrames counts %d, %d were handed out", got, len(frames))
	}
	// Frames outlive their decoder.
	d.Close()
	f := frames[0]
	y, stride := f.Plane(0)
	u, cstride := f.Plane(1)
	if len(y) < stride*48 || stride < 64 || len(u) < cstride*24 || cstride < 32 {
		t.Fatalf("planes of %d/%d and %d/%d bytes for a 64x48 frame", len(y), stride, len(u), cstride)
	}
	if err := f.MakeWritable(); err != nil {
		t.Fatal(err)
	}
	y, stride = f.Plane(0)
	y[0], y[stride*47+63] = 7, 9
	if y2, _ := f.Plane(0); y2[0] != 7 || y2[stride*47+63] != 9 {
		t.Fatal("writes through Plane after MakeWritable did not stick")
	}
	for _, fr := range frames {
		fr.Release()
	}
	frames[0].Release() // a second release does nothing
	if got := codec.LiveFrames() - base; got != 0 {
		t.Fatalf("LiveFrames counts %d after releasing everything", got)
	}
	if p, _ := f.Plane(0); p != nil {
		t.Fatal("Plane of a released frame is not nil")
	}
}

func TestSizeChangeMidStream(t *testing.T) {
	// Two MPEG-TS clips of different sizes, one after the other: the
	// decoder meets a new picture size halfway.
	a := testmedia.Clip(t, testmedia.ClipOptions{Container: "ts", Width: 320, Height: 240, Duration: 400 * time.Millisecond})
	b := testmedia.Clip(t, testmedia.ClipOptions{Container: "ts", Width: 160, Height: 96, Duration: 400 * time.Millisecond})
	ab := filepath.Join(t.TempDir(), "ab.ts")
	var joined []byte
	for _, p := range []string{a, b} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, data...)
	}
	if err := os.WriteFile(ab, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	frames, _, _ := testmedia.Probe(t, ab)
	got := decodeAll(t, ab) // checks every frame has the first one's size
	if got.err != nil || got.count != frames || got.width != 320 || got.height != 240 {
		t.Fatalf("%d frames of %dx%d (%v); want %d of 320x240", got.count, got.width, got.height, got.err, frames)
	}
}
