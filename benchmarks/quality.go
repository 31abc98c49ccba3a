package benchmarks

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"

	"vidmatte"
)

// measureQuality computes a run's metrics from its alphas. truth may be
// nil (a clip without truth: only flicker); luma is the clip's luma, for
// flicker.
func measureQuality(alphas, truth, luma [][]byte, w, h int) (*Quality, error) {
	n := len(alphas)
	if n == 0 {
		return nil, fmt.Errorf("no frames to measure")
	}
	if truth != nil && len(truth) != n {
		return nil, fmt.Errorf("%d frames of output for %d frames of truth", n, len(truth))
	}
	if len(luma) != n {
		return nil, fmt.Errorf("%d frames of output for %d frames of input", n, len(luma))
	}
	for i, a := range alphas {
		if len(a) != w*h {
			return nil, fmt.Errorf("frame %d: %d alpha values for %dx%d", i, len(a), w, h)
		}
	}
	q := &Quality{}
	nan := math.NaN()
	var prevP, prevT []float64
	var dt, fl, still float64
	for i := range n {
		p := Alpha(alphas[i])
		if truth != nil {
			t := Alpha(truth[i])
			mad := MAD(p, t)
			q.PerFrameMAD = append(q.PerFrameMAD, roundSig(mad, 5))
			q.MAD += mad
			q.MSE += MSE(p, t)
			q.Grad += Grad(p, t, w, h)
			q.Conn += Conn(p, t, w, h)
			if i > 0 {
				dt += DtSSD(p, prevP, t, prevT)
			}
			prevT = t
		}
		if i > 0 {
			f, s := Flicker(p, prevP, luma[i], luma[i-1])
			fl += f
			still += s
		}
		prevP = p
	}
	if truth != nil {
		k := float64(n)
		q.MAD, q.MSE, q.Grad, q.Conn = q.MAD/k, q.MSE/k, q.Grad/k, q.Conn/k
		q.DtSSD = nan
		if n > 1 {
			q.DtSSD = dt / float64(n-1)
		}
	} else {
		q.MAD, q.MSE, q.Grad, q.Conn, q.DtSSD = nan, nan, nan, nan, nan
	}
	if n > 1 {
		q.Flicker = fl / float64(n-1)
		q.StillFraction = still / float64(n-1)
	}
	return q, nil
}

// readOutputAlphas reads the alpha of every frame of an output file back:
// exactly from a png_sequence zip, through the ffmpeg CLI otherwise (VP9
// with the libvpx decoder, the only one that returns its alpha). Lossy
// formats add their own error to the metrics.
func readOutputAlphas(ctx context.Context, path string, f vidmatte.OutputFormat, w, h int) ([][]byte, error) {
	switch f {
	case vidmatte.FormatPNGSequence:
		return readZipAlphas(path, w, h)
	case vidmatte.FormatMask:
		return readRawFrames(ctx, w*h, "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-")
	case vidmatte.FormatMP4:
		return nil, fmt.Errorf("mp4 output has no alpha to measure")
	}
	var args []string
	if f == vidmatte.FormatWebM {
		args = append(args, "-c:v", "libvpx-vp9")
	}
	args = append(args, "-i", path, "-f", "rawvideo", "-pix_fmt", "rgba", "-")
	frames, err := readRawFrames(ctx, 4*w*h, args...)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(frames))
	for i, fr := range frames {
		a := make([]byte, w*h)
		for p := range a {
			a[p] = fr[4*p+3]
		}
		out[i] = a
	}
	return out, nil
}

// fileSize is a file's size, or 0.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// formatExt is the output file extension for a format.
func formatExt(f vidmatte.OutputFormat) string {
	return strings.TrimPrefix(f.Extension(), ".")
}
