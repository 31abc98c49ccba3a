package engine

import (
	"context"
	"path/filepath"
	"testing"

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
	}
	if busy > int64(res.Elapsed)*int64(len(want)) {
		t.Errorf("the stages were busy %v in all, more than %d × the run's %v", busy, len(want), res.Elapsed)
	}
	if inf := res.Stages[2]; inf.Busy < res.InferTime {
		t.Errorf("infer stage busy %v, less than the %v measured inside the model", inf.Busy, res.InferTime)
	}
}
