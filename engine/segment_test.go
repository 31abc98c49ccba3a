package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// memJournal keeps segments in memory and parts in a folder. After
// stopAfter segments (when > 0) it cancels the run that records them:
// the seam for an interruption at a known point.
type memJournal struct {
	dir       string
	mu        sync.Mutex
	segs      []vidmatte.Segment
	stopAfter int
	cancel    context.CancelFunc
}

func (j *memJournal) Done(context.Context) ([]vidmatte.Segment, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]vidmatte.Segment(nil), j.segs...), nil
}

func (j *memJournal) PartPath(seq int, ext string) (string, error) {
	return filepath.Join(j.dir, fmt.Sprintf("part_%06d%s", seq, ext)), nil
}

func (j *memJournal) Record(_ context.Context, s vidmatte.Segment, local string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if s.Seq != len(j.segs) {
		return fmt.Errorf("segment %d recorded after %d", s.Seq, len(j.segs))
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	s.Path, s.Size = local, st.Size()
	j.segs = append(j.segs, s)
	if j.stopAfter > 0 && len(j.segs) == j.stopAfter && j.cancel != nil {
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

	j := &memJournal{dir: t.TempDir(), stopAfter: 3}
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
	segs, _ := j.Done(context.Background())
	if len(segs) != 3 || segs[2].Frames != 10 || segs[0].Last {
		t.Fatalf("segments after the interruption: %+v", segs)
	}

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
