package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"vidmatte"
	"vidmatte/models/onnx"
)

// LoadOptions says how to load a model for a job.
type LoadOptions struct {
	// Device is where to run; "" is the CPU.
	Device Device
	// Batch is the most frames per Run (>= 1; 0 means 1). Models whose
	// batch cannot be made dynamic get 1; recurrent models take Batch
	// frames per Run and process them in order.
	Batch int
	// FrameWidth and FrameHeight are the video's size: models with a
	// dynamic input (chroma, rvm) run at it.
	FrameWidth, FrameHeight int
	// DownsampleRatio, when > 0, overrides the ratio a model with a
	// downsample-ratio input (rvm) gets from the frame size; it must
	// suit the model (DownsampleRatio.Check).
	DownsampleRatio float32
	// Frames is the caller's own memory for the job, counted against the
	// Runtime's memory budget with the model's (see EstimateMemory).
	Frames FrameMemory
	// ByteOutputs has the alpha, and a chroma keyer's corrected U and V,
	// come out as bytes (Batch.AlphaBytes, ForegroundBytes): the
	// quantization runs inside the graph (onnx.ByteImageIO's
	// QuantizeLinear). Otherwise they are floats in 0..1 (Alpha,
	// Foreground) for the caller to quantize.
	ByteOutputs bool
	// ByteInput has the image input take the bytes the scalers write
	// (Batch.SlotBytes: R, G, B or U, V as 0..255, in the model's layout),
	// normalized inside the graph (DequantizeLinear). Otherwise the slot
	// holds floats the caller normalizes (PrepareRGB, PrepareUV): on this
	// project's CPUs that is the faster way (BenchmarkFramePrep), the
	// graph's own normalization slowing ONNX Runtime down by more than the
	// lookup tables cost.
	ByteInput bool
}

// Model is a loaded model ready for a job's frames: a handle on a session
// the Runtime caches. Its methods are safe for concurrent use; each Batch
// and State is used by one goroutine at a time.
type Model struct {
	rt       *Runtime
	man      *Manifest
	sess     *session
	device   Device
	w, h     int
	batch    int
	loadTime time.Duration
	closed   atomic.Bool
	// mem is the estimate the batch was chosen by.
	mem MemoryEstimate
	// runs is held for reading by every Run and for writing by Close, so
	// Close gives the session back only after the runs in flight.
	runs sync.RWMutex

	// lut maps a prepared byte to the normalized value, per channel.
	lut [3][256]float32
	// channels is the input's channel count: 3 (rgb) or 2 (uv).
	channels int
	// fgChannels is 2 (UV), 3 (RGB) or 0 when there is no foreground.
	fgChannels int
	// ratio is the downsample ratio fed to models that take one.
	ratio float32
	// nhwc: the image tensors are interleaved (Input.Layout NHWC).
	nhwc bool
	// byteIn and byteOut: LoadOptions.ByteInput and ByteOutputs.
	byteIn, byteOut bool
}

// Load loads m for a job: it finds or creates the session for (model,
// device, input size, batch) and returns a handle on it, which holds the
// session until Close. Asking for CUDA when it cannot be used is an error
// that says why (wrapping ErrCUDAUnavailable), unless the Runtime allows
// CPU fallback.
//
// Before anything is allocated, the job's memory (EstimateMemory) is
// checked against the Runtime's budget: the batch is lowered until it
// fits, and a job that does not fit even at batch 1 is refused with a
// payload_too_large error wrapping ErrOverMemoryBudget.
func (rt *Runtime) Load(r *Registry, m *Manifest, o LoadOptions) (*Model, error) {
	start := time.Now()
	if m == nil || r == nil {
		return nil, errors.New("models: Load needs a registry and a manifest")
	}
	dev, err := ParseDevice(string(o.Device))
	if err != nil {
		return nil, vidmatte.FieldErrorf("device", "%v", err)
	}
	if len(m.Devices) > 0 && !slices.Contains(m.Devices, dev) {
		return nil, vidmatte.FieldErrorf("device", "model %s does not run on %s", m.ID, dev)
	}
	batch := max(o.Batch, 1)
	w, h, err := inputSize(m, o)
	if err != nil {
		return nil, err
	}
	if m.Signature == SignatureISNet && !m.BatchDynamic {
		batch = 1
	}
	mem, err := fitBatch(m, o, batch, rt.budget)
	if err != nil {
		return nil, err
	}
	if mem.Batch < batch {
		rt.log.Warn("batch lowered to fit the memory budget", "model", m.ID, "asked", batch, "batch", mem.Batch,
			"width", o.FrameWidth, "height", o.FrameHeight, "estimate", mem.Total, "budget", rt.budget)
		batch = mem.Batch
	}
	alpha := m.Output(MeaningAlpha)
	spec := sessionSpec{key: sessionKey{device: dev, width: w, height: h, batch: batch}}
	model := &Model{rt: rt, man: m, w: w, h: h, batch: batch, channels: 3, mem: mem, nhwc: m.Input.Layout == LayoutNHWC,
		byteIn: o.ByteInput, byteOut: o.ByteOutputs}
	if m.Input.Color == ColorUV {
		model.channels = 2
	}
	// byteOutputs are the outputs that come out as bytes with ByteOutputs.
	byteOutputs := []string{alpha}

	switch m.Signature {
	case SignatureISNet:
		path, err := r.verifiedPath(m)
		if err != nil {
			return nil, err
		}
		// A converted model's batch is symbolic already.
		if batch > 1 && m.Convert == nil {
			if derived, err := r.batchFile(m); err != nil {
				rt.log.Warn("cannot make the batch dynamic; running one frame at a time", "model", m.ID, "err", err.Error())
				batch = 1
			} else {
				path = derived
			}
		}
		spec.key.batch = batch
		spec.key.source, spec.path = path, path
		spec.inputs = []string{m.Input.Name}
		spec.outputs = []string{alpha}
	case SignatureChroma:
		data, err := r.graph(m)
		if err != nil {
			return nil, err
		}
		spec.key.source, spec.data = "generated:"+m.ID, data
		spec.extendedOnly = true
		spec.inputs = []string{m.Input.Name}
		spec.outputs = []string{alpha, m.Output(MeaningForegroundUV)}
		byteOutputs = spec.outputs
		model.fgChannels = 2
	case SignatureRVM:
		path, err := r.verifiedPath(m)
		if err != nil {
			return nil, err
		}
		// Frames go through the state one at a time: one session serves
		// every batch size.
		spec.key.batch = 1
		spec.key.source, spec.path = path, path
		spec.inputs = []string{m.Input.Name}
		for _, s := range m.Recurrent {
			spec.inputs = append(spec.inputs, s.Input)
		}
		spec.inputs = append(spec.inputs, m.DownsampleRatio.Input)
		spec.outputs = []string{m.Output(MeaningForegroundRGB), alpha}
		for _, s := range m.Recurrent {
			spec.outputs = append(spec.outputs, s.Output)
		}
		model.fgChannels = 3
		model.ratio = m.DownsampleRatio.Ratio(w, h)
		if o.DownsampleRatio != 0 {
			if err := m.DownsampleRatio.Check(o.DownsampleRatio); err != nil {
				return nil, vidmatte.FieldErrorf("downsample_ratio", "model %s: %v", m.ID, err)
			}
			model.ratio = o.DownsampleRatio
		}
	default:
		return nil, fmt.Errorf("models: %s: unsupported signature %q", m.ID, m.Signature)
	}
	model.batch = batch
	if o.ByteInput || o.ByteOutputs {
		var io onnx.ByteIO
		if o.ByteInput {
			io.Input, io.Axis = m.Input.Name, 1
			if model.nhwc {
				io.Axis = 3
			}
			io.Mean, io.Std = m.Input.Mean[:model.channels], m.Input.Std[:model.channels]
		}
		if o.ByteOutputs {
			io.Outputs = byteOutputs
		}
		spec.key.byteIn, spec.key.byteOut = o.ByteInput, o.ByteOutputs
		spec.rewrite = func(data []byte) ([]byte, error) { return byteModel(data, io) }
	}

	s, _, err := rt.session(spec)
	if err != nil {
		return nil, err
	}
	model.sess = s
	model.device = s.device
	model.initNormalization()
	model.loadTime = time.Since(start)
	return model, nil
}

// byteModel rewrites an ONNX file for byte I/O (onnx.ByteImageIO).
func byteModel(data []byte, io onnx.ByteIO) ([]byte, error) {
	m, err := onnx.Decode(data)
	if err != nil {
		return nil, err
	}
	if err := onnx.ByteImageIO(m, io); err != nil {
		return nil, err
	}
	return onnx.Marshal(m)
}

// initNormalization fills the lookup tables and factors that turn
// prepared bytes into the model's input values.
func (m *Model) initNormalization() {
	in := m.man.Input
	for c := range 3 {
		sc := 1 / in.Std[c]
		off := -in.Mean[c] / in.Std[c]
		for v := range 256 {
			m.lut[c][v] = float32(v)*sc + off
		}
	}
}

// verifiedPath returns the model's file when it is present and verified.
func (r *Registry) verifiedPath(m *Manifest) (string, error) {
	st := r.Check(m)
	switch {
	case !st.Present:
		hint := "run 'vidmatte models install'"
		if !m.Builtin {
			hint = "import it again with 'vidmatte models import'"
		}
		return "", &vidmatte.Error{Code: vidmatte.CodeUnavailable,
			Message: fmt.Sprintf("model %s is not installed (%s is missing; %s)", m.ID, st.Path, hint)}
	case !st.Verified:
		return "", &vidmatte.Error{Code: vidmatte.CodeUnavailable,
			Message: fmt.Sprintf("model %s failed verification (%s: %s)", m.ID, st.Path, st.Problem)}
	}
	return st.Path, nil
}

// Manifest returns the model's manifest.
func (m *Model) Manifest() *Manifest { return m.man }

// Device returns the device the model actually runs on (CPU after a
// fallback).
func (m *Model) Device() Device { return m.device }

// InputSize returns the size frames must be prepared at.
func (m *Model) InputSize() (w, h int) { return m.w, m.h }

// Batch returns the most frames per Run.
func (m *Model) Batch() int { return m.batch }

// Color returns what Prepare expects: "rgb" (PrepareRGB) or "uv"
// (PrepareUV).
func (m *Model) Color() string { return m.man.Input.Color }

// Interleaved reports whether the image tensors are interleaved (NHWC: R,
// G, B of each pixel in turn) rather than planar (NCHW).
func (m *Model) Interleaved() bool { return m.nhwc }

// ByteInput and ByteOutputs report how the model was loaded
// (LoadOptions.ByteInput, ByteOutputs).
func (m *Model) ByteInput() bool   { return m.byteIn }
func (m *Model) ByteOutputs() bool { return m.byteOut }

// Recurrent reports whether the model carries state between frames.
func (m *Model) Recurrent() bool { return m.man.Kind == Recurrent }

// PerFrame reports whether the engine should smooth the alpha in time.
func (m *Model) PerFrame() bool { return m.man.PerFrame() }

// Refine reports whether the engine should refine the model's upscaled
// alpha against the frame's full-resolution luma (Manifest.Refine).
func (m *Model) Refine() bool { return m.man.Refine }

// LoadTime returns how long Load took (session creation included, when
// the session was not cached).
func (m *Model) LoadTime() time.Duration { return m.loadTime }

// ForegroundKind says which foreground the model gives:
// MeaningForegroundUV (Batch.Foreground: corrected U, V),
// MeaningForegroundRGB (Batch.ForegroundRGB: R, G, B in 0..1) or "".
func (m *Model) ForegroundKind() string {
	switch m.fgChannels {
	case 2:
		return MeaningForegroundUV
	case 3:
		return MeaningForegroundRGB
	}
	return ""
}

// DownsampleRatio returns the ratio fed to a model's downsample-ratio
// input (see DownsampleRatio.Ratio), or 0 when it has none.
func (m *Model) DownsampleRatio() float32 { return m.ratio }

// Memory returns the memory estimate the model's batch was chosen by.
func (m *Model) Memory() MemoryEstimate { return m.mem }

// ErrModelClosed is in the chain of the error of a second Close, and of
// NewBatch and Run after Close.
var ErrModelClosed = errors.New("models: the model is closed")

// Close releases this handle's hold on its session, after the runs in
// flight on it. The session stays cached in the Runtime until it is
// evicted (or Runtime.Close); an evicted one is destroyed by the last
// Close of the Models that use it. Closing a Model twice is an error
// (ErrModelClosed): it would give back a hold another job has.
func (m *Model) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Close called twice on %s", ErrModelClosed, m.man.ID)
	}
	m.runs.Lock()
	defer m.runs.Unlock()
	return m.rt.release(m.sess)
}

// Batch is the memory of one batch: the input tensor and the outputs,
// allocated once and reused. It is owned by whoever made it and not safe
// for concurrent use; the engine keeps a few in flight (one being prepared
// while another runs). Close it when done. The image input is bytes with
// ByteInput (SlotBytes), else floats (Slot); the alpha and a UV foreground
// are bytes with ByteOutputs (AlphaBytes, ForegroundBytes), else floats
// (Alpha, Foreground).
type Batch struct {
	m    *Model
	size int
	hw   int
	// Floats or bytes, by the model's I/O.
	input, alpha, fg    []float32
	input8, alpha8, fg8 []byte

	// For per-frame models, index k holds the tensors of the first k+1
	// frames; for recurrent models, index i holds frame i's.
	inT, alphaT, fgT []ort.Value
	opts             *ort.RunOptions
	ins, outs        []ort.Value
}

// NewBatch allocates a batch of Batch() frames at InputSize().
func (m *Model) NewBatch() (*Batch, error) {
	if m.closed.Load() {
		return nil, ErrModelClosed
	}
	hw := m.w * m.h
	ch := m.channels
	b := &Batch{m: m, size: m.batch, hw: hw}
	fc := m.fgChannels
	if m.byteIn {
		b.input8 = make([]byte, m.batch*ch*hw)
	} else {
		b.input = make([]float32, m.batch*ch*hw)
	}
	if m.byteOut {
		b.alpha8 = make([]byte, m.batch*hw)
	} else {
		b.alpha = make([]float32, m.batch*hw)
	}
	switch {
	case fc == 2 && m.byteOut:
		b.fg8 = make([]byte, m.batch*fc*hw)
	case fc > 0:
		b.fg = make([]float32, m.batch*fc*hw)
	}
	fail := func(err error) (*Batch, error) {
		b.Close()
		return nil, ortError("models: allocating a batch", err)
	}
	W, H := int64(m.w), int64(m.h)
	// shape is an image tensor's shape in the model's layout.
	shape := func(n, c int64) ort.Shape {
		if m.nhwc {
			return ort.NewShape(n, H, W, c)
		}
		return ort.NewShape(n, c, H, W)
	}
	// tensor wraps frames [from, to) of a buffer of c channels.
	tensor := func(c int, f []float32, u []byte, from, to int) (ort.Value, error) {
		sh := shape(int64(to-from), int64(c))
		if u != nil {
			t, err := ort.NewTensor(sh, u[from*c*hw:to*c*hw])
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return t, nil
		}
		t, err := ort.NewTensor(sh, f[from*c*hw:to*c*hw])
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	for k := 0; k < m.batch; k++ {
		from, to := 0, k+1 // per-frame models: the first k+1 frames
		if m.Recurrent() {
			from, to = k, k+1 // frame k alone
		}
		in, err := tensor(ch, b.input, b.input8, from, to)
		b.inT = append(b.inT, in)
		if err != nil {
			return fail(err)
		}
		al, err := tensor(1, b.alpha, b.alpha8, from, to)
		b.alphaT = append(b.alphaT, al)
		if err != nil {
			return fail(err)
		}
		if fc > 0 {
			fg, err := tensor(fc, b.fg, b.fg8, from, to)
			b.fgT = append(b.fgT, fg)
			if err != nil {
				return fail(err)
			}
		}
	}
	opts, err := ort.NewRunOptions()
	if err != nil {
		return fail(err)
	}
	b.opts = opts
	b.ins = make([]ort.Value, len(m.sess.inputs))
	b.outs = make([]ort.Value, len(m.sess.outputs))
	return b, nil
}

// Size returns the number of frames the batch holds.
func (b *Batch) Size() int { return b.size }

// Slot returns frame i's input: C·H·W floats in the model's layout (C is
// 3 for "rgb" models, 2 for "uv" ones), for Prepare to fill. It panics
// with ByteInput (SlotBytes).
func (b *Batch) Slot(i int) []float32 {
	b.want(b.m.byteIn, false, "Slot")
	n := b.m.channels * b.hw
	return b.input[i*n : (i+1)*n : (i+1)*n]
}

// SlotBytes returns frame i's input with ByteInput: C·H·W bytes, 0..255
// as the scalers write them, in the model's layout (planar R, G, B for
// NCHW, packed for NHWC; U then V for "uv" models). It panics without.
func (b *Batch) SlotBytes(i int) []byte {
	b.want(b.m.byteIn, true, "SlotBytes")
	n := b.m.channels * b.hw
	return b.input8[i*n : (i+1)*n : (i+1)*n]
}

// Alpha returns frame i's alpha, H·W values in 0..1 at InputSize, valid
// after Run. It panics with ByteOutputs (AlphaBytes).
func (b *Batch) Alpha(i int) []float32 {
	b.want(b.m.byteOut, false, "Alpha")
	return b.alpha[i*b.hw : (i+1)*b.hw : (i+1)*b.hw]
}

// AlphaBytes returns frame i's alpha with ByteOutputs, H·W bytes (0 =
// transparent, 255 = opaque) at InputSize, valid after Run. It panics
// without.
func (b *Batch) AlphaBytes(i int) []byte {
	b.want(b.m.byteOut, true, "AlphaBytes")
	return b.alpha8[i*b.hw : (i+1)*b.hw : (i+1)*b.hw]
}

func (b *Batch) want(has, bytes bool, what string) {
	if has != bytes {
		kind := "float"
		if has {
			kind = "byte"
		}
		panic(fmt.Sprintf("models: %s on a batch of %s whose values there are %ss", what, b.m.man.ID, kind))
	}
}

// Foreground returns frame i's spill-corrected chroma, valid after Run:
// the U plane then the V plane (H·W each, byte/255 scale, what the input's
// U and V were), to replace the frame's own chroma. It is nil unless the
// model outputs one (the chroma keyers), and with ByteOutputs
// (ForegroundBytes).
func (b *Batch) Foreground(i int) []float32 {
	if b.m.fgChannels != 2 || b.m.byteOut {
		return nil
	}
	return b.fg[i*2*b.hw : (i+1)*2*b.hw : (i+1)*2*b.hw]
}

// ForegroundBytes is Foreground with ByteOutputs: the corrected U and V
// planes as bytes. It is nil unless the model outputs them and was loaded
// with ByteOutputs.
func (b *Batch) ForegroundBytes(i int) []byte {
	if b.m.fgChannels != 2 || !b.m.byteOut {
		return nil
	}
	return b.fg8[i*2*b.hw : (i+1)*2*b.hw : (i+1)*2*b.hw]
}

// ForegroundRGB returns frame i's foreground as R, G, B in 0..1 (RVM's
// fgr), valid after Run, or nil when the model gives none: three planes,
// or interleaved R, G, B per pixel when ForegroundInterleaved. It is
// floats whatever the outputs.
func (b *Batch) ForegroundRGB(i int) []float32 {
	if b.m.fgChannels != 3 {
		return nil
	}
	return b.fg[i*3*b.hw : (i+1)*3*b.hw : (i+1)*3*b.hw]
}

// ForegroundInterleaved reports whether ForegroundRGB is interleaved
// (an NHWC model) rather than planar.
func (b *Batch) ForegroundInterleaved() bool { return b.m.nhwc }

// Close releases the batch's tensors.
func (b *Batch) Close() error {
	for _, ts := range [][]ort.Value{b.inT, b.alphaT, b.fgT} {
		for _, t := range ts {
			if t != nil {
				t.Destroy()
			}
		}
	}
	b.inT, b.alphaT, b.fgT = nil, nil, nil
	if b.opts != nil {
		b.opts.Destroy()
		b.opts = nil
	}
	return nil
}

// State is a job's recurrent state: empty until the first Run, then the
// model's last state outputs. Make one per job with NewState (a new job
// starts from the initial state) and Close it after the job.
type State struct {
	m      *Model
	in     []ort.Value // the states fed to the next frame
	out    []ort.Value // where the next frame's states are written
	ratio  *ort.Tensor[float32]
	frames int
}

// NewState returns a fresh state for a job, or nil for per-frame models
// (which Run accepts).
func (m *Model) NewState() *State {
	if !m.Recurrent() {
		return nil
	}
	return &State{m: m}
}

// Frames returns how many frames have gone through the state.
func (s *State) Frames() int {
	if s == nil {
		return 0
	}
	return s.frames
}

// Close releases the state's tensors. A nil State is fine.
func (s *State) Close() error {
	if s == nil {
		return nil
	}
	for _, vs := range [][]ort.Value{s.in, s.out} {
		for _, v := range vs {
			if v != nil {
				v.Destroy()
			}
		}
	}
	s.in, s.out = nil, nil
	if s.ratio != nil {
		s.ratio.Destroy()
		s.ratio = nil
	}
	return nil
}

// Run infers the first n frames (1..Batch) of b. Recurrent models run them
// in order through st and keep st for the next call; per-frame models
// ignore st. Cancelling ctx stops a run in progress.
func (m *Model) Run(ctx context.Context, b *Batch, n int, st *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b == nil || b.m != m {
		return errors.New("models: Run needs a batch made by this model")
	}
	if n < 1 || n > b.size {
		return fmt.Errorf("models: Run of %d frames on a batch of %d", n, b.size)
	}
	if b.opts == nil {
		return errors.New("models: the batch is closed")
	}
	m.runs.RLock()
	defer m.runs.RUnlock()
	if m.closed.Load() {
		return ErrModelClosed
	}
	m.rt.runMu.RLock()
	defer m.rt.runMu.RUnlock()
	if m.rt.closed {
		return errors.New("models: the runtime is closed")
	}
	if !m.Recurrent() {
		b.ins[0] = b.inT[n-1]
		b.outs[0] = b.alphaT[n-1]
		if m.fgChannels > 0 {
			b.outs[1] = b.fgT[n-1]
		}
		return m.run(ctx, b, b.ins, b.outs)
	}
	if st == nil || st.m != m {
		return fmt.Errorf("models: %s is recurrent: Run needs a State from this model's NewState", m.man.ID)
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.step(ctx, b, i, st); err != nil {
			return err
		}
	}
	return nil
}

// step runs frame i of b through st.
func (m *Model) step(ctx context.Context, b *Batch, i int, st *State) error {
	// Until a first frame has gone through, st holds only the initial
	// states (st.out is nil): a failed first run leaves it that way.
	first := st.out == nil
	if st.in == nil {
		if err := st.init(); err != nil {
			return err
		}
	}
	rec := len(m.man.Recurrent)
	b.ins[0] = b.inT[i]
	copy(b.ins[1:1+rec], st.in)
	b.ins[1+rec] = st.ratio
	b.outs[0] = b.fgT[i]
	b.outs[1] = b.alphaT[i]
	if first {
		// The states' shapes are known only after the first frame: let
		// ONNX Runtime allocate them.
		clear(b.outs[2:])
	} else {
		copy(b.outs[2:], st.out)
	}
	if err := m.run(ctx, b, b.ins, b.outs); err != nil {
		if first {
			for _, v := range b.outs[2:] {
				if v != nil {
					v.Destroy()
				}
			}
		}
		return err
	}
	if first {
		for _, v := range st.in {
			v.Destroy()
		}
		st.in = slices.Clone(b.outs[2:])
		st.out = make([]ort.Value, rec)
		for j, v := range st.in {
			t, err := ort.NewEmptyTensor[float32](v.GetShape())
			if err != nil {
				return ortError("models: allocating recurrent state", err)
			}
			st.out[j] = t
		}
	} else {
		st.in, st.out = st.out, st.in
	}
	st.frames++
	return nil
}

// init creates the initial state tensors and the ratio input.
func (s *State) init() error {
	m := s.m
	s.in = make([]ort.Value, 0, len(m.man.Recurrent))
	for _, r := range m.man.Recurrent {
		shape := ort.NewShape(r.InitShape...)
		data := make([]float32, shape.FlattenedSize())
		if r.InitValue != 0 {
			for i := range data {
				data[i] = r.InitValue
			}
		}
		t, err := ort.NewTensor(shape, data)
		if err != nil {
			s.Close()
			return ortError("models: allocating recurrent state", err)
		}
		s.in = append(s.in, t)
	}
	ratio, err := ort.NewTensor(ort.NewShape(1), []float32{m.ratio})
	if err != nil {
		s.Close()
		return ortError("models: allocating the downsample ratio", err)
	}
	s.ratio = ratio
	return nil
}

// run runs the session once, stopping it when ctx is cancelled.
func (m *Model) run(ctx context.Context, b *Batch, ins, outs []ort.Value) error {
	var err error
	if ctx.Done() == nil {
		err = m.sess.dyn.RunWithOptions(ins, outs, b.opts)
	} else {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			b.opts.Terminate()
			close(fired)
		})
		err = m.sess.dyn.RunWithOptions(ins, outs, b.opts)
		if !stop() {
			<-fired
			b.opts.UnsetTerminate()
			if err != nil {
				return ctx.Err()
			}
		}
	}
	if err != nil {
		return ortError("models: running "+m.man.ID, err)
	}
	return nil
}
