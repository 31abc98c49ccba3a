package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// ffmpegBin and ffprobeBin are the FFmpeg command-line tools the harness
// runs: the naive baseline, FFmpeg's keyers, clip encoding and reading
// outputs back.
var (
	ffmpegBin  = "ffmpeg"
	ffprobeBin = "ffprobe"
)

// runFFmpeg runs ffmpeg with args, returning an error that quotes the end
// of its log when it fails.
func runFFmpeg(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, ffmpegBin, append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return ffmpegError(ctx, args, err, stderr.Bytes())
	}
	return nil
}

func ffmpegError(ctx context.Context, args []string, err error, stderr []byte) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := strings.TrimSpace(string(stderr))
	if len(msg) > 600 {
		msg = "…" + msg[len(msg)-600:]
	}
	return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, msg)
}

// readRawFrames runs ffmpeg with args (which must write raw video to
// standard output) and returns its frames, each frameSize bytes.
func readRawFrames(ctx context.Context, frameSize int, args ...string) ([][]byte, error) {
	cmd := exec.CommandContext(ctx, ffmpegBin, append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ffmpeg: %w", err)
	}
	var frames [][]byte
	r := bufio.NewReaderSize(out, 1<<20)
	var readErr error
	for {
		buf := make([]byte, frameSize)
		if _, err := io.ReadFull(r, buf); err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("reading frames from ffmpeg: %w", err)
			}
			break
		}
		frames = append(frames, buf)
	}
	if err := cmd.Wait(); err != nil {
		return nil, ffmpegError(ctx, args, err, stderr.Bytes())
	}
	if readErr != nil {
		return nil, readErr
	}
	return frames, nil
}

// writeRawFrames pipes frames into ffmpeg's standard input; args must name
// the raw input ("-f rawvideo … -i -") and the output.
func writeRawFrames(ctx context.Context, frames [][]byte, args ...string) error {
	cmd := exec.CommandContext(ctx, ffmpegBin, append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting ffmpeg: %w", err)
	}
	var writeErr error
	for _, f := range frames {
		if _, err := in.Write(f); err != nil {
			writeErr = err
			break
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return ffmpegError(ctx, args, err, stderr.Bytes())
	}
	if writeErr != nil {
		return fmt.Errorf("writing frames to ffmpeg: %w", writeErr)
	}
	return nil
}

// ffmpegVersion is the first line of `ffmpeg -version`, e.g.
// "ffmpeg version 5.1.9-0+deb12u1".
func ffmpegVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, ffmpegBin, "-version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if i := strings.Index(line, " Copyright"); i > 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// probeVideo returns the width, height, frame rate and frame count of the
// first video stream of path, as ffprobe sees them (the count by decoding
// when the container does not say).
func probeVideo(ctx context.Context, path string) (w, h int, fps float64, frames int, err error) {
	out, err := exec.CommandContext(ctx, ffprobeBin, "-v", "error", "-select_streams", "v:0",
		"-count_frames", "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,nb_read_frames",
		"-of", "default=noprint_wrappers=1", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, 0, 0, 0, fmt.Errorf("ffprobe %s: %s", path, strings.TrimSpace(string(ee.Stderr)))
		}
		return 0, 0, 0, 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var rate, avg string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "width":
			fmt.Sscan(v, &w)
		case "height":
			fmt.Sscan(v, &h)
		case "r_frame_rate":
			rate = v
		case "avg_frame_rate":
			avg = v
		case "nb_read_frames":
			fmt.Sscan(v, &frames)
		}
	}
	fps = parseRate(avg)
	if fps <= 0 {
		fps = parseRate(rate)
	}
	if w <= 0 || h <= 0 {
		return 0, 0, 0, 0, fmt.Errorf("%s has no video stream", path)
	}
	return w, h, fps, frames, nil
}

func parseRate(s string) float64 {
	var num, den float64
	if n, _ := fmt.Sscanf(s, "%g/%g", &num, &den); n == 2 && den > 0 {
		return num / den
	}
	return 0
}
