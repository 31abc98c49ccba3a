package engine

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTemporalSmooth measures the temporal filter's per-frame work on
// a 1080p alpha: a third of the picture moving, the rest still, as in a
// person walking through a static shot. Reported in ms/frame.
func BenchmarkTemporalSmooth(b *testing.B) {
	const w, h = 1920, 1080
	r := rand.New(rand.NewPCG(1, 2))
	t := newTemporalFilter(w, h)
	fill := func(p []byte, base byte) {
		for i := range p {
			p[i] = base + byte(r.IntN(5))
			if i%w < w/3 {
				p[i] = byte(r.IntN(256)) // moving
			}
		}
	}
	fill(t.rawPrev, 100)
	fill(t.rawCur, 100)
	fill(t.yPrev, 60)
	fill(t.yCur, 60)
	next, yNext, dst := make([]byte, w*h), make([]byte, w*h), make([]byte, w*h)
	fill(next, 100)
	fill(yNext, 60)
	for b.Loop() {
		t.smooth(dst, w, next, w, yNext, w)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}
