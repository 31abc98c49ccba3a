package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// memSegments is one job's segments in memory: the plan, the recorded
// segments and the claims, shared by the journals of the workers on the
// job; parts are written in a folder.
type memSegments struct {
	dir  string
	mu   sync.Mutex
	plan *vidmatte.SegmentPlan
	done map[int]vidmatte.Segment
	held map[int]string // seq: the worker holding it
}

func newMemSegments(dir string) *memSegments {
	return &memSegments{dir: dir, done: map[int]vidmatte.Segment{}, held: map[int]string{}}
}

// recorded returns the recorded segments in order.
func (m *memSegments) recorded() []vidmatte.Segment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []vidmatte.Segment{}
	for _, s := range m.done {
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out
}

// release drops worker's claims, as the runner does when a request ends.
func (m *memSegments) release(worker string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for seq, w := range m.held {
		if w == worker {
			delete(m.held, seq)
		}
	}
}

func (m *memSegments) status() []vidmatte.SegmentStatus {
	st := make([]vidmatte.SegmentStatus, m.plan.Count)
	for seq := range m.held {
		st[seq] = vidmatte.SegmentRunning
	}
	for seq := range m.done {
		st[seq] = vidmatte.SegmentDone
	}
	return st
}

// memJournal is one worker's journal on a memSegments. A helper's (help)
// is given segment first by Next, once. After stopAfter records (when >
// 0) it cancels the run that makes them: the seam for an interruption at
// a known point.
type memJournal struct {
	*memSegments
	worker    string
	help      bool
	first     int
	given     bool
	stopAfter int
	records   int
	cancel    context.CancelFunc
	onRecord  func() // called after each record, the lock held
}

func (j *memJournal) Plan(_ context.Context, p vidmatte.SegmentPlan) (vidmatte.SegmentPlan, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.plan == nil {
		if err := p.Validate(); err != nil {
			return p, err
		}
		j.plan = &p
	}
	return *j.plan, nil
}

func (j *memJournal) Next(context.Context) (int, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.help {
		if j.given {
			return 0, false, nil
		}
		j.given = true
		return j.first, true, nil
	}
	seq, ok := vidmatte.PickSegment(j.status())
	if ok {
		j.held[seq] = j.worker
	}
	return seq, ok, nil
}

func (j *memJournal) Continue(_ context.Context, seq int) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq >= j.plan.Count || j.status()[seq] != vidmatte.SegmentFree {
		return false, nil
	}
	j.held[seq] = j.worker
	return true, nil
}

func (j *memJournal) State(context.Context) (vidmatte.JobSegments, error) {
	done := j.recorded()
	j.mu.Lock()
	defer j.mu.Unlock()
	return vidmatte.JobSegments{Plan: j.plan, Done: done, Running: len(j.held)}, nil
}

func (j *memJournal) PartPath(seq int, ext string) (string, error) {
	return filepath.Join(j.dir, fmt.Sprintf("part_%06d_%s%s", seq, j.worker, ext)), nil
}

func (j *memJournal) Record(_ context.Context, s vidmatte.Segment, local string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.held[s.Seq] != j.worker {
		return fmt.Errorf("segment %d recorded by %s, held by %q", s.Seq, j.worker, j.held[s.Seq])
	}
	if local != "" {
		st, err := os.Stat(local)
		if err != nil {
			return err
		}
		s.Path, s.Size = local, st.Size()
	}
	delete(j.held, s.Seq)
	j.done[s.Seq] = s
	j.records++
	if j.onRecord != nil {
		j.onRecord()
	}
	if j.stopAfter > 0 && j.records == j.stopAfter && j.cancel != nil {
		j.cancel()
	}
	return nil
}

func (j *memJournal) Local(_ context.Context, ref string) (string, func(), error) {
	return ref, func() {}, nil
}

// A run interrupted after some segments resumes at the first unfinished
// one: it runs the model only on the frames after the recorded segments
// (and the one frame the smoothing needs before them), and the joined
// output is frame for frame the one a continuous run makes.
func TestSegmentedRunResumes(t *testing.T) {
	checkNoLeaks(t)
	in, _ := testmedia.GreenScreen(t, 96, 64, 60, false)
	e := newTestEngine(t, 1)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.zip")
	if _, err := e.Process(context.Background(), Request{Input: in, Output: whole, Model: "chroma", Format: vidmatte.FormatPNGSequence, Smoothing: SmoothOn}); err != nil {
		t.Fatal(err)
	}

	segs := newMemSegments(t.TempDir())
	j := &memJournal{memSegments: segs, worker: "w1", stopAfter: 3}
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	out := filepath.Join(dir, "segmented.zip")
	req := Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatPNGSequence, Smoothing: SmoothOn,
		Segments: j, SegmentLength: 400 * time.Millisecond} // 10 frames at 25 fps
	if _, err := e.Process(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted run: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an interrupted run left an output")
	}
	if done := segs.recorded(); len(done) != 3 || done[2].Frames != 10 || done[2].Seq != 2 {
		t.Fatalf("segments after the interruption: %+v", done)
	}
	segs.release("w1")
	req.Segments = &memJournal{memSegments: segs, worker: "w2"}

	var seen []Progress
	req.Progress = func(p Progress) { seen = append(seen, p) }
	req.ProgressEvery = time.Nanosecond
	res, err := e.Process(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Segments
	if res.Frames != 60 || c.Resumed != 3 || c.ResumedFrames != 30 || c.Recorded != 3 {
		t.Fatalf("resumed run: %d frames, %+v", res.Frames, *c)
	}
	if c.Inferred != 31 || c.WarmUp != 1 {
		t.Errorf("the resumed run inferred %d frames (%d to warm up), want 30 and 1", c.Inferred, c.WarmUp)
	}
	t.Logf("resumed: decoded %d frames, inferred %d", c.Decoded, c.Inferred)
	for i, p := range seen {
		if p.FramesDone < 30 || (i > 0 && p.FramesDone < seen[i-1].FramesDone) || p.FramesTotal < p.FramesDone {
			t.Fatalf("progress %d: %+v after %+v", i, p, seen[max(i-1, 0)])
		}
	}
	if last := seen[len(seen)-1]; last.FramesDone != 60 {
		t.Errorf("last progress %+v", last)
	}
	a, b := testmedia.ReadAlpha(t, whole), testmedia.ReadAlpha(t, out)
	if len(a) != 60 || len(b) != 60 {
		t.Fatalf("%d and %d frames", len(a), len(b))
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("frame %d: the resumed output's alpha differs from the continuous run's (mean %.4f)", i, meanAbsError(a[i], b[i]))
		}
	}
	// Everything recorded: another run only joins.
	res, err = e.Process(context.Background(), req)
	if err != nil || res.Frames != 60 || res.Segments.Inferred != 0 {
		t.Fatalf("a run with every segment recorded: %v %+v", err, res)
	}
}

// Two workers share one request: a helper takes the second half of the
// segments while the owner runs the first; the owner's run stops where the
// helper's starts, it waits for the helper's segments and joins them, and
// the output is frame for frame the one a continuous run makes.
func TestSegmentsSharedByTwoWorkers(t *testing.T) {
	checkNoLeaks(t)
	in, _ := testmedia.GreenScreen(t, 96, 64, 100, false) // 4 s at 25 fps
	e := newTestEngine(t, 1)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.zip")
	base := Request{Input: in, Model: "chroma", Format: vidmatte.FormatPNGSequence, Smoothing: SmoothOn,
		SegmentLength: 400 * time.Millisecond} // 10 segments of 10 frames
	r := base
	r.Output = whole
	if _, err := e.Process(context.Background(), r); err != nil {
		t.Fatal(err)
	}

	segs := newMemSegments(t.TempDir())
	helped := make(chan *Result, 1)
	owner := &memJournal{memSegments: segs, worker: "owner"}
	var once sync.Once
	owner.onRecord = func() {
		// After the owner's first segment, a helper claims its pick and
		// runs beside it.
		once.Do(func() {
			seq, ok := vidmatte.PickSegment(segs.status())
			if !ok {
				t.Error("nothing for the helper")
				helped <- nil
				return
			}
			segs.held[seq] = "helper"
			h := base
			h.Output, h.Help = filepath.Join(dir, "unused.zip"), true
			h.Segments = &memJournal{memSegments: segs, worker: "helper", help: true, first: seq}
			go func() {
				res, err := e.Process(context.Background(), h)
				if err != nil {
					t.Errorf("the helper: %v", err)
				}
				helped <- res
			}()
		})
	}
	out := filepath.Join(dir, "shared.zip")
	r = base
	r.Output, r.Segments = out, owner
	res, err := e.Process(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	h := <-helped
	if h == nil {
		t.FailNow()
	}
	byOwner, byHelper := res.Segments.Recorded, h.Segments.Recorded
	t.Logf("owner: %d segments in %d runs, helper: %d segments, %d frames; owner inferred %d, helper %d",
		byOwner, res.Segments.Runs, byHelper, h.Frames, res.Segments.Inferred, h.Segments.Inferred)
	if byHelper < 2 || byOwner < 2 || byOwner+byHelper != 10 {
		t.Errorf("segments recorded: %d by the owner, %d by the helper, want 10 shared", byOwner, byHelper)
	}
	if res.Frames != 100 || res.Segments.Inferred+h.Segments.Inferred-res.Segments.WarmUp-h.Segments.WarmUp != 100 {
		t.Errorf("%d frames joined; %d and %d inferred (%d and %d to warm up)", res.Frames,
			res.Segments.Inferred, h.Segments.Inferred, res.Segments.WarmUp, h.Segments.WarmUp)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused.zip")); err == nil {
		t.Error("the helper wrote an output")
	}
	a, b := testmedia.ReadAlpha(t, whole), testmedia.ReadAlpha(t, out)
	if len(a) != 100 || len(b) != 100 {
		t.Fatalf("%d and %d frames", len(a), len(b))
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("frame %d: the shared output's alpha differs from the continuous run's (mean %.4f)", i, meanAbsError(a[i], b[i]))
		}
	}
}
