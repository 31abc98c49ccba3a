package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// BenchmarkSegmentOverhead runs one 720p clip (20 s at 25 fps, with
// audio) through the chroma model into WebM in one piece and in segments
// of 4 s (each part recorded in memory, then joined): the difference is
// what segmenting costs a job that is never interrupted.
//
//	go test -run '^$' -bench SegmentOverhead -benchtime 3x ./engine/
func BenchmarkSegmentOverhead(b *testing.B) {
	clip := testmedia.Clip(b, testmedia.ClipOptions{Width: 1280, Height: 720, FPS: 25, Duration: 20 * time.Second, Audio: true, Source: "testsrc2"})
	e, err := New(Config{Runtime: testRuntime, Registry: mustRegistry(b)})
	if err != nil {
		b.Fatal(err)
	}
	for _, seg := range []time.Duration{0, 4 * time.Second} {
		name := "continuous"
		if seg > 0 {
			name = "segments-" + seg.String()
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := Request{Input: clip, Output: filepath.Join(b.TempDir(), "out.webm"), Model: "chroma", Format: vidmatte.FormatWebM}
				if seg > 0 {
					r.Segments, r.SegmentLength = &memJournal{memSegments: newMemSegments(b.TempDir()), worker: "w1"}, seg
				}
				res, err := e.Process(context.Background(), r)
				if err != nil {
					b.Fatal(err)
				}
				if res.Frames != 500 {
					b.Fatalf("%d frames", res.Frames)
				}
			}
		})
	}
}

func mustRegistry(tb testing.TB) *models.Registry {
	tb.Helper()
	reg, err := models.NewRegistry(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}
