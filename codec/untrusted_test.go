package codec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
)

// rawStream writes a 2 s, 25 fps clip as the named raw or live format and
// returns its path: "h264" and "hevc" elementary streams, or a
// MediaRecorder-style live WebM (written to a pipe, so no duration and no
// cues).
func rawStream(t *testing.T, kind string) string {
	t.Helper()
	src := []string{"-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2"}
	path := filepath.Join(t.TempDir(), "stream."+kind)
	switch kind {
	case "h264":
		testmedia.FFmpeg(t, append(src, "-c:v", "libx264", "-preset", "veryfast", "-f", "h264", path)...)
	case "hevc":
		testmedia.FFmpeg(t, append(src, "-c:v", "libx265", "-x265-params", "log-level=error", "-f", "hevc", path)...)
	case "webm":
		args := append(src, "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=2",
			"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-f", "webm", "-live", "1", "pipe:1")
		var out bytes.Buffer
		cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-nostdin"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no raw stream %q", kind)
	}
	return path
}

// A container that declares no duration gets one from its packets, and a
// raw H.264 stream (whose stream has no metadata dictionary) is probed
// without a panic.
func TestUndeclaredDuration(t *testing.T) {
	for _, c := range []struct{ kind, container string }{
		{"h264", "h264"}, {"hevc", "hevc"}, {"webm", "matroska,webm"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			path := rawStream(t, c.kind)
			frames, declared, _ := testmedia.Probe(t, path)
			if declared != 0 || frames != 50 {
				t.Fatalf("ffprobe: %d frames, duration %v; the fixture must declare no duration and hold 50 frames", frames, declared)
			}
			info, err := codec.Probe(path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if info.Container != c.container {
				t.Errorf("container %q, want %q", info.Container, c.container)
			}
			if absDur(info.Duration-2*time.Second) > 40*time.Millisecond {
				t.Errorf("Duration %v, want 2s within a frame", info.Duration)
			}
			if info.FrameCount != 50 {
				t.Errorf("FrameCount %d, want 50", info.FrameCount)
			}
			if got := decodeAll(t, path); got.err != nil || got.count != 50 {
				t.Errorf("decoded %d frames (%v), want 50", got.count, got.err)
			}
		})
	}
}

// A video stream with no packet at all has no duration to derive: a 422.
func TestNoDurationRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "novideo.webm")
	var out bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=d=1", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1",
		"-map", "0:a", "-map", "1:v", "-c:a", "libopus", "-c:v", "libvpx-vp9", "-frames:v", "0", "-f", "webm", "-live", "1", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := codec.Probe(path)
	wantCode(t, err, codec.ErrNoDuration, vidmatte.CodeUnprocessable)
}

func TestProbeContextEnded(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, Duration: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := codec.ProbeContext(ctx, path)
	if !errors.Is(err, context.Canceled) || vidmatte.ErrorCode(err) != vidmatte.CodeCanceled {
		t.Errorf("canceled: %v (code %s)", err, vidmatte.ErrorCode(err))
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	_, err = codec.ProbeContext(ctx, path)
	if !errors.Is(err, context.DeadlineExceeded) || vidmatte.ErrorCode(err) != vidmatte.CodeTimeout {
		t.Errorf("deadline: %v (code %s)", err, vidmatte.ErrorCode(err))
	}
	if _, err := codec.ProbeContext(context.Background(), path); err != nil {
		t.Errorf("live context: %v", err)
	}
}

// playlists writes files that make FFmpeg read another local file (the
// victim, another tenant's output): HLS playlists and ffconcat lists, each
// under its own name and renamed to look like an image or a video.
func playlists(t *testing.T, victim string) map[string]string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fetched")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, victim)
	if err != nil {
		t.Fatal(err)
	}
	hls := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\n" + rel + "\n#EXT-X-ENDLIST\n"
	concat := "ffconcat version 1.0\nfile '" + rel + "'\n"
	out := map[string]string{}
	for name, body := range map[string]string{
		"list.m3u8": hls, "hls.png": hls, "hls.mp4": hls,
		"list.ffconcat": concat, "concat.png": concat, "concat.mp4": concat,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

func TestPlaylistsRefused(t *testing.T) {
	outputs := filepath.Join(t.TempDir(), "outputs")
	if err := os.Mkdir(outputs, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outputs, "victim.ts")
	testmedia.FFmpeg(t, "-f", "lavfi", "-i", "color=c=red:s=96x64:r=25:d=1", "-f", "lavfi", "-i", "sine=d=1",
		"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", victim)
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, Duration: 120 * time.Millisecond})
	for name, path := range playlists(t, victim) {
		t.Run(name, func(t *testing.T) {
			// The file is a real attack: FFmpeg's own tool, allowed local
			// files only, reads the victim's video through it.
			fmtName := "hls"
			if strings.Contains(name, "concat") {
				fmtName = "concat"
			}
			b, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "file", "-f", fmtName, "-safe", "0",
				"-show_entries", "stream=width,height", "-of", "csv=p=0", path).CombinedOutput()
			if fmtName == "hls" {
				b, err = exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "file", "-f", fmtName,
					"-show_entries", "stream=width,height", "-of", "csv=p=0", path).CombinedOutput()
			}
			if err != nil || !strings.Contains(string(b), "96,64") {
				t.Fatalf("ffprobe does not read the victim through %s: %v %s", name, err, b)
			}

			_, err = codec.Probe(path)
			wantCode(t, err, codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia)
			_, err = codec.OpenDecoder(path, codec.DecoderOptions{})
			wantCode(t, err, codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia)

			_, err = codec.NewEncoder(filepath.Join(t.TempDir(), "out.mp4"), codec.EncoderOptions{
				Format: vidmatte.FormatMP4, Width: 96, Height: 64, TimeBase: codec.Rational{Num: 1, Den: 25}, FrameRate: codec.Rational{Num: 25, Den: 1},
				AudioFrom:  src,
				Background: vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: path}})
			wantCode(t, err, codec.ErrNotImage, vidmatte.CodeUnprocessable)

			// Nor is the audio carried over from one.
			_, err = codec.NewEncoder(filepath.Join(t.TempDir(), "out.webm"), codec.EncoderOptions{
				Format: vidmatte.FormatWebM, Width: 96, Height: 64, TimeBase: codec.Rational{Num: 1, Den: 25}, FrameRate: codec.Rational{Num: 25, Den: 1},
				AudioFrom: path})
			wantCode(t, err, codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia)
		})
	}
}

// encodeOver composites one fully transparent frame of src over the
// background image bg into an mp4 and returns the output's first picture's
// centre pixel.
func encodeOver(t *testing.T, src, bg string, maxPixels int) ([3]int, error) {
	t.Helper()
	d, err := codec.OpenDecoder(src, codec.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info := d.Info()
	out := filepath.Join(t.TempDir(), "out.mp4")
	e, err := codec.NewEncoder(out, codec.EncoderOptions{Format: vidmatte.FormatMP4, Width: info.Width, Height: info.Height,
		TimeBase: d.TimeBase(), FrameRate: info.FrameRate, MaxBackgroundPixels: maxPixels,
		Background: vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: bg}})
	if err != nil {
		return [3]int{}, err
	}
	f, err := d.Next(context.Background())
	if err != nil {
		e.Abort()
		t.Fatal(err)
	}
	err = e.WriteFrame(f, make([]byte, info.Width*info.Height))
	f.Release()
	if err != nil {
		e.Abort()
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	p := testmedia.ReadRGBA(t, out)[0]
	c := p.NRGBAAt(info.Width/2, info.Height/2)
	return [3]int{int(c.R), int(c.G), int(c.B)}, nil
}

func TestBackgroundImageFormats(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, Duration: 80 * time.Millisecond})
	for _, ext := range []string{"png", "jpg", "webp"} {
		t.Run(ext, func(t *testing.T) {
			bg := filepath.Join(t.TempDir(), "backdrop."+ext)
			testmedia.FFmpeg(t, "-f", "lavfi", "-i", "color=c=0x2040c0:s=90x60", "-frames:v", "1", bg)
			// Named as something else, the image is still read by content.
			renamed := filepath.Join(t.TempDir(), "backdrop.m3u8")
			if err := os.Rename(bg, renamed); err != nil {
				t.Fatal(err)
			}
			got, err := encodeOver(t, src, renamed, 0)
			if err != nil {
				t.Fatalf("%s background: %v", ext, err)
			}
			for i, want := range [3]int{0x20, 0x40, 0xc0} {
				if d := got[i] - want; d < -12 || d > 12 {
					t.Fatalf("centre pixel %v, want the background's 0x2040c0", got)
				}
			}
		})
	}
	t.Run("video", func(t *testing.T) {
		_, err := encodeOver(t, src, src, 0)
		wantCode(t, err, codec.ErrNotImage, vidmatte.CodeUnprocessable)
	})
}

// pngHeader is a PNG signature, an IHDR chunk declaring w x h RGBA, and
// IEND: a file of a few bytes that claims a huge picture.
func pngHeader(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
		return b.Bytes()
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	return append(out, chunk("IEND", nil)...)
}

func TestBackgroundPixelLimit(t *testing.T) {
	src := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, Duration: 80 * time.Millisecond})
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.png")
	if err := os.WriteFile(huge, pngHeader(10000, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := encodeOver(t, src, huge, 0)
	wantCode(t, err, codec.ErrImageTooLarge, vidmatte.CodeUnprocessable)
	if msg := vidmatte.ErrorMessage(err); !strings.Contains(msg, "10000x10000") {
		t.Errorf("message %q does not give the size", msg)
	}

	// A real image over a lower limit, in each format.
	for _, ext := range []string{"png", "jpg", "webp"} {
		bg := filepath.Join(dir, "big."+ext)
		testmedia.FFmpeg(t, "-f", "lavfi", "-i", "color=c=white:s=200x100", "-frames:v", "1", bg)
		_, err := encodeOver(t, src, bg, 19999)
		wantCode(t, err, codec.ErrImageTooLarge, vidmatte.CodeUnprocessable)
		if _, err := encodeOver(t, src, bg, 20000); err != nil {
			t.Errorf("%s of exactly the limit: %v", ext, err)
		}
	}
}

// Every accepted container is named in InputFormats, and one outside it
// (FLV, which FFmpeg reads) is refused before it is opened.
func TestInputFormatWhitelist(t *testing.T) {
	if !slices.Contains(codec.InputFormats, "mov") || !slices.Contains(codec.InputFormats, "matroska") {
		t.Fatalf("InputFormats %v", codec.InputFormats)
	}
	flv := filepath.Join(t.TempDir(), "clip.mp4")
	testmedia.FFmpeg(t, "-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=0.2", "-c:v", "libx264", "-f", "flv", flv)
	_, err := codec.Probe(flv)
	wantCode(t, err, codec.ErrNotMedia, vidmatte.CodeUnsupportedMedia)
	if msg := vidmatte.ErrorMessage(err); !strings.Contains(msg, "flv") {
		t.Errorf("message %q does not name the format", msg)
	}
}
