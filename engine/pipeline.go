package engine

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
	"vidmatte"

	"vidmatte/codec"
	"vidmatte/models"
)

// source yields decoded frames in presentation order. The caller owns each
// frame it gets until it calls Release. (*codec.Decoder)
type source interface {
	Info() *codec.Info
	TimeBase() codec.Rational
	Next(ctx context.Context) (*codec.Frame, error)
	Close() error
}

// sink encodes frames with their alpha. WriteFrame takes its own references
// to what it keeps, so the caller still owns f and alpha afterwards. The
// pipeline gives a nil alpha: each frame carries its alpha plane
// (codec.Frame.AttachAlpha), which the encoder references rather than
// copies, and which no one writes once the frame is passed.
// (*codec.Encoder)
type sink interface {
	WriteFrame(f *codec.Frame, alpha []byte) error
	Close() error
	Abort()
}

// matter is a loaded model, with byte outputs (models.LoadOptions
// .ByteOutputs): the batch stage normalizes into its float slots, the
// model's graph quantizes, and the refine stage reads the alpha (and a
// chroma keyer's corrected U and V) as bytes. (*models.Model)
type matter interface {
	InputSize() (w, h int)
	Batch() int
	Color() string
	Recurrent() bool
	PerFrame() bool
	Device() models.Device
	LoadTime() time.Duration
	NewBatch() (*models.Batch, error)
	PrepareRGB(slot []float32, rgb []byte)
	PrepareUV(slot []float32, u []byte, uStride int, v []byte, vStride int)
	NewState() *models.State
	Run(ctx context.Context, b *models.Batch, n int, st *models.State) error
	Close() error
}

// Channel depths. Inside a job, stages block when the next one is behind
// (the backpressure policy); these depths bound the frames in flight, so
// memory does not grow with the video's length.
const (
	decodedDepth = 4 // decoded frames waiting to be prepared
	batchesDepth = 1 // filled batches waiting for the model (one more runs, one more refines)
	refinedDepth = 4 // frames with their alpha waiting for the encoder
	// batchesInFlight is how many batches a pipeline allocates: one
	// filling, one in the model, one being refined.
	batchesInFlight = 3
)

// batchWait is how long the batcher waits for more frames before it sends
// a batch that is not full.
const batchWait = 20 * time.Millisecond

// work is a batch of frames on its way from the batcher through the model
// to the refine stage. The stage that holds a work owns its frames and must
// release them or pass them on.
type work struct {
	mb     *models.Batch
	frames []*codec.Frame
}

func (w *work) release() {
	for i, f := range w.frames {
		f.Release()
		w.frames[i] = nil
	}
	w.frames = w.frames[:0]
}

// matted is one frame with its alpha plane at frame size attached, from
// refine to encode. The encode stage owns the frame, and with it the
// plane.
type matted struct {
	frame *codec.Frame
}

// pipeline is one request's run: the stages and what they share.
type pipeline struct {
	src    source
	model  matter
	sink   sink
	info   *codec.Info
	smooth bool
	// refineEdges: the alpha of a model that runs below the frame's size is
	// refined against the frame's luma (guidedFilter).
	refineEdges bool

	progress func(Progress)
	every    time.Duration
	start    time.Time
	total    int64

	maxFrames int64 // > 0: the decode stage fails past this many frames

	done      int64         // frames encoded (written by the encode stage only)
	inferTime time.Duration // written by the infer stage only

	// clocks: each stage's own, written by that stage only and read after
	// run has waited for all of them.
	clocks [numStages]stageClock
}

// The stages, in order, as vidmatte.StageTime names them.
const (
	stageDecode = iota
	stageBatch
	stageInfer
	stageRefine
	stageEncode
	numStages
)

var stageNames = [numStages]string{"decode", "batch", "infer", "refine", "encode"}

// stageClock measures one stage: how long it waited on its channels (for
// input, for a free batch or alpha buffer, for room downstream); the rest
// of its life it was busy.
type stageClock struct {
	wait time.Duration
	life time.Duration
	// The stage's input queue: its capacity, how many times the stage took
	// from it and the items it found waiting.
	capacity      int
	takes, queued int64
}

// waited adds the time since t to the waits.
func (c *stageClock) waited(t time.Time) { c.wait += time.Since(t) }

// taking records the depth of the stage's input queue as it takes from it.
func (c *stageClock) taking(depth int) {
	c.takes++
	c.queued += int64(depth)
}

// stages is what the clocks measured.
func (p *pipeline) stages() []vidmatte.StageTime {
	out := make([]vidmatte.StageTime, numStages)
	for i, c := range p.clocks {
		out[i] = vidmatte.StageTime{Name: stageNames[i], Busy: max(c.life-c.wait, 0), Wait: c.wait,
			Takes: c.takes, Queued: c.queued, Capacity: c.capacity}
	}
	return out
}

// run starts the stages and waits for all of them. The first error ends
// the run: it cancels the others, and every frame still in a channel is
// released before run returns.
func (p *pipeline) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	inW, inH := p.model.InputSize()
	nb := max(p.model.Batch(), 1)

	// Batches cycle: free → batcher → infer → refine → free. Three in all:
	// one filling, one in the model, one being refined.
	free := make(chan *work, batchesInFlight)
	var all []*work
	defer func() {
		for _, w := range all {
			w.mb.Close()
		}
	}()
	for range batchesInFlight {
		mb, err := p.model.NewBatch()
		if err != nil {
			return err
		}
		w := &work{mb: mb, frames: make([]*codec.Frame, 0, nb)}
		all = append(all, w)
		free <- w
	}

	decoded := make(chan *codec.Frame, decodedDepth)
	filled := make(chan *work, batchesDepth)
	inferred := make(chan *work, batchesDepth)
	refined := make(chan matted, refinedDepth)
	// Alpha planes, in C memory the encoder references: those of the frames
	// in the refined channel, the one being encoded and those the encoder
	// still holds, the one held by the temporal filter, the one being
	// refined. Each comes back to the pool when libavcodec drops it.
	alphas, err := codec.NewAlphaPool(p.info.Width, p.info.Height)
	if err != nil {
		return err
	}
	defer alphas.Close()

	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	// A panic in a stage is that stage's error: it ends this run, and only
	// this run, like any other failure (a goroutine's panic is not caught
	// by the recover of the goroutine that started it).
	stage := func(i int, f func(context.Context, *stageClock) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &p.clocks[i]
			t := time.Now()
			defer func() { c.life = time.Since(t) }()
			if err := protect(stageNames[i]+" stage", func() error { return f(ctx, c) }); err != nil {
				fail(err)
			}
		}()
	}

	p.clocks[stageBatch].capacity = cap(decoded)
	p.clocks[stageInfer].capacity = cap(filled)
	p.clocks[stageRefine].capacity = cap(inferred)
	p.clocks[stageEncode].capacity = cap(refined)
	stage(stageDecode, func(ctx context.Context, c *stageClock) error { return p.decode(ctx, c, decoded) })
	stage(stageBatch, func(ctx context.Context, c *stageClock) error {
		return p.batch(ctx, c, decoded, free, filled, nb, inW, inH)
	})
	stage(stageInfer, func(ctx context.Context, c *stageClock) error { return p.infer(ctx, c, filled, inferred) })
	stage(stageRefine, func(ctx context.Context, c *stageClock) error {
		return p.refine(ctx, c, inferred, free, alphas, refined, inW, inH)
	})
	stage(stageEncode, func(ctx context.Context, c *stageClock) error { return p.encode(ctx, c, refined) })
	wg.Wait()

	// Whatever is still in flight after an error is released here; after a
	// clean run every channel is empty. The nil values are end markers.
	close(decoded)
	for f := range decoded {
		if f != nil {
			f.Release()
		}
	}
	for _, ch := range []chan *work{filled, inferred, free} {
		close(ch)
		for w := range ch {
			if w != nil {
				w.release()
			}
		}
	}
	close(refined)
	for m := range refined {
		if m.frame != nil {
			m.frame.Release()
		}
	}
	// A stage that panicked while it held a batch left its frames in it:
	// every frame a batch still lists is owned by that batch.
	for _, w := range all {
		for i, f := range w.frames {
			if f != nil {
				f.Release()
				w.frames[i] = nil
			}
		}
		w.frames = w.frames[:0]
	}
	if firstErr != nil {
		return firstErr
	}
	return parent.Err()
}

// frameMemory is the pipeline's own memory for a video, for the model's
// memory budget (models.EstimateMemory): a decoded frame is counted at 4
// bytes a pixel (up to 4:2:2 10-bit, or 8-bit 4:4:4 with the alpha plane
// attached), one per slot of every batch in flight, plus the frames
// queued before the batcher and after refinement, the two held by the
// temporal filter and the encoder, and the alpha planes and the filter's
// planes, a byte a pixel each.
func frameMemory(info *codec.Info) models.FrameMemory {
	px := int64(info.Width) * int64(info.Height)
	frame := 4 * px
	return models.FrameMemory{
		Batches: batchesInFlight,
		PerSlot: frame,
		Fixed:   (decodedDepth+refinedDepth+2)*frame + (refinedDepth+3+4)*px,
	}
}

// send puts v on ch unless ctx ends first. The time it blocks counts as
// c's wait.
func send[T any](ctx context.Context, c *stageClock, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	default:
	}
	defer c.waited(time.Now())
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decode reads frames from the source. It owns each frame until the send
// succeeds; after that the batcher owns it. A nil frame marks the end.
func (p *pipeline) decode(ctx context.Context, c *stageClock, out chan<- *codec.Frame) error {
	for n := int64(1); ; n++ {
		f, err := p.src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return send(ctx, c, out, nil)
		}
		if err != nil {
			return err
		}
		if p.maxFrames > 0 && n > p.maxFrames {
			f.Release()
			return vidmatte.Errorf(vidmatte.CodeUnprocessable,
				"the video runs on past the %d frames its declared duration covers (and was reserved for): its container understates its length", p.maxFrames)
		}
		if err := send(ctx, c, out, f); err != nil {
			f.Release()
			return err
		}
	}
}

// batch prepares each frame into a slot of the batch being filled, and
// sends the batch on when it is full, when no frame has come for batchWait,
// or at the end. The frames travel with their batch. A nil work marks the
// end.
func (p *pipeline) batch(ctx context.Context, c *stageClock, in <-chan *codec.Frame, free <-chan *work, out chan<- *work, nb, inW, inH int) error {
	var rgb []byte
	var scaler *codec.RGBScaler
	if p.model.Color() == models.ColorRGB {
		s, err := codec.NewRGBScaler(p.info.Width, p.info.Height, inW, inH)
		if err != nil {
			return err
		}
		defer s.Close()
		scaler, rgb = s, make([]byte, 3*inW*inH)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var cur *work
	flush := func() error {
		if cur == nil {
			return nil
		}
		w := cur
		cur = nil
		timer.Stop()
		if err := send(ctx, c, out, w); err != nil {
			w.release()
			return err
		}
		return nil
	}
	defer func() {
		if cur != nil {
			cur.release()
		}
	}()

	for {
		var f *codec.Frame
		var ok bool
		c.taking(len(in))
		t := time.Now()
		select {
		case f, ok = <-in:
		case <-timer.C:
			c.waited(t)
			if err := flush(); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		c.waited(t)
		if !ok || f == nil {
			if err := flush(); err != nil {
				return err
			}
			return send(ctx, c, out, nil)
		}
		if cur == nil {
			t := time.Now()
			select {
			case cur = <-free:
			case <-ctx.Done():
				f.Release()
				return ctx.Err()
			}
			c.waited(t)
		}
		slot := cur.mb.Slot(len(cur.frames))
		cur.frames = append(cur.frames, f) // owned by cur from here
		if scaler != nil {
			if err := scaler.Scale(f, rgb); err != nil {
				return err
			}
			p.model.PrepareRGB(slot, rgb)
		} else {
			u, us := f.Plane(1)
			v, vs := f.Plane(2)
			p.model.PrepareUV(slot, u, us, v, vs)
		}
		if len(cur.frames) == nb {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if len(cur.frames) == 1 {
			timer.Reset(batchWait)
		}
	}
}

// infer runs the model on each batch. Recurrent state lives here for the
// whole request. A nil work marks the end.
func (p *pipeline) infer(ctx context.Context, c *stageClock, in <-chan *work, out chan<- *work) error {
	st := p.model.NewState()
	if st != nil {
		defer st.Close()
	}
	for {
		var w *work
		c.taking(len(in))
		t := time.Now()
		select {
		case w = <-in:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.waited(t)
		if w == nil {
			return send(ctx, c, out, nil)
		}
		t = time.Now()
		err := protect("model", func() error { return p.model.Run(ctx, w.mb, len(w.frames), st) })
		if err != nil {
			w.release()
			return err
		}
		p.inferTime += time.Since(t)
		if err := send(ctx, c, out, w); err != nil {
			w.release()
			return err
		}
	}
}

// refine turns each frame's model-size alpha (bytes, quantized by the
// model's graph) into a frame-size matte: upscaled (and, for
// low-resolution models, refined against the frame's luma by a guided
// filter), and, when the model corrects the
// foreground's colour (spill suppression, RVM's fgr), its chroma written
// into the frame's chroma planes (at the edges only, for fgr); then, for
// per-frame models, smoothed in time (which holds one frame back until the
// next one's alpha is known). Frames go on one by one in order; the emptied
// batch goes back to the batcher. A matted with a nil frame marks the end.
func (p *pipeline) refine(ctx context.Context, c *stageClock, in <-chan *work, free chan<- *work, alphas *codec.AlphaPool, out chan<- matted, inW, inH int) error {
	w, h := p.info.Width, p.info.Height
	var scaler *codec.GrayScaler
	if inW != w || inH != h {
		s, err := codec.NewGrayScaler(inW, inH, w, h)
		if err != nil {
			return err
		}
		defer s.Close()
		scaler = s
	}
	var gf *guidedFilter
	if p.refineEdges && scaler != nil {
		gf = newGuidedFilter(w, h, inW, inH)
	}
	var tf *temporalFilter
	if p.smooth {
		tf = newTemporalFilter(w, h)
		defer tf.release() // what it still holds after an error
	}
	// pass sends a frame (with its alpha plane) on; after a failure it
	// releases it itself.
	pass := func(f *codec.Frame) error {
		if err := send(ctx, c, out, matted{frame: f}); err != nil {
			f.Release()
			return err
		}
		return nil
	}

	for {
		var wk *work
		c.taking(len(in))
		t := time.Now()
		select {
		case wk = <-in:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.waited(t)
		if wk == nil {
			if tf != nil {
				if f, _, ok := tf.finish(); ok {
					if err := pass(f); err != nil {
						return err
					}
				}
			}
			return send(ctx, c, out, matted{})
		}
		for i, f := range wk.frames {
			a, err := alphas.Get()
			if err != nil {
				releaseFrom(wk, i)
				return err
			}
			alpha, as := a.Plane()
			err = protect("refine", func() error {
				if err := p.refineOne(f, wk.mb, i, alpha, as, scaler, inW, inH); err != nil {
					return err
				}
				if gf != nil {
					y, ys := f.Plane(0)
					gf.apply(alpha, as, y, ys)
				}
				return nil
			})
			if err == nil {
				// The frame takes the plane over; it is written (by the
				// temporal filter) until the frame is passed to the encoder.
				err = f.AttachAlpha(a)
			}
			if err != nil {
				a.Release()
				releaseFrom(wk, i)
				return err
			}
			wk.frames[i] = nil // owned by this stage, then the filter or the encode stage
			if tf != nil {
				y, ys := f.Plane(0)
				var ok bool
				if f, _, ok = tf.push(f, y, ys, alpha, as); !ok {
					continue
				}
			}
			if err := pass(f); err != nil {
				releaseFrom(wk, i+1)
				return err
			}
		}
		wk.frames = wk.frames[:0]
		if err := send(ctx, c, free, wk); err != nil {
			return err
		}
	}
}

// releaseFrom releases the frames of w from index i on: those before it
// were passed on already.
func releaseFrom(w *work, i int) {
	for j := i; j < len(w.frames); j++ {
		w.frames[j].Release()
		w.frames[j] = nil
	}
	w.frames = w.frames[:0]
}

// refineOne writes frame i's alpha into alpha (the frame's size, rows of
// stride as) and the model's foreground colour, if any, into the frame.
func (p *pipeline) refineOne(f *codec.Frame, mb *models.Batch, i int, alpha []byte, as int, scaler *codec.GrayScaler, inW, inH int) error {
	a := mb.AlphaBytes(i)
	if scaler != nil {
		if err := scaler.ScaleInto(a, alpha, as); err != nil {
			return err
		}
	} else {
		copyRows(alpha, as, a, inW, inH)
	}
	if fg := mb.ForegroundBytes(i); fg != nil {
		// writeChroma overwrites U and V whole and leaves Y: only the
		// chroma needs to be the frame's own, uncopied.
		if err := f.OwnChroma(); err != nil {
			return err
		}
		writeChroma(f, fg, inW, inH)
	} else if fg := mb.ForegroundRGB(i); fg != nil && scaler == nil {
		// A model that gives its foreground's colour at the frame's
		// size (RVM's fgr): the edges take it.
		if err := f.MakeWritable(); err != nil {
			return err
		}
		decontaminate(f, fg, mb.ForegroundInterleaved(), alpha, as)
	}
	return nil
}

// copyRows copies a w×h plane (tightly packed) into dst (rows of stride
// ds).
func copyRows(dst []byte, ds int, src []byte, w, h int) {
	if ds == w {
		copy(dst[:w*h], src[:w*h])
		return
	}
	for y := range h {
		copy(dst[y*ds:y*ds+w], src[y*w:(y+1)*w])
	}
}

// toByte rounds v to the nearest of 0..255 (NaN gives 0). A hot path:
// one predictable branch, the low clamp on integers.
func toByte(v float32) byte {
	if v >= 255 {
		return 255
	}
	return byte(max(int32(v+0.5), 0))
}

// writeChroma replaces the frame's U and V planes with the model's
// corrected chroma: two planes of inW×inH bytes, copied as they are when
// they have the chroma planes' size (a "uv" model), else sampled at the
// nearest point.
func writeChroma(f *codec.Frame, fg []byte, inW, inH int) {
	w, h := f.Width(), f.Height()
	cw, ch := (w+1)/2, (h+1)/2
	n := inW * inH
	same := inW == cw && inH == ch
	for plane := 1; plane <= 2; plane++ {
		dst, stride := f.Plane(plane)
		src := fg[(plane-1)*n : plane*n]
		if same {
			copyRows(dst, stride, src, cw, ch)
			continue
		}
		for cy := 0; cy < ch; cy++ {
			row := dst[cy*stride : cy*stride+cw]
			sy := min((2*cy*inH+inH/2)/h, inH-1)
			r := src[sy*inW : (sy+1)*inW]
			for cx := range row {
				row[cx] = r[min((2*cx*inW+inW/2)/w, inW-1)]
			}
		}
	}
}

// encode writes each frame with its alpha plane, releases the frame (the
// encoder keeps what it needs) and reports progress.
func (p *pipeline) encode(ctx context.Context, c *stageClock, in <-chan matted) error {
	last := time.Now()
	for {
		var m matted
		c.taking(len(in))
		t := time.Now()
		select {
		case m = <-in:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.waited(t)
		if m.frame == nil {
			p.report(true)
			return nil
		}
		err := protect("encoder", func() error { return p.sink.WriteFrame(m.frame, nil) })
		m.frame.Release()
		if err != nil {
			return err
		}
		p.done++
		if time.Since(last) >= p.every {
			last = time.Now()
			p.report(false)
		}
	}
}

// report calls the progress callback.
func (p *pipeline) report(final bool) {
	if p.progress == nil {
		return
	}
	elapsed := time.Since(p.start)
	pr := Progress{FramesDone: p.done, FramesTotal: max(p.total, p.done), Elapsed: elapsed}
	if final {
		pr.FramesTotal = p.done
	}
	if elapsed > 0 {
		pr.FPS = float64(p.done) / elapsed.Seconds()
	}
	if pr.FPS > 0 && pr.FramesTotal > p.done {
		pr.ETA = time.Duration(float64(pr.FramesTotal-p.done) / pr.FPS * float64(time.Second))
	}
	p.progress(pr)
}
