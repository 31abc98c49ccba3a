package benchmarks

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"vidmatte"
	"vidmatte/models"
)

// The naive pipeline is what users write today before they have vidmatte:
//
//  1. the ffmpeg CLI dumps the video's frames as PNG files;
//  2. a script reads each file, resizes it for the model, runs the model
//     on it (one frame at a time, through the same models package and ONNX
//     Runtime session the engine uses), resizes the alpha back and writes
//     it as a grayscale PNG;
//  3. the ffmpeg CLI merges frames and mattes (alphamerge) into the output
//     format (a zip of RGBA PNGs, or VP9 with alpha at the engine's
//     settings).
//
// Its wall time from the first ffmpeg call to the finished output, the
// model's load excluded, is its end-to-end speed.

// naiveResult is what a naive run produced.
type naiveResult struct {
	output    string
	frames    int
	wall      time.Duration
	load      time.Duration
	inferTime time.Duration
}

// runNaive runs the naive pipeline for one model on one clip, writing
// output in work.
func runNaive(ctx context.Context, rt *models.Runtime, reg *models.Registry, dev models.Device, modelID string, clip *Clip, format vidmatte.OutputFormat, work string) (*naiveResult, error) {
	dir, err := os.MkdirTemp(work, "naive-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	inDir, maskDir := filepath.Join(dir, "frames"), filepath.Join(dir, "mattes")
	for _, d := range []string{inDir, maskDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	start := time.Now()

	// 1. Dump the frames.
	if err := runFFmpeg(ctx, "-i", clip.Video, "-an", filepath.Join(inDir, "%06d.png")); err != nil {
		return nil, err
	}

	// 2. One model call per file.
	man, err := reg.Get(modelID)
	if err != nil {
		return nil, err
	}
	loadStart := time.Now()
	m, err := rt.Load(reg, man, models.LoadOptions{Device: dev, Batch: 1, FrameWidth: clip.Width, FrameHeight: clip.Height})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	b, err := m.NewBatch()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	load := time.Since(loadStart)
	entries, err := os.ReadDir(inDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".png") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	iw, ih := m.InputSize()
	st := m.NewState()
	defer st.Close()
	var infer time.Duration
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(inDir, name))
		if err != nil {
			return nil, err
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rgb, w, h := imageRGB(img)
		if m.Color() == models.ColorUV {
			// A keyer on the chroma planes: the script converts to YUV.
			_, u, v := rgbToYUV420(rgb, w, h)
			m.PrepareUV(b.Slot(0), u, (w+1)/2, v, (w+1)/2)
		} else {
			in := rgb
			if iw != w || ih != h {
				in = floatToBytes(resizeBilinear(bytesToFloat(rgb), w, h, 3, iw, ih))
			}
			m.PrepareRGB(b.Slot(0), toPlanar(in, iw*ih))
		}
		t := time.Now()
		if err := m.Run(ctx, b, 1, st); err != nil {
			return nil, err
		}
		infer += time.Since(t)
		a := b.Alpha(0)
		if iw != w || ih != h {
			a = resizeBilinear(a, iw, ih, 1, w, h)
		}
		mask := make([]byte, len(a))
		for i, v := range a {
			mask[i] = unit8(v)
		}
		if err := writeGrayPNG(filepath.Join(maskDir, name), mask, w, h); err != nil {
			return nil, err
		}
	}

	// 3. Merge and encode.
	rate := fmt.Sprint(clip.FPS)
	merge := []string{
		"-framerate", rate, "-i", filepath.Join(inDir, "%06d.png"),
		"-framerate", rate, "-i", filepath.Join(maskDir, "%06d.png"),
		"-filter_complex", "[0:v][1:v]alphamerge,format=rgba",
	}
	out := filepath.Join(dir, "out."+formatExt(format))
	switch format {
	case vidmatte.FormatPNGSequence:
		pngDir := filepath.Join(dir, "rgba")
		if err := os.Mkdir(pngDir, 0o755); err != nil {
			return nil, err
		}
		if err := runFFmpeg(ctx, append(merge, filepath.Join(pngDir, "%06d.png"))...); err != nil {
			return nil, err
		}
		if err := zipDir(pngDir, out); err != nil {
			return nil, err
		}
	case vidmatte.FormatWebM:
		merge[len(merge)-1] = "[0:v][1:v]alphamerge,format=yuva420p"
		if err := runFFmpeg(ctx, append(merge, "-c:v", "libvpx-vp9", "-crf", "30", "-b:v", "0",
			"-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", out)...); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the naive baseline writes png_sequence or webm, not %s", format)
	}
	wall := time.Since(start) - load
	// Keep the output beside the work folder for the metrics.
	final := filepath.Join(work, fmt.Sprintf("naive-%s-%s-%s.%s", modelID, clip.Set, clip.Name, formatExt(format)))
	if err := os.Rename(out, final); err != nil {
		return nil, err
	}
	return &naiveResult{output: final, frames: len(names), wall: wall, load: load, inferTime: infer}, nil
}
