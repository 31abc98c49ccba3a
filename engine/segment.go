package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/fsx"
	"vidmatte/models"
)

// SegmentJournal keeps a request's finished segments (the runner's is
// the store plus the artifact storage, fenced by the job's lease). A
// request processed through one writes its output in parts, one per
// segment of SegmentLength, each kept and recorded as soon as it is
// finished; a request that finds segments recorded resumes after them,
// and the output is joined from all the parts at the end.
type SegmentJournal interface {
	// Done returns the segments recorded so far, in order.
	Done(ctx context.Context) ([]vidmatte.Segment, error)
	// PartPath is a local path for writing part seq, of extension ext.
	PartPath(seq int, ext string) (string, error)
	// Record keeps the finished part at local (it may move it) and
	// records s with its reference and size in one step.
	Record(ctx context.Context, s vidmatte.Segment, local string) error
	// Local returns a local file of a recorded part and its release.
	Local(ctx context.Context, ref string) (string, func(), error)
}

// DefaultSegmentLength is how long a segment is when a request says not.
const DefaultSegmentLength = 4 * time.Second

// DefaultWarmUp is how many frames before a resumed segment a recurrent
// model runs on to rebuild its state (measured: see TestRecurrentWarmUp).
const DefaultWarmUp = 16

// SegmentCounts says what a segmented request's run did, for the
// resume's cost: Resumed segments (ResumedFrames frames) were recorded
// before it; it decoded Decoded frames and ran the model on Inferred,
// of which WarmUp only warmed the model's state (or the smoothing).
type SegmentCounts struct {
	Resumed       int
	ResumedFrames int64
	Recorded      int
	Decoded       int64
	Inferred      int64
	WarmUp        int64
}

// processSegmented runs a request whose Segments journal is set.
func (e *Engine) processSegmented(ctx context.Context, r Request, manifest *models.Manifest, start time.Time) (*Result, error) {
	done, err := r.Segments.Done(ctx)
	if err != nil {
		return nil, err
	}
	for i, s := range done {
		if s.Seq != i || (s.Last && i != len(done)-1) {
			return nil, vidmatte.Errorf(vidmatte.CodeInternal, "the recorded segments are not in order")
		}
	}
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
	encOpts := codec.EncoderOptions{
		Format:      r.Format,
		Width:       info.Width,
		Height:      info.Height,
		TimeBase:    src.TimeBase(),
		FrameRate:   info.FrameRate,
		Background:  r.Background,
		Composition: r.Composition,
		Settings:    e.cfg.Encoder,

		MaxBackgroundPixels: e.cfg.MaxBackgroundPixels,
	}
	counts := SegmentCounts{Resumed: len(done)}
	for _, s := range done {
		counts.ResumedFrames += s.Frames
	}
	var p *pipeline
	var m matter
	if len(done) == 0 || !done[len(done)-1].Last {
		m, err = e.loadMatter(manifest, r, info)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		smooth := smoothingFor(r.Smoothing, m)
		warm := 0
		if m.Recurrent() {
			switch warm = r.WarmUp; {
			case warm == 0:
				warm = DefaultWarmUp
			case warm < 0:
				warm = 0
			}
		}
		if smooth {
			warm = max(warm, 1) // the median of three needs the frame before
		}
		ss := &segmentSource{source: src}
		defer ss.drop() // the warm frames it may hold after an error
		sk := &segmentSink{journal: r.Segments, opts: encOpts, seq: len(done),
			length: durationTicks(segLen, src.TimeBase())}
		if len(done) > 0 {
			last := done[len(done)-1]
			ss.from, ss.warm, ss.origin = last.NextPTS, warm, done[0].FirstPTS
			seekTo := last.NextPTS
			if warm > 0 {
				// Far enough back for the warm frames: the start of the
				// latest segments that hold them.
				var frames int64
				for i := len(done) - 1; i >= 0 && frames < int64(warm); i-- {
					seekTo, frames = done[i].FirstPTS, frames+done[i].Frames
				}
			}
			if err := ss.seek(seekTo); err != nil {
				return nil, err
			}
			sk.skipBefore, sk.skipping = last.NextPTS, true
		}
		defer sk.Abort()
		total := max(estimateFrames(info), counts.ResumedFrames)
		p = &pipeline{
			src: ss, model: m, sink: sk, info: info,
			smooth:      smooth,
			refineEdges: refineFor(r.Refine, manifest),
			every:       r.ProgressEvery,
			start:       start, total: total,
		}
		if r.MaxFrames > 0 {
			p.maxFrames = max(r.MaxFrames-counts.ResumedFrames, 0) + int64(warm)
		}
		if r.Progress != nil {
			// Reported from the encode stage, which alone writes sk's counts.
			p.progress = func(pr Progress) {
				doneNow := counts.ResumedFrames + sk.written
				out := Progress{FramesDone: doneNow, FramesTotal: max(total, doneNow), Elapsed: pr.Elapsed}
				if pr.Elapsed > 0 {
					out.FPS = float64(sk.written) / pr.Elapsed.Seconds()
				}
				if out.FPS > 0 && out.FramesTotal > doneNow {
					out.ETA = time.Duration(float64(out.FramesTotal-doneNow) / out.FPS * float64(time.Second))
				}
				r.Progress(out)
			}
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
		if err := sk.finish(ctx, true); err != nil {
			return nil, err
		}
		counts.Recorded, counts.Decoded, counts.Inferred, counts.WarmUp = sk.seq-len(done), ss.decoded, p.done, sk.dropped
		if len(done) > 0 && sk.written == 0 {
			return nil, vidmatte.Errorf(vidmatte.CodeUnprocessable, "the video ends before the segment it was to resume at")
		}
		if done, err = r.Segments.Done(ctx); err != nil {
			return nil, err
		}
	}
	frames, err := e.join(ctx, r, info, encOpts, done)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	res := &Result{
		Frames: frames, Elapsed: elapsed, Model: manifest.ID,
		Width: info.Width, Height: info.Height, Segments: &counts,
	}
	if m != nil {
		res.LoadTime, res.Device = m.LoadTime(), m.Device()
	}
	if p != nil {
		res.InferTime, res.Stages = p.inferTime, p.stages()
	}
	if elapsed > 0 {
		res.FPS = float64(counts.Inferred) / elapsed.Seconds()
	}
	e.log.Debug("processed in segments", "input", r.Input, "model", res.Model, "frames", frames,
		"segments", len(done), "resumed", counts.Resumed, "inferred", counts.Inferred, "warm_up", counts.WarmUp)
	return res, nil
}

// join writes the output from the recorded parts, atomically.
func (e *Engine) join(ctx context.Context, r Request, info *codec.Info, encOpts codec.EncoderOptions, segs []vidmatte.Segment) (int64, error) {
	if len(segs) == 0 || !segs[len(segs)-1].Last {
		return 0, vidmatte.Errorf(vidmatte.CodeInternal, "the output's parts are not all recorded")
	}
	tmp, err := partialPath(r.Output)
	if err != nil {
		return 0, err
	}
	offsets := make([]int64, len(segs))
	var want int64
	for i, s := range segs {
		offsets[i] = s.FirstPTS - segs[0].FirstPTS
		want += s.Frames
	}
	frames, err := codec.Join(ctx, tmp, codec.JoinOptions{
		Format: r.Format, Parts: len(segs), Offsets: offsets, TimeBase: encOpts.TimeBase,
		Part:      func(i int) (string, func(), error) { return r.Segments.Local(ctx, segs[i].Path) },
		AudioFrom: audioSource(r.Input, info, r.Format), Origin: segs[0].FirstPTS,
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

// segmentSource gives the frames from a resumed segment on (from), led by
// the warm frames just before it; the frames before those, decoded from
// the keyframe the seek landed on, are dropped. It counts the frames it
// decoded.
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
			s.drop()
			if errors.Is(err, io.EOF) && s.resuming {
				return nil, vidmatte.Errorf(vidmatte.CodeUnprocessable, "the video ends before the segment it was to resume at")
			}
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

// segmentSink writes the frames into one part per segment: a segment
// ends at the first frame length or more after its first; each finished
// part is closed and recorded before the next one starts. Frames before
// skipBefore (a resume's warm-up) are dropped. Only the encode stage
// calls it.
type segmentSink struct {
	journal    SegmentJournal
	opts       codec.EncoderOptions
	length     int64
	skipBefore int64
	skipping   bool
	seq        int

	cur     part
	curPath string
	first   int64
	frames  int64
	written int64 // frames written into parts by this run
	dropped int64 // warm-up frames
}

func (s *segmentSink) WriteFrame(f *codec.Frame, alpha []byte) error {
	if s.skipping && f.PTS() < s.skipBefore {
		s.dropped++
		return nil
	}
	if s.cur != nil && f.PTS()-s.first >= s.length {
		if err := s.close(context.Background(), false, f.PTS()); err != nil {
			return err
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

// close finishes the current part and records its segment.
func (s *segmentSink) close(ctx context.Context, last bool, next int64) error {
	p := s.cur
	s.cur = nil
	if err := p.Close(); err != nil {
		return fmt.Errorf("finishing a %s part: %w", s.opts.Format, err)
	}
	seg := vidmatte.Segment{Seq: s.seq, FirstPTS: s.first, NextPTS: next, Frames: s.frames, Last: last}
	if err := s.journal.Record(ctx, seg, s.curPath); err != nil {
		os.Remove(s.curPath)
		return err
	}
	s.seq++
	return nil
}

// finish records the last part, the end of the video.
func (s *segmentSink) finish(ctx context.Context, last bool) error {
	if s.cur == nil {
		return nil
	}
	return s.close(ctx, last, -1)
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
