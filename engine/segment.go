package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/fsx"
	"vidmatte/models"
)

// SegmentJournal keeps a request's segments: the plan, the claims and the
// finished parts (the runner's is the store plus the artifact storage,
// fenced by the job's lease and each segment's own). A request processed
// through one follows the plan, claims segments as it goes and records
// each part as soon as it is finished; segments recorded already are not
// processed again, so an interrupted job resumes where it stopped, and
// several workers can share one job.
type SegmentJournal interface {
	// Plan returns the job's plan, recording p when it has none yet.
	Plan(ctx context.Context, p vidmatte.SegmentPlan) (vidmatte.SegmentPlan, error)
	// Next claims a segment to start at (PickSegment's choice); ok is
	// false when none is worth taking now.
	Next(ctx context.Context) (seq int, ok bool, err error)
	// Continue claims segment seq, the one after those a run has just
	// processed; false when it is recorded or another worker has it.
	Continue(ctx context.Context, seq int) (bool, error)
	// State says where the job's segments stand.
	State(ctx context.Context) (vidmatte.JobSegments, error)
	// PartPath is a local path for writing part seq, of extension ext.
	PartPath(seq int, ext string) (string, error)
	// Record keeps the finished part at local (it may move it; "" for a
	// segment without frames) and records s, claimed by this journal.
	Record(ctx context.Context, s vidmatte.Segment, local string) error
	// Local returns a local file of a recorded part and its release.
	Local(ctx context.Context, ref string) (string, func(), error)
}

// DefaultSegmentLength is how long a segment is when a request says not.
const DefaultSegmentLength = 4 * time.Second

// DefaultWarmUp is how many frames before a segment it starts at a
// recurrent model runs on to rebuild its state (measured: see
// TestRecurrentWarmUp).
const DefaultWarmUp = 16

// segmentPoll is how often a request whose remaining segments other
// workers hold looks whether they are recorded (or their claims ran out).
const segmentPoll = 200 * time.Millisecond

// SegmentCounts says what a segmented request's run did, for the cost of
// resuming and sharing: Resumed segments (ResumedFrames frames) were
// recorded before it started; it recorded Recorded, in Runs stretches
// (each but a run from the first segment starts with a seek); it decoded
// Decoded frames and ran the model on Inferred, of which WarmUp only
// warmed the model's state (or the smoothing).
type SegmentCounts struct {
	Resumed       int
	ResumedFrames int64
	Recorded      int
	Runs          int
	Decoded       int64
	Inferred      int64
	WarmUp        int64
}

// errRunEnds ends a run at the start of a segment another worker holds.
var errRunEnds = errors.New("the next segment is another worker's")

// processSegmented runs a request whose Segments journal is set.
func (e *Engine) processSegmented(ctx context.Context, r Request, manifest *models.Manifest, start time.Time) (*Result, error) {
	segLen := r.SegmentLength
	if segLen <= 0 {
		segLen = DefaultSegmentLength
	}
	src, err := e.openSource(r.Input, e.cfg.DecoderThreads)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	info := src.Info()
	tb := src.TimeBase()
	encOpts := codec.EncoderOptions{
		Format:      r.Format,
		Width:       info.Width,
		Height:      info.Height,
		TimeBase:    tb,
		FrameRate:   info.FrameRate,
		Background:  r.Background,
		Composition: r.Composition,
		Settings:    e.cfg.Encoder,

		MaxBackgroundPixels: e.cfg.MaxBackgroundPixels,
	}
	plan, err := r.Segments.Plan(ctx, planFor(src, info, segLen))
	if err != nil {
		return nil, err
	}
	state, err := r.Segments.State(ctx)
	if err != nil {
		return nil, err
	}
	counts := SegmentCounts{Resumed: len(state.Done), ResumedFrames: state.Frames()}
	s := &segmenter{e: e, r: r, manifest: manifest, src: src, info: info, plan: plan, opts: encOpts,
		counts: &counts, start: start, recorded: state.Frames()}
	defer s.close()
	for !state.Complete() {
		seq, ok, err := r.Segments.Next(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := s.run(ctx, seq); err != nil {
				return nil, err
			}
		} else if r.Help {
			break
		} else {
			// The others are another worker's: wait for them to be
			// recorded, or for a claim that runs out.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(segmentPoll):
			}
		}
		if state, err = r.Segments.State(ctx); err != nil {
			return nil, err
		}
		s.recorded = state.Frames()
		if r.Progress != nil && !r.Help {
			// Progress counts the segments every worker recorded.
			total := max(estimateFrames(info), s.recorded)
			r.Progress(Progress{FramesDone: s.recorded, FramesTotal: total, Elapsed: time.Since(start)})
		}
	}
	res := &Result{Model: manifest.ID, Width: info.Width, Height: info.Height, Segments: &counts}
	if r.Help {
		res.Frames = s.written
	} else {
		if res.Frames, err = e.join(ctx, r, info, encOpts, plan, state.Done); err != nil {
			return nil, err
		}
		if r.MaxFrames > 0 && res.Frames > r.MaxFrames {
			os.Remove(r.Output)
			return nil, vidmatte.Errorf(vidmatte.CodeUnprocessable,
				"the video runs on past the %d frames its declared duration covers (and was reserved for): its container understates its length", r.MaxFrames)
		}
	}
	res.Elapsed = time.Since(start)
	if s.m != nil {
		res.LoadTime, res.Device = s.m.LoadTime(), s.m.Device()
	}
	if s.p != nil {
		res.InferTime, res.Stages = s.inferTime, s.p.stages()
	}
	if res.Elapsed > 0 {
		res.FPS = float64(counts.Inferred) / res.Elapsed.Seconds()
	}
	e.log.Debug("processed in segments", "input", r.Input, "model", res.Model, "frames", res.Frames, "help", r.Help,
		"segments", plan.Count, "resumed", counts.Resumed, "runs", counts.Runs, "inferred", counts.Inferred, "warm_up", counts.WarmUp)
	return res, nil
}

// planFor is the plan a job's first claim records: segments of segLen
// from the stream's start, as many as its declared duration needs.
func planFor(src source, info *codec.Info, segLen time.Duration) vidmatte.SegmentPlan {
	tb := src.TimeBase()
	p := vidmatte.SegmentPlan{Length: durationTicks(segLen, tb), Count: 1}
	if st, ok := src.(interface{ StartPTS() int64 }); ok {
		p.Origin = st.StartPTS()
	}
	if info.Duration > 0 {
		n := (durationTicks(info.Duration, tb) + p.Length - 1) / p.Length
		p.Count = int(min(max(n, 1), vidmatte.MaxSegments))
	}
	return p
}

// segmenter processes a request's segments in runs: a run starts at a
// claimed segment and goes on through the following ones while the
// journal gives them, with one pipeline; the model is loaded once for
// all of them.
type segmenter struct {
	e        *Engine
	r        Request
	manifest *models.Manifest
	src      source
	info     *codec.Info
	plan     vidmatte.SegmentPlan
	opts     codec.EncoderOptions
	counts   *SegmentCounts
	start    time.Time

	m         matter
	smooth    bool
	warm      int
	read      bool // the source has given frames: a run from 0 seeks back
	p         *pipeline
	inferTime time.Duration
	recorded  int64 // frames recorded, by every worker, at the last look
	written   int64 // frames written into parts by this request
}

func (s *segmenter) close() {
	if s.m != nil {
		s.m.Close()
	}
}

func (s *segmenter) load() error {
	if s.m != nil {
		return nil
	}
	m, err := s.e.loadMatter(s.manifest, s.r, s.info)
	if err != nil {
		return err
	}
	s.m, s.smooth = m, smoothingFor(s.r.Smoothing, m)
	if m.Recurrent() {
		switch s.warm = s.r.WarmUp; {
		case s.warm == 0:
			s.warm = DefaultWarmUp
		case s.warm < 0:
			s.warm = 0
		}
	}
	if s.smooth {
		s.warm = max(s.warm, 1) // the median of three needs the frame before
	}
	return nil
}

// run processes segment seq, claimed, and those after it the journal
// gives it.
func (s *segmenter) run(ctx context.Context, seq int) error {
	if err := s.load(); err != nil {
		return err
	}
	s.counts.Runs++
	ss := &segmentSource{source: s.src, origin: s.plan.Origin}
	defer ss.drop() // the warm frames it may hold after an error
	sk := &segmentSink{journal: s.r.Segments, opts: s.opts, plan: s.plan, seq: seq}
	defer sk.Abort()
	switch from := s.plan.Start(seq); {
	case seq > 0:
		// Far enough back for the warm frames, at the frame rate.
		ss.from, ss.warm = from, s.warm
		if err := ss.seek(max(from-int64(s.warm+1)*frameTicks(s.info.FrameRate, s.src.TimeBase()), s.plan.Origin)); err != nil {
			return err
		}
		sk.skipBefore, sk.skipping = from, true
	case s.read:
		if err := ss.seek(s.plan.Origin); err != nil {
			return err
		}
	}
	s.read = true
	total := max(estimateFrames(s.info), s.recorded)
	p := &pipeline{
		src: ss, model: s.m, sink: sk, info: s.info,
		smooth:      s.smooth,
		refineEdges: refineFor(s.r.Refine, s.manifest),
		every:       s.r.ProgressEvery,
		start:       s.start, total: total,
	}
	if s.r.MaxFrames > 0 {
		p.maxFrames = s.r.MaxFrames + int64(s.warm)
	}
	if s.r.Progress != nil {
		// Reported from the encode stage, which alone writes sk's counts.
		before, recorded := s.written, s.recorded
		p.progress = func(pr Progress) {
			mine := before + sk.written
			doneNow := recorded + sk.written
			out := Progress{FramesDone: doneNow, FramesTotal: max(total, doneNow), Elapsed: pr.Elapsed}
			if pr.Elapsed > 0 {
				out.FPS = float64(mine) / pr.Elapsed.Seconds()
			}
			if out.FPS > 0 && out.FramesTotal > doneNow {
				out.ETA = time.Duration(float64(out.FramesTotal-doneNow) / out.FPS * float64(time.Second))
			}
			s.r.Progress(out)
		}
	}
	if p.every <= 0 {
		p.every = 250 * time.Millisecond
	}
	err := p.run(ctx)
	if err == nil {
		// The video ended: the segment being written, and those after it
		// that are still free (the video is shorter than declared), are
		// finished.
		err = sk.finish(ctx)
	}
	s.p, s.inferTime = p, s.inferTime+p.inferTime
	s.counts.Decoded += ss.decoded
	s.counts.Inferred += p.done
	s.counts.WarmUp += sk.dropped
	s.counts.Recorded += sk.recorded
	s.written += sk.written
	if errors.Is(err, errRunEnds) || errors.Is(err, vidmatte.ErrLeaseLost) && ctx.Err() == nil {
		// The next segment, or the one being recorded, is another
		// worker's: this run is over, the request goes on with the next.
		return nil
	}
	var pe *PanicError
	if err != nil && ctx.Err() != nil && !errors.As(err, &pe) {
		return ctx.Err()
	}
	return err
}

// frameTicks is how many ticks of tb a frame lasts at rate (at least 1).
func frameTicks(rate, tb codec.Rational) int64 {
	if !rate.Valid() || !tb.Valid() {
		return 1
	}
	return max(int64(math.Round(float64(tb.Den)*float64(rate.Den)/(float64(tb.Num)*float64(rate.Num)))), 1)
}

// join writes the output from the recorded parts, atomically.
func (e *Engine) join(ctx context.Context, r Request, info *codec.Info, encOpts codec.EncoderOptions, plan vidmatte.SegmentPlan, done []vidmatte.Segment) (int64, error) {
	if len(done) != plan.Count {
		return 0, vidmatte.Errorf(vidmatte.CodeInternal, "the output's parts are not all recorded")
	}
	var parts []vidmatte.Segment
	var want int64
	for i, s := range done {
		if s.Seq != i {
			return 0, vidmatte.Errorf(vidmatte.CodeInternal, "the recorded segments are not in order")
		}
		if s.Frames > 0 {
			parts = append(parts, s)
			want += s.Frames
		}
	}
	if len(parts) == 0 {
		return 0, vidmatte.Errorf(vidmatte.CodeUnprocessable, "the video holds no frame")
	}
	tmp, err := partialPath(r.Output)
	if err != nil {
		return 0, err
	}
	offsets := make([]int64, len(parts))
	for i, s := range parts {
		offsets[i] = s.FirstPTS - parts[0].FirstPTS
	}
	frames, err := codec.Join(ctx, tmp, codec.JoinOptions{
		Format: r.Format, Parts: len(parts), Offsets: offsets, TimeBase: encOpts.TimeBase,
		Part:      func(i int) (string, func(), error) { return r.Segments.Local(ctx, parts[i].Path) },
		AudioFrom: audioSource(r.Input, info, r.Format), Origin: parts[0].FirstPTS,
		Encoder: encOpts, Settings: e.cfg.Encoder,
	})
	if err != nil {
		return 0, err
	}
	if frames != want {
		os.Remove(tmp)
		return 0, vidmatte.Errorf(vidmatte.CodeInternal, "the joined output holds %d frames, its parts were recorded with %d", frames, want)
	}
	if err := fsx.Rename(tmp, r.Output); err != nil {
		os.Remove(tmp)
		return 0, vidmatte.Wrap(err, vidmatte.CodeInternal, "writing the output")
	}
	return frames, nil
}

// durationTicks is d in units of tb (at least 1).
func durationTicks(d time.Duration, tb codec.Rational) int64 {
	if !tb.Valid() {
		return 1
	}
	return max(int64(math.Round(d.Seconds()*float64(tb.Den)/float64(tb.Num))), 1)
}

// seeker is a source that can go on from a timestamp (*codec.Decoder).
type seeker interface {
	SeekTo(pts int64) error
}

// segmentSource gives the frames from a segment a run starts at (from)
// on, led by the warm frames just before it; the frames before those,
// decoded from the keyframe the seek landed on, are dropped. It counts
// the frames it decoded.
type segmentSource struct {
	source
	from, origin int64
	warm         int
	resuming     bool
	fresh        bool           // no frame decoded since the last seek
	target       int64          // where the last seek was asked to go
	ring         []*codec.Frame // the last warm frames before from
	queue        []*codec.Frame // warm frames waiting to be given out
	decoded      int64
}

func (s *segmentSource) seek(pts int64) error {
	sk, ok := s.source.(seeker)
	if !ok {
		return vidmatte.Errorf(vidmatte.CodeInternal, "the source cannot resume a segment")
	}
	s.resuming, s.fresh, s.target = true, true, pts
	return sk.SeekTo(pts)
}

// Next gives the next frame (the caller owns it).
func (s *segmentSource) Next(ctx context.Context) (*codec.Frame, error) {
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		return f, nil
	}
	for {
		f, err := s.source.Next(ctx)
		if err != nil {
			// At the end before from, the segment holds no frame (the
			// video is shorter than its container declared).
			s.drop()
			return nil, err
		}
		s.decoded++
		if s.fresh {
			s.fresh = false
			if f.PTS() > s.target && s.target > s.origin {
				// The seek landed past where it was asked to: go on from
				// the video's first frame instead.
				f.Release()
				s.drop()
				if err := s.seek(s.origin); err != nil {
					return nil, err
				}
				continue
			}
		}
		if !s.resuming {
			return f, nil
		}
		if f.PTS() >= s.from {
			s.resuming = false
			if len(s.ring) == 0 {
				return f, nil
			}
			first := s.ring[0]
			s.queue = append(s.ring[1:], f)
			s.ring = nil
			return first, nil
		}
		if s.warm == 0 {
			f.Release()
			continue
		}
		s.ring = append(s.ring, f)
		if len(s.ring) > s.warm {
			s.ring[0].Release()
			s.ring = append(s.ring[:0], s.ring[1:]...)
		}
	}
}

func (s *segmentSource) drop() {
	for _, f := range s.ring {
		f.Release()
	}
	for _, f := range s.queue {
		f.Release()
	}
	s.ring, s.queue = nil, nil
}

// Close releases what the source still holds and closes it.
func (s *segmentSource) Close() error {
	s.drop()
	return s.source.Close()
}

// part is one segment's output being written (*codec.Encoder or
// *codec.Intermediate).
type part interface {
	WriteFrame(f *codec.Frame, alpha []byte) error
	Close() error
	Abort()
}

// segmentSink writes the frames into one part per segment of the plan,
// from the one its run was claimed for: at the first frame of the next
// segment the part is closed and recorded, and the run goes on only if
// the journal gives it that segment (else the sink ends the run with
// errRunEnds). Frames before skipBefore (a run's warm-up) are dropped.
// Only the encode stage calls it.
type segmentSink struct {
	journal    SegmentJournal
	opts       codec.EncoderOptions
	plan       vidmatte.SegmentPlan
	seq        int // the segment claimed, being written
	skipBefore int64
	skipping   bool

	cur      part
	curPath  string
	first    int64
	frames   int64
	written  int64 // frames written into parts by this run
	dropped  int64 // warm-up frames
	recorded int   // segments recorded by this run
}

func (s *segmentSink) WriteFrame(f *codec.Frame, alpha []byte) error {
	if s.skipping && f.PTS() < s.skipBefore {
		s.dropped++
		return nil
	}
	if k := s.plan.Of(f.PTS()); k > s.seq {
		// The frame starts a later segment: the claimed one is finished
		// (those between, after a gap in the video, hold no frame).
		for s.seq < k {
			if err := s.record(context.Background()); err != nil {
				return err
			}
			ok, err := s.journal.Continue(context.Background(), s.seq+1)
			if err != nil {
				return err
			}
			if !ok {
				return errRunEnds
			}
			s.seq++
		}
	}
	if s.cur == nil {
		ext := s.opts.Format.Extension()
		if !codec.JoinsByCopy(s.opts.Format) {
			ext = codec.IntermediateExtension
		}
		path, err := s.journal.PartPath(s.seq, ext)
		if err != nil {
			return err
		}
		var p part
		if codec.JoinsByCopy(s.opts.Format) {
			p, err = codec.NewEncoder(path, s.opts)
		} else {
			p, err = codec.NewIntermediate(path, s.opts.Width, s.opts.Height, s.opts.TimeBase, s.opts.FrameRate)
		}
		if err != nil {
			return err
		}
		s.cur, s.curPath, s.first, s.frames = p, path, f.PTS(), 0
	}
	if err := s.cur.WriteFrame(f, alpha); err != nil {
		return err
	}
	s.frames++
	s.written++
	return nil
}

// record finishes the claimed segment's part (none when it holds no
// frame) and records the segment.
func (s *segmentSink) record(ctx context.Context) error {
	seg := vidmatte.Segment{Seq: s.seq}
	local := ""
	if p := s.cur; p != nil {
		s.cur = nil
		if err := p.Close(); err != nil {
			os.Remove(s.curPath)
			return fmt.Errorf("finishing a %s part: %w", s.opts.Format, err)
		}
		seg.FirstPTS, seg.Frames, local = s.first, s.frames, s.curPath
	}
	if err := s.journal.Record(ctx, seg, local); err != nil {
		if local != "" {
			os.Remove(local)
		}
		return err
	}
	s.recorded++
	return nil
}

// finish, at the end of the video, records the claimed segment and every
// later one the journal gives (they hold no frame).
func (s *segmentSink) finish(ctx context.Context) error {
	if err := s.record(ctx); err != nil {
		return err
	}
	for seq := s.seq + 1; seq < s.plan.Count; seq++ {
		ok, err := s.journal.Continue(ctx, seq)
		if err != nil {
			return err
		}
		if ok {
			s.seq = seq
			if err := s.record(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close is the pipeline's sink end: the parts are finished by finish.
func (s *segmentSink) Close() error { return nil }

// Abort drops the part being written (those recorded stay).
func (s *segmentSink) Abort() {
	if s.cur != nil {
		s.cur.Abort()
		s.cur = nil
	}
}
