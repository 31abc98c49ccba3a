package benchmarks

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// ResultsSchema is the version of the results.json layout.
const ResultsSchema = 1

// Results is everything a bench run measured: what results.json holds.
type Results struct {
	Schema   int       `json:"schema"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Seconds is the wall time of the whole run.
	Seconds  float64  `json:"seconds"`
	Machine  Machine  `json:"machine"`
	Versions Versions `json:"versions"`
	Settings Settings `json:"settings"`
	Clips    []*Clip  `json:"clips"`
	// Loads are the models' sessions as they were loaded and warmed up.
	Loads []*ModelLoad   `json:"loads"`
	Runs  []*Measurement `json:"runs"`
	// Plan says what the run set out to do (clips, frames per model);
	// Phases where its wall time went.
	Plan   string  `json:"plan"`
	Phases []Phase `json:"phases"`
	// Notes are things the reader must know (competing load, runs that
	// failed, clips left out).
	Notes []string `json:"notes,omitempty"`
}

// ModelLoad is a model's session for one input size and batch: how long
// it took to load (create the ONNX Runtime session) and how long its first
// inference took. Runs are timed after that first inference.
type ModelLoad struct {
	Model       string  `json:"model"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Batch       int     `json:"batch"`
	Device      string  `json:"device"`
	LoadSeconds float64 `json:"load_seconds"`
	FirstRunMs  float64 `json:"first_run_ms"`
}

// Phase is a part of the run and its wall time.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Machine is what the run ran on.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	MemoryBytes int64  `json:"memory_bytes"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// started and ended: above the core count, something else competed
	// for the CPU.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
	// LoadMax is the highest 1-minute load average seen between runs.
	LoadMax float64 `json:"load_max"`
}

// Versions are the versions of what was measured.
type Versions struct {
	Go          string `json:"go"`
	FFmpeg      string `json:"ffmpeg"`
	ONNXRuntime string `json:"onnxruntime"`
	Vidmatte    string `json:"vidmatte"` // git commit
	Dirty       bool   `json:"dirty"`    // uncommitted changes in the tree
}

// Settings are the run's parameters.
type Settings struct {
	Models      []string `json:"models"`
	Sets        []string `json:"sets"`
	Seed        uint64   `json:"seed"`
	Frames      int      `json:"frames"`
	FPS         int      `json:"fps"`
	Width       int      `json:"width"`
	Height      int      `json:"height"`
	Foregrounds []string `json:"foregrounds"`
	Format      string   `json:"format"`
	Naive       string   `json:"naive"`
	Smoothing   bool     `json:"smoothing_comparison"`
	Device      string   `json:"device"`
	Threads     int      `json:"threads"`
	Batch       int      `json:"batch"`
	TruthModel  string   `json:"truth_model"`
}

// Pipelines a Run can measure.
const (
	PipelineVidmatte = "vidmatte" // the engine
	PipelineNaive    = "naive"    // ffmpeg CLI + one model call per image file + ffmpeg CLI
	PipelineFFmpeg   = "ffmpeg"   // FFmpeg's own keying filters
)

// Measurement is one model (or baseline) on one clip.
type Measurement struct {
	Model    string `json:"model"` // model id, or ffmpeg-chromakey / ffmpeg-colorkey
	Clip     string `json:"clip"`  // clip id
	Set      string `json:"set"`
	Pipeline string `json:"pipeline"`
	// Smoothing is the engine's temporal smoothing: "on" or "off" (empty
	// for pipelines that have none).
	Smoothing string `json:"smoothing,omitempty"`
	// Refine is "off" for the run of a model the engine refines against
	// the frame's luma (edge refinement) made without it; empty for
	// runs with the model's default.
	Refine string `json:"refine,omitempty"`
	// Default marks the engine's run with the settings a user gets by
	// default (smoothing on for per-frame models, off for recurrent ones).
	Default bool `json:"default,omitempty"`
	// Detail says how a baseline was set up (its filter and parameters).
	Detail  string   `json:"detail,omitempty"`
	Frames  int      `json:"frames"`
	Quality *Quality `json:"quality,omitempty"`
	Speed   Speed    `json:"speed"`
	Error   string   `json:"error,omitempty"`

	// The middle frame's alpha, for the contact sheet (not saved).
	sample []byte
}

// Label names a run in tables and charts: "isnet" (the engine's
// defaults), "isnet (no smoothing)" or "chroma (smoothing on)" (the other
// smoothing setting), "isnet naive", "ffmpeg-chromakey".
func (r *Measurement) Label() string {
	switch {
	case r.Pipeline == PipelineNaive:
		return r.Model + " naive"
	case r.Pipeline == PipelineVidmatte && r.Refine == "off":
		return r.Model + " (no refinement)"
	case r.Pipeline == PipelineVidmatte && !r.Default && r.Smoothing == "off":
		return r.Model + " (no smoothing)"
	case r.Pipeline == PipelineVidmatte && !r.Default && r.Smoothing == "on":
		return r.Model + " (smoothing on)"
	}
	return r.Model
}

// key identifies a run across two result files.
func (r *Measurement) key() string {
	k := r.Pipeline + "|" + r.Model + "|" + r.Smoothing + "|" + r.Clip
	if r.Refine != "" {
		k += "|refine=" + r.Refine
	}
	return k
}

// Quality is a run's matte quality on one clip: the means over frames
// (dtSSD and flicker over pairs of consecutive frames). The truth metrics
// are absent (NaN in memory, null in JSON) for clips without truth.
type Quality struct {
	MAD   float64 `json:"mad"`   // ×1e3
	MSE   float64 `json:"mse"`   // ×1e3
	Grad  float64 `json:"grad"`  // ÷1e3
	Conn  float64 `json:"conn"`  // ÷1e3
	DtSSD float64 `json:"dtssd"` // ×1e2
	// Flicker needs no truth: see Flicker. StillFraction is the share of
	// pixels it was measured on.
	Flicker       float64 `json:"flicker"`
	StillFraction float64 `json:"still_fraction"`
	// PerFrameMAD is MAD frame by frame (the error over time).
	PerFrameMAD []float64 `json:"per_frame_mad,omitempty"`
}

// MarshalJSON writes NaN metrics as null.
func (q Quality) MarshalJSON() ([]byte, error) {
	opt := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		MAD           *float64  `json:"mad"`
		MSE           *float64  `json:"mse"`
		Grad          *float64  `json:"grad"`
		Conn          *float64  `json:"conn"`
		DtSSD         *float64  `json:"dtssd"`
		Flicker       float64   `json:"flicker"`
		StillFraction float64   `json:"still_fraction"`
		PerFrameMAD   []float64 `json:"per_frame_mad,omitempty"`
	}{opt(q.MAD), opt(q.MSE), opt(q.Grad), opt(q.Conn), opt(q.DtSSD), q.Flicker, q.StillFraction, q.PerFrameMAD})
}

// UnmarshalJSON reads null metrics as NaN.
func (q *Quality) UnmarshalJSON(b []byte) error {
	var w struct {
		MAD           *float64  `json:"mad"`
		MSE           *float64  `json:"mse"`
		Grad          *float64  `json:"grad"`
		Conn          *float64  `json:"conn"`
		DtSSD         *float64  `json:"dtssd"`
		Flicker       float64   `json:"flicker"`
		StillFraction float64   `json:"still_fraction"`
		PerFrameMAD   []float64 `json:"per_frame_mad"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	get := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	*q = Quality{MAD: get(w.MAD), MSE: get(w.MSE), Grad: get(w.Grad), Conn: get(w.Conn), DtSSD: get(w.DtSSD),
		Flicker: w.Flicker, StillFraction: w.StillFraction, PerFrameMAD: w.PerFrameMAD}
	return nil
}

// Speed is what a run cost.
type Speed struct {
	// ModelMsPerFrame is the time inside the model per frame.
	ModelMsPerFrame float64 `json:"model_ms_per_frame"`
	// FPS is end to end: frames over the wall time from reading the
	// input to the finished output, the model's load excluded (it is
	// LoadSeconds, measured when the session was created and warmed up
	// before the timed runs).
	FPS float64 `json:"fps"`
	// PipelineRatio is end-to-end time per frame over the model's time
	// per frame: 1 means everything but the model is hidden behind it.
	PipelineRatio float64 `json:"pipeline_ratio"`
	WallSeconds   float64 `json:"wall_seconds"`
	LoadSeconds   float64 `json:"load_seconds"`
	// PeakRSSBytes is the process's peak resident memory during the run
	// (the peak is reset before each run; the process also holds what
	// earlier runs left).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// StartRSSBytes is the resident memory when the run started: what
	// the process held already (the Go heap, freed memory the allocator
	// kept).
	StartRSSBytes int64 `json:"start_rss_bytes"`
	// OutputBytes is the output file's size; OutputBytesPerMinute scales
	// it to a minute of video.
	OutputBytes          int64   `json:"output_bytes"`
	OutputBytesPerMinute float64 `json:"output_bytes_per_minute"`
}

// WriteJSON writes the results to path.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResults reads a results.json.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != ResultsSchema {
		return nil, fmt.Errorf("%s: results schema %d, this vidmatte reads %d", path, r.Schema, ResultsSchema)
	}
	return &r, nil
}

// clip returns the clip with the id.
func (r *Results) clip(id string) *Clip {
	for _, c := range r.Clips {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// sets returns the sets in the order their clips appear.
func (r *Results) sets() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.Clips {
		if !seen[c.Set] {
			seen[c.Set] = true
			out = append(out, c.Set)
		}
	}
	return out
}

// find returns the run of a pipeline, model and smoothing on a clip.
func (r *Results) find(pipeline, model, smoothing, clip string) *Measurement {
	for _, run := range r.Runs {
		if run.Pipeline == pipeline && run.Model == model && run.Smoothing == smoothing && run.Clip == clip && run.Error == "" && run.Refine == "" {
			return run
		}
	}
	return nil
}

// SetSummary is one contender's mean figures over a set's clips.
type SetSummary struct {
	Set   string
	Label string // run label
	Model string
	// The means over the set's clips that have truth; Clips is their
	// number. IndependentMAD is the mean over the clips whose truth did
	// not come from this model (NaN when there are none).
	MAD, MSE, Grad, Conn, DtSSD, Flicker float64
	IndependentMAD                       float64
	Clips, IndependentClips              int
	ModelMs, FPS                         float64
	// Rank is 1 for the lowest MAD among those ranked; 0 when not
	// ranked (the set's truth came only from this model, or there is no
	// truth).
	Rank int
}

// Summaries returns each default contender's mean figures per set, ranked
// by MAD (see SetSummary).
func (r *Results) Summaries() []SetSummary { return r.summarize() }

// summarize returns the mean figures of the default contenders (the
// engine with its default smoothing, and FFmpeg's keyers) per set, ranked
// by MAD. A model is ranked on a set only if the set has a clip whose
// truth did not come from it.
func (r *Results) summarize() []SetSummary {
	var out []SetSummary
	for _, set := range r.sets() {
		type acc struct {
			s          SetSummary
			n, fpsN    int
			ind        float64
			flickerN   int
			msSum, fps float64
		}
		byLabel := map[string]*acc{}
		var order []string
		for _, run := range r.Runs {
			if run.Set != set || run.Error != "" || !defaultContender(run) {
				continue
			}
			c := r.clip(run.Clip)
			if c == nil {
				continue
			}
			a := byLabel[run.Label()]
			if a == nil {
				a = &acc{s: SetSummary{Set: set, Label: run.Label(), Model: run.Model}}
				byLabel[run.Label()] = a
				order = append(order, run.Label())
			}
			a.fps += run.Speed.FPS
			a.msSum += run.Speed.ModelMsPerFrame
			a.fpsN++
			if q := run.Quality; q != nil {
				a.s.Flicker += q.Flicker
				a.flickerN++
				if c.TruthSource != TruthNone && !math.IsNaN(q.MAD) {
					a.s.MAD += q.MAD
					a.s.MSE += q.MSE
					a.s.Grad += q.Grad
					a.s.Conn += q.Conn
					a.s.DtSSD += q.DtSSD
					a.n++
					if c.TruthSource != TruthModel(run.Model) {
						a.ind += q.MAD
						a.s.IndependentClips++
					}
				}
			}
		}
		var sums []SetSummary
		for _, l := range order {
			a := byLabel[l]
			s := a.s
			nan := math.NaN()
			if a.n > 0 {
				k := float64(a.n)
				s.MAD, s.MSE, s.Grad, s.Conn, s.DtSSD = s.MAD/k, s.MSE/k, s.Grad/k, s.Conn/k, s.DtSSD/k
			} else {
				s.MAD, s.MSE, s.Grad, s.Conn, s.DtSSD = nan, nan, nan, nan, nan
			}
			s.Clips = a.n
			s.IndependentMAD = nan
			if s.IndependentClips > 0 {
				s.IndependentMAD = a.ind / float64(s.IndependentClips)
			}
			if a.flickerN > 0 {
				s.Flicker /= float64(a.flickerN)
			}
			if a.fpsN > 0 {
				s.FPS = a.fps / float64(a.fpsN)
				s.ModelMs = a.msSum / float64(a.fpsN)
			}
			sums = append(sums, s)
		}
		// Rank by MAD those with independent truth.
		var ranked []*SetSummary
		for i := range sums {
			if sums[i].Clips > 0 && sums[i].IndependentClips > 0 {
				ranked = append(ranked, &sums[i])
			}
		}
		sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].MAD < ranked[j].MAD })
		for i, s := range ranked {
			s.Rank = i + 1
		}
		sort.SliceStable(sums, func(i, j int) bool {
			ri, rj := sums[i].Rank, sums[j].Rank
			if (ri == 0) != (rj == 0) {
				return rj == 0
			}
			if ri != rj {
				return ri < rj
			}
			return sums[i].Label < sums[j].Label
		})
		out = append(out, sums...)
	}
	return out
}

// defaultContender reports whether a run is what a user gets by default:
// the engine with its default smoothing, or an FFmpeg keyer.
func defaultContender(r *Measurement) bool {
	return r.Pipeline == PipelineVidmatte && r.Default || r.Pipeline == PipelineFFmpeg
}
