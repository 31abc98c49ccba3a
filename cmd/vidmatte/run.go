package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"vidmatte/codec"

	"vidmatte"
	"vidmatte/engine"
	"vidmatte/models"
)

func init() {
	register(command{
		name:    "run",
		summary: "remove the background of one video file",
		run:     runRun,
	})
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	output := fs.String("o", "", "output `file` (required)")
	model := fs.String("model", engine.DefaultModel, "model id or alias (see 'vidmatte models list')")
	format := fs.String("format", "", "webm|mov|mp4|webp|gif|png_sequence|mask (default: from the output's extension)")
	bg := fs.String("bg", "transparent", "background: transparent, a colour (#00ff00, green, white, black, blue), an image file, or blur")
	device := fs.String("device", "cpu", "cpu or cuda")
	fallback := fs.Bool("cpu-fallback", false, "use the CPU when CUDA cannot be loaded, instead of failing")
	batch := fs.Int("batch", 1, "frames per inference call")
	threads := fs.Int("threads", 0, "threads of the decoder, the encoders and inference each (0 = all cores)")
	smooth := fs.String("smooth", "auto", "temporal smoothing of the alpha: auto, on or off")
	home := fs.String("home", "", "where the ONNX Runtime library and the models are (default $VIDMATTE_HOME)")
	quiet := fs.Bool("quiet", false, "print no progress")
	stats := fs.Bool("stats", false, "print each pipeline stage's time per frame (busy and waiting, ms) after the summary")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON lines on stdout, for scripts (see 'vidmatte run -h')")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vidmatte run INPUT -o OUTPUT [flags]")
		fs.PrintDefaults()
		fmt.Fprint(stderr, jsonHelp)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("one input file is needed, got %d", len(pos))
	}
	if *output == "" {
		return usageErrorf("-o OUTPUT is required")
	}
	f, err := formatFor(*format, *output)
	if err != nil {
		return err
	}
	background, err := parseBackground(*bg)
	if err != nil {
		return err
	}
	sm := engine.Smoothing("")
	switch *smooth {
	case "auto":
	case "on", "off":
		sm = engine.Smoothing(*smooth)
	default:
		return usageErrorf("-smooth must be auto, on or off")
	}
	if *stats && *jsonOut {
		return usageErrorf("-stats prints a table: it does not go with -json")
	}
	if *batch < 1 {
		return usageErrorf("-batch must be at least 1")
	}
	if *home != "" {
		os.Setenv("VIDMATTE_HOME", *home)
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := models.NewRuntime(models.RuntimeOptions{Threads: *threads, AllowCPUFallback: *fallback, Logger: logger})
	if err != nil {
		return err
	}
	defer rt.Close()
	reg, err := models.NewRegistry(models.ModelsDir(models.Home()))
	if err != nil {
		return err
	}
	eng, err := engine.New(engine.Config{
		Runtime: rt, Registry: reg, Device: models.Device(*device), Batch: *batch, Logger: logger,
		DecoderThreads: *threads, Encoder: codec.EncoderSettings{Threads: *threads},
	})
	if err != nil {
		return err
	}
	var report func(engine.Progress)
	var finish func()
	if *jsonOut {
		jp := &jsonProgress{w: stdout, quiet: *quiet}
		report, finish = jp.update, func() {}
	} else {
		bar := newProgressBar(stderr, *quiet)
		report, finish = bar.update, bar.finish
	}
	res, err := eng.Process(ctx, engine.Request{
		Input: pos[0], Output: *output, Model: *model, Format: f,
		Background: background, Smoothing: sm, Progress: report,
	})
	finish()
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONLine(stdout, jsonDone{
			Event: "done", Output: *output, Format: string(f), Frames: res.Frames, Width: res.Width, Height: res.Height,
			Model: res.Model, Device: string(res.Device), ElapsedSeconds: res.Elapsed.Seconds(), FPS: res.FPS, ModelMsPerFrame: msPerFrame(res),
		})
	}
	fmt.Fprintf(stdout, "%s: %d frames of %dx%d with %s on %s in %s (%.1f fps, model %.1f ms/frame)\n",
		*output, res.Frames, res.Width, res.Height, res.Model, res.Device,
		res.Elapsed.Round(10*time.Millisecond), res.FPS, msPerFrame(res))
	if *stats {
		writeStageStats(stdout, res)
	}
	return nil
}

// writeStageStats prints each stage's busy and waiting time per frame.
func writeStageStats(w io.Writer, res *engine.Result) {
	n := float64(max(res.Frames, 1))
	perFrame := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	fmt.Fprintf(w, "%-8s %12s %12s %14s\n", "stage", "busy ms/f", "wait ms/f", "queue mean/cap")
	for _, s := range res.Stages {
		queue := "-"
		if s.Takes > 0 {
			queue = fmt.Sprintf("%.2f/%d", float64(s.Queued)/float64(s.Takes), s.Capacity)
		}
		fmt.Fprintf(w, "%-8s %12.3f %12.3f %14s\n", s.Name, perFrame(s.Busy), perFrame(s.Wait), queue)
	}
	fmt.Fprintf(w, "%-8s %12.3f\n", "wall", perFrame(res.Elapsed))
}

const jsonHelp = `
With -json, stdout carries one JSON object per line and nothing else:
  {"event":"progress","frames_done":12,"frames_total":250,"percent":4,"fps":23.5,"elapsed_seconds":0.51,"eta_seconds":10.1}
  (at most two a second, and the last frame's always; none with -quiet)
  {"event":"done","output":"out.webm","format":"webm","frames":250,"width":1920,"height":1080,
   "model":"isnet","device":"cpu","elapsed_seconds":10.6,"fps":23.6,"model_ms_per_frame":31.2}
A failure prints no done line: the error goes to stderr and the exit status is not 0.
`

// jsonProgress writes progress as JSON lines: the first report, then at
// most one every half second, and the one of the last frame.
type jsonProgress struct {
	w     io.Writer
	quiet bool
	last  time.Time
	sent  bool
}

type jsonProgressLine struct {
	Event          string  `json:"event"`
	FramesDone     int64   `json:"frames_done"`
	FramesTotal    int64   `json:"frames_total"`
	Percent        int     `json:"percent"`
	FPS            float64 `json:"fps"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	ETASeconds     float64 `json:"eta_seconds"`
}

type jsonDone struct {
	Event           string  `json:"event"`
	Output          string  `json:"output"`
	Format          string  `json:"format"`
	Frames          int64   `json:"frames"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	Model           string  `json:"model"`
	Device          string  `json:"device"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	FPS             float64 `json:"fps"`
	ModelMsPerFrame float64 `json:"model_ms_per_frame"`
}

func (j *jsonProgress) update(p engine.Progress) {
	if j.quiet {
		return
	}
	final := p.FramesTotal > 0 && p.FramesDone >= p.FramesTotal
	if j.sent && !final && time.Since(j.last) < 500*time.Millisecond {
		return
	}
	j.sent, j.last = true, time.Now()
	_ = writeJSONLine(j.w, jsonProgressLine{
		Event: "progress", FramesDone: p.FramesDone, FramesTotal: p.FramesTotal, Percent: p.Percent(),
		FPS: round2(p.FPS), ElapsedSeconds: round2(p.Elapsed.Seconds()), ETASeconds: round2(p.ETA.Seconds()),
	})
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func msPerFrame(r *engine.Result) float64 {
	if r.Frames == 0 {
		return 0
	}
	return float64(r.InferTime.Microseconds()) / 1000 / float64(r.Frames)
}

// formatFor is the format named, or the one the output's extension implies.
func formatFor(name, output string) (vidmatte.OutputFormat, error) {
	if name != "" {
		f := vidmatte.OutputFormat(name)
		if !f.Valid() {
			return "", usageErrorf("unknown format %q", name)
		}
		return f, nil
	}
	switch strings.ToLower(filepath.Ext(output)) {
	case ".webm":
		return vidmatte.FormatWebM, nil
	case ".mov":
		return vidmatte.FormatMOV, nil
	case ".mp4":
		return vidmatte.FormatMP4, nil
	case ".gif":
		return vidmatte.FormatGIF, nil
	case ".webp":
		return vidmatte.FormatWebP, nil
	case ".zip":
		return vidmatte.FormatPNGSequence, nil
	}
	return "", usageErrorf("cannot tell the format from %q: use -format", output)
}

// parseBackground reads the -bg flag.
func parseBackground(s string) (vidmatte.Background, error) {
	switch {
	case s == "" || s == "transparent":
		return vidmatte.Background{Type: vidmatte.BackgroundTransparent}, nil
	case s == "blur":
		return vidmatte.Background{Type: vidmatte.BackgroundBlur}, nil
	case strings.HasPrefix(s, "#"):
		c, err := vidmatte.ParseHexColor(s)
		if err != nil {
			return vidmatte.Background{}, usageErrorf("-bg: %v", err)
		}
		return vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &c}, nil
	}
	if c, ok := vidmatte.NamedColors[s]; ok {
		return vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &c}, nil
	}
	if _, err := os.Stat(s); err != nil {
		return vidmatte.Background{}, usageErrorf("-bg %q is not transparent, blur, a colour or an image file", s)
	}
	return vidmatte.Background{Type: vidmatte.BackgroundImage, ImagePath: s}, nil
}

// progressBar shows progress: a redrawn bar on a terminal, a plain line
// every few seconds otherwise.
type progressBar struct {
	w     io.Writer
	quiet bool
	tty   bool
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, quiet bool) *progressBar {
	return &progressBar{w: w, quiet: quiet, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (b *progressBar) update(p engine.Progress) {
	if b.quiet {
		return
	}
	if b.tty {
		const width = 30
		filled := p.Percent() * width / 100
		fmt.Fprintf(b.w, "\r[%s%s] %d/%d frames %5.1f fps ETA %s ",
			strings.Repeat("#", filled), strings.Repeat(".", width-filled),
			p.FramesDone, p.FramesTotal, p.FPS, formatETA(p.ETA))
		b.drawn = true
		return
	}
	if time.Since(b.last) < 2*time.Second && p.FramesDone < p.FramesTotal {
		return
	}
	b.last = time.Now()
	fmt.Fprintf(b.w, "progress: %d/%d frames (%d%%) %.1f fps eta %s\n",
		p.FramesDone, p.FramesTotal, p.Percent(), p.FPS, formatETA(p.ETA))
}

func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

func formatETA(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return strconv.Itoa(s/3600) + "h" + fmt.Sprintf("%02dm", s%3600/60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
