package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"vidmatte"
	"vidmatte/benchmarks"
	"vidmatte/models"
)

func init() {
	register(command{
		name:    "bench",
		summary: "compare models on speed and matte quality against baselines, and write a report",
		run:     runBench,
	})
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	modelList := fs.String("models", strings.Join(benchmarks.DefaultModels, ","), "comma-separated model ids or aliases")
	sets := fs.String("set", strings.Join(benchmarks.DefaultSets, ","), "comma-separated sets: composite, greenscreen, bluescreen, or video files (no truth: speed and flicker only)")
	out := fs.String("out", "", "report `folder` (README.md, charts, contact sheet, results.json)")
	frames := fs.Int("frames", benchmarks.DefaultFrames, "frames per generated clip, and the first frames of video files (0: the default for generated clips, every frame of files)")
	fps := fs.Int("fps", benchmarks.DefaultFPS, "frame rate of the generated clips")
	size := fs.String("size", fmt.Sprintf("%dx%d", benchmarks.DefaultWidth, benchmarks.DefaultHeight), "size of the generated clips, WxH")
	seed := fs.Uint64("seed", benchmarks.DefaultSeed, "seed of the clip generator")
	fgs := fs.String("foregrounds", strings.Join(benchmarks.DefaultForegrounds, ","), "foregrounds of each generated set: portrait, shapes, people, player")
	format := fs.String("format", string(vidmatte.FormatPNGSequence), "output format of every pipeline: png_sequence (exact alpha) or webm")
	naive := fs.String("naive", "first", "clips the naive ffmpeg + script pipeline runs on: first (of each set), all or none")
	noSmooth := fs.Bool("no-smoothing-runs", false, "skip the runs of per-frame models without temporal smoothing")
	noRefine := fs.Bool("no-refinement-runs", false, "skip the runs of refined models (selfie, meet) without edge refinement")
	noKeyers := fs.Bool("no-keyers", false, "skip FFmpeg's chromakey and colorkey on screen clips")
	truth := fs.String("truth-model", "isnet", "model that cuts the photo foregrounds out (their clips' truth)")
	device := fs.String("device", "cpu", "cpu or cuda")
	threads := fs.Int("threads", 0, "inference threads (0 = all cores)")
	batch := fs.Int("batch", 1, "frames per inference call")
	home := fs.String("home", "", "where the ONNX Runtime library, models and media are (default $VIDMATTE_HOME)")
	cache := fs.String("cache", "", "where generated clips are kept (default HOME/bench)")
	previous := fs.String("previous", "", "an earlier results.json to compare with in the report")
	compare := fs.Bool("compare", false, "compare two results.json files (OLD NEW) and print the comparison")
	reportFrom := fs.String("report-from", "", "rewrite the report in --out from this results.json instead of running (the contact sheet already there is kept)")
	quiet := fs.Bool("quiet", false, "print no progress")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vidmatte bench --out DIR [--models isnet,isnet-small,chroma] [--set composite,greenscreen|FILE...] [flags]")
		fmt.Fprintln(stderr, "       vidmatte bench --compare OLD.json NEW.json")
		fmt.Fprintln(stderr, "       vidmatte bench --report-from results.json --out DIR")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *compare {
		if len(pos) != 2 {
			return usageErrorf("--compare needs two results.json files, got %d", len(pos))
		}
		old, err := benchmarks.ReadResults(pos[0])
		if err != nil {
			return err
		}
		cur, err := benchmarks.ReadResults(pos[1])
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, benchmarks.CompareMarkdown(old, cur))
		return nil
	}
	if *out == "" {
		return usageErrorf("--out DIR is required")
	}
	if *reportFrom != "" {
		res, err := benchmarks.ReadResults(*reportFrom)
		if err != nil {
			return err
		}
		var prev *benchmarks.Results
		if *previous != "" {
			if prev, err = benchmarks.ReadResults(*previous); err != nil {
				return err
			}
		}
		if err := benchmarks.RenderReport(*out, res, prev); err != nil {
			return err
		}
		printBenchSummary(stdout, res, *out)
		return nil
	}
	w, h, err := parseBenchSize(*size)
	if err != nil {
		return err
	}
	if *frames < 0 || *fps < 1 {
		return usageErrorf("--frames must be ≥ 0 and --fps ≥ 1")
	}
	f := vidmatte.OutputFormat(*format)
	if f != vidmatte.FormatPNGSequence && f != vidmatte.FormatWebM {
		return usageErrorf("--format must be png_sequence or webm")
	}
	switch *naive {
	case "first", "all", "none":
	default:
		return usageErrorf("--naive must be first, all or none")
	}
	dev, err := models.ParseDevice(*device)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if *batch < 1 || *threads < 0 {
		return usageErrorf("--batch must be ≥ 1 and --threads ≥ 0")
	}
	// Files named after the flags replace the default sets, unless --set
	// was given too.
	setGiven := false
	fs.Visit(func(fl *flag.Flag) { setGiven = setGiven || fl.Name == "set" })
	var setList []string
	if setGiven || len(pos) == 0 {
		setList = benchList(*sets)
	}
	setList = append(setList, pos...)
	genFrames := *frames
	if genFrames == 0 {
		genFrames = benchmarks.DefaultFrames
	}
	if *home == "" {
		*home = models.Home()
	}
	var logw io.Writer = stderr
	if *quiet {
		logw = nil
	}
	opts := benchmarks.Options{
		Models: benchList(*modelList), Sets: setList, Out: *out, Home: *home, Cache: *cache,
		Seed: *seed, Width: w, Height: h, FPS: *fps, Frames: genFrames, Foregrounds: benchList(*fgs),
		AllFileFrames: *frames == 0,
		Format:        f, Naive: *naive, NoSmoothingRuns: *noSmooth, NoRefineRuns: *noRefine, NoKeyers: *noKeyers, TruthModel: *truth,
		Device: dev, Threads: *threads, Batch: *batch, Previous: *previous, Log: logw,
	}
	res, err := benchmarks.Run(ctx, opts)
	if err != nil {
		return err
	}
	printBenchSummary(stdout, res, *out)
	return nil
}

// printBenchSummary prints the headline figures and where the report is.
func printBenchSummary(w io.Writer, r *benchmarks.Results, out string) {
	fmt.Fprintf(w, "report: %s (%.0f s)\n", filepath.Join(out, benchmarks.ReportFile), r.Seconds)
	for _, s := range r.Summaries() {
		rank := "  "
		if s.Rank > 0 {
			rank = fmt.Sprintf("#%d", s.Rank)
		}
		mad := "-"
		if !math.IsNaN(s.MAD) {
			mad = fmt.Sprintf("%.2f", s.MAD)
		}
		fmt.Fprintf(w, "%-12s %s %-22s MAD %-7s fps %6.2f\n", s.Set, rank, s.Label, mad, s.FPS)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func benchList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseBenchSize(s string) (int, int, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 16 || h < 16 || w%2 != 0 || h%2 != 0 {
		return 0, 0, usageErrorf("--size %q: want WxH, even sides of at least 16", s)
	}
	return w, h, nil
}
