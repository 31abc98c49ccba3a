package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"vidmatte/artifacts"

	"vidmatte"
)

// Processor runs one video through the pipeline. *Engine satisfies it; the
// runner's tests wrap it to make failures happen.
type Processor interface {
	Process(ctx context.Context, r Request) (*Result, error)
}

// JobEvents is told when a job starts, completes or fails (the daemon
// queues webhooks from it). Event names are vidmatte.EventJob*.
type JobEvents interface {
	JobEvent(ctx context.Context, event string, j *vidmatte.Job)
}

// JobReaper takes back the jobs a worker holds as processing in the store
// but no longer runs (*store.DB): those still under maxAttempts go back to
// the queue with their reservation, the others fail and are refunded.
type JobReaper interface {
	ReapJobs(ctx context.Context, worker string, held []string, maxAttempts int) ([]*vidmatte.Job, error)
}

// StoreRetry bounds how the runner retries a write of a job's outcome
// (completion, failure, requeue, final progress) that failed for a reason
// that may pass: a busy or full database, an I/O error. The wait doubles
// from Base up to Max between tries.
type StoreRetry struct {
	Attempts int           // tries in all (default 10)
	Base     time.Duration // the first wait (default 50 ms)
	Max      time.Duration // the longest wait (default 5 s)
}

// JobMetrics records jobs that ended in this process.
type JobMetrics interface {
	ObserveJob(jobID string, status vidmatte.Status, frames int64, infer, elapsed time.Duration)
}

// LeaseMetrics, when the metrics sink has it, counts what happens to job
// leases (rescued: a job whose lease ran out taken back by this daemon;
// lost: a job of this daemon's taken back by another; heartbeat_failed: a
// renewal the store did not answer; store_retry: a runner write tried
// again after a passing store error) and how many jobs run here.
type LeaseMetrics interface {
	ObserveLease(event string, n int)
	SetRunning(n int)
}

// StageMetrics, when the metrics sink has it, gets how each pipeline stage
// of a completed job spent its time (Result.Stages), for per-stage busy
// and waiting totals.
type StageMetrics interface {
	ObserveStages(jobID string, stages []vidmatte.StageTime)
}

// RunnerConfig is what a Runner is built from.
type RunnerConfig struct {
	Jobs      vidmatte.JobService
	Processor Processor
	// OutputDir holds one folder per job, outputs/<job id>/<job id><ext>;
	// a job's folder is removed whenever the job does not complete.
	OutputDir string
	// Slots is how many jobs run at once (default 1).
	Slots int
	// MaxAttempts bounds how often a job interrupted by a crash is started
	// again before it fails (default 3).
	MaxAttempts int
	// Worker names this runner in claims (default host:pid).
	Worker string
	// PollInterval is how often the queue is looked at without a Wake
	// (default 1 s).
	PollInterval time.Duration
	// ProgressInterval is the least time between two progress writes of a
	// job (default 500 ms).
	ProgressInterval time.Duration
	// FetchBackground turns a background image URL into a local file. Jobs
	// with image backgrounds fail without it.
	FetchBackground func(ctx context.Context, url string) (string, error)
	Events          JobEvents  // optional
	Metrics         JobMetrics // optional
	Logger          *slog.Logger
	// Retry bounds the retries of a job's outcome write.
	Retry StoreRetry
	// Reaper, every ReapInterval (default 30 s) and soon after an outcome
	// could not be written, takes back the jobs this runner's worker holds
	// in the store but does not run, so none stays processing with its
	// credits reserved until a restart. Nil uses Jobs when it is a
	// JobReaper; with neither there is no reaping.
	Reaper       JobReaper
	ReapInterval time.Duration
	// Files reads jobs' inputs and keeps their outputs (nil: local files,
	// outputs left in OutputDir).
	Files *artifacts.Files
	// Shared says other daemons run jobs from the same store (a cluster):
	// Run then does not take back every processing job when it starts,
	// only, like every daemon, those whose lease has run out.
	Shared bool
	// HeartbeatInterval is how often the leases of running jobs are
	// renewed (default 10 s; keep it well under the store's lease).
	HeartbeatInterval time.Duration
	// RescueInterval is how often jobs whose lease ran out are taken back
	// (default 15 s).
	RescueInterval time.Duration
	// SegmentLength, when > 0 and Jobs records segments, has each job
	// processed in segments of this length that are recorded as they
	// finish, so an interrupted job resumes at its first unfinished one
	// on any daemon. WarmUp is the frames a recurrent model runs on
	// before a resumed segment (0 = DefaultWarmUp, negative = none).
	SegmentLength time.Duration
	WarmUp        int
}

// SegmentMetrics, when the metrics sink has it, counts the segments
// recorded and their frames.
type SegmentMetrics interface {
	ObserveSegment(frames int64)
}

// Runner claims queued jobs up to its free slots, runs each through the
// Processor, records progress and the outcome, and tells the events sink.
//
// Credits are the store's bookkeeping: reserved when a job is queued,
// charged by CompleteJob, refunded by FailJob and CancelJob, kept by
// RequeueJob. The runner only makes the right call for each outcome.
//
// Shutdown has two stages: claiming stops and running jobs may finish until
// the deadline; then they are canceled and put back in the queue.
type Runner struct {
	cfg RunnerConfig
	log *slog.Logger

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}
	started  bool

	// life ends when Run's context does: retries stop waiting then.
	life    context.Context
	endLife context.CancelFunc
	reap    chan struct{} // asks the loop to reap soon

	claimMu sync.Mutex // held while claiming, reaping and starting jobs
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	leases  map[string]vidmatte.Lease // of the running jobs
	// segLeases are the segment leases held by the requests running here.
	segLeases map[vidmatte.SegmentLease]*journal
	// unsettled lists the running jobs whose outcome could not be written;
	// the reaper is asked to run once they have left running.
	unsettled map[string]bool
	wg        sync.WaitGroup
}

// The causes a job's context is canceled with.
var (
	errClientCancel = errors.New("canceled by the client")
	errShutdown     = errors.New("the daemon is shutting down")
	errLeaseLost    = errors.New("the job's lease was lost")
)

// NewRunner returns a runner; Run starts it.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Jobs == nil || cfg.Processor == nil {
		return nil, errors.New("engine: a runner needs a job service and a processor")
	}
	if cfg.OutputDir == "" {
		return nil, errors.New("engine: a runner needs an output folder")
	}
	if cfg.Slots < 1 {
		cfg.Slots = 1
	}
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 3
	}
	if cfg.Worker == "" {
		host, _ := os.Hostname()
		cfg.Worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retry.Attempts < 1 {
		cfg.Retry.Attempts = 10
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry.Base = 50 * time.Millisecond
	}
	if cfg.Retry.Max < cfg.Retry.Base {
		cfg.Retry.Max = max(5*time.Second, cfg.Retry.Base)
	}
	if cfg.Reaper == nil {
		cfg.Reaper, _ = cfg.Jobs.(JobReaper)
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = 30 * time.Second
	}
	if cfg.Files == nil {
		cfg.Files, _ = artifacts.NewFiles(nil, "")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.RescueInterval <= 0 {
		cfg.RescueInterval = 15 * time.Second
	}
	if err := os.MkdirAll(cfg.OutputDir, 0o750); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	life, endLife := context.WithCancel(context.Background())
	return &Runner{
		cfg:       cfg,
		log:       cfg.Logger,
		life:      life,
		endLife:   endLife,
		reap:      make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
		running:   map[string]context.CancelCauseFunc{},
		leases:    map[string]vidmatte.Lease{},
		segLeases: map[vidmatte.SegmentLease]*journal{},
		unsettled: map[string]bool{},
	}, nil
}

// SetEvents sets the events sink and the background-image fetcher after
// the runner is made (the daemon's api, which provides both, needs the
// runner first). Call it before Run.
func (r *Runner) SetEvents(events JobEvents, fetchBackground func(ctx context.Context, url string) (string, error)) {
	r.cfg.Events = events
	r.cfg.FetchBackground = fetchBackground
}

// OutputPath is where the runner has a job's output written.
func (r *Runner) OutputPath(j *vidmatte.Job) string {
	return filepath.Join(r.cfg.OutputDir, j.ID, j.ID+j.OutputFormat.Extension())
}

// Wake tells the runner that a job may be waiting.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Cancel stops a job running in this process (the store has already
// recorded the cancel); it reports whether the job was running here.
func (r *Runner) Cancel(jobID string) bool {
	r.mu.Lock()
	cancel, ok := r.running[jobID]
	r.mu.Unlock()
	if ok {
		cancel(errClientCancel)
	}
	return ok
}

// Running returns how many jobs are running now.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Recover requeues the jobs a crashed daemon left processing (failing those
// past MaxAttempts) and removes their partial outputs.
func (r *Runner) Recover(ctx context.Context) error {
	jobs, err := r.cfg.Jobs.RecoverJobs(ctx, r.cfg.MaxAttempts)
	if err != nil {
		return fmt.Errorf("engine: recovering jobs: %w", err)
	}
	for _, j := range jobs {
		r.removeOutput(j)
		log := r.log.With(slog.String("job_id", j.ID))
		if j.Status == vidmatte.StatusFailed {
			log.Warn("job interrupted too often; failed", slog.Int("attempts", j.Attempts))
			r.event(ctx, vidmatte.EventJobFailed, j)
			continue
		}
		log.Info("job interrupted by a crash; requeued", slog.Int("attempts", j.Attempts))
	}
	return nil
}

// Run recovers interrupted jobs, then claims and runs jobs until Shutdown
// or until ctx is done. When ctx ends first, running jobs are canceled and
// requeued at once. Run returns when no job of it is running any more.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("engine: runner already started")
	}
	r.started = true
	r.mu.Unlock()
	defer close(r.loopDone)
	defer context.AfterFunc(ctx, r.endLife)()
	if !r.cfg.Shared {
		if err := r.Recover(ctx); err != nil {
			return err
		}
	}
	beats := make(chan struct{})
	go func() { defer close(beats); r.heartbeats(r.life) }()
	defer func() { r.endLife(); <-beats }()
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	reapT := time.NewTicker(r.cfg.ReapInterval)
	defer reapT.Stop()
	rescueT := time.NewTicker(r.cfg.RescueInterval)
	defer rescueT.Stop()
	for {
		select {
		case <-r.stop:
			return r.wait(ctx)
		case <-ctx.Done():
			r.cancelAll(errShutdown)
			r.wg.Wait()
			return nil
		default:
		}
		if free := r.cfg.Slots - r.Running(); free > 0 && r.claim(ctx, free) == free {
			continue
		}
		if r.help(ctx) {
			continue
		}
		select {
		case <-r.stop:
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		case <-reapT.C:
			r.Reap(ctx)
			r.SweepParts(ctx)
		case <-r.reap:
			r.Reap(ctx)
		case <-rescueT.C:
			r.Rescue(ctx)
		}
	}
}

// heartbeats renews the running jobs' leases until ctx ends (Run's life:
// jobs still draining at shutdown keep their leases).
func (r *Runner) heartbeats(ctx context.Context) {
	t := time.NewTicker(r.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Heartbeat(ctx)
		}
	}
}

// Heartbeat renews the leases of the jobs running here, and stops each job
// whose lease is no longer its own: one a client canceled (through any
// daemon) stops as canceled; one taken back by another daemon after its
// lease ran out is abandoned, its outcome never written. A store that does
// not answer is tried again at the next beat; meanwhile the leases may run
// out, and then the store refuses this runner's writes for those jobs.
func (r *Runner) Heartbeat(ctx context.Context) {
	r.renewSegments(ctx)
	r.mu.Lock()
	leases := make([]vidmatte.Lease, 0, len(r.leases))
	for _, l := range r.leases {
		leases = append(leases, l)
	}
	r.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	lost, err := r.cfg.Jobs.Heartbeat(ctx, r.cfg.Worker, leases)
	if err != nil {
		r.observeLease("heartbeat_failed", 1)
		if ctx.Err() == nil {
			r.log.Warn("renewing job leases; trying again at the next beat", slog.Any("error", err))
		}
		return
	}
	for id, status := range lost {
		cause := errLeaseLost
		if status == vidmatte.StatusCanceled {
			cause = errClientCancel
		} else {
			r.observeLease("lost", 1)
		}
		r.mu.Lock()
		cancel, ok := r.running[id]
		r.mu.Unlock()
		if ok {
			r.log.Info("job no longer held by this runner; stopping it", slog.String("job_id", id),
				slog.String("status", string(status)), slog.String("cause", cause.Error()))
			cancel(cause)
		}
	}
}

// renewSegments renews the segment leases of the requests running here;
// a lease lost (its job ended, or it ran out and another worker took the
// segment) is dropped from its request, and a helper's request stops.
func (r *Runner) renewSegments(ctx context.Context) {
	segs, ok := r.cfg.Jobs.(vidmatte.SegmentService)
	if !ok {
		return
	}
	r.mu.Lock()
	held := make([]vidmatte.SegmentLease, 0, len(r.segLeases))
	for l := range r.segLeases {
		held = append(held, l)
	}
	r.mu.Unlock()
	if len(held) == 0 {
		return
	}
	lost, err := segs.RenewSegments(ctx, r.cfg.Worker, held)
	if err != nil {
		r.observeLease("heartbeat_failed", 1)
		if ctx.Err() == nil {
			r.log.Warn("renewing segment leases; trying again at the next beat", slog.Any("error", err))
		}
		return
	}
	for _, l := range lost {
		r.mu.Lock()
		jn := r.segLeases[l]
		r.mu.Unlock()
		if jn != nil {
			r.observeLease("lost", 1)
			jn.log.Info("segment no longer held by this runner", slog.Int("segment", l.Seq))
			jn.lost(l)
		}
	}
}

// help claims, when a slot is free and nothing is queued, a segment of a
// processing job (another daemon's, or this one's when the parts are not
// shared) and works on it beside the job's runner. It reports whether it
// started something.
func (r *Runner) help(ctx context.Context) bool {
	segs, ok := r.cfg.Jobs.(vidmatte.SegmentService)
	if !ok || r.cfg.SegmentLength <= 0 {
		return false
	}
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	select {
	case <-r.stop:
		return false
	default:
	}
	if r.cfg.Slots-r.Running() <= 0 {
		return false
	}
	j, l, ok, err := segs.ClaimHelp(ctx, r.cfg.Worker, !r.cfg.Files.Shared())
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("claiming a segment to help with", slog.Any("error", err))
		}
		return false
	}
	if !ok {
		return false
	}
	key := fmt.Sprintf("%s#%d", j.ID, l.Seq)
	hctx, cancel := context.WithCancelCause(context.Background())
	r.mu.Lock()
	r.running[key] = cancel
	running := len(r.running)
	r.mu.Unlock()
	r.setRunning(running)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, key)
			running := len(r.running)
			r.mu.Unlock()
			r.setRunning(running)
			cancel(nil)
			r.Wake()
		}()
		defer func() {
			if err := recovered("runner", recover()); err != nil {
				logPanic(r.log.With(slog.String("job_id", j.ID)), err)
			}
		}()
		r.runHelp(hctx, j, l, segs, cancel)
	}()
	return true
}

// runHelp processes, for a job another request owns, the segment l and
// those after it it can claim. Nothing of the job's own is written: its
// owner joins the parts and completes it.
func (r *Runner) runHelp(ctx context.Context, j *vidmatte.Job, l vidmatte.SegmentLease, segs vidmatte.SegmentService, cancel context.CancelCauseFunc) {
	log := r.log.With(slog.String("job_id", j.ID))
	bg := context.WithoutCancel(ctx)
	jn := r.newJournal(j, segs, log, &l, cancel)
	defer jn.close(bg)
	start := time.Now()
	log.Info("helping with a job", slog.Int("segment", l.Seq))
	input, release, err := r.cfg.Files.Local(ctx, j.InputPath)
	if err != nil {
		log.Warn("helping with a job: its input cannot be read", slog.Any("error", err))
		return
	}
	defer release()
	out := r.OutputPath(j)
	defer func() {
		// The folders of this daemon's parts, when nothing else is in them.
		os.Remove(filepath.Join(filepath.Dir(out), partsDir))
		os.Remove(filepath.Dir(out))
	}()
	req := Request{
		Input: input, Output: out, Model: j.Model, Format: j.OutputFormat,
		Background: j.Background, Composition: j.Composition, MaxFrames: j.FrameCap(),
		Segments: jn, SegmentLength: r.cfg.SegmentLength, WarmUp: r.cfg.WarmUp, Help: true,
	}
	var res *Result
	err = r.prepareBackground(ctx, &req)
	if err == nil {
		err = protect("processor", func() error {
			var perr error
			res, perr = r.cfg.Processor.Process(ctx, req)
			return perr
		})
	}
	switch {
	case err == nil:
		attrs := []any{slog.Duration("elapsed", time.Since(start)), slog.Int64("frames", res.Frames)}
		if c := res.Segments; c != nil {
			attrs = append(attrs, slog.Int("recorded_segments", c.Recorded), slog.Int64("decoded", c.Decoded),
				slog.Int64("inferred", c.Inferred), slog.Int64("warm_up", c.WarmUp))
		}
		log.Info("helped with a job", attrs...)
	case ctx.Err() != nil:
		log.Info("stopped helping with a job", slog.Any("cause", context.Cause(ctx)))
	default:
		var pe *PanicError
		if errors.As(err, &pe) {
			logPanic(log, err)
		}
		log.Warn("helping with a job failed; its segments go back to the others", slog.Any("error", err))
	}
}

// Rescue takes back the jobs whose lease ran out (their runner, here or on
// another daemon, died or stopped answering) and removes their outputs.
func (r *Runner) Rescue(ctx context.Context) int {
	jobs, err := r.cfg.Jobs.RescueJobs(ctx, r.cfg.MaxAttempts)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("rescuing jobs whose lease ran out", slog.Any("error", err))
		}
		return 0
	}
	for _, j := range jobs {
		r.removeOutput(j)
		log := r.log.With(slog.String("job_id", j.ID))
		if j.Status == vidmatte.StatusFailed {
			log.Warn("job's lease ran out past its attempts; failed", slog.Int("attempts", j.Attempts))
			continue
		}
		log.Warn("job's lease ran out; requeued", slog.Int("attempts", j.Attempts))
	}
	if len(jobs) > 0 {
		r.observeLease("rescued", len(jobs))
		r.Wake()
	}
	return len(jobs)
}

func (r *Runner) observeLease(event string, n int) {
	if m, ok := r.cfg.Metrics.(LeaseMetrics); ok {
		m.ObserveLease(event, n)
	}
}

func (r *Runner) setRunning(n int) {
	if m, ok := r.cfg.Metrics.(LeaseMetrics); ok {
		m.SetRunning(n)
	}
}

// Reap takes back, through the Reaper, the jobs this runner's worker holds
// as processing in the store but does not run (their outcome could not be
// written), and removes their outputs. It returns how many it took back.
// It holds the claim lock, so no job is claimed or started meanwhile: a job
// is in the running set from its claim until its outcome is written or
// given up.
func (r *Runner) Reap(ctx context.Context) int {
	if r.cfg.Reaper == nil {
		return 0
	}
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	r.mu.Lock()
	held := make([]string, 0, len(r.running))
	for id := range r.running {
		held = append(held, id)
	}
	r.mu.Unlock()
	jobs, err := r.cfg.Reaper.ReapJobs(ctx, r.cfg.Worker, held, r.cfg.MaxAttempts)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("reaping jobs no runner holds; trying again at the next interval", slog.Any("error", err))
		}
		return 0
	}
	for _, j := range jobs {
		r.removeOutput(j)
		log := r.log.With(slog.String("job_id", j.ID))
		if j.Status == vidmatte.StatusFailed {
			log.Warn("job held by no runner and past its attempts; failed", slog.Int("attempts", j.Attempts))
			r.event(ctx, vidmatte.EventJobFailed, j)
			continue
		}
		log.Warn("job held by no runner; requeued", slog.Int("attempts", j.Attempts))
	}
	if len(jobs) > 0 {
		r.Wake()
	}
	return len(jobs)
}

func (r *Runner) reapSoon() {
	select {
	case r.reap <- struct{}{}:
	default:
	}
}

// wait waits for the running jobs after a Shutdown; a ctx that ends first
// cancels them.
func (r *Runner) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.cancelAll(errShutdown)
		<-done
	}
	return nil
}

// Shutdown stops claiming and lets the running jobs finish until ctx is
// done; then it cancels them, puts them back in the queue, and waits for
// them to stop.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil
	}
	// A claim in flight finishes under claimMu; any later one sees stop.
	r.claimMu.Lock()
	r.claimMu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n := r.Running()
		r.log.Warn("shutdown deadline passed; canceling and requeueing running jobs", slog.Int("jobs", n))
		r.cancelAll(errShutdown)
		<-done
		<-r.loopDone
		return nil
	}
}

func (r *Runner) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.running {
		cancel(cause)
	}
}

// claim claims up to free jobs and starts them; it returns how many. It
// claims nothing once Shutdown has begun.
func (r *Runner) claim(ctx context.Context, free int) int {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	select {
	case <-r.stop:
		return 0
	default:
	}
	jobs, err := r.cfg.Jobs.ClaimJobs(ctx, r.cfg.Worker, free)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("claiming jobs", slog.Any("error", err))
		}
		return 0
	}
	for _, j := range jobs {
		r.start(j)
	}
	return len(jobs)
}

// start runs a claimed job in a goroutine of its own.
func (r *Runner) start(j *vidmatte.Job) {
	ctx, cancel := context.WithCancelCause(context.Background())
	r.mu.Lock()
	r.running[j.ID] = cancel
	r.leases[j.ID] = j.Lease()
	running := len(r.running)
	r.mu.Unlock()
	r.setRunning(running)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, j.ID)
			delete(r.leases, j.ID)
			running := len(r.running)
			unsettled := r.unsettled[j.ID]
			delete(r.unsettled, j.ID)
			r.mu.Unlock()
			r.setRunning(running)
			cancel(nil)
			if unsettled {
				r.reapSoon()
			}
			r.Wake()
		}()
		defer func() {
			// A panic outside the processor (the processor's own is an
			// error of runJob): this job fails, the others go on.
			if err := recovered("runner", recover()); err != nil {
				r.panicked(j, err)
			}
		}()
		r.runJob(ctx, j)
	}()
}

// panicked fails a job whose goroutine panicked outside the processor.
// The job may have been settled already (a panic in an event sink after
// its completion): then the failure is a conflict and only logged.
func (r *Runner) panicked(j *vidmatte.Job, err error) {
	log := r.log.With(slog.String("job_id", j.ID))
	logPanic(log, err)
	if err := protect("runner", func() error {
		r.removeOutput(j)
		r.fail(context.Background(), log, j, err, 0)
		return nil
	}); err != nil {
		logPanic(log, err)
	}
}

// logPanic logs a recovered panic with its stack.
func logPanic(log *slog.Logger, err error) {
	var pe *PanicError
	if errors.As(err, &pe) {
		log.Error("job panicked", slog.String("where", pe.Where), slog.Any("panic", pe.Value), slog.String("stack", string(pe.Stack)))
	}
}

func (r *Runner) event(ctx context.Context, event string, j *vidmatte.Job) {
	if r.cfg.Events != nil && j != nil {
		r.cfg.Events.JobEvent(context.WithoutCancel(ctx), event, j)
	}
}

// removeOutput removes what a run left in the job's output folder. The
// recorded parts of a job that may still resume (queued or processing)
// stay, in its parts folder; those of a job that has ended go too
// (discardParts).
func (r *Runner) removeOutput(j *vidmatte.Job) {
	if j.ID == "" || filepath.Base(j.ID) != j.ID || j.ID == "." || j.ID == ".." {
		return
	}
	dir := filepath.Join(r.cfg.OutputDir, j.ID)
	if j.Status.Terminal() {
		r.discardParts(context.Background(), j)
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("removing a job's output", slog.String("job_id", j.ID), slog.Any("error", err))
		}
		return
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	kept := false
	for _, e := range entries {
		if e.Name() == partsDir && e.IsDir() {
			kept = true
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			r.log.Warn("removing a job's output", slog.String("job_id", j.ID), slog.Any("error", err))
		}
	}
	if !kept {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("removing a job's output", slog.String("job_id", j.ID), slog.Any("error", err))
		}
	}
}

// discardParts removes a job's parts, its parts folder and those kept in
// the object store: the job will not resume.
func (r *Runner) discardParts(ctx context.Context, j *vidmatte.Job) {
	if j.ID == "" || filepath.Base(j.ID) != j.ID || j.ID == "." || j.ID == ".." {
		return
	}
	if segs, ok := r.cfg.Jobs.(vidmatte.SegmentService); ok && r.cfg.Files.Shared() {
		st, err := segs.JobSegments(ctx, j.ID)
		if err != nil {
			r.log.Warn("listing a job's parts to delete them", slog.String("job_id", j.ID), slog.Any("error", err))
		}
		for _, s := range st.Done {
			if artifacts.IsObject(s.Path) {
				if _, err := r.cfg.Files.Delete(ctx, s.Path); err != nil {
					r.log.Warn("deleting a job's part", slog.String("job_id", j.ID), slog.Any("error", err))
				}
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(r.cfg.OutputDir, j.ID, partsDir)); err != nil {
		r.log.Warn("removing a job's parts", slog.String("job_id", j.ID), slog.Any("error", err))
	}
}

// SweepParts deletes the parts of jobs that ended without this runner
// deleting them (canceled while queued, failed by a rescue elsewhere, a
// deletion that failed) and forgets their segments. It returns how many
// jobs it swept.
func (r *Runner) SweepParts(ctx context.Context) int {
	segs, ok := r.cfg.Jobs.(vidmatte.SegmentService)
	if !ok {
		return 0
	}
	ids, err := segs.EndedJobsWithSegments(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("listing ended jobs' parts", slog.Any("error", err))
		}
		return 0
	}
	for _, id := range ids {
		r.discardParts(ctx, &vidmatte.Job{ID: id})
		if err := segs.DropSegments(ctx, id); err != nil {
			r.log.Warn("forgetting an ended job's segments", slog.String("job_id", id), slog.Any("error", err))
		}
	}
	return len(ids)
}

// partsDir is the folder of a job's output folder that holds its parts
// while it may still resume.
const partsDir = "parts"

// journal is the runner's SegmentJournal for one request on a job, its
// owner's (the claim of the job) or a helper's (first: the segment the
// help claim gave it): parts are written in the job's parts folder, kept
// through Files under a key of the segment and its claim's token, and
// recorded in the store with the segment's lease. The segment leases it
// holds are renewed by the runner's heartbeat and released when the
// request ends.
type journal struct {
	r    *Runner
	j    *vidmatte.Job
	segs vidmatte.SegmentService
	log  *slog.Logger
	// first is a helper's segment, which Next gives once (given); the
	// owner's Next claims.
	first *vidmatte.SegmentLease
	given bool
	// cancel stops a helper's request when a segment lease it holds is
	// lost (the owner learns its job's end from its own lease).
	cancel context.CancelCauseFunc

	mu   sync.Mutex
	held map[int]vidmatte.SegmentLease
}

func (r *Runner) newJournal(j *vidmatte.Job, segs vidmatte.SegmentService, log *slog.Logger, first *vidmatte.SegmentLease, cancel context.CancelCauseFunc) *journal {
	jn := &journal{r: r, j: j, segs: segs, log: log, first: first, cancel: cancel, held: map[int]vidmatte.SegmentLease{}}
	if first != nil {
		jn.hold(*first)
	}
	return jn
}

func (jn *journal) hold(l vidmatte.SegmentLease) {
	jn.mu.Lock()
	jn.held[l.Seq] = l
	jn.mu.Unlock()
	jn.r.mu.Lock()
	jn.r.segLeases[l] = jn
	jn.r.mu.Unlock()
}

func (jn *journal) drop(l vidmatte.SegmentLease) {
	jn.mu.Lock()
	delete(jn.held, l.Seq)
	jn.mu.Unlock()
	jn.r.mu.Lock()
	delete(jn.r.segLeases, l)
	jn.r.mu.Unlock()
}

// lost is the heartbeat's word that lease l is no longer this journal's.
func (jn *journal) lost(l vidmatte.SegmentLease) {
	jn.drop(l)
	if jn.first != nil {
		jn.cancel(errLeaseLost)
	}
}

// close releases the segment leases the request did not record.
func (jn *journal) close(ctx context.Context) {
	jn.mu.Lock()
	var left []vidmatte.SegmentLease
	for _, l := range jn.held {
		left = append(left, l)
	}
	jn.mu.Unlock()
	for _, l := range left {
		jn.drop(l)
	}
	if err := jn.segs.ReleaseSegments(ctx, jn.r.cfg.Worker, left); err != nil {
		jn.log.Warn("releasing segment leases; they run out instead", slog.Any("error", err))
	}
}

func (jn *journal) Plan(ctx context.Context, p vidmatte.SegmentPlan) (vidmatte.SegmentPlan, error) {
	if jn.first != nil {
		st, err := jn.segs.JobSegments(ctx, jn.j.ID)
		if err != nil {
			return p, err
		}
		if st.Plan == nil {
			return p, vidmatte.Errorf(vidmatte.CodeInternal, "job %s has no segment plan", jn.j.ID)
		}
		return *st.Plan, nil
	}
	return jn.segs.PlanSegments(ctx, jn.j.Lease(), p)
}

func (jn *journal) Next(ctx context.Context) (int, bool, error) {
	if jn.first != nil {
		// A helper runs one stretch, then goes back to the queue.
		if jn.given {
			return 0, false, nil
		}
		jn.given = true
		return jn.first.Seq, true, nil
	}
	return jn.claim(ctx, -1)
}

func (jn *journal) Continue(ctx context.Context, seq int) (bool, error) {
	_, ok, err := jn.claim(ctx, seq)
	return ok, err
}

func (jn *journal) claim(ctx context.Context, seq int) (int, bool, error) {
	l, ok, err := jn.segs.ClaimSegment(ctx, jn.r.cfg.Worker, jn.j.ID, seq)
	if err != nil || !ok {
		return 0, false, err
	}
	jn.hold(l)
	return l.Seq, true, nil
}

func (jn *journal) State(ctx context.Context) (vidmatte.JobSegments, error) {
	return jn.segs.JobSegments(ctx, jn.j.ID)
}

func (jn *journal) lease(seq int) (vidmatte.SegmentLease, bool) {
	jn.mu.Lock()
	defer jn.mu.Unlock()
	l, ok := jn.held[seq]
	return l, ok
}

func (jn *journal) PartPath(seq int, ext string) (string, error) {
	l, ok := jn.lease(seq)
	if !ok {
		return "", errSegmentNotHeld(jn.j.ID, seq)
	}
	dir := filepath.Join(jn.r.cfg.OutputDir, jn.j.ID, partsDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", vidmatte.Wrap(err, vidmatte.CodeInternal, "creating the parts folder")
	}
	return filepath.Join(dir, fmt.Sprintf("part_%06d_%d%s", seq, l.Token, ext)), nil
}

func errSegmentNotHeld(jobID string, seq int) error {
	return &vidmatte.Error{Code: vidmatte.CodeConflict, Err: vidmatte.ErrLeaseLost,
		Message: fmt.Sprintf("job %s: segment %d is not held by this runner", jobID, seq)}
}

// Record keeps the part and records the segment. A lease lost meanwhile
// is the caller's to handle (the segment is another worker's now).
func (jn *journal) Record(ctx context.Context, s vidmatte.Segment, local string) error {
	ctx = context.WithoutCancel(ctx)
	l, ok := jn.lease(s.Seq)
	if !ok {
		return errSegmentNotHeld(jn.j.ID, s.Seq)
	}
	ref := ""
	if local != "" {
		s.Size = fileSize(local)
		var err error
		if ref, err = jn.r.cfg.Files.Keep(ctx, "outputs/"+jn.j.ID+"/"+partsDir+"/"+filepath.Base(local), local); err != nil {
			return err
		}
	}
	s.Path = ref
	err := jn.r.retry(jn.log, "recording a segment", func() error { return jn.segs.RecordSegment(ctx, l, s) })
	if err != nil {
		if artifacts.IsObject(ref) {
			if _, derr := jn.r.cfg.Files.Delete(ctx, ref); derr != nil {
				jn.log.Warn("deleting a part that could not be recorded", slog.Any("error", derr))
			}
		}
		return err
	}
	jn.drop(l)
	if m, ok := jn.r.cfg.Metrics.(SegmentMetrics); ok {
		m.ObserveSegment(s.Frames)
	}
	return nil
}

func (jn *journal) Local(ctx context.Context, ref string) (string, func(), error) {
	return jn.r.cfg.Files.Local(ctx, ref)
}

// runJob processes a claimed job and records its outcome. ctx is the job's
// own: canceled with errClientCancel or errShutdown.
func (r *Runner) runJob(ctx context.Context, j *vidmatte.Job) {
	log := r.log.With(slog.String("job_id", j.ID))
	if j.RequestID != "" {
		log = log.With(slog.String("request_id", j.RequestID))
	}
	bg := context.WithoutCancel(ctx) // outcomes are written even after a cancel
	log.Info("job processing", slog.String("model", j.Model), slog.String("output_format", string(j.OutputFormat)),
		slog.Int("attempt", j.Attempts))
	r.event(bg, vidmatte.EventJobStarted, j)

	start := time.Now()
	out := r.OutputPath(j)
	input, release, err := r.cfg.Files.Local(ctx, j.InputPath)
	if err != nil {
		r.fail(bg, log, j, err, 0)
		return
	}
	defer release()
	req := Request{
		Input:       input,
		Output:      out,
		Model:       j.Model,
		Format:      j.OutputFormat,
		Background:  j.Background,
		Composition: j.Composition,
		MaxFrames:   j.FrameCap(),
	}
	if segs, ok := r.cfg.Jobs.(vidmatte.SegmentService); ok && r.cfg.SegmentLength > 0 {
		jn := r.newJournal(j, segs, log, nil, nil)
		defer jn.close(bg)
		req.Segments, req.SegmentLength, req.WarmUp = jn, r.cfg.SegmentLength, r.cfg.WarmUp
	}
	var res *Result
	err = r.prepareBackground(ctx, &req)
	if err == nil {
		rep := newProgressReporter(r, j, log, context.CancelCauseFunc(r.cancelFunc(j.ID)))
		req.Progress = rep.update
		go rep.run(ctx)
		err = protect("processor", func() error {
			var perr error
			res, perr = r.cfg.Processor.Process(ctx, req)
			return perr
		})
		rep.stop()
	}
	elapsed := time.Since(start)
	cause := context.Cause(ctx)
	var pe *PanicError
	switch {
	case err == nil:
		if res.Frames > 0 {
			if perr := r.retry(log, "recording final progress", func() error {
				_, err := r.cfg.Jobs.SetJobProgress(bg, j.Lease(), 99, res.Frames, res.Frames)
				return err
			}); perr != nil {
				log.Warn("recording final progress", slog.Any("error", perr))
			}
		}
		size := fileSize(out)
		// The output goes where every daemon reads it, under a key of this
		// claim's token: a stale runner's upload never replaces another's.
		ref, kerr := r.cfg.Files.Keep(bg, outputKey(j, out), out)
		if kerr != nil {
			r.removeOutput(j)
			r.fail(bg, log, j, kerr, elapsed)
			return
		}
		done, cerr := r.settle(bg, log, "complete job", j.ID, vidmatte.StatusCompleted, func() (*vidmatte.Job, error) {
			return r.cfg.Jobs.CompleteJob(bg, j.Lease(), vidmatte.JobOutput{Path: ref, Size: size, Frames: res.Frames})
		})
		if cerr != nil && artifacts.IsObject(ref) {
			if _, derr := r.cfg.Files.Delete(bg, ref); derr != nil {
				log.Warn("deleting the output of a job that could not be completed", slog.Any("error", derr))
			}
		}
		if cerr != nil {
			// Canceled in the last moment, or gone, or the store is down:
			// the output is not wanted (a job left processing is reaped).
			r.removeOutput(j)
			r.gaveUp(j, log, "job finished but could not be completed", cerr)
			return
		}
		if artifacts.IsObject(ref) {
			r.removeOutput(j) // the local folder the output was written in
		}
		attrs := []any{slog.Int64("frames", res.Frames), slog.Duration("elapsed", elapsed),
			slog.Float64("fps", res.FPS), slog.Duration("infer", res.InferTime), slog.Float64("credits", done.Credits)}
		if c := res.Segments; c != nil {
			// What this attempt redid: the cost of the interruptions.
			attrs = append(attrs, slog.Int("resumed_segments", c.Resumed), slog.Int64("resumed_frames", c.ResumedFrames),
				slog.Int("recorded_segments", c.Recorded), slog.Int64("decoded", c.Decoded), slog.Int64("inferred", c.Inferred),
				slog.Int64("warm_up", c.WarmUp))
		}
		r.discardParts(bg, done)
		log.Info("job completed", attrs...)
		r.observe(j.ID, vidmatte.StatusCompleted, res.Frames, res.InferTime, elapsed)
		if m, ok := r.cfg.Metrics.(StageMetrics); ok && len(res.Stages) > 0 {
			m.ObserveStages(j.ID, res.Stages)
		}
		r.event(bg, vidmatte.EventJobCompleted, done)
	case errors.As(err, &pe):
		// Whatever the job's context says: a job that crashes fails, even
		// at shutdown, so it is not started again to crash again.
		logPanic(log, err)
		r.removeOutput(j)
		r.fail(bg, log, j, err, elapsed)
	case errors.Is(cause, errLeaseLost):
		// Another daemon holds the job now: nothing of this run is kept
		// or written.
		r.removeOutput(j)
		log.Warn("job abandoned: its lease was lost to another runner", slog.Duration("elapsed", elapsed))
	case errors.Is(cause, errClientCancel):
		r.discardParts(bg, j)
		r.removeOutput(j)
		log.Info("job canceled", slog.Duration("elapsed", elapsed))
		r.observe(j.ID, vidmatte.StatusCanceled, 0, 0, elapsed)
	case errors.Is(cause, errShutdown):
		r.removeOutput(j)
		if _, qerr := r.settle(bg, log, "requeue job", j.ID, vidmatte.StatusQueued, func() (*vidmatte.Job, error) {
			return r.cfg.Jobs.RequeueJob(bg, j.Lease(), "daemon shut down before the job finished")
		}); qerr != nil {
			r.gaveUp(j, log, "requeueing a job at shutdown", qerr)
			return
		}
		log.Info("job requeued at shutdown", slog.Duration("elapsed", elapsed))
	default:
		r.removeOutput(j)
		r.fail(bg, log, j, err, elapsed)
	}
}

// fail records a job's failure with err (a code of the vocabulary; an
// internal error, a panic included, is told to the client generically)
// and refunds it, through the store's normal failure path.
func (r *Runner) fail(ctx context.Context, log *slog.Logger, j *vidmatte.Job, err error, elapsed time.Duration) {
	r.discardParts(ctx, j)
	je := vidmatte.JobError{Code: vidmatte.ErrorCode(err), Message: vidmatte.ErrorMessage(err)}
	if je.Code == vidmatte.CodeInternal {
		je.Message = "internal error while processing the video"
	}
	log.Error("job failed", slog.String("code", string(je.Code)), slog.Any("error", err), slog.Duration("elapsed", elapsed))
	failed, ferr := r.settle(ctx, log, "fail job", j.ID, vidmatte.StatusFailed, func() (*vidmatte.Job, error) {
		return r.cfg.Jobs.FailJob(ctx, j.Lease(), je)
	})
	if ferr != nil {
		r.gaveUp(j, log, "recording a job failure", ferr)
		return
	}
	r.observe(j.ID, vidmatte.StatusFailed, 0, 0, elapsed)
	r.event(ctx, vidmatte.EventJobFailed, failed)
}

// gaveUp logs an outcome that could not be written. A job the store still
// holds as processing for this worker is reaped soon.
func (r *Runner) gaveUp(j *vidmatte.Job, log *slog.Logger, msg string, err error) {
	if transient(err) {
		log.Error(msg+"; the job is left to the reaper", slog.Any("error", err))
		r.mu.Lock()
		r.unsettled[j.ID] = true
		r.mu.Unlock()
		return
	}
	log.Warn(msg, slog.Any("error", err))
}

// transient says whether a store error may pass if the call is tried
// again: an internal fault (busy or full database, I/O) or unavailability.
// A conflict, a missing job or a bad argument stays what it is.
func transient(err error) bool {
	switch vidmatte.ErrorCode(err) {
	case vidmatte.CodeInternal, vidmatte.CodeUnavailable, vidmatte.CodeTimeout:
		return true
	}
	return false
}

// retry calls f until it succeeds, fails for good, or has been tried
// Retry.Attempts times, waiting between tries with a capped exponential
// backoff. The waits end early when the runner's Run context does.
func (r *Runner) retry(log *slog.Logger, what string, f func() error) error {
	wait := r.cfg.Retry.Base
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !transient(err) || attempt >= r.cfg.Retry.Attempts {
			return err
		}
		log.Warn(what+" failed; retrying", slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", err))
		r.observeLease("store_retry", 1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.life.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, r.cfg.Retry.Max)
	}
}

// settle writes a job's outcome with retries. A try that failed may still
// have been committed (the error came after the commit): when a later try
// then finds the job already moved (a conflict), the job is read back, and
// one that is in the wanted status counts as written.
func (r *Runner) settle(ctx context.Context, log *slog.Logger, what, id string, want vidmatte.Status, write func() (*vidmatte.Job, error)) (*vidmatte.Job, error) {
	var (
		j      *vidmatte.Job
		unsure bool
	)
	err := r.retry(log, what, func() error {
		var err error
		j, err = write()
		unsure = unsure || transient(err)
		return err
	})
	if err != nil && unsure && vidmatte.ErrorCode(err) == vidmatte.CodeConflict {
		if cur, ferr := r.cfg.Jobs.FindJob(ctx, "", id); ferr == nil && cur.Status == want {
			return cur, nil
		}
	}
	return j, err
}

func (r *Runner) observe(id string, st vidmatte.Status, frames int64, infer, elapsed time.Duration) {
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.ObserveJob(id, st, frames, infer, elapsed)
	}
}

// cancelFunc returns the cancel of a running job.
func (r *Runner) cancelFunc(id string) context.CancelCauseFunc {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.running[id]; ok {
		return c
	}
	return func(error) {}
}

// prepareBackground fetches an image background to a local file.
func (r *Runner) prepareBackground(ctx context.Context, req *Request) error {
	if req.Background.Type != vidmatte.BackgroundImage || req.Background.ImagePath != "" {
		return nil
	}
	if r.cfg.FetchBackground == nil {
		return vidmatte.Errorf(vidmatte.CodeUnprocessable, "image backgrounds are not available on this daemon")
	}
	p, err := r.cfg.FetchBackground(ctx, req.Background.ImageURL)
	if err != nil {
		return err
	}
	req.Background.ImagePath = p
	return nil
}

// progressReporter writes a job's progress at most every ProgressInterval,
// never backwards, and cancels the job when the store says it was canceled.
type progressReporter struct {
	r      *Runner
	j      *vidmatte.Job
	log    *slog.Logger
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	latest  Progress
	fresh   bool
	written int
	frames  int64

	quit chan struct{}
	done chan struct{}
}

func newProgressReporter(r *Runner, j *vidmatte.Job, log *slog.Logger, cancel context.CancelCauseFunc) *progressReporter {
	return &progressReporter{r: r, j: j, log: log, cancel: cancel, written: j.Progress, frames: j.FramesDone,
		quit: make(chan struct{}), done: make(chan struct{})}
}

// update is the pipeline's progress callback; it only keeps the value.
func (p *progressReporter) update(pr Progress) {
	p.mu.Lock()
	p.latest = pr
	p.fresh = true
	p.mu.Unlock()
}

func (p *progressReporter) run(ctx context.Context) {
	defer close(p.done)
	defer func() {
		// Progress is not worth a crash: the job goes on without it.
		if err := recovered("progress reporter", recover()); err != nil {
			logPanic(p.log, err)
		}
	}()
	t := time.NewTicker(p.r.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			p.flush(ctx)
		}
	}
}

func (p *progressReporter) flush(ctx context.Context) {
	p.mu.Lock()
	pr, fresh := p.latest, p.fresh
	p.fresh = false
	p.mu.Unlock()
	if !fresh {
		return
	}
	pct := min(pr.Percent(), 99) // 100 is for completed jobs
	if pct < p.written {
		pct = p.written
	}
	if pct == p.written && pr.FramesDone <= p.frames {
		return
	}
	st, err := p.r.cfg.Jobs.SetJobProgress(context.WithoutCancel(ctx), p.j.Lease(), pct, pr.FramesDone, pr.FramesTotal)
	if errors.Is(err, vidmatte.ErrLeaseLost) {
		p.log.Warn("job's lease was lost; stopping it")
		p.cancel(errLeaseLost)
		return
	}
	if err != nil {
		p.log.Warn("recording progress", slog.Any("error", err))
		// Tried again at the next tick, unless newer progress comes first.
		p.mu.Lock()
		p.fresh = true
		p.mu.Unlock()
		return
	}
	p.written, p.frames = pct, pr.FramesDone
	if st != vidmatte.StatusProcessing {
		p.log.Info("job is no longer processing; stopping it", slog.String("status", string(st)))
		p.cancel(errClientCancel)
	}
}

func (p *progressReporter) stop() {
	close(p.quit)
	<-p.done
}

// fileSize is the size of a finished output (0 when it cannot be read: the
// store then counts nothing against the key's stored bytes).
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// outputKey is the object key of a job's output: the claim's token is in
// it, so two runners of one job (a stale one and its successor) never
// write the same object.
func outputKey(j *vidmatte.Job, out string) string {
	return fmt.Sprintf("outputs/%s/%d/%s", j.ID, j.LeaseToken, filepath.Base(out))
}
