package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// A run measures each stage: the five stages in order, each with some time
// busy, none living longer than the run, and the model's time inside the
// infer stage's busy time.
func TestResultCarriesStageTimes(t *testing.T) {
	checkNoLeaks(t)
	in, _ := testmedia.GreenScreen(t, 160, 120, 12, false)
	out := filepath.Join(t.TempDir(), "out.webm")
	res, err := newTestEngine(t, 2).Process(context.Background(), Request{Input: in, Output: out, Model: "chroma", Format: vidmatte.FormatWebM})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"decode", "batch", "infer", "refine", "encode"}
	if len(res.Stages) != len(want) {
		t.Fatalf("%d stages, want %d: %+v", len(res.Stages), len(want), res.Stages)
	}
	var busy int64
	for i, s := range res.Stages {
		if s.Name != want[i] {
			t.Errorf("stage %d is %q, want %q", i, s.Name, want[i])
		}
		if s.Busy <= 0 || s.Wait < 0 {
			t.Errorf("%s: busy %v, wait %v", s.Name, s.Busy, s.Wait)
		}
		if s.Busy+s.Wait > res.Elapsed {
			t.Errorf("%s: busy %v + wait %v is longer than the run, %v", s.Name, s.Busy, s.Wait, res.Elapsed)
		}
		busy += int64(s.Busy)
		// Every stage but decode takes each of its items from its queue,
		// and the end marker: the 12 frames for batch and encode, the 6
		// batches of 2 for infer and refine. It never finds more waiting
		// there than the queue holds.
		takes := map[string]int64{"decode": 0, "batch": 13, "infer": 7, "refine": 7, "encode": 13}[s.Name]
		switch {
		case s.Name == "decode":
			if s.Takes != 0 || s.Capacity != 0 {
				t.Errorf("decode: %d takes from a queue of %d, want none", s.Takes, s.Capacity)
			}
		case s.Takes != takes || s.Capacity <= 0 || s.Queued < 0 || s.Queued > s.Takes*int64(s.Capacity):
			t.Errorf("%s: %d takes (want %d), %d items found waiting in a queue of %d", s.Name, s.Takes, takes, s.Queued, s.Capacity)
		}
	}
	if busy > int64(res.Elapsed)*int64(len(want)) {
		t.Errorf("the stages were busy %v in all, more than %d × the run's %v", busy, len(want), res.Elapsed)
	}
	if inf := res.Stages[2]; inf.Busy < res.InferTime {
		t.Errorf("infer stage busy %v, less than the %v measured inside the model", inf.Busy, res.InferTime)
	}
}

// stageSink is a metrics sink with StageMetrics: it hands what it gets to
// the test.
type stageSink struct {
	jobs   chan string
	stages chan []vidmatte.StageTime
}

func (s *stageSink) ObserveJob(id string, _ vidmatte.Status, _ int64, _, _ time.Duration) {
	s.jobs <- id
}

func (s *stageSink) ObserveStages(id string, st []vidmatte.StageTime) { s.stages <- st }

// A runner whose metrics sink takes stage times gives it those of each
// completed job, after the job itself.
func TestRunnerReportsStageTimes(t *testing.T) {
	e := newRunnerEnv(t)
	j := e.queue(t, e.clip)
	sink := &stageSink{jobs: make(chan string, 1), stages: make(chan []vidmatte.StageTime, 1)}
	r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: newTestEngine(t, 1), OutputDir: filepath.Join(e.dir, "outputs"), Slots: 1,
		MaxAttempts: 2, PollInterval: 20 * time.Millisecond, Events: e.events, Metrics: sink})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	r.Wake()
	if id := <-sink.jobs; id != j.ID {
		t.Fatalf("job %s observed, want %s", id, j.ID)
	}
	st := <-sink.stages
	if len(st) != numStages || st[0].Name != "decode" || st[numStages-1].Name != "encode" {
		t.Fatalf("stages %+v", st)
	}
	for _, s := range st {
		if s.Busy <= 0 {
			t.Errorf("%s: busy %v", s.Name, s.Busy)
		}
	}
}
