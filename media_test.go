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
