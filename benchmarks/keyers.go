package benchmarks

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"vidmatte"
)

// FFmpeg's own keyers are the baseline of the green-screen set: what a user
// gets from `ffmpeg -vf chromakey=…` (YUV distance to a key colour) or
// `colorkey=…` (RGB distance). Each gets the key colour an eyedropper would
// give (the median of the first frame's border) and the similarity and
// blend that score best against the first frame's truth from a small grid:
// a well-tuned keyer, which is generous to FFmpeg.

// keyer is one of FFmpeg's keying filters and the grid its parameters are
// tuned on.
type keyer struct {
	name       string // "chromakey" or "colorkey"
	similarity []float64
	blend      []float64
}

var keyers = []keyer{
	{"chromakey", []float64{0.04, 0.07, 0.1, 0.14, 0.19, 0.25, 0.32}, []float64{0, 0.02, 0.05, 0.1, 0.16}},
	{"colorkey", []float64{0.1, 0.15, 0.2, 0.27, 0.35, 0.45}, []float64{0, 0.03, 0.07, 0.12, 0.2}},
}

// filter returns the filter string for a key colour and parameters.
func (k keyer) filter(key [3]byte, sim, blend float64) string {
	return fmt.Sprintf("%s=0x%02X%02X%02X:%g:%g", k.name, key[0], key[1], key[2], sim, blend)
}

// borderMedian returns the median colour of the outermost 4 pixels of a
// frame (interleaved RGB): the screen's colour as an eyedropper picks it.
func borderMedian(rgb []byte, w, h int) [3]byte {
	var ch [3][]byte
	for y := range h {
		for x := range w {
			if x >= 4 && x < w-4 && y >= 4 && y < h-4 {
				continue
			}
			i := 3 * (y*w + x)
			for c := range 3 {
				ch[c] = append(ch[c], rgb[i+c])
			}
		}
	}
	var out [3]byte
	for c := range 3 {
		sort.Slice(ch[c], func(i, j int) bool { return ch[c][i] < ch[c][j] })
		out[c] = ch[c][len(ch[c])/2]
	}
	return out
}

// tuneKeyer returns the filter of k that scores the lowest MAD on the
// clip's first frame. The whole grid runs in one ffmpeg process: the frame
// is split into one branch per setting, each written to its own raw file.
func tuneKeyer(ctx context.Context, k keyer, clip *Clip, key [3]byte, truth0 []byte, work string) (string, error) {
	dir, err := os.MkdirTemp(work, "tune-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	var filters []string
	for _, s := range k.similarity {
		for _, b := range k.blend {
			filters = append(filters, k.filter(key, s, b))
		}
	}
	var graph strings.Builder
	fmt.Fprintf(&graph, "[0:v]split=%d", len(filters))
	for i := range filters {
		fmt.Fprintf(&graph, "[s%d]", i)
	}
	args := []string{"-i", clip.Video, "-frames:v", "1"}
	for i, f := range filters {
		fmt.Fprintf(&graph, ";[s%d]%s,format=rgba[o%d]", i, f, i)
	}
	args = append(args, "-filter_complex", graph.String())
	for i := range filters {
		args = append(args, "-map", fmt.Sprintf("[o%d]", i), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgba",
			filepath.Join(dir, fmt.Sprintf("%d.rgba", i)))
	}
	if err := runFFmpeg(ctx, args...); err != nil {
		return "", err
	}
	t := Alpha(truth0)
	best, bestMAD := "", math.Inf(1)
	for i, f := range filters {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.rgba", i)))
		if err != nil {
			return "", err
		}
		if len(raw) != 4*len(t) {
			return "", fmt.Errorf("%s gave %d bytes for a %dx%d frame", f, len(raw), clip.Width, clip.Height)
		}
		a := make([]float64, len(t))
		for p := range a {
			a[p] = float64(raw[4*p+3]) / 255
		}
		if mad := MAD(a, t); mad < bestMAD {
			best, bestMAD = f, mad
		}
	}
	return best, nil
}

// runKeyer keys the clip with an FFmpeg filter into the output format,
// timing the command like the naive pipeline's (a zip of RGBA PNGs, or VP9
// with alpha).
func runKeyer(ctx context.Context, filter string, clip *Clip, format vidmatte.OutputFormat, out, work string) (time.Duration, error) {
	start := time.Now()
	switch format {
	case vidmatte.FormatPNGSequence:
		dir, err := os.MkdirTemp(work, "keyer-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		if err := runFFmpeg(ctx, "-i", clip.Video, "-an", "-vf", filter+",format=rgba", filepath.Join(dir, "%06d.png")); err != nil {
			return 0, err
		}
		if err := zipDir(dir, out); err != nil {
			return 0, err
		}
	case vidmatte.FormatWebM:
		if err := runFFmpeg(ctx, "-i", clip.Video, "-an", "-vf", filter+",format=yuva420p",
			"-c:v", "libvpx-vp9", "-crf", "30", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", out); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("the keyer baseline writes png_sequence or webm, not %s", format)
	}
	return time.Since(start), nil
}
