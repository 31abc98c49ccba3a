package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// watchedJournal passes a run's journal through and says on recorded how
// many segments the run has recorded.
type watchedJournal struct {
	SegmentJournal
	n        int
	recorded chan int
}

func (w *watchedJournal) Record(ctx context.Context, s vidmatte.Segment, local string) error {
	err := w.SegmentJournal.Record(ctx, s, local)
	if err == nil {
		w.n++
		select {
		case w.recorded <- w.n:
		default:
		}
	}
	return err
}

// watchingProcessor watches the journal of every run and keeps what the
// last run reported.
type watchingProcessor struct {
	inner    Processor
	recorded chan int
	last     chan *SegmentCounts
}

func (p *watchingProcessor) Process(ctx context.Context, r Request) (*Result, error) {
	if r.Segments != nil {
		r.Segments = &watchedJournal{SegmentJournal: r.Segments, recorded: p.recorded}
	}
	res, err := p.inner.Process(ctx, r)
	if err == nil && res.Segments != nil {
		p.last <- res.Segments
	}
	return res, err
}

// A segmented job stopped by a shutdown after a few segments is requeued
// with its parts; the next runner resumes it at its first unfinished
// segment, the output holds every frame once, progress never goes back,
// and the job is charged once.
func TestRunnerResumesASegmentedJob(t *testing.T) {
	e := newRunnerEnv(t)
	clip, _ := testmedia.GreenScreen(t, 96, 64, 75, false) // 3 s
	newRunner := func(p Processor) *Runner {
		r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: p, OutputDir: filepath.Join(e.dir, "outputs"),
			MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 5 * time.Millisecond,
			SegmentLength: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	wp := &watchingProcessor{inner: newTestEngine(t, 1), recorded: make(chan int, 100), last: make(chan *SegmentCounts, 4)}
	first := newRunner(wp)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { first.Run(ctx); close(ran) }()
	j := e.queue(t, clip)
	first.Wake()
	for n := range wp.recorded {
		if n == 3 {
			break
		}
	}
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	if err := first.Shutdown(expired); err != nil {
		t.Fatal(err)
	}
	stop()
	<-ran
	mid, _ := e.db.FindJob(context.Background(), "", j.ID)
	st, _ := e.db.JobSegments(context.Background(), j.ID)
	segs := st.Done
	if mid.Status != vidmatte.StatusQueued || len(segs) < 3 || st.Running != 0 {
		t.Fatalf("after the shutdown: %s with %d segments", mid.Status, len(segs))
	}
	var recorded int64
	for _, s := range segs {
		recorded += s.Frames
		if _, err := os.Stat(s.Path); err != nil {
			t.Fatalf("a recorded part is gone: %v", err)
		}
	}

	second := newRunner(wp)
	start(t, second)
	second.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	c := <-wp.last
	if c.ResumedFrames != recorded || c.Inferred != 75-recorded || c.WarmUp != 0 {
		t.Errorf("the resumed run: %+v; %d frames were recorded before it (want %d inferred)", *c, recorded, 75-recorded)
	}
	if done.FramesDone != 75 || done.Progress != 100 || mid.FramesDone < recorded {
		t.Errorf("frames done %d (%d at the shutdown), progress %d", done.FramesDone, mid.FramesDone, done.Progress)
	}
	if frames, _, _ := testmedia.Probe(t, done.OutputPath); frames != 75 {
		t.Errorf("output has %d frames, want 75", frames)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Errorf("ledger %v", l)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "outputs", j.ID, partsDir)); !os.IsNotExist(err) {
		t.Errorf("the parts outlived the completed job: %v", err)
	}
}

// A segmented job requeued with its parts and then canceled while queued
// (no runner sees the cancel) has its parts deleted and its segments
// forgotten by the next sweep.
func TestSweepDeletesTheCanceledJobsParts(t *testing.T) {
	e := newRunnerEnv(t)
	clip, _ := testmedia.GreenScreen(t, 96, 64, 75, false)
	wp := &watchingProcessor{inner: newTestEngine(t, 1), recorded: make(chan int, 100), last: make(chan *SegmentCounts, 4)}
	r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: wp, OutputDir: filepath.Join(e.dir, "outputs"),
		PollInterval: 20 * time.Millisecond, SegmentLength: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx); close(ran) }()
	j := e.queue(t, clip)
	r.Wake()
	for n := range wp.recorded {
		if n == 2 {
			break
		}
	}
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	r.Shutdown(expired)
	stop()
	<-ran
	parts := filepath.Join(e.dir, "outputs", j.ID, partsDir)
	if _, err := os.Stat(parts); err != nil {
		t.Fatalf("the requeued job's parts: %v", err)
	}
	if n := r.SweepParts(context.Background()); n != 0 {
		t.Fatalf("swept %d jobs while the job may resume", n)
	}
	if _, err := e.db.CancelJob(context.Background(), "", j.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	if n := r.SweepParts(context.Background()); n != 1 {
		t.Fatalf("swept %d jobs, want 1", n)
	}
	if _, err := os.Stat(parts); !os.IsNotExist(err) {
		t.Fatalf("the canceled job's parts: %v", err)
	}
	if st, _ := e.db.JobSegments(context.Background(), j.ID); st.Plan != nil || len(st.Done) != 0 {
		t.Fatalf("segments kept: %+v", st)
	}
}

// gatedJournal holds the owner's first record until a helper has recorded
// a segment (or a minute has passed), so that the help is seen whatever
// the machine's speed.
type gatedJournal struct {
	SegmentJournal
	helped <-chan struct{}
	once   sync.Once
}

func (g *gatedJournal) Record(ctx context.Context, s vidmatte.Segment, local string) error {
	g.once.Do(func() {
		select {
		case <-g.helped:
		case <-time.After(time.Minute):
		}
	})
	return g.SegmentJournal.Record(ctx, s, local)
}

// helpingProcessor gates the owner's journal and reports each helper's
// result.
type helpingProcessor struct {
	inner  Processor
	helped chan struct{}
	once   sync.Once
	mu     sync.Mutex
	helps  []*SegmentCounts
}

func (p *helpingProcessor) Process(ctx context.Context, r Request) (*Result, error) {
	if r.Segments != nil && !r.Help {
		r.Segments = &gatedJournal{SegmentJournal: r.Segments, helped: p.helped}
	}
	res, err := p.inner.Process(ctx, r)
	if r.Help && err == nil {
		p.mu.Lock()
		p.helps = append(p.helps, res.Segments)
		p.mu.Unlock()
		if res.Segments.Recorded > 0 {
			p.once.Do(func() { close(p.helped) })
		}
	}
	return res, err
}

// A runner with a free slot and nothing queued helps with the segments of
// the job it runs: the job's segments are shared between its two slots,
// and the job completes with every frame once, charged once.
func TestRunnerHelpsWithItsOwnJob(t *testing.T) {
	e := newRunnerEnv(t)
	clip, _ := testmedia.GreenScreen(t, 96, 64, 100, false) // 4 s
	hp := &helpingProcessor{inner: newTestEngine(t, 1), helped: make(chan struct{})}
	r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: hp, OutputDir: filepath.Join(e.dir, "outputs"), Slots: 2,
		MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 5 * time.Millisecond,
		SegmentLength: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	j := e.queue(t, clip)
	start(t, r)
	r.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	e.waitIdle(t, r)
	hp.mu.Lock()
	helps := hp.helps
	hp.mu.Unlock()
	var byHelpers int
	for _, c := range helps {
		byHelpers += c.Recorded
	}
	t.Logf("%d help requests recorded %d of the 10 segments", len(helps), byHelpers)
	if byHelpers == 0 || byHelpers == 10 {
		t.Errorf("helpers recorded %d of the 10 segments", byHelpers)
	}
	if frames, _, _ := testmedia.Probe(t, done.OutputPath); frames != 100 || done.FramesDone != 100 {
		t.Errorf("output has %d frames (frames_done %d), want 100", frames, done.FramesDone)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Errorf("ledger %v", l)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "outputs", j.ID, partsDir)); !os.IsNotExist(err) {
		t.Errorf("the parts outlived the completed job: %v", err)
	}
}
