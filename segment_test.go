package vidmatte

import (
	"math"
	"strings"
	"testing"
)

// status reads a plan's segments from a string: '.' free, 'r' running,
// 'd' done.
func status(s string) []SegmentStatus {
	out := make([]SegmentStatus, len(s))
	for i, c := range s {
		out[i] = map[rune]SegmentStatus{'.': SegmentFree, 'r': SegmentRunning, 'd': SegmentDone}[c]
	}
	return out
}

func TestPickSegment(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int // -1: nothing
	}{
		{"", -1},
		{"....", 0},       // nobody runs: from the start
		{"r...", 3},       // 0 runs into 1-3: it keeps 1-2, the helper gets 3
		{"r.........", 6}, // 1-5 to the runner, 6-9 to the helper
		{"r.", -1},        // the runner's next one is left to it
		{"rrrr", -1},      // all claimed
		{"dddd", -1},      // all done
		{"dd..", 2},       // a stretch after done ones: nobody reaches it
		{"r.r.", -1},      //
		{"r..d....", 4},   // the unreached stretch 4-7 gains more than half of 1-2
		{"r.....r...", 4}, // 1-5 split (3 to the runner... it gets 1-3), 7-9 splits for less
		{"..r.", 0},       // an unreached start first
		{"d.r...r..", 1},  // 1 is reached by nobody (0 is done)
		{strings.Repeat(".", 36000), 0},
	} {
		got, ok := PickSegment(status(c.in))
		if !ok {
			got = -1
		}
		if got != c.want {
			t.Errorf("PickSegment(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSegmentPlan(t *testing.T) {
	p := SegmentPlan{Origin: 1000, Length: 100, Count: 4}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Start(0) != math.MinInt64 || p.Start(1) != 1100 || p.End(0) != 1100 || p.End(2) != 1300 || p.End(3) != math.MaxInt64 {
		t.Fatalf("bounds: %d %d %d %d %d", p.Start(0), p.Start(1), p.End(0), p.End(2), p.End(3))
	}
	for pts, want := range map[int64]int{-5: 0, 999: 0, 1099: 0, 1100: 1, 1299: 2, 1300: 3, 99999: 3} {
		if got := p.Of(pts); got != want {
			t.Errorf("Of(%d) = %d, want %d", pts, got, want)
		}
		if s := p.Of(pts); pts < p.Start(s) || pts >= p.End(s) {
			t.Errorf("frame %d outside the segment Of gives (%d)", pts, s)
		}
	}
	for _, bad := range []SegmentPlan{{Length: 0, Count: 1}, {Length: 1, Count: 0}, {Length: 1, Count: MaxSegments + 1}} {
		if ErrorCode(bad.Validate()) != CodeInvalid {
			t.Errorf("%+v accepted", bad)
		}
	}
}
