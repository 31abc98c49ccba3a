package models

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"vidmatte"
)

// FrameMemory is the caller's memory that a job needs beside the model's
// tensors (decoded frames, alpha planes, scratch buffers), for the memory
// budget. The engine fills it in from its pipeline's depths.
type FrameMemory struct {
	// Batches is how many batches (NewBatch) the caller keeps allocated at
	// once; 0 means 1.
	Batches int
	// PerSlot is the bytes the caller holds for every frame slot of every
	// batch in flight (the decoded frame that travels with its batch).
	PerSlot int64
	// Fixed is the bytes the caller holds whatever the batch.
	Fixed int64
}

// MemoryEstimate is what a job is expected to need at one batch size, in
// bytes. It is an estimate made before anything is allocated, sized to
// err on the high side:
//
//   - Tensors: the input (C floats per pixel at the model's input size:
//     3 for rgb, 2 for uv) and the outputs (alpha, plus 2 or 3 foreground
//     planes when the model gives one) of every slot of every batch in
//     flight.
//   - Work: what ONNX Runtime allocates inside one Run (intermediate
//     activations): frames per Run × input pixels × workFloats(signature)
//     floats. Per-frame models run a whole batch at once; recurrent models
//     run one frame at a time whatever the batch.
//   - State: a recurrent model's states, fed and written (two copies),
//     at most stateFloats floats per pixel of the downsampled frame.
//   - Weights: twice the model file (ONNX Runtime holds the file's bytes
//     while it builds the initialisers).
//   - Frames: the caller's buffers (FrameMemory): Fixed + Batches × batch
//     × PerSlot.
type MemoryEstimate struct {
	Batch   int
	Tensors int64
	Work    int64
	State   int64
	Weights int64
	Frames  int64
	Total   int64
}

// workFloats is, per signature, the floats ONNX Runtime allocates inside
// one Run per pixel of the model's input. ISNet is measured: ~2.3 GB peak
// RSS at 1024×1024 with an 88 MB file is ~550 floats per pixel; 640 leaves
// a margin. The chroma keyer is a few elementwise ops over two planes
// (16 planes bound it). RVM's network runs on the downsampled frame (its
// share is counted on those pixels, rvmDownsampledFloats) and its guided
// filter at full size (16 planes).
var workFloats = map[Signature]int64{
	SignatureISNet:  640,
	SignatureChroma: 16,
	SignatureRVM:    16,
}

// rvmDownsampledFloats is RVM's activation memory per downsampled pixel
// (a MobileNetV3 encoder and a recurrent decoder, lighter than ISNet).
const rvmDownsampledFloats = 512

// stateFloats bounds a recurrent state's floats per downsampled pixel:
// RVM's r1..r4 hold 16/4 + 20/16 + 40/64 + 64/256 ≈ 6.1.
const stateFloats = 8

// unknownWorkFloats is the work estimate of a signature not listed.
const unknownWorkFloats = 640

// EstimateMemory returns what a job of m with o needs at the given batch
// (after the model's own limits: a model without a dynamic batch runs at
// 1). It allocates nothing.
func EstimateMemory(m *Manifest, o LoadOptions, batch int) (MemoryEstimate, error) {
	if m == nil {
		return MemoryEstimate{}, errors.New("models: EstimateMemory needs a manifest")
	}
	w, h, err := inputSize(m, o)
	if err != nil {
		return MemoryEstimate{}, err
	}
	batch = max(batch, 1)
	hw := int64(w) * int64(h)
	const f32 = 4
	ch := int64(3)
	if m.Input.Color == ColorUV {
		ch = 2
	}
	var fg int64
	switch m.Signature {
	case SignatureChroma:
		fg = 2
	case SignatureRVM:
		fg = 3
	}
	batches := int64(max(o.Frames.Batches, 1))
	n := int64(batch)
	e := MemoryEstimate{Batch: batch}
	e.Tensors = batches * n * hw * (ch + 1 + fg) * f32

	work, ok := workFloats[m.Signature]
	if !ok {
		work = unknownWorkFloats
	}
	perRun := n
	if m.Kind == Recurrent || m.Signature == SignatureRVM {
		perRun = 1
	}
	e.Work = perRun * hw * work * f32
	if m.Signature == SignatureRVM || len(m.Recurrent) > 0 {
		r := float64(1)
		if m.DownsampleRatio != nil {
			r = float64(m.DownsampleRatio.Ratio(w, h))
		}
		small := int64(float64(w)*r+1) * int64(float64(h)*r+1)
		if m.Signature == SignatureRVM {
			e.Work += small * rvmDownsampledFloats * f32
		}
		e.State = 2 * small * stateFloats * f32
	}
	e.Weights = 2 * max(m.Size, 0)
	e.Frames = max(o.Frames.Fixed, 0) + batches*n*max(o.Frames.PerSlot, 0)
	e.Total = e.Tensors + e.Work + e.State + e.Weights + e.Frames
	return e, nil
}

// fitBatch returns the largest batch from 1 to want whose estimate fits
// the budget, or a payload_too_large error when batch 1 does not fit.
func fitBatch(m *Manifest, o LoadOptions, want int, budget int64) (MemoryEstimate, error) {
	want = max(want, 1)
	for n := want; n >= 1; n-- {
		e, err := EstimateMemory(m, o, n)
		if err != nil {
			return e, err
		}
		if e.Total <= budget {
			return e, nil
		}
		if n == 1 {
			w, h, _ := inputSize(m, o)
			size := fmt.Sprintf("%dx%d", o.FrameWidth, o.FrameHeight)
			if o.FrameWidth <= 0 || o.FrameHeight <= 0 {
				size = fmt.Sprintf("%dx%d", w, h)
			}
			return e, &vidmatte.Error{Code: vidmatte.CodeTooLarge, Err: ErrOverMemoryBudget,
				Message: fmt.Sprintf("the video's %s frames need about %s with model %s even one frame at a time, over this daemon's memory budget of %s per job",
					size, FormatBytes(e.Total), m.ID, FormatBytes(budget))}
		}
	}
	panic("unreachable")
}

// ErrOverMemoryBudget is in the chain of the error Load returns for a job
// that does not fit the memory budget even at batch 1.
var ErrOverMemoryBudget = errors.New("over the memory budget")

// inputSize returns the size m runs at for o's frames.
func inputSize(m *Manifest, o LoadOptions) (w, h int, err error) {
	w, h = m.Input.Width, m.Input.Height
	if m.Input.Dynamic() {
		if o.FrameWidth <= 0 || o.FrameHeight <= 0 {
			return 0, 0, fmt.Errorf("models: %s runs at the frame's size: LoadOptions.FrameWidth and FrameHeight are required", m.ID)
		}
		w, h = o.FrameWidth, o.FrameHeight
		if m.Input.Color == ColorUV {
			w, h = (w+1)/2, (h+1)/2
		}
	}
	return w, h, nil
}

// FormatBytes writes n as "1.5 GiB", "12.0 MiB" or "512 B".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// memInfoPath is read for the machine's memory. A variable so tests can
// point it elsewhere.
var memInfoPath = "/proc/meminfo"

// fallbackMemoryBudget is the budget when the machine's memory cannot be
// read.
const fallbackMemoryBudget = 4 << 30

// DefaultMemoryBudget returns half of the machine's memory (MemTotal of
// /proc/meminfo), or 4 GiB when it cannot be read: the budget of a job
// when RuntimeOptions.MemoryBudget is 0. A daemon running several jobs at
// once should divide it among them.
func DefaultMemoryBudget() int64 {
	if total := machineMemory(); total > 0 {
		return total / 2
	}
	return fallbackMemoryBudget
}

// machineMemory returns MemTotal in bytes, or 0.
func machineMemory() int64 {
	f, err := os.Open(memInfoPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb * 1024
	}
	return 0
}
