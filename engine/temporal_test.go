package engine

import "testing"

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
		_, out, ok := tf.push(nil, y, stride, a)
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

func TestMedian3(t *testing.T) {
	for _, c := range [][4]byte{{1, 2, 3, 2}, {3, 2, 1, 2}, {2, 3, 1, 2}, {2, 1, 3, 2}, {1, 3, 2, 2}, {3, 1, 2, 2}, {5, 5, 1, 5}, {7, 7, 7, 7}} {
		if m := median3(c[0], c[1], c[2]); m != c[3] {
			t.Errorf("median3(%d, %d, %d) = %d, want %d", c[0], c[1], c[2], m, c[3])
		}
	}
}
