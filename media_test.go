package vidmatte

import (
	"math"
	"strings"
	"testing"
)

func TestMediaLimitsCheck(t *testing.T) {
	hd := MediaInfo{DurationSec: 10, Width: 1920, Height: 1080, FPS: 30}
	for _, tc := range []struct {
		name   string
		info   MediaInfo
		limits MediaLimits
		want   string // "" = accepted; else a word of the message
	}{
		{"no limits", hd, MediaLimits{}, ""},
		{"within", hd, MediaLimits{MaxDurationSec: 10, MaxFrames: 300, MaxPixels: 1920 * 1080}, ""},
		{"too long", hd, MediaLimits{MaxDurationSec: 9.5}, "lasts"},
		{"too many frames", hd, MediaLimits{MaxFrames: 299}, "frames"},
		{"too many pixels", hd, MediaLimits{MaxPixels: 1920*1080 - 1}, "pixels"},
		{"unknown duration", MediaInfo{Width: 64, Height: 64, FPS: 25}, MediaLimits{}, "unknown"},
		{"NaN duration", MediaInfo{DurationSec: math.NaN(), Width: 64, Height: 64}, MediaLimits{}, "unknown"},
	} {
		err := tc.limits.Check(&tc.info, "file")
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if ErrorCode(err) != CodeUnprocessable || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(ErrorMessage(err), "file: ") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestFrameCap(t *testing.T) {
	for _, tc := range []struct {
		dur   float64
		total int64
		want  int64
	}{
		{12.5, 300, 330}, // 13 s at 24 fps, +5 %, +2
		{0.2, 5, 29},     // 1 s at 25 fps, +5 %, +2
		{10, 0, 0},       // unknown frames: no cap
		{0, 10, 0},
	} {
		j := &Job{DurationSec: tc.dur, FramesTotal: tc.total}
		if got := j.FrameCap(); got != tc.want {
			t.Errorf("FrameCap(%v s, %d frames) = %d, want %d", tc.dur, tc.total, got, tc.want)
		}
	}
}
