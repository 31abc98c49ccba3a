package engine

import (
	"math/rand/v2"
	"testing"
)

// On a still picture the filter damps the model's frame-to-frame jitter;
// where the picture moves, it takes the model's alpha unchanged.
func TestTemporalFilterDampsFlickerKeepsMotion(t *testing.T) {
	const w, h = 64, 32
	tf := newTemporalFilter(w, h)
	y := make([]byte, w*h)
	for i := range y {
		y[i] = byte(i % 200)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := make([]byte, w*h)
	prev := make([]byte, w*h)
	var rawJitter, outJitter float64
	for frame := range 40 {
		raw := make([]byte, w*h)
		for i := range raw {
			raw[i] = byte(128 + rng.IntN(41) - 20) // the model wobbles ±20 on a still picture
		}
		copy(alpha, raw)
		tf.apply(alpha, y, w)
		if frame > 5 {
			for i := range alpha {
				rawJitter += abs(int(raw[i]) - 128)
				outJitter += abs(int(alpha[i]) - int(prev[i]))
			}
		}
		copy(prev, alpha)
	}
	if outJitter > rawJitter*0.6 {
		t.Errorf("still picture: frame-to-frame change %.0f vs the model's wobble %.0f: flicker not damped", outJitter, rawJitter)
	}

	// The picture changes everywhere (motion): the model's alpha passes.
	moved := make([]byte, w*h)
	for i := range moved {
		moved[i] = y[i] + 50
	}
	for i := range alpha {
		alpha[i] = 255
	}
	tf.apply(alpha, moved, w)
	for i, v := range alpha {
		if v != 255 {
			t.Fatalf("pixel %d: %d after motion, want the model's 255", i, v)
		}
	}

	// A still picture whose alpha really changes converges to it.
	for range 12 {
		for i := range alpha {
			alpha[i] = 0
		}
		tf.apply(alpha, moved, w)
	}
	for i, v := range alpha {
		if v != 0 {
			t.Fatalf("pixel %d: %d after 12 still frames at 0, want 0", i, v)
		}
	}
}

func abs(v int) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}

// A stride wider than the picture is honoured.
func TestTemporalFilterStride(t *testing.T) {
	const w, h, stride = 5, 3, 8
	tf := newTemporalFilter(w, h)
	y := make([]byte, stride*h)
	a := make([]byte, w*h)
	tf.apply(a, y, stride)
	for i := range a {
		a[i] = 200
	}
	for r := range h {
		y[r*stride+w] = 255 // padding beyond the row: must be ignored
	}
	tf.apply(a, y, stride)
	for i, v := range a {
		if v != 75 { // 0 + ceil(200*96/256)
			t.Fatalf("pixel %d: %d, want 75", i, v)
		}
	}
}
