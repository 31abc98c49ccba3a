package benchmarks

import (
	"fmt"
	"math"
	"strings"
)

// CompareMarkdown compares two runs' results: for every run (pipeline,
// model, smoothing, clip) both have, the quality and speed figures old →
// new with the relative change; then what only one of them has. Clips are
// matched by id; when their cache keys differ (another seed, size or
// generator), the table says so, because the figures then compare
// different frames.
func CompareMarkdown(old, cur *Results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Old: %s, vidmatte %s (%s). New: %s, vidmatte %s (%s).\n\n",
		old.Started.Format("2006-01-02 15:04"), short(old.Versions.Vidmatte), old.Machine.CPU,
		cur.Started.Format("2006-01-02 15:04"), short(cur.Versions.Vidmatte), cur.Machine.CPU)
	if old.Machine.CPU != cur.Machine.CPU || old.Machine.Cores != cur.Machine.Cores {
		p("The machines differ: compare speeds with care.\n\n")
	}
	var changed []string
	for _, c := range cur.Clips {
		if oc := old.clip(c.ID); oc != nil && oc.Key != c.Key {
			changed = append(changed, c.ID)
		}
	}
	if len(changed) > 0 {
		p("These clips were generated differently in the two runs (other settings, seed or generator): %s.\n\n", strings.Join(changed, ", "))
	}
	oldRuns := map[string]*Measurement{}
	for _, r := range old.Runs {
		oldRuns[r.key()] = r
	}
	p("| clip | run | MAD | dtSSD | flicker | fps | model ms/frame |\n|---|---|---|---|---|---|---|\n")
	seen := map[string]bool{}
	var onlyNew []string
	for _, r := range cur.Runs {
		o := oldRuns[r.key()]
		seen[r.key()] = true
		if o == nil {
			onlyNew = append(onlyNew, r.Label()+" on "+r.Clip)
			continue
		}
		if o.Error != "" || r.Error != "" {
			p("| %s | %s | %s | | | | |\n", r.Clip, r.Label(), errState(o.Error)+" → "+errState(r.Error))
			continue
		}
		qo, qn := qualityOf(o), qualityOf(r)
		p("| %s | %s | %s | %s | %s | %s | %s |\n", r.Clip, r.Label(),
			change(qo.MAD, qn.MAD), change(qo.DtSSD, qn.DtSSD), change(qo.Flicker, qn.Flicker),
			change(o.Speed.FPS, r.Speed.FPS), change(o.Speed.ModelMsPerFrame, r.Speed.ModelMsPerFrame))
	}
	p("\n")
	var onlyOld []string
	for _, r := range old.Runs {
		if !seen[r.key()] {
			onlyOld = append(onlyOld, r.Label()+" on "+r.Clip)
		}
	}
	if len(onlyNew) > 0 {
		p("Only in the new run: %s.\n\n", strings.Join(onlyNew, "; "))
	}
	if len(onlyOld) > 0 {
		p("Only in the old run: %s.\n\n", strings.Join(onlyOld, "; "))
	}
	return b.String()
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func errState(e string) string {
	if e == "" {
		return "ok"
	}
	return "failed"
}

// change formats old → new (±x%).
func change(o, n float64) string {
	if math.IsNaN(o) && math.IsNaN(n) {
		return "–"
	}
	return fmt.Sprintf("%s → %s (%s)", f(o), f(n), pct(o, n))
}
