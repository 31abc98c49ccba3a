// Package testmedia generates the media that tests across the project run
// on: clips made by the ffmpeg command-line tool from its lavfi sources, a
// green-screen clip with its true matte, and damaged files. It also reads
// produced files back (alpha planes, frame counts, durations) with the
// ffmpeg and ffprobe tools and the Go standard library, independently of
// package codec, so that tests check codec against something else.
//
// Every helper takes a testing.TB, writes into t.TempDir(), and fails the
// test on error.
package testmedia

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ClipOptions describes a generated clip. The zero value is a 1 s,
// 320x240, 25 fps H.264 MP4 of testsrc2 without audio.
type ClipOptions struct {
	Width, Height int
	FPS           int
	Duration      time.Duration
	// Audio adds a 440 Hz sine tone as long as the video (AAC in mp4, mov
	// and mkv, Opus in webm, MP3 in avi).
	Audio bool
	// VFR makes the frame rate variable: frames are dropped irregularly
	// (about one in four) and the survivors keep their timestamps.
	VFR bool
	// Rotation is the clockwise rotation a player applies on display (90,
	// 180, 270), written as display-matrix metadata; mp4 and mov only.
	Rotation int
	// Container is "mp4" (default), "mov", "mkv", "webm" or "avi".
	Container string
	// Codec is the video encoder: libx264 by default, libvpx-vp9 for webm.
	// Odd sizes need a codec that takes them, such as VP9 (x264's 4:2:0
	// does not).
	Codec string
	// Source is the lavfi video source, default "testsrc2"; for example
	// "color=c=0xff0000" or "smptebars". Size, rate and duration are added.
	Source string
	// PixelFormat is the stored pixel format, default yuv420p.
	PixelFormat string
	// ColorMatrix is the RGB to YUV matrix, "bt601" (FFmpeg's default) or
	// "bt709"; TagColor writes it (and the range: full for the yuvj pixel
	// formats, limited otherwise) into the stream.
	ColorMatrix string
	TagColor    bool
	// Lossless encodes without loss (x264 -qp 0) so that pixel values can
	// be checked exactly.
	Lossless bool
}

var clipSeq atomic.Int64

// Clip generates a clip and returns its path.
func Clip(t testing.TB, o ClipOptions) string {
	t.Helper()
	if o.Width == 0 {
		o.Width = 320
	}
	if o.Height == 0 {
		o.Height = 240
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.Duration == 0 {
		o.Duration = time.Second
	}
	if o.Container == "" {
		o.Container = "mp4"
	}
	if o.Codec == "" {
		o.Codec = "libx264"
		if o.Container == "webm" {
			o.Codec = "libvpx-vp9"
		}
	}
	if o.Source == "" {
		o.Source = "testsrc2"
	}
	if o.PixelFormat == "" {
		o.PixelFormat = "yuv420p"
	}
	dur := strconv.FormatFloat(o.Duration.Seconds(), 'f', 3, 64)
	dir := t.TempDir()
	name := fmt.Sprintf("clip%d_%dx%d.%s", clipSeq.Add(1), o.Width, o.Height, o.Container)
	out := filepath.Join(dir, name)
	target := out
	if o.Rotation != 0 {
		if o.Container != "mp4" && o.Container != "mov" {
			t.Fatalf("testmedia: rotation metadata needs mp4 or mov, not %s", o.Container)
		}
		target = filepath.Join(dir, "unrotated_"+name)
	}

	sep := "="
	if strings.Contains(o.Source, "=") {
		sep = ":"
	}
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("%s%ss=%dx%d:r=%d:d=%s", o.Source, sep, o.Width, o.Height, o.FPS, dur)}
	if o.Audio {
		args = append(args, "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d="+dur)
	}
	var filters []string
	if o.Width%2 == 1 || o.Height%2 == 1 {
		// Sources such as testsrc2 round odd sizes down to even ones.
		filters = append(filters, fmt.Sprintf("scale=%d:%d", o.Width, o.Height))
	}
	if o.VFR {
		// Drop frames 2 of every 5 and 3 of every 7: irregular gaps.
		filters = append(filters, `select='not(eq(mod(n\,5)\,2))*not(eq(mod(n\,7)\,3))'`)
	}
	rng := "tv"
	if strings.HasPrefix(o.PixelFormat, "yuvj") {
		rng = "pc"
	}
	if o.ColorMatrix != "" {
		filters = append(filters, "scale=out_color_matrix="+o.ColorMatrix+":out_range="+rng)
	}
	filters = append(filters, "format="+o.PixelFormat)
	args = append(args, "-vf", strings.Join(filters, ","))
	if o.VFR {
		args = append(args, "-fps_mode", "vfr")
	}
	args = append(args, "-c:v", o.Codec)
	switch o.Codec {
	case "libx264":
		args = append(args, "-preset", "veryfast")
		if o.Container == "avi" {
			// AVI has no presentation timestamps: with B-frames FFmpeg
			// puts the video a reorder delay after the audio.
			args = append(args, "-bf", "0")
		}
		if o.Lossless {
			args = append(args, "-qp", "0")
		}
	case "libvpx-vp9":
		args = append(args, "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "30")
		if o.Lossless {
			args = append(args, "-lossless", "1")
		}
	}
	if o.TagColor && o.ColorMatrix != "" {
		cs := o.ColorMatrix
		if cs == "bt601" {
			cs = "smpte170m"
		}
		args = append(args, "-colorspace", cs, "-color_primaries", cs, "-color_trc", cs, "-color_range", rng)
	}
	if o.Audio {
		switch o.Container {
		case "webm":
			args = append(args, "-c:a", "libopus")
		case "avi":
			args = append(args, "-c:a", "libmp3lame")
		default:
			args = append(args, "-c:a", "aac")
		}
	}
	args = append(args, "-t", dur, target)
	FFmpeg(t, args...)
	if o.Rotation != 0 {
		rotate(t, target, out, o.Rotation)
		_ = os.Remove(target)
	}
	return out
}

// Rotate writes a copy of the mp4 or mov clip src (streams copied) whose
// display matrix asks players to turn it degrees clockwise (90, 180, 270),
// and returns its path.
func Rotate(t testing.TB, src string, degrees int) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), fmt.Sprintf("rot%d_%s", degrees, filepath.Base(src)))
	rotate(t, src, dst, degrees)
	return dst
}

func rotate(t testing.TB, src, dst string, degrees int) {
	t.Helper()
	// FFmpeg 5.1 turns a "rotate" tag of r degrees into a display matrix
	// that turns the picture r degrees counter-clockwise.
	ccw := (360 - degrees%360) % 360
	FFmpeg(t, "-i", src, "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate="+strconv.Itoa(ccw), dst)
}

// FFmpeg runs the ffmpeg tool with args (quiet, overwriting) and fails the
// test with its output on error.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)
	cmd := exec.Command("ffmpeg", full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testmedia: ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// run runs a command and returns its standard output, failing the test on
// error.
func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testmedia: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// Home is where the set-up installed lib/, models/ and media/:
// $VIDMATTE_HOME, else $XDG_DATA_HOME/vidmatte, else
// ~/.local/share/vidmatte.
func Home(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("VIDMATTE_HOME"); h != "" {
		return h
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "vidmatte")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("testmedia: no home directory: %v", err)
	}
	return filepath.Join(home, ".local", "share", "vidmatte")
}

// Media returns the path of a real media file the set-up installed under
// Home/media (vtest.avi, tree.avi, Megamind.avi, astronaut.png, …). When it
// is absent the test is skipped, or fails when VIDMATTE_ISNET is set (the
// full suite, where every asset must be there).
func Media(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Home(t), "media", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("VIDMATTE_ISNET") != "" {
			t.Fatalf("testmedia: %s is missing (run scripts/setup): %v", p, err)
		}
		t.Skipf("testmedia: %s is missing; run scripts/setup to install the test media", p)
	}
	return p
}
