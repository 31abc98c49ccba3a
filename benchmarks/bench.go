package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"vidmatte"
	"vidmatte/engine"
	"vidmatte/models"
)

// Options configure a bench run. The zero value of every field but Out
// means its default.
type Options struct {
	// Models are the model ids (or aliases) to compare. Default: isnet,
	// isnet-small, chroma, rvm, selfie, meet.
	Models []string
	// Sets are generated set names (composite, greenscreen, bluescreen)
	// or paths of video files (together the set "files", without truth:
	// speed and flicker only). Default: composite, greenscreen.
	Sets []string
	// Out is the report folder (required).
	Out string
	// Home is where the ONNX Runtime library, the models and the media
	// are (default models.Home()); Cache is where generated clips and
	// cut-out mattes are kept (default Home/bench).
	Home, Cache string

	// The generated clips: seed, size, rate and length, and which
	// foregrounds each set has (portrait, shapes, player; default the
	// first two).
	Seed          uint64
	Width, Height int
	FPS, Frames   int
	Foregrounds   []string
	// AllFileFrames uses every frame of video files; otherwise their
	// first Frames frames.
	AllFileFrames bool

	// Format is the output format every pipeline writes (default
	// png_sequence, whose alpha reads back exactly; webm also works, its
	// lossy alpha then counts in the metrics).
	Format vidmatte.OutputFormat
	// Naive says on which clips the naive pipeline runs: "first" (the
	// first clip of each set, the default), "all" or "none".
	Naive string
	// NoSmoothingRuns turns off the extra run of each per-frame model
	// without the engine's temporal smoothing.
	NoSmoothingRuns bool
	// NoRefineRuns turns off the extra run, without edge refinement, of
	// each model the engine refines (selfie, meet).
	NoRefineRuns bool
	// NoKeyers turns off FFmpeg's chromakey and colorkey on screen clips.
	NoKeyers bool
	// TruthModel cuts the photo foregrounds out (default isnet).
	TruthModel string

	Device  models.Device
	Threads int
	Batch   int

	// Previous is an earlier results.json: the report compares with it.
	Previous string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Defaults of Options.
const (
	DefaultWidth  = 480
	DefaultHeight = 360
	DefaultFPS    = 10
	DefaultFrames = 16
	DefaultSeed   = 1
)

// DefaultModels and DefaultSets are what a bench run compares by default.
var (
	DefaultModels = []string{"isnet", "isnet-small", "chroma", "rvm", "selfie", "meet"}
	DefaultSets   = []string{SetComposite, SetGreenscreen}
)

func (o *Options) defaults() error {
	if o.Out == "" {
		return errors.New("benchmarks: an output folder is required")
	}
	if len(o.Models) == 0 {
		o.Models = slices.Clone(DefaultModels)
	}
	if len(o.Sets) == 0 {
		o.Sets = slices.Clone(DefaultSets)
	}
	if o.Home == "" {
		o.Home = models.Home()
	}
	if o.Cache == "" {
		o.Cache = filepath.Join(o.Home, "bench")
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.Frames == 0 {
		o.Frames = DefaultFrames
	}
	if len(o.Foregrounds) == 0 {
		o.Foregrounds = slices.Clone(DefaultForegrounds)
	}
	if o.Format == "" {
		o.Format = vidmatte.FormatPNGSequence
	}
	switch o.Format {
	case vidmatte.FormatPNGSequence, vidmatte.FormatWebM:
	default:
		return fmt.Errorf("benchmarks: format %q: the bench writes png_sequence or webm (the formats every pipeline can write and whose alpha reads back)", o.Format)
	}
	switch o.Naive {
	case "":
		o.Naive = "first"
	case "first", "all", "none":
	default:
		return fmt.Errorf("benchmarks: naive %q: want first, all or none", o.Naive)
	}
	if o.TruthModel == "" {
		o.TruthModel = "isnet"
	}
	if o.Device == "" {
		o.Device = models.CPU
	}
	if o.Batch < 1 {
		o.Batch = 1
	}
	return nil
}

// bench is one run in progress.
type bench struct {
	o       Options
	res     *Results
	reg     *models.Registry
	work    string
	log     io.Writer
	started time.Time
	// samples are what the contact sheet shows, per clip: the middle
	// frame's input and truth.
	inputs map[string][]byte
	truths map[string][]byte
	// currentLoad is the load time of the model being measured.
	currentLoad float64
}

func (b *bench) logf(format string, args ...any) {
	if b.log == nil {
		return
	}
	el := time.Since(b.started).Round(time.Second)
	fmt.Fprintf(b.log, "[%s] %s\n", el, fmt.Sprintf(format, args...))
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.res.Notes = append(b.res.Notes, msg)
	b.logf("note: %s", msg)
}

// phase records the wall time since start under name.
func (b *bench) phase(name string, start time.Time) {
	b.res.Phases = append(b.res.Phases, Phase{Name: name, Seconds: math.Round(time.Since(start).Seconds()*10) / 10})
}

func (b *bench) sampleLoad() {
	if l := loadAverage(); l > b.res.Machine.LoadMax {
		b.res.Machine.LoadMax = l
	}
}

// Run measures every model on every clip of the sets, runs the baselines,
// and writes the report (README.md, charts, contact sheet, results.json)
// into o.Out. A model that fails on a clip is recorded with its error and
// the run goes on; Run fails only when nothing could be measured or the
// report cannot be written.
func Run(ctx context.Context, o Options) (*Results, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	b := &bench{o: o, log: o.Log, started: time.Now(), inputs: map[string][]byte{}, truths: map[string][]byte{}}
	b.res = &Results{
		Schema: ResultsSchema, Started: b.started.UTC().Truncate(time.Second),
		Machine: machineInfo(),
		Settings: Settings{
			Models: o.Models, Sets: o.Sets, Seed: o.Seed, Frames: o.Frames, FPS: o.FPS,
			Width: o.Width, Height: o.Height, Foregrounds: o.Foregrounds, Format: string(o.Format),
			Naive: o.Naive, Smoothing: !o.NoSmoothingRuns, Device: string(o.Device),
			Threads: o.Threads, Batch: o.Batch, TruthModel: o.TruthModel,
		},
	}
	os.Setenv("VIDMATTE_HOME", o.Home)
	reg, err := models.NewRegistry(models.ModelsDir(o.Home))
	if err != nil {
		return nil, err
	}
	b.reg = reg
	for i, id := range o.Models {
		m, err := reg.Get(id)
		if err != nil {
			return nil, err
		}
		o.Models[i] = m.ID
	}
	b.o.Models = o.Models
	b.work, err = os.MkdirTemp(o.Cache, "work-")
	if err != nil {
		if err := os.MkdirAll(o.Cache, 0o755); err != nil {
			return nil, err
		}
		if b.work, err = os.MkdirTemp(o.Cache, "work-"); err != nil {
			return nil, err
		}
	}
	defer os.RemoveAll(b.work)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := models.NewRuntime(models.RuntimeOptions{Threads: o.Threads, Logger: logger})
	if err != nil {
		return nil, err
	}
	b.res.Versions = versions(ctx, rt.Version())

	start := time.Now()
	clips, err := b.buildClips(ctx, rt)
	rt.Close()
	if err != nil {
		return nil, err
	}
	b.res.Clips = clips
	b.phase("clips (generated, or read from the cache)", start)
	b.res.Plan = b.plan()
	b.logf("plan: %s", b.res.Plan)

	for _, id := range o.Models {
		start := time.Now()
		if err := b.benchModel(ctx, id, clips, logger); err != nil {
			return nil, err
		}
		b.phase(id+" (vidmatte and naive runs, metrics)", start)
	}
	if !o.NoKeyers {
		start := time.Now()
		keyed := false
		for _, c := range clips {
			if c.Screen != "" && c.HasTruth() {
				keyed = true
				if err := b.benchKeyers(ctx, c); err != nil {
					return nil, err
				}
			}
		}
		if keyed {
			b.phase("FFmpeg keyers (tuning, runs, metrics)", start)
		}
	}

	b.sampleLoad()
	b.res.Machine.LoadEnd = loadAverage()
	b.res.Finished = time.Now().UTC().Truncate(time.Second)
	b.res.Seconds = math.Round(time.Since(b.started).Seconds()*10) / 10
	if l := b.res.Machine.LoadMax; l > float64(b.res.Machine.Cores)+0.5 {
		b.note("other processes competed for the CPU: the 1-minute load average reached %.1f on %d cores; speeds are lower than on an idle machine, ratios measured in the same run still compare", l, b.res.Machine.Cores)
	}
	measured := 0
	for _, r := range b.res.Runs {
		if r.Error == "" {
			measured++
		}
	}
	if measured == 0 {
		return b.res, errors.New("benchmarks: no run succeeded")
	}
	var prev *Results
	if o.Previous != "" {
		prev, err = ReadResults(o.Previous)
		if err != nil {
			return nil, err
		}
	}
	start = time.Now()
	if err := writeReport(o.Out, b.res, prev, b.inputs, b.truths); err != nil {
		return b.res, err
	}
	b.logf("report written in %.1f s", time.Since(start).Seconds())
	b.logf("report written to %s", o.Out)
	return b.res, nil
}

// buildClips makes (or finds in the cache) every set's clips.
func (b *bench) buildClips(ctx context.Context, rt *models.Runtime) ([]*Clip, error) {
	media := filepath.Join(b.o.Home, "media")
	pm := &photoMatter{rt: rt, reg: b.reg, model: b.o.TruthModel, media: media, cache: b.o.Cache, dev: b.o.Device}
	src := Sources{Media: media, Photo: pm.photo}
	var clips []*Clip
	for _, set := range b.o.Sets {
		if slices.Contains(GeneratedSets, set) {
			specs, err := SetClips(set, b.o.Foregrounds, b.o.Width, b.o.Height, b.o.FPS, b.o.Frames, b.o.Seed)
			if err != nil {
				return nil, err
			}
			for _, s := range specs {
				b.logf("clip %s: generating or reading from the cache", s.ID())
				c, err := BuildClip(ctx, s, src, b.o.TruthModel, b.o.Cache)
				if err != nil {
					return nil, fmt.Errorf("clip %s: %w", s.ID(), err)
				}
				clips = append(clips, c)
			}
			continue
		}
		if _, err := os.Stat(set); err != nil {
			return nil, fmt.Errorf("set %q is neither %s nor a video file: %w", set, strings.Join(GeneratedSets, ", "), err)
		}
		n := b.o.Frames
		if b.o.AllFileFrames {
			n = 0
		}
		b.logf("clip from %s", set)
		c, err := FileClip(ctx, set, n, b.o.Cache)
		if err != nil {
			return nil, err
		}
		clips = append(clips, c)
	}
	return clips, nil
}

// plan says how many frames each model will process.
func (b *bench) plan() string {
	total := 0
	var perSet = map[string]int{}
	for _, c := range b.res.Clips {
		total += c.Frames
		perSet[c.Set] += c.Frames
	}
	naive := 0
	switch b.o.Naive {
	case "all":
		naive = total
	case "first":
		seen := map[string]bool{}
		for _, c := range b.res.Clips {
			if !seen[c.Set] {
				seen[c.Set] = true
				naive += c.Frames
			}
		}
	}
	passes := 1
	if !b.o.NoSmoothingRuns {
		passes = 2
	}
	keyed := 0
	for _, c := range b.res.Clips {
		if c.Screen != "" && !b.o.NoKeyers {
			keyed++
		}
	}
	return fmt.Sprintf("%d clips of %d frames in all; each per-frame model processes %d frames through vidmatte (%d pass%s) and %d through the naive pipeline; FFmpeg's keyers run on %d screen clip%s",
		len(b.res.Clips), total, total*passes, passes, map[bool]string{true: "es", false: ""}[passes > 1], naive, keyed, plural(keyed))
}

// benchModel runs one model on every clip: the engine with its default
// smoothing, with the other setting (models without recurrent state), and
// the naive pipeline. Each model gets a fresh Runtime, so its load time and memory
// are its own.
func (b *bench) benchModel(ctx context.Context, id string, clips []*Clip, logger *slog.Logger) error {
	rt, err := models.NewRuntime(models.RuntimeOptions{Threads: b.o.Threads, Logger: logger})
	if err != nil {
		return err
	}
	defer rt.Close()
	eng, err := engine.New(engine.Config{Runtime: rt, Registry: b.reg, Device: b.o.Device, Batch: b.o.Batch, Logger: logger})
	if err != nil {
		return err
	}
	man, err := b.reg.Get(id)
	if err != nil {
		return err
	}
	seenSet := map[string]bool{}
	warmed := map[string]*ModelLoad{}
	for _, c := range clips {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Load the sessions this clip needs (the engine's batch, and 1 for
		// the naive pipeline) and run each once before timing anything.
		ml, err := b.warm(ctx, rt, man, c, b.o.Batch, warmed)
		if err != nil {
			b.note("loading %s for %s failed: %v", id, c.ID, err)
			continue
		}
		b.currentLoad = ml.LoadSeconds
		if b.o.Batch != 1 && b.o.Naive != "none" {
			if _, err := b.warm(ctx, rt, man, c, 1, warmed); err != nil {
				b.note("loading %s for %s failed: %v", id, c.ID, err)
				continue
			}
		}
		// The engine's default smoothing for the model, then the other
		// setting for every model without recurrent state.
		smooth, other := "off", "on"
		if man.PerFrame() {
			smooth, other = "on", "off"
		}
		b.engineRun(ctx, eng, id, c, smooth, "", true)
		if man.Kind != models.Recurrent && !b.o.NoSmoothingRuns {
			b.engineRun(ctx, eng, id, c, other, "", false)
		}
		if man.Refine && !b.o.NoRefineRuns {
			b.engineRun(ctx, eng, id, c, smooth, "off", false)
		}
		first := !seenSet[c.Set]
		seenSet[c.Set] = true
		if b.o.Naive == "all" || b.o.Naive == "first" && first {
			b.naiveRun(ctx, rt, id, c)
		}
		b.sampleLoad()
	}
	return nil
}

// warm loads a model's session for a clip's frames at a batch size (its
// creation is the model's load time) and runs it once on a blank batch,
// so that no timed run pays for ONNX Runtime's first inference. Sessions
// are warmed once per input size and batch.
func (b *bench) warm(ctx context.Context, rt *models.Runtime, man *models.Manifest, c *Clip, batch int, done map[string]*ModelLoad) (*ModelLoad, error) {
	start := time.Now()
	m, err := rt.Load(b.reg, man, models.LoadOptions{Device: b.o.Device, Batch: batch, FrameWidth: c.Width, FrameHeight: c.Height})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	load := time.Since(start)
	w, h := m.InputSize()
	key := fmt.Sprintf("%dx%d/%d", w, h, m.Batch())
	if ml := done[key]; ml != nil {
		return ml, nil
	}
	mb, err := m.NewBatch()
	if err != nil {
		return nil, err
	}
	defer mb.Close()
	st := m.NewState()
	defer st.Close()
	t := time.Now()
	if err := m.Run(ctx, mb, m.Batch(), st); err != nil {
		return nil, err
	}
	ml := &ModelLoad{Model: man.ID, Width: w, Height: h, Batch: m.Batch(), Device: string(m.Device()),
		LoadSeconds: round3(load.Seconds()), FirstRunMs: round3(float64(time.Since(t).Microseconds()) / 1000)}
	done[key] = ml
	b.res.Loads = append(b.res.Loads, ml)
	b.logf("%s loaded for %dx%d input, batch %d, in %.2f s; first inference %.0f ms (not timed in the runs)", man.ID, w, h, ml.Batch, ml.LoadSeconds, ml.FirstRunMs)
	return ml, nil
}

// engineRun processes a clip with the engine and measures the result.
func (b *bench) engineRun(ctx context.Context, eng *engine.Engine, id string, c *Clip, smooth, refine string, def bool) {
	run := &Measurement{Model: id, Clip: c.ID, Set: c.Set, Pipeline: PipelineVidmatte, Smoothing: smooth, Refine: refine, Default: def}
	b.res.Runs = append(b.res.Runs, run)
	out := filepath.Join(b.work, fmt.Sprintf("%s-%s-%s-%s%s.%s", id, c.Set, c.Name, smooth, refine, formatExt(b.o.Format)))
	defer os.Remove(out)
	b.logf("%s on %s (vidmatte, smoothing %s%s)…", id, c.ID, smooth, map[bool]string{true: ", no refinement", false: ""}[refine == "off"])
	debug.FreeOSMemory()
	base := currentRSS()
	resetPeakRSS()
	res, err := eng.Process(ctx, engine.Request{
		Input: c.Video, Output: out, Model: id, Format: b.o.Format,
		Smoothing: engine.Smoothing(smooth), Refine: engine.Refinement(refine), Batch: b.o.Batch,
	})
	peak := peakRSS()
	if err != nil {
		run.Error = err.Error()
		b.note("%s on %s failed: %v", run.Label(), c.ID, err)
		return
	}
	run.Frames = int(res.Frames)
	wall := res.Elapsed - res.LoadTime
	run.Speed = speedOf(run.Frames, wall, res.LoadTime, res.InferTime, peak, fileSize(out), c.FPS)
	run.Speed.StartRSSBytes = base
	run.Speed.LoadSeconds = b.currentLoad
	b.logf("  %d frames, %.1f fps end to end, model %.1f ms/frame, load %.2f s, peak RSS %d MiB (%d at the start)",
		run.Frames, run.Speed.FPS, run.Speed.ModelMsPerFrame, run.Speed.LoadSeconds, peak>>20, base>>20)
	b.measure(ctx, run, c, out)
}

// naiveRun runs the naive pipeline and measures it.
func (b *bench) naiveRun(ctx context.Context, rt *models.Runtime, id string, c *Clip) {
	run := &Measurement{Model: id, Clip: c.ID, Set: c.Set, Pipeline: PipelineNaive,
		Detail: "ffmpeg CLI → PNG files → one model call per file (bilinear resize, grayscale PNG mattes) → ffmpeg CLI alphamerge → " + string(b.o.Format)}
	b.res.Runs = append(b.res.Runs, run)
	b.logf("%s on %s (naive pipeline)…", id, c.ID)
	debug.FreeOSMemory()
	base := currentRSS()
	resetPeakRSS()
	nr, err := runNaive(ctx, rt, b.reg, b.o.Device, id, c, b.o.Format, b.work)
	peak := peakRSS()
	if err != nil {
		run.Error = err.Error()
		b.note("%s on %s failed: %v", run.Label(), c.ID, err)
		return
	}
	defer os.Remove(nr.output)
	run.Frames = nr.frames
	run.Speed = speedOf(nr.frames, nr.wall, nr.load, nr.inferTime, peak, fileSize(nr.output), c.FPS)
	run.Speed.StartRSSBytes = base
	run.Speed.LoadSeconds = b.currentLoad
	b.logf("  %d frames, %.1f fps end to end, model %.1f ms/frame", run.Frames, run.Speed.FPS, run.Speed.ModelMsPerFrame)
	b.measure(ctx, run, c, nr.output)
}

// benchKeyers runs FFmpeg's keyers on a screen clip.
func (b *bench) benchKeyers(ctx context.Context, c *Clip) error {
	truth, err := c.Truth()
	if err != nil {
		return err
	}
	rgb0, err := c.FrameRGB(ctx, 0)
	if err != nil {
		return err
	}
	key := borderMedian(rgb0, c.Width, c.Height)
	for _, k := range keyers {
		run := &Measurement{Model: "ffmpeg-" + k.name, Clip: c.ID, Set: c.Set, Pipeline: PipelineFFmpeg}
		b.res.Runs = append(b.res.Runs, run)
		b.logf("ffmpeg %s on %s (tuning on frame 0)…", k.name, c.ID)
		filter, err := tuneKeyer(ctx, k, c, key, truth[0], b.work)
		if err != nil {
			run.Error = err.Error()
			b.note("%s on %s failed: %v", run.Model, c.ID, err)
			continue
		}
		run.Detail = fmt.Sprintf("-vf %s (key colour: median of frame 0's border; similarity and blend: best MAD on frame 0 of a %d×%d grid)",
			filter, len(k.similarity), len(k.blend))
		out := filepath.Join(b.work, fmt.Sprintf("%s-%s-%s.%s", run.Model, c.Set, c.Name, formatExt(b.o.Format)))
		wall, err := runKeyer(ctx, filter, c, b.o.Format, out, b.work)
		if err != nil {
			run.Error = err.Error()
			b.note("%s on %s failed: %v", run.Model, c.ID, err)
			continue
		}
		run.Frames = c.Frames
		run.Speed = speedOf(c.Frames, wall, 0, 0, 0, fileSize(out), c.FPS)
		run.Speed.PipelineRatio = 0
		b.measure(ctx, run, c, out)
		os.Remove(out)
	}
	return nil
}

// speedOf fills a Speed.
func speedOf(frames int, wall, load, infer time.Duration, peak, size int64, fps float64) Speed {
	s := Speed{
		WallSeconds: round3(wall.Seconds()), LoadSeconds: round3(load.Seconds()),
		PeakRSSBytes: peak, OutputBytes: size,
	}
	if frames > 0 {
		s.ModelMsPerFrame = round3(float64(infer.Microseconds()) / 1000 / float64(frames))
		if wall > 0 {
			s.FPS = round3(float64(frames) / wall.Seconds())
		}
		if s.ModelMsPerFrame > 0 && s.FPS > 0 {
			s.PipelineRatio = round3(1000 / s.FPS / s.ModelMsPerFrame)
		}
		if fps > 0 {
			s.OutputBytesPerMinute = math.Round(float64(size) / (float64(frames) / fps) * 60)
		}
	}
	return s
}

func round3(v float64) float64 { return roundSig(v, 4) }

// measure reads a run's output back and computes its quality.
func (b *bench) measure(ctx context.Context, run *Measurement, c *Clip, out string) {
	alphas, err := readOutputAlphas(ctx, out, b.o.Format, c.Width, c.Height)
	if err != nil {
		b.note("reading %s's output on %s back: %v", run.Label(), c.ID, err)
		return
	}
	if len(alphas) != c.Frames {
		b.note("%s on %s: %d frames in the output, the clip has %d", run.Label(), c.ID, len(alphas), c.Frames)
	}
	var truth [][]byte
	if c.HasTruth() {
		if truth, err = c.Truth(); err != nil {
			b.note("reading the truth of %s: %v", c.ID, err)
			return
		}
	}
	luma, err := c.Luma(ctx)
	if err != nil {
		b.note("reading the luma of %s: %v", c.ID, err)
		return
	}
	n := min(len(alphas), len(luma))
	if truth != nil {
		n = min(n, len(truth))
		truth = truth[:n]
	}
	q, err := measureQuality(alphas[:n], truth, luma[:n], c.Width, c.Height)
	if err != nil {
		b.note("measuring %s on %s: %v", run.Label(), c.ID, err)
		return
	}
	for _, v := range []*float64{&q.MAD, &q.MSE, &q.Grad, &q.Conn, &q.DtSSD, &q.Flicker, &q.StillFraction} {
		*v = roundSig(*v, 5)
	}
	run.Quality = q
	mid := n / 2
	run.sample = alphas[mid]
	if _, ok := b.inputs[c.ID]; !ok {
		if rgb, err := c.FrameRGB(ctx, mid); err == nil {
			b.inputs[c.ID] = rgb
		}
		if truth != nil {
			b.truths[c.ID] = truth[mid]
		}
	}
	if !math.IsNaN(q.MAD) {
		b.logf("  MAD %.2f MSE %.2f Grad %.3f Conn %.3f dtSSD %.2f flicker %.2f", q.MAD, q.MSE, q.Grad, q.Conn, q.DtSSD, q.Flicker)
	} else {
		b.logf("  flicker %.2f", q.Flicker)
	}
}
