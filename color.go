package vidmatte

import (
	"fmt"
	"strconv"
	"strings"
)

// NamedColors are the background colours the contract names (the flat
// bg_type aliases), as RGB in 0..1.
var NamedColors = map[string][3]float64{
	"green": {0, 1, 0},
	"white": {1, 1, 1},
	"black": {0, 0, 0},
	"blue":  {0, 0, 1},
}

// ParseHexColor reads "#rrggbb" (or "rrggbb") as RGB in 0..1.
func ParseHexColor(s string) ([3]float64, error) {
	h := strings.TrimPrefix(s, "#")
	if len(h) != 6 {
		return [3]float64{}, fmt.Errorf("colour %q is not #rrggbb", s)
	}
	var c [3]float64
	for i := range 3 {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return [3]float64{}, fmt.Errorf("colour %q is not #rrggbb", s)
		}
		c[i] = float64(v) / 255
	}
	return c, nil
}
