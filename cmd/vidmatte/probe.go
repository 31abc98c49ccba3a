package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"vidmatte"
	"vidmatte/codec"
)

func init() {
	register(command{
		name:    "probe",
		summary: "describe a media file: container, video, audio",
		run:     runProbe,
	})
}

// probeJSON is codec.Info with snake_case keys, durations in seconds and
// rates both exact and as numbers.
type probeJSON struct {
	Path              string  `json:"path"`
	Size              int64   `json:"size"`
	Container         string  `json:"container"`
	DurationSeconds   float64 `json:"duration_seconds"`
	VideoCodec        string  `json:"video_codec"`
	Width             int     `json:"width"`
	Height            int     `json:"height"`
	CodedWidth        int     `json:"coded_width"`
	CodedHeight       int     `json:"coded_height"`
	Rotation          int     `json:"rotation"`
	FrameRate         string  `json:"frame_rate"`
	FPS               float64 `json:"fps"`
	VariableFrameRate bool    `json:"variable_frame_rate"`
	FrameCount        int64   `json:"frame_count"`
	TimeBase          string  `json:"time_base"`
	PixelFormat       string  `json:"pixel_format"`
	ColorRange        string  `json:"color_range"`
	ColorSpace        string  `json:"color_space"`
	BitRate           int64   `json:"bit_rate"`
	HasAudio          bool    `json:"has_audio"`
	AudioCodec        string  `json:"audio_codec,omitempty"`
	AudioSampleRate   int     `json:"audio_sample_rate,omitempty"`
	AudioChannels     int     `json:"audio_channels,omitempty"`
}

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	asJSON := fs.Bool("json", false, "print JSON with snake_case keys")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vidmatte probe FILE [--json]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Describes a media file as the engine sees it. A file that cannot be")
		fmt.Fprintln(stderr, "processed (not a video, cut short, damaged, …) is an error: exit status 1.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageErrorf("one FILE is needed, got %d", len(files))
	}
	info, err := codec.ProbeContext(ctx, files[0])
	if err != nil {
		if vidmatte.ErrorCode(err) == vidmatte.CodeInternal {
			return err
		}
		return errors.New(vidmatte.ErrorMessage(err))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(toProbeJSON(info))
	}
	printInfo(stdout, info)
	return nil
}

func toProbeJSON(i *codec.Info) probeJSON {
	return probeJSON{
		Path: i.Path, Size: i.Size, Container: i.Container, DurationSeconds: i.Duration.Seconds(),
		VideoCodec: i.VideoCodec, Width: i.Width, Height: i.Height, CodedWidth: i.CodedWidth, CodedHeight: i.CodedHeight,
		Rotation: i.Rotation, FrameRate: i.FrameRate.String(), FPS: i.FrameRate.Float64(), VariableFrameRate: i.VariableFrameRate,
		FrameCount: i.FrameCount, TimeBase: i.TimeBase.String(), PixelFormat: i.PixelFormat, ColorRange: i.ColorRange,
		ColorSpace: i.ColorSpace, BitRate: i.BitRate, HasAudio: i.HasAudio, AudioCodec: i.AudioCodec,
		AudioSampleRate: i.AudioSampleRate, AudioChannels: i.AudioChannels,
	}
}

// printInfo writes one aligned "key: value" line per fact.
func printInfo(w io.Writer, i *codec.Info) {
	size := fmt.Sprintf("%dx%d", i.Width, i.Height)
	if i.Rotation != 0 {
		size += fmt.Sprintf(" (stored %dx%d, rotated %d°)", i.CodedWidth, i.CodedHeight, i.Rotation)
	}
	rate := fmt.Sprintf("%s (%.3f fps)", i.FrameRate, i.FrameRate.Float64())
	if i.VariableFrameRate {
		rate += ", variable"
	}
	frames := "unknown"
	if i.FrameCount > 0 {
		frames = strconv.FormatInt(i.FrameCount, 10)
	}
	bitrate := "unknown"
	if i.BitRate > 0 {
		bitrate = fmt.Sprintf("%d kb/s", i.BitRate/1000)
	}
	audio := "none"
	if i.HasAudio {
		audio = fmt.Sprintf("%s, %d Hz, %d channels", i.AudioCodec, i.AudioSampleRate, i.AudioChannels)
	}
	lines := [][2]string{
		{"path", i.Path},
		{"size", fmt.Sprintf("%d bytes", i.Size)},
		{"container", i.Container},
		{"duration", fmt.Sprintf("%.3f s", i.Duration.Seconds())},
		{"video", i.VideoCodec},
		{"picture", size},
		{"frame rate", rate},
		{"frames", frames},
		{"time base", i.TimeBase.String()},
		{"pixel format", i.PixelFormat},
		{"color", fmt.Sprintf("%s, %s range", i.ColorSpace, i.ColorRange)},
		{"bit rate", bitrate},
		{"audio", audio},
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%-*s %s\n", width+1, l[0]+":", l[1])
	}
}
