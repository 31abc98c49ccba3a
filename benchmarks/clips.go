package benchmarks

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// generatorVersion is part of every generated clip's cache key: bump it
// when the generator's output changes.
const generatorVersion = 3

// Truth sources, as the report states them.
const (
	TruthSynthetic = "synthetic" // drawn by the generator: exact
	TruthNone      = "none"      // a user's file: no truth, speed and flicker only
)

// TruthModel is the truth source of a clip whose foreground was cut out of
// a photo by a model ("model:isnet").
func TruthModel(id string) string { return "model:" + id }

// Clip is a benchmark clip on disk.
type Clip struct {
	ID          string    `json:"id"` // set/name
	Set         string    `json:"set"`
	Name        string    `json:"name"`
	Spec        *ClipSpec `json:"spec,omitempty"` // nil for a user's file
	Video       string    `json:"video"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	FPS         float64   `json:"fps"`
	Frames      int       `json:"frames"`
	TruthSource string    `json:"truth_source"`
	Description string    `json:"description"`
	// Key is the cache key (sha256 of everything the clip depends on).
	Key string `json:"key,omitempty"`
	// Screen is the backdrop's colour for screen clips ("green", "blue").
	Screen string `json:"screen,omitempty"`

	truthPath string
}

// HasTruth reports whether the clip's true alpha is known.
func (c *Clip) HasTruth() bool { return c.truthPath != "" }

// Truth reads the clip's true alpha, one w×h plane per frame.
func (c *Clip) Truth() ([][]byte, error) {
	if c.truthPath == "" {
		return nil, fmt.Errorf("clip %s has no truth", c.ID)
	}
	return readGrayGz(c.truthPath, c.Width*c.Height)
}

// Luma decodes the clip's luma planes (what Flicker compares).
func (c *Clip) Luma(ctx context.Context) ([][]byte, error) {
	return readRawFrames(ctx, c.Width*c.Height, "-i", c.Video, "-f", "rawvideo", "-pix_fmt", "gray", "-")
}

// FrameRGB decodes frame i of the clip as RGB.
func (c *Clip) FrameRGB(ctx context.Context, i int) ([]byte, error) {
	frames, err := readRawFrames(ctx, 3*c.Width*c.Height, "-i", c.Video,
		"-vf", fmt.Sprintf("select=eq(n\\,%d)", i), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	if err != nil {
		return nil, err
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("clip %s has no frame %d", c.ID, i)
	}
	return frames[0], nil
}

// describe says in words what a generated clip shows.
func describe(s ClipSpec, truth string) string {
	var fg string
	switch s.Foreground {
	case FgPortrait:
		fg = "the astronaut portrait (astronaut.png) cut out"
	case FgPlayer:
		fg = "the football player (messi5.jpg) cut out"
	case FgShapes:
		fg = "a soft-edged blob with 56 swaying hair-like strands and a fast rounded square"
	case FgPeople:
		fg = "three people walking at once (the player near the camera, the astronaut's bust passing the other way, the player again small and far behind), cut out"
	}
	var bd string
	switch s.Backdrop {
	case BackdropStreet:
		bd = "the street of vtest.avi"
	case BackdropTree:
		bd = "the tree of tree.avi"
	case BackdropGreen:
		bd = "an unevenly lit green screen with spill on the foreground"
	case BackdropBlue:
		bd = "an unevenly lit blue screen with spill on the foreground"
	}
	d := fg + ", moving and scaling over " + bd + fmt.Sprintf(", motion-blurred (%d samples over a 180° shutter)", motionSamples)
	if s.Foreground == FgPortrait {
		d += ", cut by the frame's bottom edge"
	}
	if s.Foreground == FgPeople {
		d += ", the bust cut by the frame's bottom edge, the people overlapping as they pass"
	}
	if s.needsPhoto() {
		if s.screen() {
			d += ", crossed by a screen-coloured occluder"
		} else {
			d += ", crossed by a pole in front of it"
		}
	} else {
		d += ", partly leaving the frame"
	}
	if strings.HasPrefix(truth, "model:") {
		d += fmt.Sprintf("; the cut-out's alpha came from %s on the photo at full resolution (refined), so the truth favours that model", strings.TrimPrefix(truth, "model:"))
	}
	return d
}

// BuildClip returns the generated clip for spec from the cache folder,
// generating and encoding it first when it is not there. photoTruth names
// the model cut-outs come from (empty when spec needs no photo).
func BuildClip(ctx context.Context, spec ClipSpec, src Sources, photoTruth string, cache string) (*Clip, error) {
	truth := TruthSynthetic
	if spec.needsPhoto() {
		truth = TruthModel(photoTruth)
	}
	// The key covers the spec, the generator and, for cut-outs, the matte
	// of the photo (so a different model gives a different clip).
	h := sha256.New()
	json.NewEncoder(h).Encode(spec)
	fmt.Fprintf(h, "gen=%d truth=%s ffmpeg=%s\n", generatorVersion, truth, ffmpegVersion(ctx))
	if spec.needsPhoto() {
		if src.Photo == nil {
			return nil, fmt.Errorf("clip %s needs a photo cut-out and no matte source was given", spec.ID())
		}
		photos := map[string]*Photo{}
		for _, fg := range spec.photos() {
			if photos[fg] != nil {
				continue
			}
			ph, err := src.Photo(ctx, fg)
			if err != nil {
				return nil, err
			}
			hashPhoto(h, ph)
			photos[fg] = ph
		}
		// Render asks again: give it what it has.
		src.Photo = func(_ context.Context, fg string) (*Photo, error) {
			if ph := photos[fg]; ph != nil {
				return ph, nil
			}
			return nil, fmt.Errorf("clip %s: no cut-out %q", spec.ID(), fg)
		}
	}
	key := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(cache, "clips", spec.Set+"-"+spec.Name+"-"+key[:12])
	clip := &Clip{
		ID: spec.ID(), Set: spec.Set, Name: spec.Name, Spec: &spec,
		Video: filepath.Join(dir, "clip.mkv"), Width: spec.Width, Height: spec.Height,
		FPS: float64(spec.FPS), Frames: spec.Frames, TruthSource: truth,
		Description: describe(spec, truth), Key: key,
		truthPath: filepath.Join(dir, "truth.gray.gz"),
	}
	if spec.screen() {
		clip.Screen = spec.Backdrop
	}
	if _, err := os.Stat(filepath.Join(dir, "clip.json")); err == nil {
		return clip, nil
	}
	frames, err := Render(ctx, spec, src)
	if err != nil {
		return nil, err
	}
	if err := writeClip(ctx, dir, clip, frames); err != nil {
		return nil, err
	}
	return clip, nil
}

func hashPhoto(h io.Writer, p *Photo) {
	fmt.Fprintf(h, "photo %dx%d\n", p.W, p.H)
	h.Write(p.RGB)
	a := make([]byte, len(p.Alpha))
	for i, v := range p.Alpha {
		a[i] = unit8(v)
	}
	h.Write(a)
}

// writeClip encodes the frames (FFV1, yuv420p, lossless in YUV, bit-exact
// flags so the file's bytes depend on the content only) and writes the
// truth beside them, into a temporary folder renamed into place.
func writeClip(ctx context.Context, dir string, c *Clip, frames []Frame) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rgb := make([][]byte, len(frames))
	alpha := make([][]byte, len(frames))
	for i, f := range frames {
		rgb[i], alpha[i] = f.RGB, f.Alpha
	}
	if err := encodeFFV1(ctx, rgb, c.Width, c.Height, c.FPS, filepath.Join(tmp, "clip.mkv")); err != nil {
		return err
	}
	if err := writeGrayGz(filepath.Join(tmp, "truth.gray.gz"), alpha); err != nil {
		return err
	}
	meta, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "clip.json"), append(meta, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run made it meanwhile: theirs is as good.
		if _, serr := os.Stat(filepath.Join(dir, "clip.json")); serr == nil {
			return nil
		}
		return err
	}
	return nil
}

// encodeFFV1 writes RGB frames as an FFV1 yuv420p Matroska file with the
// bit-exact flags.
func encodeFFV1(ctx context.Context, rgb [][]byte, w, h int, fps float64, out string) error {
	return writeRawFrames(ctx, rgb,
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", w, h),
		"-framerate", fmt.Sprint(fps), "-i", "-",
		"-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1",
		"-pix_fmt", "yuv420p", "-map_metadata", "-1",
		"-fflags", "+bitexact", "-flags:v", "+bitexact", out)
}

// writeGrayGz writes 8-bit planes, concatenated, gzip-compressed (no
// timestamp, so the bytes depend on the planes only).
func writeGrayGz(path string, planes [][]byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	for _, p := range planes {
		zw.Write(p)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func readGrayGz(path string, size int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var planes [][]byte
	for {
		p := make([]byte, size)
		if _, err := io.ReadFull(zr, p); err != nil {
			if errors.Is(err, io.EOF) {
				return planes, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		planes = append(planes, p)
	}
}

// FilesSet is the set the clips of users' files belong to.
const FilesSet = "files"

// FileClip makes a clip of a user's video: the first frames of it (all
// when frames is 0), re-encoded losslessly (FFV1) into the cache so every
// run reads the same frames. Such a clip has no truth.
func FileClip(ctx context.Context, path string, frames int, cache string) (*Clip, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(path)
	h := sha256.New()
	fmt.Fprintf(h, "file=%s size=%d mtime=%d frames=%d gen=%d\n", abs, st.Size(), st.ModTime().UnixNano(), frames, generatorVersion)
	key := hex.EncodeToString(h.Sum(nil))
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	dir := filepath.Join(cache, "files", base+"-"+key[:12])
	out := filepath.Join(dir, "clip.mkv")
	if _, err := os.Stat(out); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, ".clip.partial.mkv")
		args := []string{"-i", path, "-map", "0:v:0", "-an", "-sn"}
		if frames > 0 {
			args = append(args, "-frames:v", fmt.Sprint(frames))
		}
		args = append(args, "-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", "yuv420p", tmp)
		if err := runFFmpeg(ctx, args...); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, out); err != nil {
			return nil, err
		}
	}
	w, hh, fps, n, err := probeVideo(ctx, out)
	if err != nil {
		return nil, err
	}
	return &Clip{
		ID: FilesSet + "/" + base, Set: FilesSet, Name: base, Video: out, Width: w, Height: hh, FPS: fps, Frames: n,
		TruthSource: TruthNone, Key: key,
		Description: fmt.Sprintf("%s (%s), first %d frames; no truth: speed and flicker only", filepath.Base(path), abs, n),
	}, nil
}
