package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/codec"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// panickingSource panics in the decode stage after a few frames.
type panickingSource struct {
	source
	after, n int
}

func (s *panickingSource) Next(ctx context.Context) (*codec.Frame, error) {
	if s.n++; s.n > s.after {
		var m map[string]int
		m["metadata"]++ // a nil map write, as a demuxer bug would make
	}
	return s.source.Next(ctx)
}

// panickingMatter panics inside the model (infer stage) or while a frame
// is prepared (batch stage), on its second call.
type panickingMatter struct {
	matter
	inRun bool
	calls int
}

func (m *panickingMatter) Run(ctx context.Context, b *models.Batch, n int, st *models.State) error {
	if m.calls++; m.inRun && m.calls > 1 {
		panic("model exploded")
	}
	return m.matter.Run(ctx, b, n, st)
}

func (m *panickingMatter) PrepareUV(slot []float32, u []byte, us int, v []byte, vs int) {
	if !m.inRun {
		if m.calls++; m.calls > 1 {
			panic("prepare exploded")
		}
	}
	m.matter.PrepareUV(slot, u, us, v, vs)
}

// panickingSink panics in the encoder after a few frames.
type panickingSink struct {
	sink
	after, n int
}

func (s *panickingSink) WriteFrame(f *codec.Frame, alpha []byte) error {
	if s.n++; s.n > s.after {
		panic(errors.New("encoder exploded"))
	}
	return s.sink.WriteFrame(f, alpha)
}

// A panic in any stage's goroutine ends that run with a *PanicError that
// names the stage: every frame released, no goroutine left, no output.
func TestPanicInAStageFailsTheRun(t *testing.T) {
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 25, Duration: 2 * time.Second})
	wrapMatter := func(inRun bool) func(e *Engine) {
		return func(e *Engine) {
			open := e.openMatter
			e.openMatter = func(m *models.Manifest, o models.LoadOptions) (matter, error) {
				mt, err := open(m, o)
				if err != nil {
					return nil, err
				}
				return &panickingMatter{matter: mt, inRun: inRun}, nil
			}
		}
	}
	cases := map[string]struct {
		wrap  func(e *Engine)
		where string
	}{
		"decode": {func(e *Engine) {
			open := e.openSource
			e.openSource = func(p string, th int) (source, error) {
				s, err := open(p, th)
				if err != nil {
					return nil, err
				}
				return &panickingSource{source: s, after: 5}, nil
			}
		}, "decode stage"},
		"batch": {wrapMatter(false), "batch stage"},
		"infer": {wrapMatter(true), "model"},
		"encode": {func(e *Engine) {
			open := e.openSink
			e.openSink = func(p string, o codec.EncoderOptions) (sink, error) {
				s, err := open(p, o)
				if err != nil {
					return nil, err
				}
				return &panickingSink{sink: s, after: 5}, nil
			}
		}, "encoder"},
		"open": {func(e *Engine) {
			e.openSource = func(string, int) (source, error) { panic("probe exploded") }
		}, "pipeline"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			checkNoLeaks(t)
			e := newTestEngine(t, 2)
			c.wrap(e)
			dir := t.TempDir()
			_, err := e.Process(context.Background(), Request{Input: in, Output: filepath.Join(dir, "out.webm"), Model: "chroma", Smoothing: SmoothOn})
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a panic error", err)
			}
			if pe.Where != c.where || len(pe.Stack) == 0 || vidmatte.ErrorCode(err) != vidmatte.CodeInternal {
				t.Fatalf("panic error: where %q (want %q), stack %d bytes, code %s", pe.Where, c.where, len(pe.Stack), vidmatte.ErrorCode(err))
			}
			assertEmptyDir(t, dir)
		})
	}
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// crashingProcessor panics in the job's own goroutine for one input, once
// the job on the other input is running; that one waits at its gate.
type crashingProcessor struct {
	inner            Processor
	crash            string
	otherStarted     chan struct{}
	gate             chan struct{}
	waitForTheOther  atomic.Bool
	startedOtherOnce sync.Once
}

func (p *crashingProcessor) Process(ctx context.Context, r Request) (*Result, error) {
	if r.Input == p.crash {
		if p.waitForTheOther.Load() {
			<-p.otherStarted
		}
		var j *vidmatte.Job
		_ = j.ID // a nil dereference
	}
	if p.waitForTheOther.Load() {
		p.startedOtherOnce.Do(func() { close(p.otherStarted) })
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.inner.Process(ctx, r)
}

// panickingEvents panics when told a job on one input started.
type panickingEvents struct {
	eventLog
	input string
}

func (p *panickingEvents) JobEvent(ctx context.Context, event string, j *vidmatte.Job) {
	if event == vidmatte.EventJobStarted && j.InputPath == p.input {
		panic("webhook sink exploded")
	}
	p.eventLog.JobEvent(ctx, event, j)
}

func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// The runner survives a panic anywhere in a job: in the processor (the
// job's goroutine), in a pipeline stage's goroutine, and in the runner's
// own code around the job (an event sink). Each panicking job fails with
// internal_error and a generic message, is refunded, and its stack is
// logged; a job running beside it completes, charged once, on its first
// attempt; the runner keeps claiming.
func TestRunnerSurvivesPanickingJobs(t *testing.T) {
	e := newRunnerEnv(t)
	crashIn := copyFile(t, e.clip, filepath.Join(e.dir, "crash-processor.mp4"))
	stageIn := copyFile(t, e.clip, filepath.Join(e.dir, "crash-stage.mp4"))
	eventIn := copyFile(t, e.clip, filepath.Join(e.dir, "crash-event.mp4"))
	eng := newTestEngine(t, 1)
	open := eng.openSource
	eng.openSource = func(p string, th int) (source, error) {
		s, err := open(p, th)
		if err != nil || p != stageIn {
			return s, err
		}
		return &panickingSource{source: s, after: 3}, nil
	}
	proc := &crashingProcessor{inner: eng, crash: crashIn, otherStarted: make(chan struct{}), gate: make(chan struct{})}
	proc.waitForTheOther.Store(true)
	var logs syncBuffer
	events := &panickingEvents{input: eventIn}
	r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: proc, OutputDir: filepath.Join(e.dir, "outputs"), Slots: 2,
		MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 10 * time.Millisecond, Events: events,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	crash := e.queue(t, crashIn)
	other := e.queue(t, e.clip)
	start(t, r)

	// The processor panics while the other job runs.
	crashed := e.waitStatus(t, crash.ID, vidmatte.StatusFailed)
	checkCrashed(t, e, crashed)
	if got, _ := e.db.FindJob(context.Background(), "", other.ID); got.Status != vidmatte.StatusProcessing {
		t.Fatalf("the other job is %s while the crash is handled", got.Status)
	}
	close(proc.gate)
	done := e.waitStatus(t, other.ID, vidmatte.StatusCompleted)
	if done.Attempts != 1 || done.BillingStatus != vidmatte.BillingCharged {
		t.Fatalf("the job beside the crash: attempts %d billing %s", done.Attempts, done.BillingStatus)
	}

	// A stage's goroutine panics, then the runner's own code: the runner
	// goes on claiming after each.
	proc.waitForTheOther.Store(false)
	for _, in := range []string{stageIn, eventIn} {
		j := e.queue(t, in)
		r.Wake()
		checkCrashed(t, e, e.waitStatus(t, j.ID, vidmatte.StatusFailed))
		after := e.queue(t, e.clip)
		r.Wake()
		if got := e.waitStatus(t, after.ID, vidmatte.StatusCompleted); got.Attempts != 1 {
			t.Fatalf("attempts %d", got.Attempts)
		}
	}
	e.waitIdle(t, r)
	log := logs.String()
	for _, want := range []string{`"where":"processor"`, `"where":"decode stage"`, `"where":"runner"`, "nil pointer dereference",
		"assignment to entry in nil map", "webhook sink exploded", `"stack":"goroutine `} {
		if !strings.Contains(log, `"msg":"job panicked"`) || !strings.Contains(log, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if l := e.ledger(t); l["reserve"] != 6 || l["charge"] != 3 || l["refund"] != 3 {
		t.Fatalf("ledger %v", l)
	}
}

func checkCrashed(t *testing.T, e *runnerEnv, j *vidmatte.Job) {
	t.Helper()
	if j.Error == nil || j.Error.Code != vidmatte.CodeInternal || j.Error.Message != "internal error while processing the video" ||
		j.BillingStatus != vidmatte.BillingRefunded || j.Attempts != 1 {
		t.Fatalf("crashed job: error %+v billing %s attempts %d", j.Error, j.BillingStatus, j.Attempts)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "outputs", j.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the crashed job's output folder is left")
	}
}
