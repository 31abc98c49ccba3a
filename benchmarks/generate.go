package benchmarks

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
)

// The benchmark clips. Every clip is a composite whose true alpha is known
// exactly because the harness made it: a foreground layer (a cut-out of a
// real photo, or soft synthetic shapes with hair-like strands) is moved,
// scaled, motion-blurred and partly occluded over a backdrop (real video,
// or a green or blue screen with uneven lighting), and the truth is the
// foreground's coverage of each pixel. The generator is deterministic
// from a seed.

// Foreground kinds.
const (
	FgPortrait = "portrait" // astronaut.png, cut out
	FgPlayer   = "player"   // messi5.jpg, cut out
	FgShapes   = "shapes"   // synthetic blobs with strands and a fast mover
	// FgPeople is a group in motion: the player walking across near the
	// camera, the astronaut's bust passing the other way, and the player
	// again, small, far behind.
	FgPeople = "people"
)

// Backdrop kinds.
const (
	BackdropStreet = "street" // vtest.avi: a street with people walking
	BackdropTree   = "tree"   // tree.avi: a tree moving in the wind
	BackdropGreen  = "green"  // a green screen, unevenly lit
	BackdropBlue   = "blue"   // a blue screen, unevenly lit
)

// The sets of generated clips.
const (
	SetComposite   = "composite"
	SetGreenscreen = "greenscreen"
	SetBluescreen  = "bluescreen"
)

// GeneratedSets lists the names of the generated sets.
var GeneratedSets = []string{SetComposite, SetGreenscreen, SetBluescreen}

// ClipSpec is everything a generated clip depends on. Two equal specs
// give byte-identical clips (with the same FFmpeg and, for cut-outs, the
// same matte of the photo).
type ClipSpec struct {
	Set        string `json:"set"`
	Name       string `json:"name"`
	Foreground string `json:"foreground"`
	Backdrop   string `json:"backdrop"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	FPS        int    `json:"fps"`
	Frames     int    `json:"frames"`
	Seed       uint64 `json:"seed"`
}

// DefaultForegrounds are the foregrounds of each generated set by default.
var DefaultForegrounds = []string{FgPortrait, FgShapes, FgPeople}

// SetClips returns the specs of a generated set's clips: the foregrounds
// given (default: DefaultForegrounds), each over the set's backdrop for
// that foreground.
func SetClips(set string, foregrounds []string, w, h, fps, frames int, seed uint64) ([]ClipSpec, error) {
	if len(foregrounds) == 0 {
		foregrounds = DefaultForegrounds
	}
	var out []ClipSpec
	for _, fg := range foregrounds {
		switch fg {
		case FgPortrait, FgPlayer, FgShapes, FgPeople:
		default:
			return nil, fmt.Errorf("unknown foreground %q (valid: %s, %s, %s, %s)", fg, FgPortrait, FgPlayer, FgShapes, FgPeople)
		}
		var bd string
		switch set {
		case SetComposite:
			// The group goes over the tree: over the street, the
			// street's own walkers would be people the truth leaves out.
			bd = BackdropStreet
			if fg == FgShapes || fg == FgPeople {
				bd = BackdropTree
			}
		case SetGreenscreen:
			bd = BackdropGreen
		case SetBluescreen:
			bd = BackdropBlue
		default:
			return nil, fmt.Errorf("unknown set %q", set)
		}
		out = append(out, ClipSpec{
			Set: set, Name: fg + "-" + bd, Foreground: fg, Backdrop: bd,
			Width: w, Height: h, FPS: fps, Frames: frames, Seed: seed,
		})
	}
	return out, nil
}

// ID is the clip's name within its set, e.g. "composite/portrait-street".
func (s ClipSpec) ID() string { return s.Set + "/" + s.Name }

// screen reports whether the backdrop is a coloured screen.
func (s ClipSpec) screen() bool { return s.Backdrop == BackdropGreen || s.Backdrop == BackdropBlue }

// needsPhoto reports whether the foreground is cut out of photos.
func (s ClipSpec) needsPhoto() bool { return len(s.photos()) > 0 }

// photos returns the cut-out foregrounds (FgPortrait, FgPlayer) the
// clip's foreground is made of.
func (s ClipSpec) photos() []string {
	switch s.Foreground {
	case FgPortrait, FgPlayer:
		return []string{s.Foreground}
	case FgPeople:
		return []string{FgPlayer, FgPortrait}
	}
	return nil
}

// rng returns the clip's random stream number stream.
func (s ClipSpec) rng(stream uint64) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%s|%s", s.Set, s.Name, s.Foreground, s.Backdrop)
	return rand.New(rand.NewPCG(s.Seed, h.Sum64()^stream*0x9e3779b97f4a7c15))
}

// Frame is one rendered frame of a clip, kept in memory by Render.
type Frame struct {
	RGB   []byte // the composite, RGB 8-bit, what the clip shows
	Alpha []byte // the true alpha, 8-bit
	// FG is the foreground's colour where Alpha > 0 (straight, not
	// premultiplied, 0..1, RGB), and Plate the backdrop behind it (RGB
	// 8-bit), such that RGB = Alpha·FG + (1−Alpha)·Plate wherever
	// Occluded is false.
	FG       []float32
	Plate    []byte
	Occluded []bool // pixels an occluder covered in some part of the shutter; nil when the clip has none
}

// Photo is a still image with the alpha of its foreground: what a
// cut-out is made from.
type Photo struct {
	W, H  int
	RGB   []byte    // interleaved RGB 8-bit
	Alpha []float32 // 0..1
}

// Sources is what Render needs from outside the generator: the backdrop
// frames of real video, and the cut-out photos.
type Sources struct {
	// Media is the folder of the real media (models.Home()/media).
	Media string
	// Photo returns the photo and the matte a cut-out foreground is made
	// of (FgPortrait or FgPlayer).
	Photo func(ctx context.Context, foreground string) (*Photo, error)
}

// photoFile is the media file each cut-out foreground comes from.
var photoFile = map[string]string{FgPortrait: "astronaut.png", FgPlayer: "messi5.jpg"}

// videoFile is the media file each video backdrop comes from, and its
// length in seconds.
var videoFile = map[string]struct {
	name string
	secs float64
}{
	BackdropStreet: {"vtest.avi", 79.5},
	BackdropTree:   {"tree.avi", 29.6},
}

// Render makes the frames of a clip in memory.
func Render(ctx context.Context, spec ClipSpec, src Sources) ([]Frame, error) {
	if spec.Width < 16 || spec.Height < 16 || spec.Width%2 != 0 || spec.Height%2 != 0 {
		return nil, fmt.Errorf("clip size %dx%d: both sides must be even and at least 16", spec.Width, spec.Height)
	}
	if spec.Frames < 2 || spec.FPS < 1 {
		return nil, fmt.Errorf("a clip needs at least 2 frames and a positive frame rate")
	}
	w, h := spec.Width, spec.Height
	plates, err := backdropPlates(ctx, spec, src.Media)
	if err != nil {
		return nil, err
	}

	var fg layerSource
	switch spec.Foreground {
	case FgShapes:
		fg = newShapes(spec)
	case FgPortrait, FgPlayer:
		if src.Photo == nil {
			return nil, fmt.Errorf("clip %s needs a photo cut-out and no matte source was given", spec.ID())
		}
		ph, err := src.Photo(ctx, spec.Foreground)
		if err != nil {
			return nil, err
		}
		fg, err = newCutoutLayer(spec, ph, defaultPlacement(spec))
		if err != nil {
			return nil, err
		}
	case FgPeople:
		if src.Photo == nil {
			return nil, fmt.Errorf("clip %s needs photo cut-outs and no matte source was given", spec.ID())
		}
		fg, err = newGroup(ctx, spec, src.Photo)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown foreground %q", spec.Foreground)
	}
	var occ *pole
	if cl, ok := fg.(interface{ centerX(float64) float64 }); ok {
		// The pole crosses the (front) foreground's centre mid-clip.
		occ = newPole(spec, cl.centerX(float64(spec.Frames-1)/2))
	}

	const shutter = 0.5 // of a frame interval: the motion blur
	subs := motionSamples
	frames := make([]Frame, spec.Frames)
	n := w * h
	layer := newLayer(w, h)
	occLayer := newLayer(w, h)
	accI := make([]float32, 3*n)
	accA := make([]float32, n)
	accF := make([]float32, 3*n)
	var screen [3]float32
	if spec.screen() {
		screen = screenColor(spec.Backdrop)
	}
	for f := range spec.Frames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clear(accI)
		clear(accA)
		clear(accF)
		plate := plates[f]
		var occluded []bool
		if occ != nil {
			occluded = make([]bool, n)
		}
		for k := range subs {
			t := float64(f) + shutter*((float64(k)+0.5)/float64(subs)-0.5)
			layer.clear()
			fg.render(t, layer)
			if spec.screen() {
				spillLayer(layer, screen, 0.25)
			}
			if occ != nil {
				occLayer.clear()
				occ.render(t, occLayer)
			}
			for p := range n {
				af := layer.a[p]
				var ao float32
				if occ != nil {
					ao = occLayer.a[p]
					if ao > 0 {
						occluded[p] = true
					}
				}
				keep := 1 - ao // what of the foreground shows through the occluder
				accA[p] += keep * af
				for c := range 3 {
					b := float32(plate[3*p+c]) / 255
					pm := layer.pm[3*p+c]
					v := pm + (1-af)*b
					if occ != nil {
						v = occLayer.pm[3*p+c] + keep*v
					}
					accI[3*p+c] += v
					accF[3*p+c] += keep * pm
				}
			}
		}
		fr := Frame{
			RGB: make([]byte, 3*n), Alpha: make([]byte, n), FG: make([]float32, 3*n),
			Plate: plate, Occluded: occluded,
		}
		inv := 1 / float32(subs)
		for p := range n {
			a := accA[p] * inv
			fr.Alpha[p] = unit8(a)
			for c := range 3 {
				fr.RGB[3*p+c] = unit8(accI[3*p+c] * inv)
				if a > 0 {
					fr.FG[3*p+c] = min(accF[3*p+c]*inv/a, 1)
				}
			}
		}
		frames[f] = fr
	}
	return frames, nil
}

// motionSamples is how many instants of the shutter each frame averages.
const motionSamples = 8

// unit8 maps 0..1 to 0..255, rounding and clamping.
func unit8(v float32) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 1:
		return 255
	}
	return byte(v*255 + 0.5)
}

// backdropPlates returns the clip's backdrop frames (RGB 8-bit).
func backdropPlates(ctx context.Context, spec ClipSpec, media string) ([][]byte, error) {
	w, h := spec.Width, spec.Height
	if spec.screen() {
		return screenPlates(spec), nil
	}
	v, ok := videoFile[spec.Backdrop]
	if !ok {
		return nil, fmt.Errorf("unknown backdrop %q", spec.Backdrop)
	}
	path := filepath.Join(media, v.name)
	dur := float64(spec.Frames) / float64(spec.FPS)
	// A start point the seed picks, far enough from both ends.
	span := max(v.secs-dur-2, 0)
	start := 1 + math.Floor(spec.rng(1).Float64()*span*10)/10
	frames, err := readRawFrames(ctx, 3*w*h,
		"-ss", fmt.Sprintf("%.1f", start), "-i", path,
		"-vf", fmt.Sprintf("fps=%d,scale=%d:%d:flags=bicubic", spec.FPS, w, h),
		"-frames:v", fmt.Sprint(spec.Frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	if err != nil {
		return nil, fmt.Errorf("reading the backdrop %s: %w", path, err)
	}
	if len(frames) < spec.Frames {
		return nil, fmt.Errorf("the backdrop %s gave %d frames from %.1f s, want %d", path, len(frames), start, spec.Frames)
	}
	return frames, nil
}

// screenColor is the paint of a screen backdrop, RGB 0..1.
func screenColor(backdrop string) [3]float32 {
	if backdrop == BackdropBlue {
		return [3]float32{0.10, 0.26, 0.78}
	}
	return [3]float32{0.20, 0.69, 0.27}
}

// screenPlates paints a screen lit unevenly: a vignette, a tilt, a hot
// spot and cloth wrinkles (value noise), plus sensor noise that differs
// from frame to frame.
func screenPlates(spec ClipSpec) [][]byte {
	w, h := spec.Width, spec.Height
	r := spec.rng(2)
	base := screenColor(spec.Backdrop)
	lx, ly := 0.35+0.3*r.Float64(), 0.3+0.3*r.Float64() // light centre
	hx, hy := 0.2+0.6*r.Float64(), 0.15+0.4*r.Float64() // hot spot
	tilt := 0.08 + 0.08*r.Float64()                     // left-right falloff
	wrinkles := newValueNoise(r, 12, 9)
	light := make([]float32, w*h)
	for y := range h {
		fy := (float64(y) + 0.5) / float64(h)
		for x := range w {
			fx := (float64(x) + 0.5) / float64(w)
			dx, dy := fx-lx, fy-ly
			l := 1.02 - 0.55*(dx*dx+dy*dy) - tilt*(fx-0.5)
			hdx, hdy := fx-hx, fy-hy
			l += 0.16 * math.Exp(-(hdx*hdx+hdy*hdy)/(2*0.18*0.18))
			l *= 1 + 0.07*(wrinkles.at(fx, fy)-0.5)
			light[y*w+x] = float32(l)
		}
	}
	plates := make([][]byte, spec.Frames)
	for f := range plates {
		nr := spec.rng(100 + uint64(f))
		p := make([]byte, 3*w*h)
		for i, l := range light {
			for c := range 3 {
				v := base[c]*l + float32(nr.NormFloat64()*1.2/255)
				p[3*i+c] = unit8(v)
			}
		}
		plates[f] = p
	}
	return plates
}

// valueNoise is smooth noise on a grid of random values.
type valueNoise struct {
	gw, gh int
	v      []float64
}

func newValueNoise(r *rand.Rand, gw, gh int) *valueNoise {
	v := make([]float64, (gw+1)*(gh+1))
	for i := range v {
		v[i] = r.Float64()
	}
	return &valueNoise{gw: gw, gh: gh, v: v}
}

// at returns the noise at (x, y) in 0..1 × 0..1.
func (n *valueNoise) at(x, y float64) float64 {
	gx, gy := x*float64(n.gw), y*float64(n.gh)
	ix, iy := min(int(gx), n.gw-1), min(int(gy), n.gh-1)
	tx, ty := smooth(gx-float64(ix)), smooth(gy-float64(iy))
	row := n.gw + 1
	a := n.v[iy*row+ix]*(1-tx) + n.v[iy*row+ix+1]*tx
	b := n.v[(iy+1)*row+ix]*(1-tx) + n.v[(iy+1)*row+ix+1]*tx
	return a*(1-ty) + b*ty
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// layer is a premultiplied RGBA image at frame size, 0..1.
type layer struct {
	w, h int
	pm   []float32 // premultiplied RGB
	a    []float32
}

func newLayer(w, h int) *layer {
	return &layer{w: w, h: h, pm: make([]float32, 3*w*h), a: make([]float32, w*h)}
}

func (l *layer) clear() {
	clear(l.pm)
	clear(l.a)
}

// over paints a pixel of colour c and coverage a over what the layer has.
func (l *layer) over(p int, c [3]float32, a float32) {
	if a <= 0 {
		return
	}
	k := 1 - a
	l.a[p] = a + k*l.a[p]
	for i := range 3 {
		l.pm[3*p+i] = a*c[i] + k*l.pm[3*p+i]
	}
}

// layerSource renders a foreground at a time (in frames, fractional for
// the motion blur) into a cleared layer.
type layerSource interface {
	render(t float64, l *layer)
}

// spillLayer tints the foreground with the screen's colour, as light
// bouncing off a screen does: strongest near the foreground's edges (where
// a box-blurred alpha is low), a little everywhere.
func spillLayer(l *layer, screen [3]float32, strength float32) {
	blur := boxBlur(l.a, l.w, l.h, 6)
	for p, a := range l.a {
		if a <= 0 {
			continue
		}
		s := strength * (0.15 + 0.85*(1-blur[p]))
		for c := range 3 {
			// pm = a·F → a·((1−s)·F + s·screen)
			l.pm[3*p+c] = (1-s)*l.pm[3*p+c] + s*a*screen[c]
		}
	}
}

// boxBlur returns the mean of v over a (2r+1)² box around each pixel,
// the box clipped to the image.
func boxBlur(v []float32, w, h, r int) []float32 {
	tmp := make([]float32, len(v))
	for y := range h {
		row := v[y*w : (y+1)*w]
		var s float32
		for x := 0; x < min(r, w); x++ {
			s += row[x]
		}
		for x := range w {
			if x+r < w {
				s += row[x+r]
			}
			if x-r-1 >= 0 {
				s -= row[x-r-1]
			}
			n := min(x+r, w-1) - max(x-r, 0) + 1
			tmp[y*w+x] = s / float32(n)
		}
	}
	out := make([]float32, len(v))
	for x := range w {
		var s float32
		for y := 0; y < min(r, h); y++ {
			s += tmp[y*w+x]
		}
		for y := range h {
			if y+r < h {
				s += tmp[(y+r)*w+x]
			}
			if y-r-1 >= 0 {
				s -= tmp[(y-r-1)*w+x]
			}
			n := min(y+r, h-1) - max(y-r, 0) + 1
			out[y*w+x] = s / float32(n)
		}
	}
	return out
}

// pole is an occluder: a vertical pole crossing the frame in front of the
// foreground. On a screen it is painted like the screen (a green or blue
// card, as sets use to hide what stands behind it); over video it is a
// grey metal pole. Either way it is not foreground.
type pole struct {
	w, h   int
	width  float64
	x0, vx float64 // centre at t = 0, speed in px/frame
	color  [3]float32
	screen bool
}

// newPole returns a pole that moves right to left at 2.5% of the frame's
// width per frame (its motion blur is half that) and passes x = mid at the
// clip's middle frame.
func newPole(spec ClipSpec, mid float64) *pole {
	r := spec.rng(3)
	w := float64(spec.Width)
	p := &pole{w: spec.Width, h: spec.Height, width: w * (0.025 + 0.01*r.Float64())}
	p.vx = -w * 0.025
	p.x0 = mid - p.vx*float64(spec.Frames-1)/2
	if spec.screen() {
		p.screen = true
		s := screenColor(spec.Backdrop)
		for i := range s {
			p.color[i] = s[i] * 0.9
		}
	} else {
		p.color = [3]float32{0.36, 0.37, 0.40}
	}
	return p
}

func (p *pole) render(t float64, l *layer) {
	cx := p.x0 + p.vx*t
	half := p.width / 2
	x0 := max(int(math.Floor(cx-half-1)), 0)
	x1 := min(int(math.Ceil(cx+half+1)), p.w-1)
	for x := x0; x <= x1; x++ {
		d := math.Abs(float64(x) + 0.5 - cx)
		a := float32(min(max(half+0.5-d, 0), 1))
		if a <= 0 {
			continue
		}
		// Cylinder shading: brighter in the middle.
		shade := float32(0.75 + 0.35*math.Cos(min(d/half, 1)*math.Pi/2))
		if p.screen {
			shade = float32(0.92 + 0.1*math.Cos(min(d/half, 1)*math.Pi/2))
		}
		c := [3]float32{min(p.color[0]*shade, 1), min(p.color[1]*shade, 1), min(p.color[2]*shade, 1)}
		for y := range p.h {
			l.over(y*p.w+x, c, a)
		}
	}
}

// cutout is a photo's foreground, premultiplied, scaled once to its
// nominal size in the clip.
type cutout struct {
	w, h int
	pm   []float32
	a    []float32
}

// cutoutLayer moves, scales and sways a cut-out through the frame.
type cutoutLayer struct {
	c            *cutout
	fw, fh       int
	zoomAmp      float64 // relative size change, over a 48-frame period
	zoomPhase    float64
	xMid, vx     float64 // centre x at the middle frame; px per frame
	bob, bobFreq float64 // vertical sway in px, cycles per frame
	bottom       float64 // y of the cut-out's bottom edge (below the frame: cut by it)
	mid          float64 // the middle frame
}

// placement is where and how a cut-out moves: its height as a share of
// the frame's, its centre mid-clip and speed as shares of the frame's
// width (per frame; negative: leftwards), and where its bottom edge is.
type placement struct {
	height, heightJitter float64
	xMid, xJitter        float64
	speed, speedJitter   float64
	// cutByBottom puts the bottom edge below the frame (a bust);
	// otherwise it stands raise (a share of the frame's height) above the
	// frame's bottom.
	cutByBottom bool
	raise       float64
}

// defaultPlacement is a single cut-out's: a portrait is a bust of 70–80%
// of the frame's height, right of the middle mid-clip (so the backdrop's
// people stay in view), cut by the bottom edge; the full-length player is
// 75–85%, left of the middle. Both move right at 1.2–1.8% of the frame's
// width per frame (6–9 px at 480).
func defaultPlacement(spec ClipSpec) placement {
	if spec.Foreground == FgPlayer {
		return placement{height: 0.75, heightJitter: 0.1, xMid: 0.42, xJitter: 0.06, speed: 0.012, speedJitter: 0.006, raise: 0.04}
	}
	return placement{height: 0.70, heightJitter: 0.1, xMid: 0.58, xJitter: 0.06, speed: 0.012, speedJitter: 0.006, cutByBottom: true}
}

func newCutoutLayer(spec ClipSpec, ph *Photo, at placement) (*cutoutLayer, error) {
	if ph.W <= 0 || ph.H <= 0 || len(ph.RGB) != 3*ph.W*ph.H || len(ph.Alpha) != ph.W*ph.H {
		return nil, fmt.Errorf("photo for %s: inconsistent sizes", spec.ID())
	}
	r := spec.rng(4)
	// Crop to the matte's bounding box.
	x0, y0, x1, y1 := ph.W, ph.H, -1, -1
	for y := range ph.H {
		for x := range ph.W {
			if ph.Alpha[y*ph.W+x] > 0 {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		return nil, fmt.Errorf("photo for %s: the matte is empty", spec.ID())
	}
	cw, ch := x1-x0+1, y1-y0+1
	target := float64(spec.Height) * (at.height + at.heightJitter*r.Float64())
	scale := target / float64(ch)
	tw, th := max(int(math.Round(float64(cw)*scale)), 1), max(int(math.Round(float64(ch)*scale)), 1)
	c := resizeCutout(ph, x0, y0, cw, ch, tw, th)
	fw, fh := float64(spec.Width), float64(spec.Height)
	l := &cutoutLayer{
		c: c, fw: spec.Width, fh: spec.Height,
		zoomAmp: 0.05 + 0.03*r.Float64(), zoomPhase: r.Float64() * 2 * math.Pi,
		bob: fh * (0.01 + 0.01*r.Float64()), bobFreq: 0.05 + 0.03*r.Float64(),
		mid: float64(spec.Frames-1) / 2,
	}
	l.vx = fw * (at.speed + at.speedJitter*r.Float64())
	l.xMid = fw * (at.xMid + at.xJitter*r.Float64())
	if at.cutByBottom {
		l.bottom = fh + float64(th)*0.04
	} else {
		l.bottom = fh - fh*at.raise
	}
	return l, nil
}

// group is several cut-outs walking at once, painted back to front.
type group struct {
	members []*cutoutLayer // the farthest first
	scratch *layer
}

// newGroup places the people foreground: the player again, small (30–35%
// of the frame's height) and far behind, walking left; the astronaut's
// bust (50–55%) passing left, cut by the bottom edge; the player near the
// camera (75–80%), walking right, in front.
func newGroup(ctx context.Context, spec ClipSpec, photo func(context.Context, string) (*Photo, error)) (*group, error) {
	places := []struct {
		fg string
		at placement
	}{
		{FgPlayer, placement{height: 0.30, heightJitter: 0.05, xMid: 0.70, xJitter: 0.08, speed: -0.006, speedJitter: -0.003, raise: 0.35}},
		{FgPortrait, placement{height: 0.50, heightJitter: 0.05, xMid: 0.62, xJitter: 0.06, speed: -0.010, speedJitter: -0.004, cutByBottom: true}},
		{FgPlayer, placement{height: 0.75, heightJitter: 0.05, xMid: 0.30, xJitter: 0.06, speed: 0.012, speedJitter: 0.006, raise: 0.04}},
	}
	g := &group{scratch: newLayer(spec.Width, spec.Height)}
	for i, p := range places {
		ph, err := photo(ctx, p.fg)
		if err != nil {
			return nil, err
		}
		member := spec
		member.Name = fmt.Sprintf("%s#%d", spec.Name, i) // each member its own random stream
		l, err := newCutoutLayer(member, ph, p.at)
		if err != nil {
			return nil, err
		}
		g.members = append(g.members, l)
	}
	return g, nil
}

// centerX is the front member's centre at time t.
func (g *group) centerX(t float64) float64 { return g.members[len(g.members)-1].centerX(t) }

func (g *group) render(t float64, dst *layer) {
	for _, m := range g.members {
		g.scratch.clear()
		m.render(t, g.scratch)
		for p, a := range g.scratch.a {
			if a <= 0 {
				continue
			}
			// Premultiplied over: the member in front of what is there.
			k := 1 - a
			dst.a[p] = a + k*dst.a[p]
			for c := range 3 {
				dst.pm[3*p+c] = g.scratch.pm[3*p+c] + k*dst.pm[3*p+c]
			}
		}
	}
}

// resizeCutout scales the crop (x0, y0, cw×ch) of a photo to tw×th by area
// averaging of premultiplied colour.
func resizeCutout(ph *Photo, x0, y0, cw, ch, tw, th int) *cutout {
	c := &cutout{w: tw, h: th, pm: make([]float32, 3*tw*th), a: make([]float32, tw*th)}
	sx, sy := float64(cw)/float64(tw), float64(ch)/float64(th)
	for ty := range th {
		fy0, fy1 := float64(ty)*sy, float64(ty+1)*sy
		for tx := range tw {
			fx0, fx1 := float64(tx)*sx, float64(tx+1)*sx
			var sa, sw float64
			var spm [3]float64
			for y := int(fy0); y < int(math.Ceil(fy1)) && y < ch; y++ {
				wy := math.Min(fy1, float64(y+1)) - math.Max(fy0, float64(y))
				if wy <= 0 {
					continue
				}
				for x := int(fx0); x < int(math.Ceil(fx1)) && x < cw; x++ {
					wx := math.Min(fx1, float64(x+1)) - math.Max(fx0, float64(x))
					if wx <= 0 {
						continue
					}
					wgt := wx * wy
					p := (y0+y)*ph.W + x0 + x
					a := float64(ph.Alpha[p])
					sa += wgt * a
					for k := range 3 {
						spm[k] += wgt * a * float64(ph.RGB[3*p+k]) / 255
					}
					sw += wgt
				}
			}
			if sw > 0 {
				i := ty*tw + tx
				c.a[i] = float32(sa / sw)
				for k := range 3 {
					c.pm[3*i+k] = float32(spm[k] / sw)
				}
			}
		}
	}
	return c
}

// centerX is the cut-out's centre at time t.
func (l *cutoutLayer) centerX(t float64) float64 { return l.xMid + l.vx*(t-l.mid) }

func (l *cutoutLayer) render(t float64, dst *layer) {
	s := 1 + l.zoomAmp*math.Sin(2*math.Pi*t/48+l.zoomPhase)
	cx := l.centerX(t)
	bottom := l.bottom + l.bob*math.Sin(2*math.Pi*l.bobFreq*t)
	cw, ch := float64(l.c.w)*s, float64(l.c.h)*s
	left, top := cx-cw/2, bottom-ch
	x0, x1 := max(int(math.Floor(left)), 0), min(int(math.Ceil(left+cw)), l.fw-1)
	y0, y1 := max(int(math.Floor(top)), 0), min(int(math.Ceil(top+ch)), l.fh-1)
	for y := y0; y <= y1; y++ {
		v := (float64(y)+0.5-top)/s - 0.5
		for x := x0; x <= x1; x++ {
			uu := (float64(x)+0.5-left)/s - 0.5
			a, pm := l.c.sample(uu, v)
			if a <= 0 {
				continue
			}
			p := y*l.fw + x
			// The layer is empty before: a plain copy.
			dst.a[p] = a
			dst.pm[3*p], dst.pm[3*p+1], dst.pm[3*p+2] = pm[0], pm[1], pm[2]
		}
	}
}

// sample returns the bilinear sample of the cut-out at (u, v) in pixel
// coordinates; outside it is transparent.
func (c *cutout) sample(u, v float64) (float32, [3]float32) {
	ix, iy := int(math.Floor(u)), int(math.Floor(v))
	fx, fy := float32(u-float64(ix)), float32(v-float64(iy))
	var a float32
	var pm [3]float32
	for dy := range 2 {
		wy := fy
		if dy == 0 {
			wy = 1 - fy
		}
		yy := iy + dy
		if yy < 0 || yy >= c.h || wy == 0 {
			continue
		}
		for dx := range 2 {
			wx := fx
			if dx == 0 {
				wx = 1 - fx
			}
			xx := ix + dx
			if xx < 0 || xx >= c.w || wx == 0 {
				continue
			}
			wgt := wx * wy
			i := yy*c.w + xx
			a += wgt * c.a[i]
			pm[0] += wgt * c.pm[3*i]
			pm[1] += wgt * c.pm[3*i+1]
			pm[2] += wgt * c.pm[3*i+2]
		}
	}
	return a, pm
}

// shapes is the synthetic foreground: a soft-edged blob with a crown of
// hair-like strands that sway, wandering through the frame and out of
// its edge, and a rounded square that crosses it fast (heavy motion blur).
type shapes struct {
	w, h    int
	frames  float64
	radius  float64
	wobble  [2]float64 // amplitudes of the outline's 3rd and 5th harmonics
	phase   [3]float64
	path    [4]float64 // Lissajous: x amplitude, y amplitude, x and y phase
	colors  [2][3]float32
	strands []strand
	square  struct {
		size, corner float64
		y, spin      float64
		color        [3]float32
	}
}

// strand is one hair: a curve from the blob's outline outwards.
type strand struct {
	angle, length, width float64
	opacity              float32
	sway, phase          float64
	color                [3]float32
}

func newShapes(spec ClipSpec) *shapes {
	r := spec.rng(5)
	s := &shapes{w: spec.Width, h: spec.Height, frames: float64(spec.Frames)}
	s.radius = float64(spec.Height) * (0.17 + 0.04*r.Float64())
	s.wobble = [2]float64{0.08 + 0.05*r.Float64(), 0.04 + 0.03*r.Float64()}
	for i := range s.phase {
		s.phase[i] = r.Float64() * 2 * math.Pi
	}
	s.path = [4]float64{0.40, 0.18, r.Float64() * 2 * math.Pi, r.Float64() * 2 * math.Pi}
	// Hues from magenta through red to orange: never the screen's green
	// or blue.
	hue := 0.88 + 0.2*r.Float64()
	s.colors[0] = hsv(hue, 0.55, 0.85)
	s.colors[1] = hsv(hue+0.06, 0.7, 0.55)
	hair := hsv(0.07+0.05*r.Float64(), 0.6, 0.25+0.3*r.Float64())
	n := 56
	for i := range n {
		// Over the top half of the outline (angles −170°…−10°).
		a := -math.Pi*(10.0/180) - math.Pi*(160.0/180)*(float64(i)+r.Float64())/float64(n)
		st := strand{
			angle: a, length: s.radius * (0.35 + 0.45*r.Float64()),
			width: 0.6 + 0.8*r.Float64(), opacity: float32(0.55 + 0.4*r.Float64()),
			sway: 4 + 6*r.Float64(), phase: r.Float64() * 2 * math.Pi,
		}
		v := float32(0.8 + 0.4*r.Float64())
		st.color = [3]float32{min(hair[0]*v, 1), min(hair[1]*v, 1), min(hair[2]*v, 1)}
		s.strands = append(s.strands, st)
	}
	s.square.size = float64(spec.Height) * (0.14 + 0.04*r.Float64())
	s.square.corner = s.square.size * 0.22
	s.square.y = float64(spec.Height) * (0.68 + 0.12*r.Float64())
	s.square.spin = 0.15 + 0.1*r.Float64()
	s.square.color = hsv(hue-0.1, 0.75, 0.9)
	return s
}

// hsv converts a colour to RGB 0..1.
func hsv(h, s, v float64) [3]float32 {
	h = (h - math.Floor(h)) * 6
	i := int(h)
	f := h - float64(i)
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	var r, g, b float64
	switch i {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	return [3]float32{float32(r), float32(g), float32(b)}
}

func (s *shapes) render(t float64, l *layer) {
	w, h := float64(s.w), float64(s.h)
	// The blob wanders on a Lissajous path (periods of 80 and 55 frames,
	// up to about 3% of the width per frame) that takes it partly out of
	// the frame.
	cx := w*0.5 + w*s.path[0]*math.Sin(2*math.Pi*t/80+s.path[2])
	cy := h*0.42 + h*s.path[1]*math.Sin(2*math.Pi*t/55+s.path[3])
	rad := s.radius * (1 + 0.05*math.Sin(2*math.Pi*t/40+s.phase[2]))

	// The fast square first (behind the blob), then strands, then the
	// blob over its own strands' roots.
	s.renderSquare(t, l)
	s.renderStrands(t, cx, cy, rad, l)
	s.renderBlob(t, cx, cy, rad, l)
}

func (s *shapes) outline(theta, t, rad float64) float64 {
	return rad * (1 + s.wobble[0]*math.Sin(3*theta+s.phase[0]+0.2*t) + s.wobble[1]*math.Sin(5*theta+s.phase[1]-0.15*t))
}

func (s *shapes) renderBlob(t, cx, cy, rad float64, l *layer) {
	reach := rad * (1 + s.wobble[0] + s.wobble[1] + 0.05)
	x0, x1 := max(int(cx-reach-2), 0), min(int(cx+reach+2), s.w-1)
	y0, y1 := max(int(cy-reach-2), 0), min(int(cy+reach+2), s.h-1)
	const soft = 2.5 // px of the edge's ramp
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			d := math.Hypot(dx, dy)
			r := s.outline(math.Atan2(dy, dx), t, rad)
			a := float32(min(max((r-d)/soft+0.5, 0), 1))
			if a <= 0 {
				continue
			}
			// A two-tone gradient with soft stripes, moving with the blob.
			g := float32(min(max(0.5+0.5*dy/rad, 0), 1))
			stripe := float32(0.08 * math.Sin(0.25*dx+0.12*dy))
			var c [3]float32
			for i := range 3 {
				c[i] = min(max(s.colors[0][i]*(1-g)+s.colors[1][i]*g+stripe, 0), 1)
			}
			l.over(y*s.w+x, c, a)
		}
	}
}

func (s *shapes) renderStrands(t, cx, cy, rad float64, l *layer) {
	const segs = 8
	for _, st := range s.strands {
		r0 := s.outline(st.angle, t, rad) * 0.94
		bx, by := cx+r0*math.Cos(st.angle), cy+r0*math.Sin(st.angle)
		dx, dy := math.Cos(st.angle), math.Sin(st.angle)
		px, py := -dy, dx // perpendicular
		sway := st.sway * math.Sin(0.7*t+st.phase)
		var pts [segs + 1][2]float64
		for i := range pts {
			u := float64(i) / segs
			along := u * st.length
			side := u * u * sway
			pts[i] = [2]float64{bx + along*dx + side*px, by + along*dy + side*py}
		}
		// Coverage of this strand: the maximum over its segments (so
		// joints are not counted twice), then painted over the layer.
		minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, p := range pts {
			minX, minY = math.Min(minX, p[0]), math.Min(minY, p[1])
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
		pad := st.width/2 + 1
		x0, x1 := max(int(minX-pad), 0), min(int(maxX+pad), s.w-1)
		y0, y1 := max(int(minY-pad), 0), min(int(maxY+pad), s.h-1)
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				qx, qy := float64(x)+0.5, float64(y)+0.5
				d := math.Inf(1)
				for i := range segs {
					d = math.Min(d, segmentDistance(qx, qy, pts[i], pts[i+1]))
				}
				// Thinner towards the tip is approximated by the width;
				// coverage of a line of that width through the pixel.
				cov := min(max(st.width/2+0.5-d, 0), 1)
				if st.width < 1 {
					cov *= st.width
				}
				a := float32(cov) * st.opacity
				if a > 0 {
					l.over(y*s.w+x, st.color, a)
				}
			}
		}
	}
}

func segmentDistance(x, y float64, a, b [2]float64) float64 {
	vx, vy := b[0]-a[0], b[1]-a[1]
	wx, wy := x-a[0], y-a[1]
	l2 := vx*vx + vy*vy
	u := 0.0
	if l2 > 0 {
		u = min(max((wx*vx+wy*vy)/l2, 0), 1)
	}
	return math.Hypot(wx-u*vx, wy-u*vy)
}

func (s *shapes) renderSquare(t float64, l *layer) {
	sq := &s.square
	w := float64(s.w)
	// Crosses the frame left to right at 5% of its width per frame: the
	// motion blur is 2.5% of the width.
	cx := -sq.size + 0.05*w*t
	cy := sq.y
	ang := sq.spin * t
	cs, sn := math.Cos(ang), math.Sin(ang)
	half := sq.size / 2
	reach := half*math.Sqrt2 + 2
	x0, x1 := max(int(cx-reach), 0), min(int(cx+reach), s.w-1)
	y0, y1 := max(int(cy-reach), 0), min(int(cy+reach), s.h-1)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			rx, ry := cs*dx+sn*dy, -sn*dx+cs*dy
			// Signed distance to a rounded square.
			qx, qy := math.Abs(rx)-(half-sq.corner), math.Abs(ry)-(half-sq.corner)
			out := math.Hypot(math.Max(qx, 0), math.Max(qy, 0)) + math.Min(math.Max(qx, qy), 0) - sq.corner
			a := float32(min(max(0.5-out, 0), 1))
			if a <= 0 {
				continue
			}
			shade := float32(0.85 + 0.15*ry/half)
			c := [3]float32{min(sq.color[0]*shade, 1), min(sq.color[1]*shade, 1), min(sq.color[2]*shade, 1)}
			l.over(y*s.w+x, c, a)
		}
	}
}
