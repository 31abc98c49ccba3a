package benchmarks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"vidmatte/models"
)

// photoMatter cuts the foreground out of the media folder's photos with a
// model (the best available one, ISNet at its full 1024×1024 input), refines
// the matte, and caches it as a PNG keyed by the photo's and the model
// file's hashes.
type photoMatter struct {
	rt    *models.Runtime
	reg   *models.Registry
	model string
	media string
	cache string
	dev   models.Device
	// done caches what was made in this process.
	done map[string]*Photo
}

// photo returns the photo of a cut-out foreground with its refined matte.
func (p *photoMatter) photo(ctx context.Context, fg string) (*Photo, error) {
	if ph := p.done[fg]; ph != nil {
		return ph, nil
	}
	name, ok := photoFile[fg]
	if !ok {
		return nil, fmt.Errorf("no photo for foreground %q", fg)
	}
	path := filepath.Join(p.media, name)
	rgb, w, h, err := decodeImageRGB(path)
	if err != nil {
		return nil, fmt.Errorf("the cut-out photo (run scripts/setup to install the media): %w", err)
	}
	man, err := p.reg.Get(p.model)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(rgb)
	key := hex.EncodeToString(sum[:8]) + "-" + man.ID + "-" + shortHash(man.SHA256)
	cached := filepath.Join(p.cache, "mattes", fg+"-"+key+".png")
	alpha8, cw, ch, err := readGrayPNG(cached)
	if err != nil || cw != w || ch != h {
		raw, err := p.matte(ctx, man, rgb, w, h)
		if err != nil {
			return nil, fmt.Errorf("cutting %s out with %s: %w", name, man.ID, err)
		}
		refined := RefineCutout(raw, w, h)
		alpha8 = make([]byte, len(refined))
		for i, v := range refined {
			alpha8[i] = unit8(v)
		}
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
			return nil, err
		}
		tmp := cached + ".partial"
		if err := writeGrayPNG(tmp, alpha8, w, h); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, cached); err != nil {
			return nil, err
		}
	}
	ph := &Photo{W: w, H: h, RGB: rgb, Alpha: make([]float32, w*h)}
	for i, v := range alpha8 {
		ph.Alpha[i] = float32(v) / 255
	}
	if p.done == nil {
		p.done = map[string]*Photo{}
	}
	p.done[fg] = ph
	return ph, nil
}

func shortHash(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "nohash"
	}
	return s
}

// matte runs the model once on the photo, stretched to the model's input
// (as the model's authors do), and scales the alpha back.
func (p *photoMatter) matte(ctx context.Context, man *models.Manifest, rgb []byte, w, h int) ([]float32, error) {
	m, err := p.rt.Load(p.reg, man, models.LoadOptions{Device: p.dev, Batch: 1, FrameWidth: w, FrameHeight: h})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.Color() != "rgb" {
		return nil, fmt.Errorf("model %s does not take RGB input: it cannot cut photos out", man.ID)
	}
	iw, ih := m.InputSize()
	b, err := m.NewBatch()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	in := floatToBytes(resizeBilinear(bytesToFloat(rgb), w, h, 3, iw, ih))
	m.PrepareRGB(b.Slot(0), toPlanar(in, iw*ih))
	if err := m.Run(ctx, b, 1, m.NewState()); err != nil {
		return nil, err
	}
	return resizeBilinear(b.Alpha(0), iw, ih, 1, w, h), nil
}

// RefineCutout turns a model's matte of a photo into a clean cut-out:
// values within 4% of 0 or 1 snap to them (the rest is stretched between),
// and only what connects to the largest solid region (alpha ≥ 0.5) is
// kept, so stray specks of the photo's background do not travel with the
// foreground.
func RefineCutout(a []float32, w, h int) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		out[i] = min(max((v-0.04)/0.92, 0), 1)
	}
	// The largest 4-connected region of alpha ≥ 0.5.
	solid := make([]bool, len(out))
	for i, v := range out {
		solid[i] = v >= 0.5
	}
	labels := make([]int32, len(out))
	var stack []int32
	best := largestComponent(solid, labels, w, h, &stack)
	if best == 0 {
		return out
	}
	// Keep the soft pixels reachable from it through alpha > 0.
	keep := make([]bool, len(out))
	st := stack[:0]
	for i, l := range labels {
		if l == best {
			keep[i] = true
			st = append(st, int32(i))
		}
	}
	for len(st) > 0 {
		p := int(st[len(st)-1])
		st = st[:len(st)-1]
		x, y := p%w, p/w
		for _, q := range [4][3]int{{x - 1, y, p - 1}, {x + 1, y, p + 1}, {x, y - 1, p - w}, {x, y + 1, p + w}} {
			if q[0] < 0 || q[0] >= w || q[1] < 0 || q[1] >= h || keep[q[2]] || out[q[2]] <= 0 {
				continue
			}
			// Soft pixels are kept only if they are not themselves part of
			// another solid region.
			if solid[q[2]] {
				continue
			}
			keep[q[2]] = true
			st = append(st, int32(q[2]))
		}
	}
	for i := range out {
		if !keep[i] {
			out[i] = 0
		}
	}
	return out
}
