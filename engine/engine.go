// Package engine turns videos into cut-outs. It owns the frame pipeline
// (decode → prepare → batch → infer → refine → encode, stages joined by
// bounded channels) and the job runner that drives it for the daemon.
//
// The engine sees codec and models through small interfaces (source, sink,
// matter), so its tests can make a stage fail on purpose while every other
// stage stays real.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/fsx"
	"vidmatte/models"
)

// Config is what an Engine is built from.
type Config struct {
	Runtime  *models.Runtime
	Registry *models.Registry
	Device   models.Device // cpu (default) or cuda
	// Batch is the most frames one inference call takes (default 1).
	Batch int
	// DecoderThreads is passed to the decoder (0 = automatic).
	DecoderThreads int
	Encoder        codec.EncoderSettings
	// MaxBackgroundPixels is the largest background image accepted
	// (0 = codec.DefaultMaxBackgroundPixels).
	MaxBackgroundPixels int
	Logger              *slog.Logger
}

// Engine runs pipelines. One Engine serves any number of concurrent
// Process calls; the models' sessions are shared through the Runtime.
type Engine struct {
	cfg Config
	log *slog.Logger

	// The stage constructors. Tests wrap them to make a failure happen.
	openSource func(path string, threads int) (source, error)
	openSink   func(path string, o codec.EncoderOptions) (sink, error)
	openMatter func(m *models.Manifest, o models.LoadOptions) (matter, error)
}

// New returns an Engine for the configuration.
func New(cfg Config) (*Engine, error) {
	if cfg.Runtime == nil || cfg.Registry == nil {
		return nil, errors.New("engine: a runtime and a registry are required")
	}
	if cfg.Batch < 1 {
		cfg.Batch = 1
	}
	if cfg.Device == "" {
		cfg.Device = models.CPU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger}
	e.openSource = func(path string, threads int) (source, error) {
		return codec.OpenDecoder(path, codec.DecoderOptions{Threads: threads})
	}
	e.openSink = func(path string, o codec.EncoderOptions) (sink, error) {
		return codec.NewEncoder(path, o)
	}
	e.openMatter = func(m *models.Manifest, o models.LoadOptions) (matter, error) {
		return cfg.Runtime.Load(cfg.Registry, m, o)
	}
	return e, nil
}

// Smoothing says whether the refine stage smooths the alpha in time.
type Smoothing string

const (
	SmoothAuto Smoothing = ""    // as the model says (models.Manifest.PerFrame)
	SmoothOn   Smoothing = "on"  // always
	SmoothOff  Smoothing = "off" // never
)

// Refinement says whether the refine stage refines a low-resolution
// model's upscaled alpha against the frame's luma (a guided filter).
type Refinement string

const (
	RefineAuto Refinement = ""    // as the model says (models.Manifest.Refine)
	RefineOn   Refinement = "on"  // for every model that runs below the frame's size
	RefineOff  Refinement = "off" // never
)

// Request is one video to process.
type Request struct {
	// Input is the video to read. Output is written atomically: it is
	// complete after Process returns nil, and absent after an error or a
	// cancel.
	Input, Output string
	Model         string // id or alias; "" = isnet
	Format        vidmatte.OutputFormat
	Background    vidmatte.Background // ImagePath filled in for image backgrounds
	Composition   *vidmatte.Composition
	Smoothing     Smoothing
	Refine        Refinement
	// DownsampleRatio, when > 0, overrides the ratio a model with a
	// downsample-ratio input (rvm) gets from the frame size.
	DownsampleRatio float32
	// Batch overrides Config.Batch for this request when > 0.
	Batch int
	// MaxFrames, when > 0, is the most frames the request may decode: a
	// video that runs on past it (a container that declared less than it
	// holds, so less was reserved) fails with CodeUnprocessable instead of
	// being processed unpaid.
	MaxFrames int64
	// Progress, when set, is called from the pipeline at most every
	// ProgressEvery (default 250 ms) and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Segments, when set, has the output made in parts, one per segment
	// of SegmentLength (default DefaultSegmentLength) on the plan the
	// journal keeps, each claimed, kept and recorded through it; segments
	// recorded already, by an earlier run or another worker, are not
	// processed again. A recurrent model first runs on the WarmUp frames
	// (default DefaultWarmUp; negative: none) before a segment it starts
	// at, to rebuild its state. The output is joined from the parts once
	// every segment is recorded, unless Help is set: the request then
	// only processes the segments the journal gives it.
	Segments      SegmentJournal
	SegmentLength time.Duration
	WarmUp        int
	Help          bool
}

// Progress is how far a request has come.
type Progress struct {
	FramesDone  int64
	FramesTotal int64 // an estimate when the container does not say; never below FramesDone
	FPS         float64
	Elapsed     time.Duration
	ETA         time.Duration // 0 when unknown
}

// Percent is FramesDone over FramesTotal in 0..100.
func (p Progress) Percent() int {
	if p.FramesTotal <= 0 {
		return 0
	}
	v := int(p.FramesDone * 100 / p.FramesTotal)
	return min(max(v, 0), 100)
}

// Result is what a finished request measured.
type Result struct {
	Frames    int64
	Elapsed   time.Duration
	FPS       float64
	InferTime time.Duration // time spent inside the model
	LoadTime  time.Duration // time to load the model (0 when its session was cached)
	Model     string
	Device    models.Device
	Width     int
	Height    int
	// Stages is how each stage of the pipeline spent the run, in order:
	// decode, batch (preparing the model's input), infer, refine, encode.
	Stages []vidmatte.StageTime
	// Segments, for a request with a segment journal, is what this run
	// resumed, decoded and inferred.
	Segments *SegmentCounts
}

// DefaultModel is the model used when a request names none.
const DefaultModel = "rvm"

// Process runs one request to the end. It returns ctx.Err() promptly when
// ctx is canceled; every frame is released and no partial output is left.
// Errors carry vidmatte codes: bad input is unsupported_media_type or
// unprocessable, an unknown model invalid_request. A panic anywhere in the
// run, in a stage's goroutine included, is returned as a *PanicError (an
// internal error) after the same clean-up.
func (e *Engine) Process(ctx context.Context, r Request) (res *Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, recovered("pipeline", v)
		}
	}()
	start := time.Now()
	if r.Format == "" {
		r.Format = vidmatte.FormatWebM
	}
	if !r.Format.Valid() {
		return nil, vidmatte.FieldErrorf("output_format", "unknown format %q", r.Format)
	}
	if err := vidmatte.CheckFormatBackground(r.Format, r.Background); err != nil {
		return nil, err
	}
	if r.Model == "" {
		r.Model = DefaultModel
	}
	manifest, err := e.cfg.Registry.Get(r.Model)
	if err != nil {
		return nil, err
	}
	if r.Segments != nil {
		return e.processSegmented(ctx, r, manifest, start)
	}

	src, err := e.openSource(r.Input, e.cfg.DecoderThreads)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	info := src.Info()

	m, err := e.loadMatter(manifest, r, info)
	if err != nil {
		return nil, err
	}
	defer m.Close()

	tmp, err := partialPath(r.Output)
	if err != nil {
		return nil, err
	}
	out, err := e.openSink(tmp, codec.EncoderOptions{
		Format:      r.Format,
		Width:       info.Width,
		Height:      info.Height,
		TimeBase:    src.TimeBase(),
		FrameRate:   info.FrameRate,
		AudioFrom:   audioSource(r.Input, info, r.Format),
		Background:  r.Background,
		Composition: r.Composition,
		Settings:    e.cfg.Encoder,

		MaxBackgroundPixels: e.cfg.MaxBackgroundPixels,
	})
	if err != nil {
		return nil, err
	}
	finished := false
	defer func() {
		if !finished {
			out.Abort() // no partial output, whatever ended the run
		}
	}()

	p := &pipeline{
		src: src, model: m, sink: out, info: info,
		smooth:      smoothingFor(r.Smoothing, m),
		refineEdges: refineFor(r.Refine, manifest),
		progress:    r.Progress, every: r.ProgressEvery,
		start: start, total: estimateFrames(info), maxFrames: r.MaxFrames,
	}
	if p.every <= 0 {
		p.every = 250 * time.Millisecond
	}
	if err := p.run(ctx); err != nil {
		var pe *PanicError
		if ctx.Err() != nil && !errors.As(err, &pe) {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("finishing %s output: %w", r.Format, err)
	}
	finished = true
	// Synced before and after the rename: a job is never completed (and
	// charged) on an output a power cut can leave empty.
	if err := fsx.Rename(tmp, r.Output); err != nil {
		os.Remove(tmp)
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "writing the output")
	}
	elapsed := time.Since(start)
	res = &Result{
		Frames:    p.done,
		Elapsed:   elapsed,
		InferTime: p.inferTime,
		LoadTime:  m.LoadTime(),
		Model:     manifest.ID,
		Device:    m.Device(),
		Width:     info.Width,
		Height:    info.Height,
		Stages:    p.stages(),
	}
	if elapsed > 0 {
		res.FPS = float64(p.done) / elapsed.Seconds()
	}
	e.log.Debug("processed", "input", r.Input, "model", res.Model, "device", res.Device,
		"frames", res.Frames, "fps", math.Round(res.FPS*10)/10, "infer", res.InferTime)
	return res, nil
}

// partialPath returns where the output is written before it is complete: a
// hidden file beside it, so the final rename is atomic.
func partialPath(output string) (string, error) {
	if output == "" {
		return "", vidmatte.Errorf(vidmatte.CodeInvalid, "no output path")
	}
	dir, base := filepath.Split(output)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", vidmatte.Wrap(err, vidmatte.CodeInternal, "creating the output folder")
	}
	ext := filepath.Ext(base)
	return filepath.Join(dir, "."+strings.TrimSuffix(base, ext)+".partial"+ext), nil
}

// audioSource is the file whose audio the output carries, or "" when the
// input has none or the format holds no audio.
func audioSource(input string, info *codec.Info, f vidmatte.OutputFormat) string {
	if !info.HasAudio {
		return ""
	}
	switch f {
	case vidmatte.FormatGIF, vidmatte.FormatWebP, vidmatte.FormatPNGSequence:
		return ""
	}
	return input
}

// estimateFrames is the container's frame count, or duration × rate.
func estimateFrames(info *codec.Info) int64 {
	if info.FrameCount > 0 {
		return info.FrameCount
	}
	if fps := info.FrameRate.Float64(); fps > 0 && info.Duration > 0 {
		return int64(math.Round(info.Duration.Seconds() * fps))
	}
	return 0
}

func refineFor(r Refinement, m *models.Manifest) bool {
	switch r {
	case RefineOn:
		return true
	case RefineOff:
		return false
	}
	return m.Refine
}

func smoothingFor(s Smoothing, m matter) bool {
	switch s {
	case SmoothOn:
		return true
	case SmoothOff:
		return false
	}
	return m.PerFrame()
}

// loadMatter loads the request's model for frames of the input's size,
// with the request's batch (the engine's when it gives none).
func (e *Engine) loadMatter(manifest *models.Manifest, r Request, info *codec.Info) (matter, error) {
	batch := e.cfg.Batch
	if r.Batch > 0 {
		batch = r.Batch
	}
	return e.openMatter(manifest, models.LoadOptions{
		Device: e.cfg.Device, Batch: batch,
		FrameWidth: info.Width, FrameHeight: info.Height,
		DownsampleRatio: r.DownsampleRatio,
		Frames:          frameMemory(info),
		ByteOutputs:     true, // the graph quantizes the alpha (BenchmarkFramePrep)
	})
}
