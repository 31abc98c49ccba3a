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
)

// errBusy is what the store returns when SQLite stays busy or the disk is
// full: an internal error of the store.
var errBusy = vidmatte.Wrap(errors.New("database is locked (SQLITE_BUSY)"), vidmatte.CodeInternal, "store: complete job")

// flakyJobs is the real store with its runner-facing outcome writes made
// to fail: the first failN calls of each listed method fail with errBusy;
// with afterCommit, the first call fails after the real write went through
// (the error came after the commit).
type flakyJobs struct {
	vidmatte.JobService
	mu          sync.Mutex
	failN       map[string]int
	afterCommit bool
	calls       map[string]int
}

func newFlaky(inner vidmatte.JobService, failN map[string]int) *flakyJobs {
	return &flakyJobs{JobService: inner, failN: failN, calls: map[string]int{}}
}

func (f *flakyJobs) fail(method string) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if f.failN[method] > 0 {
		f.failN[method]--
		return true, f.afterCommit
	}
	return false, false
}

func (f *flakyJobs) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *flakyJobs) CompleteJob(ctx context.Context, l vidmatte.Lease, out vidmatte.JobOutput) (*vidmatte.Job, error) {
	if fail, after := f.fail("complete"); fail {
		if after {
			f.JobService.CompleteJob(ctx, l, out)
		}
		return nil, errBusy
	}
	return f.JobService.CompleteJob(ctx, l, out)
}

func (f *flakyJobs) FailJob(ctx context.Context, l vidmatte.Lease, e vidmatte.JobError) (*vidmatte.Job, error) {
	if fail, _ := f.fail("fail"); fail {
		return nil, errBusy
	}
	return f.JobService.FailJob(ctx, l, e)
}

func (f *flakyJobs) RequeueJob(ctx context.Context, l vidmatte.Lease, cause string) (*vidmatte.Job, error) {
	if fail, _ := f.fail("requeue"); fail {
		return nil, errBusy
	}
	return f.JobService.RequeueJob(ctx, l, cause)
}

func (f *flakyJobs) SetJobProgress(ctx context.Context, l vidmatte.Lease, p int, done, total int64) (vidmatte.Status, error) {
	if fail, _ := f.fail("progress"); fail {
		return "", errBusy
	}
	return f.JobService.SetJobProgress(ctx, l, p, done, total)
}

func (e *runnerEnv) flakyRunner(t *testing.T, jobs vidmatte.JobService, p Processor, retry StoreRetry) *Runner {
	t.Helper()
	r, err := NewRunner(RunnerConfig{Jobs: jobs, Processor: p, OutputDir: filepath.Join(e.dir, "outputs"), Slots: 1,
		MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 10 * time.Millisecond, Events: e.events,
		Retry: retry, Reaper: e.db, ReapInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var fastRetry = StoreRetry{Attempts: 5, Base: time.Millisecond, Max: 4 * time.Millisecond}

// A busy or full store on a job's outcome is retried: the completion,
// the final progress and a failure land after a few tries, the credits
// are charged or refunded once, and nothing is left processing.
func TestRunnerRetriesOutcomeWrites(t *testing.T) {
	e := newRunnerEnv(t)
	jobs := newFlaky(e.db, map[string]int{"complete": 3, "fail": 4, "progress": 4})
	r := e.flakyRunner(t, jobs, newTestEngine(t, 1), fastRetry)
	start(t, r)
	j := e.queue(t, e.clip)
	r.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	if done.BillingStatus != vidmatte.BillingCharged || done.FramesDone != 12 {
		t.Fatalf("completed: billing %s frames %d", done.BillingStatus, done.FramesDone)
	}
	if n := jobs.count("complete"); n != 4 {
		t.Fatalf("%d completion tries, want 4", n)
	}
	if _, err := os.Stat(done.OutputPath); err != nil {
		t.Fatalf("output after retried completion: %v", err)
	}

	bad := filepath.Join(e.dir, "text.mp4")
	os.WriteFile(bad, []byte("not a video"), 0o644)
	f := e.queue(t, bad)
	r.Wake()
	failed := e.waitStatus(t, f.ID, vidmatte.StatusFailed)
	if failed.BillingStatus != vidmatte.BillingRefunded || jobs.count("fail") != 5 {
		t.Fatalf("failed: billing %s after %d tries", failed.BillingStatus, jobs.count("fail"))
	}
	e.waitIdle(t, r)
	if l := e.ledger(t); l["reserve"] != 2 || l["charge"] != 1 || l["refund"] != 1 {
		t.Fatalf("ledger %v", l)
	}
	waitEvents(t, e.events, "job.started:processing", "job.completed:completed", "job.started:processing", "job.failed:failed")
}

// A completion whose error came after its commit is recognised on the
// retry: the job stays completed with its output, charged once.
func TestRunnerRetryAfterACommittedWrite(t *testing.T) {
	e := newRunnerEnv(t)
	jobs := newFlaky(e.db, map[string]int{"complete": 1})
	jobs.afterCommit = true
	r := e.flakyRunner(t, jobs, newTestEngine(t, 1), fastRetry)
	start(t, r)
	j := e.queue(t, e.clip)
	r.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	e.waitIdle(t, r)
	if _, err := os.Stat(done.OutputPath); err != nil {
		t.Fatalf("the completed job's output was removed: %v", err)
	}
	if l := e.ledger(t); l["reserve"] != 1 || l["charge"] != 1 {
		t.Fatalf("ledger %v", l)
	}
	waitEvents(t, e.events, "job.started:processing", "job.completed:completed")
}

// A store down for longer than the retries leaves the job processing
// when its goroutine gives up; the reaper then requeues it (its attempt
// counted, its reservation kept), it runs again and completes, charged
// once. After MaxAttempts attempts in a row that made no progress the
// reaper fails it and refunds it instead.
func TestRunnerReapsAJobItCouldNotSettle(t *testing.T) {
	e := newRunnerEnv(t)
	jobs := newFlaky(e.db, map[string]int{"complete": 5}) // all five tries of the first run
	r := e.flakyRunner(t, jobs, newTestEngine(t, 1), fastRetry)
	start(t, r)
	j := e.queue(t, e.clip)
	r.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	if done.Attempts != 2 || done.BillingStatus != vidmatte.BillingCharged || jobs.count("complete") != 6 {
		t.Fatalf("after the reaper: attempts %d billing %s tries %d", done.Attempts, done.BillingStatus, jobs.count("complete"))
	}
	ts, err := e.db.Transitions(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var reaped bool
	for _, tr := range ts {
		reaped = reaped || (tr.From == vidmatte.StatusProcessing && tr.To == vidmatte.StatusQueued)
	}
	if !reaped {
		t.Fatalf("no requeue in %+v", ts)
	}

	// Down for every attempt: the first one's frames are progress, the two
	// after it add none, and then the job fails, refunded, nothing left
	// processing.
	jobs.mu.Lock()
	jobs.failN["complete"] = 15
	jobs.mu.Unlock()
	j2 := e.queue(t, e.clip)
	r.Wake()
	failed := e.waitStatus(t, j2.ID, vidmatte.StatusFailed)
	if failed.BillingStatus != vidmatte.BillingRefunded || failed.Attempts != 3 || failed.Error == nil || failed.Error.Code != vidmatte.CodeInternal {
		t.Fatalf("reaped past its attempts: %+v", failed)
	}
	e.waitIdle(t, r)
	counts, _ := e.db.CountJobs(context.Background())
	if counts[vidmatte.StatusProcessing] != 0 {
		t.Fatalf("counts %v", counts)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "outputs", j2.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the reaped job's output folder is left")
	}
	if l := e.ledger(t); l["reserve"] != 2 || l["charge"] != 1 || l["refund"] != 1 {
		t.Fatalf("ledger %v", l)
	}
}

// Retries stop at their bound, do
// not retry a conflict, and stop waiting when the runner's Run ends.
func TestRetryBounds(t *testing.T) {
	e := newRunnerEnv(t)
	r := e.flakyRunner(t, e.db, newTestEngine(t, 1), StoreRetry{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond})
	tries := 0
	err := r.retry(r.log, "test", func() error { tries++; return errBusy })
	if !errors.Is(err, errBusy) || tries != 4 {
		t.Fatalf("%d tries, %v", tries, err)
	}
	tries = 0
	conflict := vidmatte.Errorf(vidmatte.CodeConflict, "job is completed")
	if err := r.retry(r.log, "test", func() error { tries++; return conflict }); err != conflict || tries != 1 {
		t.Fatalf("a conflict tried %d times: %v", tries, err)
	}
	long := e.flakyRunner(t, e.db, newTestEngine(t, 1), StoreRetry{Attempts: 1000, Base: time.Hour, Max: time.Hour})
	long.endLife() // what the end of Run's context does
	tries = 0
	if err := long.retry(long.log, "test", func() error { tries++; return errBusy }); !errors.Is(err, errBusy) || tries != 1 {
		t.Fatalf("%d tries after the end: %v", tries, err)
	}
}
