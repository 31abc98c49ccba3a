package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// warmUpTolerance is how far, at most, the alpha of a segment resumed
// with DefaultWarmUp frames of warm-up may be from the sequential run's,
// frame by frame: mean absolute difference in 0..1. Measured on
// vtest.avi, worst frame of the 40 after the resume: 0.0020 cold, 0.0017
// with 2 frames, 0.0013 with 4, 0.0007 with 8, 0.0003 with 16, and 0
// with 20 (the warm-up then starts at frame 0: the sequential state).
const warmUpTolerance = 0.001

// A recurrent model's segment resumed cold after warming its state on the
// frames before it gives nearly the sequential run's alpha; without the
// warm-up its first frames are visibly off. On vtest.avi (people walking,
// 768×576 at 10 fps), with segments of 1 s and an interruption after the
// second, the resumed segments' frames are compared with those of one run
// from frame 0, for several warm-up windows.
func TestRecurrentWarmUp(t *testing.T) {
	checkNoLeaks(t)
	e := installedEngine(t, 1, "rvm")
	clip := vtestClip(t, 0, 40)
	seq := runModel(t, e, clip, Request{Model: "rvm"})

	first := &memJournal{memSegments: newMemSegments(t.TempDir()), worker: "w1", stopAfter: 2}
	ctx, cancel := context.WithCancel(context.Background())
	first.cancel = cancel
	base := Request{Input: clip, Model: "rvm", Format: vidmatte.FormatPNGSequence, SegmentLength: time.Second}
	r := base
	r.Output, r.Segments = filepath.Join(t.TempDir(), "first.zip"), first
	if _, err := e.Process(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted run: %v", err)
	}
	segs := first.recorded()
	if len(segs) != 2 || segs[0].Frames+segs[1].Frames != 20 {
		t.Fatalf("segments recorded: %+v", segs)
	}

	worst := map[int]float64{}
	for _, w := range []int{0, 4, DefaultWarmUp} {
		j := &memJournal{memSegments: newMemSegments(t.TempDir()), worker: "w2"}
		j.plan = first.plan
		for _, s := range segs {
			j.done[s.Seq] = s
		}
		r := base
		r.Output, r.Segments, r.WarmUp = filepath.Join(t.TempDir(), fmt.Sprintf("warm%d.zip", w)), j, w
		if w == 0 {
			r.WarmUp = -1 // none
		}
		res, err := e.Process(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Segments.WarmUp; got != int64(max(w, 0)) {
			t.Fatalf("warm-up of %d frames ran %d", w, got)
		}
		out := testmedia.ReadAlpha(t, r.Output)
		if len(out) != 40 {
			t.Fatalf("%d frames", len(out))
		}
		var firstMAD, mean, maxMAD float64
		for i := 20; i < 40; i++ {
			d := meanAbsError(seq[i], out[i])
			if i == 20 {
				firstMAD = d
			}
			mean += d / 20
			maxMAD = math.Max(maxMAD, d)
		}
		worst[w] = maxMAD
		t.Logf("warm-up %2d frames: alpha vs the sequential run over the resumed 20 frames: first frame %.4f, mean %.4f, worst frame %.4f", w, firstMAD, mean, maxMAD)
	}
	if worst[DefaultWarmUp] > warmUpTolerance {
		t.Errorf("with %d frames of warm-up the worst frame is %.4f from the sequential run, tolerance %.4f", DefaultWarmUp, worst[DefaultWarmUp], warmUpTolerance)
	}
	if worst[0] <= worst[DefaultWarmUp] {
		t.Errorf("the warm-up does not help: %.4f cold, %.4f warm", worst[0], worst[DefaultWarmUp])
	}
}
