package engine

import (
	"slices"
	"testing"
)

// filterRun pushes pictures through a filter (each a uniform luma and a
// uniform model alpha) and returns the smoothed alpha of each, in order,
// checking every pixel agrees and that the alpha buffers come back with
// their own frames.
func filterRun(t *testing.T, lumas, alphas []byte) []byte {
	t.Helper()
	const w, h, stride = 5, 3, 8 // a stride wider than the picture
	tf := newTemporalFilter(w, h)
	var got []byte
	var bufs [][]byte
	take := func(a []byte, ok bool) {
		if !ok {
			return
		}
		if &a[0] != &bufs[len(got)][0] {
			t.Fatalf("picture %d came out with another picture's buffer", len(got))
		}
		for _, v := range a {
			if v != a[0] {
				t.Fatalf("picture %d: pixels disagree: %v", len(got), a)
			}
		}
		got = append(got, a[0])
	}
	for i := range alphas {
		y := make([]byte, stride*h)
		for j := range y {
			y[j] = lumas[i]
			if j%stride >= w {
				y[j] = 255 - lumas[i] // padding beyond the rows: never read
			}
		}
		a := make([]byte, w*h)
		for j := range a {
			a[j] = alphas[i]
		}
		bufs = append(bufs, a)
		_, out, ok := tf.push(nil, y, stride, a, w)
		take(out, ok)
	}
	_, out, ok := tf.finish()
	take(out, ok)
	if len(got) != len(alphas) {
		t.Fatalf("%d pictures came out of %d", len(got), len(alphas))
	}
	return got
}

func TestTemporalFilter(t *testing.T) {
	still := []byte{90, 91, 89, 90, 92, 90, 88, 90} // compression noise only
	cases := []struct {
		name            string
		lumas, in, want []byte
	}{
		// One-frame reversals on a still picture are the model's flicker.
		{"flicker", still, []byte{200, 200, 20, 200, 200, 255, 200, 200}, []byte{200, 200, 200, 200, 200, 200, 200, 200}},
		// A step and a ramp (an edge arriving, hard or soft) pass on time.
		{"step", still, []byte{0, 0, 0, 255, 255, 255, 255, 255}, []byte{0, 0, 0, 255, 255, 255, 255, 255}},
		{"ramp", still, []byte{0, 30, 60, 90, 120, 150, 180, 210}, []byte{0, 30, 60, 90, 120, 150, 180, 210}},
		// The first and last pictures have a neighbour on one side only.
		{"ends", still, []byte{255, 0, 0, 0, 0, 0, 0, 255}, []byte{255, 0, 0, 0, 0, 0, 0, 255}},
		// Where the picture moves, the model's alpha is kept, reversal or not.
		{"motion", []byte{50, 120, 50, 120, 50, 120, 50, 120}, []byte{10, 250, 10, 250, 10, 250, 10, 250}, []byte{10, 250, 10, 250, 10, 250, 10, 250}},
		// A reversal where only the next picture moves is kept too.
		{"moved after", []byte{90, 90, 90, 160, 160, 160, 160, 160}, []byte{0, 0, 200, 0, 0, 0, 0, 0}, []byte{0, 0, 200, 0, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		if got := filterRun(t, c.lumas, c.in); string(got) != string(c.want) {
			t.Errorf("%s: %v → %v, want %v", c.name, c.in, got, c.want)
		}
	}
}

// smoothReference is the filter's definition, written plainly: the median
// of three where the luma stays within stillLuma across the three frames,
// the model's own alpha elsewhere.
func smoothReference(a0, a1, a2, y0, y1, y2 byte) byte {
	diff := func(a, b byte) int { return max(int(a), int(b)) - min(int(a), int(b)) }
	if diff(y1, y0) > stillLuma || diff(y2, y1) > stillLuma {
		return a1
	}
	s := []int{int(a0), int(a1), int(a2)}
	slices.Sort(s)
	return byte(s[1])
}

// The branch-free filter computes its definition on every combination of
// alphas and lumas that matters: each alpha order, ties, the extremes, and
// luma steps just inside and just outside stillLuma either way.
func TestSmoothMatchesItsDefinition(t *testing.T) {
	vals := []byte{0, 1, 100, 101, 254, 255}
	lumas := []byte{0, 6, 7, 100, 100 - stillLuma, 100 + stillLuma, 100 - stillLuma - 1, 100 + stillLuma + 1, 249, 255}
	var a0, a1, a2, y0, y1, y2, want []byte
	for _, p := range vals {
		for _, c := range vals {
			for _, n := range vals {
				for _, l0 := range lumas {
					for _, l2 := range lumas {
						for _, l1 := range []byte{100, 0, 255} {
							a0, a1, a2 = append(a0, p), append(a1, c), append(a2, n)
							y0, y1, y2 = append(y0, l0), append(y1, l1), append(y2, l2)
							want = append(want, smoothReference(p, c, n, l0, l1, l2))
						}
					}
				}
			}
		}
	}
	tf := newTemporalFilter(len(want), 1)
	copy(tf.rawPrev, a0)
	copy(tf.rawCur, a1)
	copy(tf.yPrev, y0)
	copy(tf.yCur, y1)
	got := make([]byte, len(want))
	tf.smooth(got, len(want), a2, len(want), y2, len(want))
	bad := 0
	for i := range want {
		if got[i] != want[i] && bad < 5 {
			bad++
			t.Errorf("alphas %d %d %d, lumas %d %d %d: got %d, want %d", a0[i], a1[i], a2[i], y0[i], y1[i], y2[i], got[i], want[i])
		}
	}
}
