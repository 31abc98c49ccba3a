package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	threads := fs.Int("threads", 0, "inference threads (0 = all cores)")
	smooth := fs.String("smooth", "auto", "temporal smoothing of the alpha: auto, on or off")
	home := fs.String("home", "", "where the ONNX Runtime library and the models are (default $VIDMATTE_HOME)")
	quiet := fs.Bool("quiet", false, "print no progress")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vidmatte run INPUT -o OUTPUT [flags]")
		fs.PrintDefaults()
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
	})
	if err != nil {
		return err
	}
	bar := newProgressBar(stderr, *quiet)
	res, err := eng.Process(ctx, engine.Request{
		Input: pos[0], Output: *output, Model: *model, Format: f,
		Background: background, Smoothing: sm, Progress: bar.update,
	})
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d frames of %dx%d with %s on %s in %s (%.1f fps, model %.1f ms/frame)\n",
		*output, res.Frames, res.Width, res.Height, res.Model, res.Device,
		res.Elapsed.Round(10*time.Millisecond), res.FPS, msPerFrame(res))
	return nil
}

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
