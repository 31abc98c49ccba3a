package benchmarks

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The report's files, in the report folder.
const (
	ReportFile       = "README.md"
	ResultsFile      = "results.json"
	ContactSheetFile = "contact-sheet.png"
	ScatterFile      = "speed-quality.svg"
	BarsFile         = "mad-by-clip.svg"
	SpeedupFile      = "speedup.svg"
)

// errorOverTimeFile is the chart of a clip's per-frame error.
func errorOverTimeFile(clipID string) string {
	return "error-over-time-" + strings.ReplaceAll(clipID, "/", "-") + ".svg"
}

// writeReport writes results.json, the charts, the contact sheet and the
// Markdown report into dir. prev, when not nil, is compared with.
func writeReport(dir string, r *Results, prev *Results, inputs, truths map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := r.WriteJSON(filepath.Join(dir, ResultsFile)); err != nil {
		return err
	}
	charts, err := writeCharts(dir, r)
	if err != nil {
		return err
	}
	sheet := false
	if len(inputs) > 0 {
		if err := writeContactSheet(filepath.Join(dir, ContactSheetFile), r, inputs, truths); err != nil {
			return err
		}
		sheet = true
	} else if _, err := os.Stat(filepath.Join(dir, ContactSheetFile)); err == nil {
		// Re-rendering from results.json: the sheet drawn by the run stays.
		sheet = true
	}
	md := renderMarkdown(r, prev, charts, sheet)
	return os.WriteFile(filepath.Join(dir, ReportFile), []byte(md), 0o644)
}

// RenderReport rewrites a report's Markdown and charts from its results
// (results.json as a run wrote it), comparing with prev when it is not nil.
// The contact sheet needs the frames of the run: one already in dir is
// kept, none is drawn.
func RenderReport(dir string, r *Results, prev *Results) error {
	return writeReport(dir, r, prev, nil, nil)
}

// chartFiles lists the charts written, for the Markdown.
type chartFiles struct {
	scatter, bars, speedup string
	overTime               []string // per clip with truth
}

func writeCharts(dir string, r *Results) (chartFiles, error) {
	var cf chartFiles
	write := func(name, svg string) error {
		return os.WriteFile(filepath.Join(dir, name), []byte(svg), 0o644)
	}
	sums := r.summarize()
	labels := contenderLabels(r)
	color := labelColors(r)
	colorsOf := func(ls []string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = color[l]
		}
		return out
	}

	// Speed against quality: one point per contender and set.
	var pts []scatterPoint
	sets := r.sets()
	for _, s := range sums {
		if math.IsNaN(s.MAD) || s.FPS <= 0 {
			continue
		}
		pts = append(pts, scatterPoint{
			X: 1000 / s.FPS, Y: s.MAD, Color: color[s.Label], Group: indexOf(sets, s.Set),
		})
	}
	if len(pts) > 0 {
		cf.scatter = ScatterFile
		svg := scatterChart("Speed against matte quality", "mean over each set's clips; lower-left is better",
			"end-to-end time per frame (ms, log scale)", "MAD (×1e3)", pts, labels, colorsOf(labels), sets)
		if err := write(cf.scatter, svg); err != nil {
			return cf, err
		}
	}

	// MAD per clip.
	var clips []string
	for _, c := range r.Clips {
		if c.TruthSource != TruthNone {
			clips = append(clips, c.ID)
		}
	}
	if len(clips) > 0 {
		vals := make([][]float64, len(clips))
		for i, c := range clips {
			vals[i] = make([]float64, len(labels))
			for j, l := range labels {
				vals[i][j] = math.NaN()
				if run := r.defaultRun(l, c); run != nil && run.Quality != nil {
					vals[i][j] = run.Quality.MAD
				}
			}
		}
		cf.bars = BarsFile
		if err := write(cf.bars, barChart("Alpha error per clip", "MAD ×1e3, lower is better; default settings of each contender", "MAD (×1e3)", clips, labels, colorsOf(labels), vals, math.NaN())); err != nil {
			return cf, err
		}
	}

	// vidmatte against the naive pipeline.
	var models []string
	for _, m := range r.Settings.Models {
		for _, run := range r.Runs {
			if run.Pipeline == PipelineNaive && run.Model == m && run.Error == "" && !slicesContains(models, m) {
				models = append(models, m)
			}
		}
	}
	if len(models) > 0 {
		vals := make([][]float64, len(models))
		var cats []string
		for i, m := range models {
			v, n := meanFPS(r, m)
			vals[i] = []float64{v / n}
			cats = append(cats, fmt.Sprintf("%s vs %s fps/%s", f(v), f(n), m)) // drawn as the model, then the figures
		}
		cf.speedup = SpeedupFile
		if err := write(cf.speedup, barChart("vidmatte's speed-up over the naive pipeline",
			"vidmatte's end-to-end fps ÷ the naive pipeline's, same clips and output; above the dashed line vidmatte is faster",
			"× the naive pipeline's fps", cats, []string{"speed-up"}, []string{seriesColor(0)}, vals, 1)); err != nil {
			return cf, err
		}
	}

	// Error over time, per clip.
	for _, c := range r.Clips {
		if c.TruthSource == TruthNone {
			continue
		}
		var names []string
		var series [][]float64
		for _, run := range r.Runs {
			if run.Clip != c.ID || run.Quality == nil || len(run.Quality.PerFrameMAD) == 0 || run.Pipeline == PipelineNaive {
				continue
			}
			names = append(names, run.Label())
			series = append(series, run.Quality.PerFrameMAD)
		}
		if len(series) == 0 {
			continue
		}
		name := errorOverTimeFile(c.ID)
		if err := write(name, lineChart("Alpha error over time: "+c.ID, "MAD ×1e3 of each frame (truth: "+c.TruthSource+")", "frame", "MAD (×1e3)", names, colorsOf(names), series)); err != nil {
			return cf, err
		}
		cf.overTime = append(cf.overTime, name)
	}
	return cf, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// labelColors gives every run label one colour for all charts: each
// model's default run, then its run without smoothing, then FFmpeg's
// keyers.
func labelColors(r *Results) map[string]string {
	out := map[string]string{}
	var order []string
	add := func(l string) {
		if _, ok := out[l]; !ok {
			out[l] = ""
			order = append(order, l)
		}
	}
	for _, m := range r.Settings.Models {
		for _, run := range r.Runs {
			if run.Model == m && run.Pipeline == PipelineVidmatte && run.Default {
				add(run.Label())
			}
		}
	}
	for _, m := range r.Settings.Models {
		for _, run := range r.Runs {
			if run.Model == m && run.Pipeline == PipelineVidmatte && !run.Default {
				add(run.Label())
			}
		}
	}
	for _, run := range r.Runs {
		if run.Pipeline == PipelineFFmpeg {
			add(run.Label())
		}
	}
	for _, run := range r.Runs {
		add(run.Label())
	}
	for i, l := range order {
		out[l] = seriesColor(i)
	}
	return out
}

// contenderLabels lists the default contenders' labels: the models in the
// order given, then FFmpeg's keyers.
func contenderLabels(r *Results) []string {
	var out []string
	for _, m := range r.Settings.Models {
		for _, run := range r.Runs {
			if run.Model == m && defaultContender(run) && !slicesContains(out, run.Label()) {
				out = append(out, run.Label())
			}
		}
	}
	for _, run := range r.Runs {
		if run.Pipeline == PipelineFFmpeg && !slicesContains(out, run.Label()) {
			out = append(out, run.Label())
		}
	}
	return out
}

// defaultRun returns the default contender's run with the label on a
// clip.
func (r *Results) defaultRun(label, clip string) *Measurement {
	for _, run := range r.Runs {
		if run.Clip == clip && run.Label() == label && defaultContender(run) && run.Error == "" {
			return run
		}
	}
	return nil
}

// meanFPS is a model's mean end-to-end fps with vidmatte and with the
// naive pipeline, over the clips both ran on.
func meanFPS(r *Results, model string) (vidmatte, naive float64) {
	n := 0
	for _, nr := range r.Runs {
		if nr.Pipeline != PipelineNaive || nr.Model != model || nr.Error != "" {
			continue
		}
		vr := r.defaultVidmatte(model, nr.Clip)
		if vr == nil {
			continue
		}
		vidmatte += vr.Speed.FPS
		naive += nr.Speed.FPS
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	return vidmatte / float64(n), naive / float64(n)
}

func (r *Results) defaultVidmatte(model, clip string) *Measurement {
	for _, run := range r.Runs {
		if run.Pipeline == PipelineVidmatte && run.Default && run.Model == model && run.Clip == clip && run.Error == "" {
			return run
		}
	}
	return nil
}

// f formats a metric: "–" for NaN, otherwise a few significant digits.
func f(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// rss formats a peak and the start it grew from.
func rss(peak, start int64) string {
	if peak <= 0 {
		return "–"
	}
	if start <= 0 {
		return mib(peak)
	}
	return fmt.Sprintf("%s (from %.0f)", mib(peak), float64(start)/(1<<20))
}

func mib(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func mbPerMin(b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", b/1e6)
}

// qualityOf returns a run's metrics, NaN when it has none.
func qualityOf(run *Measurement) Quality {
	if run == nil || run.Quality == nil {
		n := math.NaN()
		return Quality{MAD: n, MSE: n, Grad: n, Conn: n, DtSSD: n, Flicker: n}
	}
	return *run.Quality
}

// renderMarkdown writes the report.
func renderMarkdown(r *Results, prev *Results, charts chartFiles, sheet bool) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	commit := r.Versions.Vidmatte
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if r.Versions.Dirty {
		commit += " (with uncommitted changes)"
	}
	p("# vidmatte bench report\n\n")
	p("Run on %s, %s of wall time, on %s (%d cores, %.0f GiB), vidmatte %s. ",
		r.Started.Format("2006-01-02 15:04 MST"), (time.Duration(r.Seconds) * time.Second).String(),
		r.Machine.CPU, r.Machine.Cores, float64(r.Machine.MemoryBytes)/(1<<30), commit)
	p("Models: %s. Sets: %s. Every clip is %d frames at %d fps (%.1f s) and %d×%d unless it is a user's file; output format %s.\n\n",
		strings.Join(r.Settings.Models, ", "), strings.Join(r.Settings.Sets, ", "), r.Settings.Frames, r.Settings.FPS,
		float64(r.Settings.Frames)/float64(max(r.Settings.FPS, 1)), r.Settings.Width, r.Settings.Height, r.Settings.Format)
	p("Metrics (the video-matting literature's definitions, as in the Robust Video Matting evaluation): MAD and MSE ×1e3, Grad (Gaussian-derivative gradients, σ = 1.4) and Conn (threshold step 0.1) ÷1e3, dtSSD ×1e2 — lower is better for all. ")
	p("Flicker needs no truth: the mean alpha change ×1e3 between consecutive frames over the pixels whose luma changed by at most %d levels. ", FlickerStill)
	p("fps is end to end (reading the input to the finished output, the model's load excluded and given apart); model ms/frame is the time inside the model.\n\n")

	sums := r.summarize()
	headline(&b, r, sums)

	p("## Ranking per set\n\n")
	p("The default settings of each contender (%s). Ranked by mean MAD over the set's clips; ", defaultSmoothing(r))
	p("a model is ranked on a set only if the set has a clip whose truth did not come from that model (its MAD on those clips alone is in the \"independent MAD\" column).\n\n")
	for _, set := range r.sets() {
		p("### %s\n\n", set)
		p("| rank | contender | MAD | MSE | Grad | Conn | dtSSD | flicker | independent MAD | model ms/frame | fps |\n")
		p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range sums {
			if s.Set != set {
				continue
			}
			rank := "–"
			if s.Rank > 0 {
				rank = fmt.Sprint(s.Rank)
			}
			ind := f(s.IndependentMAD)
			if s.IndependentClips > 0 {
				ind += fmt.Sprintf(" (%d clip%s)", s.IndependentClips, plural(s.IndependentClips))
			}
			ms := f(s.ModelMs)
			if s.ModelMs == 0 {
				ms = "–"
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rank, s.Label, f(s.MAD), f(s.MSE), f(s.Grad), f(s.Conn), f(s.DtSSD), f(s.Flicker), ind, ms, f(s.FPS))
		}
		p("\n")
	}
	if charts.scatter != "" {
		p("![Speed against matte quality](%s)\n\n", charts.scatter)
	}
	if charts.bars != "" {
		p("![Alpha error per clip](%s)\n\n", charts.bars)
	}

	speedSection(&b, r, charts)
	loadSection(&b, r)
	screenSection(&b, r)
	smoothingSection(&b, r)
	refinementSection(&b, r)

	if len(charts.overTime) > 0 {
		p("## Alpha error over time\n\n")
		for _, c := range charts.overTime {
			p("![%s](%s)\n\n", strings.TrimSuffix(c, ".svg"), c)
		}
	}
	if sheet {
		p("## Contact sheet\n\n")
		p("The middle frame of each clip. Upper row: the input, the truth and each contender's alpha (default settings); lower row: the cut-outs over a checkerboard.\n\n")
		p("![Contact sheet](%s)\n\n", ContactSheetFile)
	}

	allRuns(&b, r)
	clipsSection(&b, r)
	setupSection(&b, r)
	if len(r.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	if prev != nil {
		p("## Compared with the previous run\n\n")
		b.WriteString(CompareMarkdown(prev, r))
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// defaultSmoothing says for which models vidmatte smooths in time by
// default.
func defaultSmoothing(r *Results) string {
	var on, off []string
	for _, m := range r.Settings.Models {
		for _, run := range r.Runs {
			if run.Model == m && run.Pipeline == PipelineVidmatte && run.Default {
				if run.Smoothing == "on" {
					on = append(on, m)
				} else {
					off = append(off, m)
				}
				break
			}
		}
	}
	var parts []string
	if len(on) > 0 {
		parts = append(parts, "vidmatte smooths the alpha in time by default for "+strings.Join(on, ", "))
	}
	if len(off) > 0 {
		parts = append(parts, "not for "+strings.Join(off, ", "))
	}
	return strings.Join(parts, ", ")
}

// overheadMs is a run's end-to-end time per frame beyond the model's: what
// the pipeline around the model costs (NaN when unknown).
func overheadMs(s Speed) float64 {
	if s.FPS <= 0 || s.ModelMsPerFrame <= 0 {
		return math.NaN()
	}
	return 1000/s.FPS - s.ModelMsPerFrame
}

// meanOverhead is a model's mean overhead per frame with vidmatte and with
// the naive pipeline, over the clips both ran on.
func meanOverhead(r *Results, model string) (vidmatte, naive float64) {
	n := 0
	for _, nr := range r.Runs {
		if nr.Pipeline != PipelineNaive || nr.Model != model || nr.Error != "" {
			continue
		}
		vr := r.defaultVidmatte(model, nr.Clip)
		if vr == nil {
			continue
		}
		vidmatte += overheadMs(vr.Speed)
		naive += overheadMs(nr.Speed)
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	return vidmatte / float64(n), naive / float64(n)
}

// headline writes the few sentences a reader needs.
func headline(b *strings.Builder, r *Results, sums []SetSummary) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Headline\n\n")
	for _, set := range r.sets() {
		var best *SetSummary
		for i := range sums {
			if sums[i].Set == set && sums[i].Rank == 1 {
				best = &sums[i]
			}
		}
		if best == nil {
			continue
		}
		p("- **%s**: best matte from **%s** (MAD %s, dtSSD %s) at %s fps end to end.\n", set, best.Label, f(best.MAD), f(best.DtSSD), f(best.FPS))
	}
	for _, m := range r.Settings.Models {
		v, n := meanFPS(r, m)
		if math.IsNaN(v) || n <= 0 {
			continue
		}
		verdict := "faster"
		switch {
		case v/n < 0.98:
			verdict = "slower"
		case v/n < 1.02:
			verdict = "no faster, within noise"
		}
		ov, on := meanOverhead(r, m)
		p("- **%s**: vidmatte %s fps against %s fps for the naive ffmpeg + script pipeline: **%.2f×** (%s); besides the model, vidmatte spends %s ms per frame, the naive pipeline %s ms.\n",
			m, f(v), f(n), v/n, verdict, f(ov), f(on))
	}
	for _, c := range r.Clips {
		if c.Screen == "" {
			continue
		}
		var parts []string
		for _, l := range contenderLabels(r) {
			run := r.defaultRun(l, c.ID)
			if run == nil || run.Quality == nil {
				continue
			}
			if run.Pipeline == PipelineFFmpeg || strings.HasPrefix(run.Model, "chroma") {
				parts = append(parts, fmt.Sprintf("%s MAD %s at %s fps", l, f(run.Quality.MAD), f(run.Speed.FPS)))
			}
		}
		if len(parts) > 1 {
			p("- **%s**: %s.\n", c.ID, strings.Join(parts, "; "))
		}
	}
	var better, worse []string
	for _, pr := range smoothingPairs(r) {
		on, off := qualityOf(pr.on), qualityOf(pr.off)
		if on.DtSSD < off.DtSSD && on.Flicker <= off.Flicker && on.MAD <= off.MAD*1.02 {
			better = append(better, pr.on.Model+" on "+pr.on.Clip)
		} else {
			worse = append(worse, pr.on.Model+" on "+pr.on.Clip)
		}
	}
	if pairs := smoothingPairs(r); len(pairs) > 0 {
		var dt, fl, mad float64
		var ndt int
		for _, pr := range pairs {
			on, off := qualityOf(pr.on), qualityOf(pr.off)
			if !math.IsNaN(on.DtSSD) && off.DtSSD > 0 {
				dt += on.DtSSD/off.DtSSD - 1
				mad += on.MAD/off.MAD - 1
				ndt++
			}
			if off.Flicker > 0 {
				fl += on.Flicker/off.Flicker - 1
			}
		}
		p("- **Temporal smoothing** lowered dtSSD and flicker without raising MAD (by more than 2%%) in %d of %d model/clip pairs", len(better), len(pairs))
		if ndt > 0 {
			p("; on average it changed flicker by %+.0f%%, dtSSD by %+.0f%% and MAD by %+.0f%%", fl/float64(len(pairs))*100, dt/float64(ndt)*100, mad/float64(ndt)*100)
		}
		p(" (see [Temporal smoothing](#temporal-smoothing)).\n")
	}
	p("\n")
}

// speedSection compares vidmatte with the naive pipeline.
func speedSection(b *strings.Builder, r *Results, charts chartFiles) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var rows []string
	for _, nr := range r.Runs {
		if nr.Pipeline != PipelineNaive {
			continue
		}
		vr := r.defaultVidmatte(nr.Model, nr.Clip)
		if nr.Error != "" || vr == nil {
			continue
		}
		speedup := "–"
		if nr.Speed.FPS > 0 {
			speedup = fmt.Sprintf("**%.2f×**", vr.Speed.FPS/nr.Speed.FPS)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
			nr.Model, nr.Clip, f(vr.Speed.FPS), f(nr.Speed.FPS), speedup,
			f(vr.Speed.ModelMsPerFrame), f(nr.Speed.ModelMsPerFrame), f(overheadMs(vr.Speed)), f(overheadMs(nr.Speed)),
			fmt.Sprintf("%.2f", vr.Speed.LoadSeconds), rss(vr.Speed.PeakRSSBytes, vr.Speed.StartRSSBytes), mbPerMin(vr.Speed.OutputBytesPerMinute), f(qualityOf(nr).MAD)))
	}
	if len(rows) == 0 {
		return
	}
	p("## Speed: vidmatte against the naive pipeline\n\n")
	p("The naive pipeline is what users write today: the ffmpeg CLI dumps the frames as PNG files, a script runs the same model through the same ONNX Runtime session one file at a time (bilinear resize in, bilinear resize out, a grayscale PNG matte per frame), and the ffmpeg CLI merges frames and mattes into the same output format (%s). ", r.Settings.Format)
	p("Overhead = end-to-end time per frame − model time per frame: what the pipeline around the model costs (vidmatte decodes, prepares and encodes while the model runs, so for a slow model its overhead is near 0; the model's own time varies by several per cent from run to run on this shared machine, which is why the end-to-end figures of a slow model can go either way). Load, peak RSS and output size are vidmatte's; peak RSS is the process's, with what it held when the run started in brackets (models run one after the other in one process).\n\n")
	p("| model | clip | vidmatte fps | naive fps | speed-up | vidmatte model ms/frame | naive model ms/frame | vidmatte overhead ms/frame | naive overhead ms/frame | load s | peak RSS | output per minute | naive MAD |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		p("%s\n", row)
	}
	p("\n")
	if charts.speedup != "" {
		p("![vidmatte against the naive pipeline](%s)\n\n", charts.speedup)
	}
}

// loadSection lists the models' load times and first inferences.
func loadSection(b *strings.Builder, r *Results) {
	if len(r.Loads) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Model load\n\n")
	p("Each model's ONNX Runtime session is created (the load time) and run once on a blank batch before any timed run: ONNX Runtime's first inference plans memory and is slower than the steady state below.\n\n")
	p("| model | input | batch | device | load s | first inference ms | steady model ms/frame (vidmatte, mean) |\n|---|---|---:|---|---:|---:|---:|\n")
	for _, l := range r.Loads {
		var sum float64
		n := 0
		for _, run := range r.Runs {
			if run.Model == l.Model && run.Pipeline == PipelineVidmatte && run.Error == "" && run.Speed.ModelMsPerFrame > 0 {
				sum += run.Speed.ModelMsPerFrame
				n++
			}
		}
		steady := "–"
		if n > 0 {
			steady = f(sum / float64(n))
		}
		p("| %s | %d×%d | %d | %s | %.2f | %s | %s |\n", l.Model, l.Width, l.Height, l.Batch, l.Device, l.LoadSeconds, f(l.FirstRunMs), steady)
	}
	p("\n")
}

// screenSection compares the chroma models with FFmpeg's keyers.
func screenSection(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	started := false
	for _, c := range r.Clips {
		if c.Screen == "" || !c.HasTruthSource() {
			continue
		}
		var rows []string
		hasKeyer := false
		for _, l := range contenderLabels(r) {
			run := r.defaultRun(l, c.ID)
			if run == nil {
				continue
			}
			if run.Pipeline == PipelineFFmpeg {
				hasKeyer = true
			}
			q := qualityOf(run)
			detail := run.Detail
			if detail == "" {
				detail = "vidmatte, default settings"
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", l, f(q.MAD), f(q.MSE), f(q.Grad), f(q.Conn), f(q.DtSSD), f(q.Flicker), f(run.Speed.FPS), strings.ReplaceAll(detail, "|", "\\|")))
		}
		if !hasKeyer {
			continue
		}
		if !started {
			p("## Green screen: models against FFmpeg's keyers\n\n")
			p("FFmpeg's `chromakey` (distance in YUV) and `colorkey` (distance in RGB) through the ffmpeg CLI, writing the same output format; the key colour is the median of the first frame's border (an eyedropper), similarity and blend the best of a grid against the first frame's truth, which flatters FFmpeg.\n\n")
			started = true
		}
		p("### %s\n\n", c.ID)
		p("| contender | MAD | MSE | Grad | Conn | dtSSD | flicker | fps | settings |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, row := range rows {
			p("%s\n", row)
		}
		p("\n")
	}
}

// HasTruthSource reports whether the clip's record says it has truth (for
// results read from JSON, where the truth file is not at hand).
func (c *Clip) HasTruthSource() bool { return c.TruthSource != "" && c.TruthSource != TruthNone }

type smoothingPair struct{ on, off *Measurement }

// smoothingPairs returns the runs of per-frame models with and without
// smoothing on the same clips.
func smoothingPairs(r *Results) []smoothingPair {
	var out []smoothingPair
	for _, on := range r.Runs {
		if on.Pipeline != PipelineVidmatte || on.Smoothing != "on" || on.Refine != "" || on.Error != "" || on.Quality == nil {
			continue
		}
		off := r.find(PipelineVidmatte, on.Model, "off", on.Clip)
		if off == nil || off.Quality == nil {
			continue
		}
		out = append(out, smoothingPair{on, off})
	}
	return out
}

func smoothingSection(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	pairs := smoothingPairs(r)
	if len(pairs) == 0 {
		return
	}
	p("## Temporal smoothing\n\n")
	p("Each model without recurrent state, with the engine's temporal smoothing and without it, on the same clips (the engine's default is marked). Smoothing should lower dtSSD and flicker and not raise MAD.\n\n")
	p("| model | default | clip | dtSSD off → on | flicker off → on | MAD off → on | fps off → on | as it should |\n|---|---|---|---|---|---|---|---|\n")
	for _, pr := range pairs {
		on, off := qualityOf(pr.on), qualityOf(pr.off)
		ok := "yes"
		var why []string
		if !(on.DtSSD < off.DtSSD) && !math.IsNaN(on.DtSSD) {
			why = append(why, "dtSSD did not fall")
		}
		if on.Flicker > off.Flicker {
			why = append(why, "flicker rose")
		}
		if on.MAD > off.MAD*1.02 {
			why = append(why, "MAD rose")
		}
		if len(why) > 0 {
			ok = "no: " + strings.Join(why, ", ")
		}
		def := "off"
		if pr.on.Default {
			def = "on"
		}
		p("| %s | %s | %s | %s → %s (%s) | %s → %s (%s) | %s → %s (%s) | %s → %s | %s |\n", pr.on.Model, def, pr.on.Clip,
			f(off.DtSSD), f(on.DtSSD), pct(off.DtSSD, on.DtSSD),
			f(off.Flicker), f(on.Flicker), pct(off.Flicker, on.Flicker),
			f(off.MAD), f(on.MAD), pct(off.MAD, on.MAD),
			f(pr.off.Speed.FPS), f(pr.on.Speed.FPS), ok)
	}
	p("\n")
}

// refinementSection compares each refined model's default run with its
// run without edge refinement: what the guided filter does to MAD and
// Grad (the gradient error, which blurred edges raise), and its cost.
func refinementSection(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	type pair struct{ on, off *Measurement }
	var pairs []pair
	for _, off := range r.Runs {
		if off.Pipeline != PipelineVidmatte || off.Refine != "off" || off.Error != "" || off.Quality == nil {
			continue
		}
		on := r.find(PipelineVidmatte, off.Model, off.Smoothing, off.Clip)
		if on != nil && on.Quality != nil {
			pairs = append(pairs, pair{on, off})
		}
	}
	if len(pairs) == 0 {
		return
	}
	p("## Edge refinement\n\n")
	p("Each model that runs far below the frame's resolution, with the engine's edge refinement (a guided filter of the upscaled alpha against the full-resolution luma, the default) and without it, on the same clips. Refinement should lower Grad and MAD.\n\n")
	p("| model | clip | MAD off → on | Grad off → on | fps off → on |\n|---|---|---|---|---|\n")
	for _, pr := range pairs {
		on, off := qualityOf(pr.on), qualityOf(pr.off)
		p("| %s | %s | %s → %s (%s) | %s → %s (%s) | %s → %s |\n", pr.on.Model, pr.on.Clip,
			f(off.MAD), f(on.MAD), pct(off.MAD, on.MAD), f(off.Grad), f(on.Grad), pct(off.Grad, on.Grad),
			f(pr.off.Speed.FPS), f(pr.on.Speed.FPS))
	}
	p("\n")
}

// pct is the relative change from a to b.
func pct(a, b float64) string {
	if a == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%+.0f%%", (b-a)/a*100)
}

func allRuns(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Every run\n\n")
	p("| clip | run | MAD | MSE | Grad | Conn | dtSSD | flicker | model ms/frame | fps | ratio | load s | peak RSS | output per minute |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	runs := append([]*Measurement(nil), r.Runs...)
	clipOrder := map[string]int{}
	for i, c := range r.Clips {
		clipOrder[c.ID] = i
	}
	sort.SliceStable(runs, func(i, j int) bool { return clipOrder[runs[i].Clip] < clipOrder[runs[j].Clip] })
	for _, run := range runs {
		if run.Error != "" {
			p("| %s | %s | failed: %s |||||||||||\n", run.Clip, run.Label(), strings.ReplaceAll(firstLine(run.Error), "|", "\\|"))
			continue
		}
		q := qualityOf(run)
		ms, ratio, load := f(run.Speed.ModelMsPerFrame), f(run.Speed.PipelineRatio), fmt.Sprintf("%.2f", run.Speed.LoadSeconds)
		if run.Pipeline == PipelineFFmpeg {
			ms, ratio, load = "–", "–", "–"
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", run.Clip, run.Label(),
			f(q.MAD), f(q.MSE), f(q.Grad), f(q.Conn), f(q.DtSSD), f(q.Flicker), ms, f(run.Speed.FPS), ratio,
			load, rss(run.Speed.PeakRSSBytes, run.Speed.StartRSSBytes), mbPerMin(run.Speed.OutputBytesPerMinute))
	}
	p("\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

func clipsSection(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Clips\n\n")
	p("Generated by `benchmarks` from the seed (deterministic; cached under the cache folder, never committed), encoded losslessly in YUV (FFV1, yuv420p) so that compression is not what is measured, the true alpha kept beside them. ")
	p("Where a clip's truth came from a model (the photo cut-outs: %s at its full 1024×1024 input on the photo, refined), that model is favoured on it and is never ranked on such clips alone.\n\n", r.Settings.TruthModel)
	p("| clip | frames | size | fps | truth | what it shows |\n|---|---:|---|---:|---|---|\n")
	for _, c := range r.Clips {
		p("| %s | %d | %d×%d | %s | %s | %s |\n", c.ID, c.Frames, c.Width, c.Height, f(c.FPS), c.TruthSource, c.Description)
	}
	p("\n")
}

func setupSection(b *strings.Builder, r *Results) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	s := r.Settings
	p("## Machine, versions and settings\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n", r.Machine.CPU, r.Machine.Cores)
	p("| memory | %.1f GiB |\n", float64(r.Machine.MemoryBytes)/(1<<30))
	p("| system | %s, kernel %s |\n", r.Machine.OS, r.Machine.Kernel)
	p("| load average (1 min) | %.2f at the start, %.2f at the end, %.2f at most |\n", r.Machine.LoadStart, r.Machine.LoadEnd, r.Machine.LoadMax)
	dirty := ""
	if r.Versions.Dirty {
		dirty = " (with uncommitted changes)"
	}
	p("| vidmatte | %s%s |\n", r.Versions.Vidmatte, dirty)
	p("| Go | %s |\n| FFmpeg | %s |\n| ONNX Runtime | %s |\n", r.Versions.Go, r.Versions.FFmpeg, r.Versions.ONNXRuntime)
	threads := "all cores"
	if s.Threads > 0 {
		threads = fmt.Sprint(s.Threads)
	}
	p("| device, threads, batch | %s, %s, %d |\n", s.Device, threads, s.Batch)
	p("| clips | seed %d, %d×%d, %d fps, %d frames, foregrounds %s |\n", s.Seed, s.Width, s.Height, s.FPS, s.Frames, strings.Join(s.Foregrounds, ", "))
	p("| output format | %s |\n", s.Format)
	p("| naive pipeline on | %s clip%s of each set |\n", s.Naive, map[bool]string{true: "s", false: ""}[s.Naive == "all"])
	p("| runs without smoothing | %v |\n", s.Smoothing)
	p("| wall time | %.0f s |\n\n", r.Seconds)
	if r.Plan != "" {
		p("Budget: %s. ", r.Plan)
	}
	if len(r.Phases) > 0 {
		var parts []string
		for _, ph := range r.Phases {
			parts = append(parts, fmt.Sprintf("%s %.0f s", ph.Name, ph.Seconds))
		}
		p("Where the time went: %s.", strings.Join(parts, "; "))
	}
	p("\n\n")
	p("Reproduce with:\n\n```sh\nvidmatte bench --models %s --set %s --frames %d --fps %d --size %dx%d --seed %d --format %s --naive %s --out report/\n```\n\n",
		strings.Join(s.Models, ","), strings.Join(s.Sets, ","), s.Frames, s.FPS, s.Width, s.Height, s.Seed, s.Format, s.Naive)
	p("Compare two runs with `vidmatte bench --compare old/results.json new/results.json`.\n\n")
}
