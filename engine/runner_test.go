package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
	"vidmatte/store"
)

// eventLog records the runner's job events.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) JobEvent(_ context.Context, event string, j *vidmatte.Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event+":"+string(j.Status))
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// gatedProcessor runs the real engine, but first reports some progress and
// waits until its gate opens or the job's context ends, so a test can act
// while a job is running. While it waits, what the test sends on progress
// is reported as the job's progress.
type gatedProcessor struct {
	inner    Processor
	gate     chan struct{}
	started  chan string
	progress chan Progress
}

func (g *gatedProcessor) Process(ctx context.Context, r Request) (*Result, error) {
	if r.Progress != nil {
		r.Progress(Progress{FramesDone: 1, FramesTotal: 10})
	}
	g.started <- r.Output
	for {
		select {
		case <-g.gate:
			return g.inner.Process(ctx, r)
		case p := <-g.progress:
			r.Progress(p)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

type runnerEnv struct {
	db     *store.DB
	dir    string
	keyID  string
	events *eventLog
	clip   string
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "vidmatte.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	k, _, err := db.CreateKey(context.Background(), "runner", 100)
	if err != nil {
		t.Fatal(err)
	}
	clip, _ := testmedia.GreenScreen(t, 96, 64, 12, false)
	return &runnerEnv{db: db, dir: dir, keyID: k.ID, events: &eventLog{}, clip: clip}
}

// queue creates a queued job on the input with the chroma model.
func (e *runnerEnv) queue(t *testing.T, input string) *vidmatte.Job {
	t.Helper()
	ctx := context.Background()
	up := &vidmatte.Upload{KeyID: e.keyID, Filename: "clip.mp4", Path: input, Size: 1, DurationSec: 0.5, Width: 96, Height: 64, FPS: 25}
	if err := e.db.CreateUpload(ctx, up); err != nil {
		t.Fatal(err)
	}
	j := &vidmatte.Job{KeyID: e.keyID, VideoURL: "http://x/v1/uploads/" + up.ID, UploadID: up.ID, InputPath: input,
		Model: "chroma", OutputFormat: vidmatte.FormatWebM, Background: vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		DurationSec: 0.5, Credits: 1}
	if err := e.db.CreateJob(ctx, j, true, "req_test"); err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *runnerEnv) runner(t *testing.T, p Processor, slots int) *Runner {
	t.Helper()
	r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: p, OutputDir: filepath.Join(e.dir, "outputs"), Slots: slots,
		MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 10 * time.Millisecond, Events: e.events})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs the runner until the test ends.
func start(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *runnerEnv) waitStatus(t *testing.T, id string, want vidmatte.Status) *vidmatte.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := e.db.FindJob(context.Background(), "", id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == want {
			return j
		}
		if j.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%v), want %s", id, j.Status, j.Error, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *runnerEnv) ledger(t *testing.T) map[string]int {
	t.Helper()
	evs, err := e.db.UsageEvents(context.Background(), e.keyID, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range evs {
		n[ev.Type]++
	}
	return n
}

func TestRunnerCompletesAJob(t *testing.T) {
	e := newRunnerEnv(t)
	j := e.queue(t, e.clip)
	r := e.runner(t, newTestEngine(t, 1), 1)
	start(t, r)
	r.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	if done.Progress != 100 || done.FramesDone != 12 || done.BillingStatus != vidmatte.BillingCharged {
		t.Fatalf("completed job: progress %d frames %d/%d billing %s", done.Progress, done.FramesDone, done.FramesTotal, done.BillingStatus)
	}
	if done.OutputPath != r.OutputPath(j) {
		t.Fatalf("output %s, want %s", done.OutputPath, r.OutputPath(j))
	}
	if st, err := os.Stat(done.OutputPath); err != nil || st.Size() == 0 || done.OutputSize != st.Size() {
		t.Fatalf("output file: %v (recorded size %d)", err, done.OutputSize)
	}
	if frames, _, _ := testmedia.Probe(t, done.OutputPath); frames != 12 {
		t.Fatalf("output has %d frames", frames)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger %v", l)
	}
	waitEvents(t, e.events, "job.started:processing", "job.completed:completed")
}

func waitEvents(t *testing.T, l *eventLog, want ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := l.list()
		if len(got) == len(want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("events %v, want %v", got, want)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunnerFailsACorruptInputAndRefunds(t *testing.T) {
	e := newRunnerEnv(t)
	bad := filepath.Join(e.dir, "corrupt.mp4")
	data, _ := os.ReadFile(e.clip)
	os.WriteFile(bad, data[:len(data)/3], 0o644) // the header survives, the rest is gone
	notVideo := filepath.Join(e.dir, "text.mp4")
	os.WriteFile(notVideo, []byte("not a video"), 0o644)
	r := e.runner(t, newTestEngine(t, 1), 1)
	start(t, r)
	for _, in := range []string{notVideo, bad} {
		j := e.queue(t, in)
		r.Wake()
		deadline := time.Now().Add(30 * time.Second)
		var got *vidmatte.Job
		for {
			got, _ = e.db.FindJob(context.Background(), "", j.ID)
			if got.Status.Terminal() || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if in == bad && got.Status == vidmatte.StatusCompleted {
			// A truncated file may still decode its first frames; what
			// matters is that it never ends in a 500-like silence.
			continue
		}
		if got.Status != vidmatte.StatusFailed || got.Error == nil || got.Error.Message == "" || got.BillingStatus != vidmatte.BillingRefunded {
			t.Fatalf("%s: status %s error %v billing %s", in, got.Status, got.Error, got.BillingStatus)
		}
		if got.Error.Code == vidmatte.CodeInternal {
			t.Fatalf("%s: a bad input is an internal error: %v", in, got.Error)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "outputs", j.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: output folder left behind", in)
		}
	}
	if l := e.ledger(t); l["refund"] < 1 {
		t.Fatalf("ledger %v", l)
	}
}

func TestRunnerCancel(t *testing.T) {
	e := newRunnerEnv(t)
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4), progress: make(chan Progress)}
	r := e.runner(t, g, 1)
	start(t, r)

	// Canceled through the api: the store records it, the runner is told.
	j := e.queue(t, e.clip)
	r.Wake()
	<-g.started
	e.waitFrames(t, j.ID)
	if _, err := e.db.CancelJob(context.Background(), e.keyID, j.ID, "test", ""); err != nil {
		t.Fatal(err)
	}
	if !r.Cancel(j.ID) {
		t.Fatal("the running job was not found")
	}
	e.waitIdle(t, r)

	// Canceled by another process: the runner learns it from its next
	// progress write.
	j2 := e.queue(t, e.clip)
	r.Wake()
	<-g.started
	if _, err := e.db.CancelJob(context.Background(), e.keyID, j2.ID, "test", ""); err != nil {
		t.Fatal(err)
	}
	g.progress <- Progress{FramesDone: 2, FramesTotal: 10}
	e.waitIdle(t, r)
	for _, id := range []string{j.ID, j2.ID} {
		got, _ := e.db.FindJob(context.Background(), "", id)
		if got.Status != vidmatte.StatusCanceled || got.BillingStatus != vidmatte.BillingRefunded {
			t.Fatalf("canceled job: %s %s", got.Status, got.BillingStatus)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "outputs", id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("output folder left behind")
		}
	}
}

func (e *runnerEnv) waitFrames(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		j, _ := e.db.FindJob(context.Background(), "", id)
		if j.FramesDone > 0 && j.Progress == 10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress never written: %d %d", j.Progress, j.FramesDone)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitIdle waits until the runner runs no job, with a progress write
// interval's worth of time for it to notice.
func (e *runnerEnv) waitIdle(t *testing.T, r *Runner) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for r.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the runner never stopped the job")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerShutdownRequeuesAfterTheDeadline(t *testing.T) {
	e := newRunnerEnv(t)
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4)}
	r := e.runner(t, g, 1)
	start(t, r)
	j := e.queue(t, e.clip)
	r.Wake()
	out := <-g.started
	os.WriteFile(filepath.Join(filepath.Dir(out), ".partial"), []byte("x"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.db.FindJob(context.Background(), "", j.ID)
	if got.Status != vidmatte.StatusQueued || got.BillingStatus != vidmatte.BillingReserved {
		t.Fatalf("after the deadline: %s %s", got.Status, got.BillingStatus)
	}
	if _, err := os.Stat(filepath.Dir(out)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("partial output left behind")
	}
	// Nothing is claimed after Shutdown.
	if n := r.claim(context.Background(), 1); n != 0 {
		t.Fatalf("%d jobs claimed after shutdown", n)
	}
	if got, _ := e.db.FindJob(context.Background(), "", j.ID); got.Status != vidmatte.StatusQueued {
		t.Fatalf("claimed after shutdown: %s", got.Status)
	}
}

func TestRunnerShutdownLetsJobsFinish(t *testing.T) {
	e := newRunnerEnv(t)
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4)}
	r := e.runner(t, g, 1)
	start(t, r)
	j := e.queue(t, e.clip)
	r.Wake()
	<-g.started
	go func() { <-r.stop; close(g.gate) }() // the job goes on once shutdown has begun
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.Shutdown(ctx)
	if got, _ := e.db.FindJob(context.Background(), "", j.ID); got.Status != vidmatte.StatusCompleted {
		t.Fatalf("a job within the deadline ended %s", got.Status)
	}
}

func TestRunnerSlots(t *testing.T) {
	e := newRunnerEnv(t)
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4)}
	r := e.runner(t, g, 2)
	for range 3 {
		e.queue(t, e.clip)
	}
	start(t, r)
	<-g.started
	<-g.started
	// A few more turns of the claim loop, which must find no free slot.
	for range 3 {
		r.Wake()
		time.Sleep(3 * r.cfg.PollInterval)
	}
	if n := r.Running(); n != 2 {
		t.Fatalf("%d jobs running with 2 slots", n)
	}
	counts, _ := e.db.CountJobs(context.Background())
	if counts[vidmatte.StatusQueued] != 1 {
		t.Fatalf("counts %v", counts)
	}
	close(g.gate)
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts, _ = e.db.CountJobs(context.Background())
		if counts[vidmatte.StatusCompleted] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %v", counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunnerRecoversAfterACrash(t *testing.T) {
	e := newRunnerEnv(t)
	ctx := context.Background()
	j := e.queue(t, e.clip)
	// A daemon claimed it, wrote part of its output, and died.
	if _, err := e.db.ClaimJobs(ctx, "dead", 1); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(e.dir, "outputs", j.ID, "."+j.ID+".partial.webm")
	os.MkdirAll(filepath.Dir(partial), 0o755)
	os.WriteFile(partial, []byte("half"), 0o644)
	r := e.runner(t, newTestEngine(t, 1), 1)
	start(t, r)
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the partial output survived")
	}
	if done.Attempts != 2 {
		t.Fatalf("attempts %d", done.Attempts)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger after recovery %v", l)
	}

	// A job interrupted MaxAttempts times fails and is refunded.
	j2 := e.queue(t, e.clip)
	for range 2 {
		e.db.ClaimJobs(ctx, "dead", 1)
		e.db.RecoverJobs(ctx, 5)
	}
	e.db.ClaimJobs(ctx, "dead", 1)
	r2 := e.runner(t, newTestEngine(t, 1), 1)
	if err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.db.FindJob(ctx, "", j2.ID)
	if got.Status != vidmatte.StatusFailed || got.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("job past its attempts: %s %s", got.Status, got.BillingStatus)
	}
}

// A job whose video holds more frames than its probed duration covers is
// stopped at the cap of its reservation, failed as unprocessable and
// refunded: nothing is processed unpaid.
func TestRunnerStopsAJobPastItsReservation(t *testing.T) {
	e := newRunnerEnv(t)
	long, _ := testmedia.GreenScreen(t, 96, 64, 40, false)
	ctx := context.Background()
	up := &vidmatte.Upload{KeyID: e.keyID, Filename: "clip.mp4", Path: long, Size: 1, DurationSec: 0.2, Width: 96, Height: 64, FPS: 10}
	if err := e.db.CreateUpload(ctx, up); err != nil {
		t.Fatal(err)
	}
	// Its container said 0.2 s (2 frames at 10 fps): 1 s is reserved.
	j := &vidmatte.Job{KeyID: e.keyID, VideoURL: "http://x/v1/uploads/" + up.ID, UploadID: up.ID, InputPath: long,
		Model: "chroma", OutputFormat: vidmatte.FormatWebM, Background: vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		DurationSec: 0.2, FramesTotal: 2, Credits: 1}
	if err := e.db.CreateJob(ctx, j, true, "req_test"); err != nil {
		t.Fatal(err)
	}
	r := e.runner(t, newTestEngine(t, 1), 1)
	start(t, r)
	r.Wake()
	failed := e.waitStatus(t, j.ID, vidmatte.StatusFailed)
	if failed.Error == nil || failed.Error.Code != vidmatte.CodeUnprocessable || failed.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("job past its reservation: %+v %+v", failed, failed.Error)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["refund"] != 1 || l["charge"] != 0 {
		t.Fatalf("ledger %v", l)
	}
}

// A runner whose job was taken back by another daemon (its lease ran out
// and the job was claimed again) learns it from its heartbeat and abandons
// the job: it writes no outcome, keeps no output, and the new holder's
// completion is the only charge.
func TestRunnerAbandonsAJobWhoseLeaseIsLost(t *testing.T) {
	e := newRunnerEnv(t)
	e.db.SetLease(time.Nanosecond) // every lease has run out at once: the test decides when it is taken back
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4), progress: make(chan Progress)}
	r := e.runner(t, g, 1)
	start(t, r)
	ctx := context.Background()
	j := e.queue(t, e.clip)
	r.Wake()
	out := <-g.started

	// Another daemon rescues the job and claims it.
	rescued, err := e.db.RescueJobs(ctx, 3)
	if err != nil || len(rescued) != 1 {
		t.Fatalf("rescue: %v %d", err, len(rescued))
	}
	taken, err := e.db.ClaimJobs(ctx, "other-daemon", 1)
	if err != nil || len(taken) != 1 || taken[0].ID != j.ID {
		t.Fatalf("the other daemon's claim: %v %v", err, taken)
	}
	r.Heartbeat(ctx)
	e.waitIdle(t, r)
	cur, err := e.db.FindJob(ctx, "", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Status != vidmatte.StatusProcessing || cur.LeaseToken != taken[0].LeaseToken {
		t.Fatalf("the stale runner touched the job: %+v", cur)
	}
	if _, err := os.Stat(filepath.Dir(out)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the abandoned run left its output folder: %v", err)
	}
	if _, err := e.db.CompleteJob(ctx, taken[0].Lease(), vidmatte.JobOutput{Path: "/elsewhere/out.webm"}); err != nil {
		t.Fatal(err)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger %v", l)
	}
}

// A cancel made through another daemon reaches the runner in its
// heartbeat's answer, without waiting for a progress write.
func TestRunnerLearnsACancelFromItsHeartbeat(t *testing.T) {
	e := newRunnerEnv(t)
	g := &gatedProcessor{inner: newTestEngine(t, 1), gate: make(chan struct{}), started: make(chan string, 4), progress: make(chan Progress)}
	r := e.runner(t, g, 1)
	start(t, r)
	ctx := context.Background()
	j := e.queue(t, e.clip)
	r.Wake()
	<-g.started
	if _, err := e.db.CancelJob(ctx, e.keyID, j.ID, "canceled through another daemon", ""); err != nil {
		t.Fatal(err)
	}
	r.Heartbeat(ctx)
	e.waitIdle(t, r)
	got, _ := e.db.FindJob(ctx, "", j.ID)
	if got.Status != vidmatte.StatusCanceled || got.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("canceled job: %s %s", got.Status, got.BillingStatus)
	}
}
