package vidmatte

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// Status is where a job is in its life.
//
//	pending (draft) → queued → processing → completed | failed | canceled
//
// A transition never goes backwards, except processing → queued when a
// crashed or draining daemon requeues the job.
type Status string

const (
	StatusPending    Status = "pending"
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCanceled   Status = "canceled"
)

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusQueued, StatusProcessing, StatusCompleted, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// CanTransition reports whether a job may go from s to next.
func (s Status) CanTransition(next Status) bool {
	switch s {
	case StatusPending:
		return next == StatusQueued || next == StatusCanceled
	case StatusQueued:
		return next == StatusProcessing || next == StatusCanceled
	case StatusProcessing:
		return next == StatusCompleted || next == StatusFailed || next == StatusCanceled || next == StatusQueued
	}
	return false
}

// OutputFormat is what a job produces.
type OutputFormat string

const (
	FormatWebM        OutputFormat = "webm"         // VP9 with alpha (yuva420p) + Opus
	FormatMOV         OutputFormat = "mov"          // ProRes 4444 with alpha + the audio
	FormatMP4         OutputFormat = "mp4"          // H.264 composited over a background + AAC
	FormatGIF         OutputFormat = "gif"          // animated, 1-bit transparency
	FormatWebP        OutputFormat = "webp"         // animated, alpha
	FormatPNGSequence OutputFormat = "png_sequence" // zip of RGBA PNGs
	FormatMask        OutputFormat = "mask"         // grayscale matte video
)

// OutputFormats lists every format, in the order the contract gives them.
var OutputFormats = []OutputFormat{FormatWebM, FormatMOV, FormatMP4, FormatGIF, FormatWebP, FormatPNGSequence, FormatMask}

// Valid reports whether f is a known format.
func (f OutputFormat) Valid() bool {
	for _, g := range OutputFormats {
		if f == g {
			return true
		}
	}
	return false
}

// HasAlpha reports whether the format carries transparency.
func (f OutputFormat) HasAlpha() bool {
	switch f {
	case FormatWebM, FormatMOV, FormatGIF, FormatWebP, FormatPNGSequence:
		return true
	}
	return false
}

// Extension is the file name extension of the format's output, with the dot.
func (f OutputFormat) Extension() string {
	switch f {
	case FormatPNGSequence:
		return ".zip"
	case FormatMask:
		return ".mp4"
	}
	return "." + string(f)
}

// ContentType is the MIME type of the format's output.
func (f OutputFormat) ContentType() string {
	switch f {
	case FormatWebM:
		return "video/webm"
	case FormatMOV:
		return "video/quicktime"
	case FormatMP4, FormatMask:
		return "video/mp4"
	case FormatGIF:
		return "image/gif"
	case FormatWebP:
		return "image/webp"
	case FormatPNGSequence:
		return "application/zip"
	}
	return "application/octet-stream"
}

// BackgroundType says what is behind the cut-out foreground.
type BackgroundType string

const (
	BackgroundTransparent BackgroundType = "transparent"
	BackgroundColor       BackgroundType = "color"
	BackgroundImage       BackgroundType = "image"
	BackgroundBlur        BackgroundType = "blur"
)

// Background is what the foreground is composited over. Color is RGB in
// 0..1. ImageURL is the image as the client gave it; ImagePath is the local
// file it was fetched to, filled in before processing.
type Background struct {
	Type      BackgroundType `json:"type"`
	Color     *[3]float64    `json:"color,omitempty"`
	ImageURL  string         `json:"image_url,omitempty"`
	ImagePath string         `json:"-"`
}

// Transparent reports whether nothing is behind the foreground.
func (b Background) Transparent() bool { return b.Type == "" || b.Type == BackgroundTransparent }

// Composition places the foreground on a canvas of its own size.
type Composition struct {
	Canvas     *Canvas              `json:"canvas,omitempty"`
	Foreground *ForegroundPlacement `json:"foreground,omitempty"`
}

// Canvas is the output picture size.
type Canvas struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Anchor names a point of the canvas the foreground is aligned to.
type Anchor string

const (
	AnchorCenter      Anchor = "center"
	AnchorTop         Anchor = "top"
	AnchorBottom      Anchor = "bottom"
	AnchorLeft        Anchor = "left"
	AnchorRight       Anchor = "right"
	AnchorTopLeft     Anchor = "top_left"
	AnchorTopRight    Anchor = "top_right"
	AnchorBottomLeft  Anchor = "bottom_left"
	AnchorBottomRight Anchor = "bottom_right"
)

// Anchors lists the valid anchors.
var Anchors = []Anchor{AnchorCenter, AnchorTop, AnchorBottom, AnchorLeft, AnchorRight, AnchorTopLeft, AnchorTopRight, AnchorBottomLeft, AnchorBottomRight}

// ForegroundPlacement says where the foreground sits on the canvas: aligned
// to Anchor, scaled by Scale (1 = its own size), then moved by Offset pixels.
type ForegroundPlacement struct {
	Anchor Anchor  `json:"anchor,omitempty"`
	Scale  float64 `json:"scale,omitempty"`
	Offset *Offset `json:"offset,omitempty"`
}

// Composition limits: the canvas's side and the foreground's offset, and
// the foreground's scale.
const (
	MaxCanvas          = 8192
	MaxForegroundScale = 10
)

// Validate checks a composition: a canvas between 2×2 and MaxCanvas², a
// known anchor, a scale above 0 and at most MaxForegroundScale (0 is the
// foreground's own size), an offset within ±MaxCanvas. Every layer that
// takes a composition calls it; a nil one is valid.
func (c *Composition) Validate() error {
	if c == nil {
		return nil
	}
	if cv := c.Canvas; cv != nil {
		for _, side := range []struct {
			name string
			v    int
		}{{"width", cv.Width}, {"height", cv.Height}} {
			if side.v < 2 || side.v > MaxCanvas {
				return FieldErrorf("composition.canvas."+side.name, "must be between 2 and %d", MaxCanvas)
			}
		}
	}
	p := c.Foreground
	if p == nil {
		return nil
	}
	if p.Anchor != "" && !slices.Contains(Anchors, p.Anchor) {
		names := make([]string, len(Anchors))
		for i, a := range Anchors {
			names[i] = string(a)
		}
		return FieldErrorf("composition.foreground.anchor", "unknown anchor %q; valid: %s", SafeText(string(p.Anchor)), strings.Join(names, ", "))
	}
	if p.Scale < 0 || p.Scale > MaxForegroundScale || math.IsNaN(p.Scale) {
		return FieldErrorf("composition.foreground.scale", "must be greater than 0 and at most %d", MaxForegroundScale)
	}
	if o := p.Offset; o != nil && (o.X < -MaxCanvas || o.X > MaxCanvas || o.Y < -MaxCanvas || o.Y > MaxCanvas) {
		return FieldErrorf("composition.foreground.offset", "must be within ±%d pixels", MaxCanvas)
	}
	return nil
}

// CheckFormatBackground refuses a transparent background on a format that
// has no alpha channel to show it (mp4), naming the field background.
func CheckFormatBackground(f OutputFormat, b Background) error {
	if f == FormatMP4 && b.Transparent() {
		return &Error{Code: CodeUnprocessable, Field: "background",
			Message: string(f) + " has no alpha channel: choose a color, image or blur background, or an output format with alpha (webm, mov, webp, gif, png_sequence)"}
	}
	return nil
}

// Offset is a displacement in canvas pixels.
type Offset struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// BillingStatus is where a job's credits stand.
type BillingStatus string

const (
	BillingNone     BillingStatus = "none"
	BillingReserved BillingStatus = "reserved"
	BillingCharged  BillingStatus = "charged"
	BillingRefunded BillingStatus = "refunded"
)

// JobError is why a job failed, as the client sees it.
type JobError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Job is one background-removal request and its outcome.
type Job struct {
	ID         string
	KeyID      string
	Status     Status
	Progress   int // 0..100, never decreases
	VideoURL   string
	UploadID   string // set when VideoURL names an upload
	InputPath  string // the local file processed
	OutputPath string // the local output, once completed
	OutputSize int64  // its size in bytes
	// OutputExpiredAt is when the output was deleted by retention: the job
	// keeps its record, but has no output any more.
	OutputExpiredAt *time.Time
	Error           *JobError
	Model           string
	OutputFormat    OutputFormat
	Background      Background
	Composition     *Composition
	WebhookURL      string
	Metadata        map[string]string
	DurationSec     float64
	FramesTotal     int64
	FramesDone      int64
	Credits         float64
	BillingStatus   BillingStatus
	Attempts        int
	// LeaseToken is the fencing token of the claim that holds a processing
	// job (it grows at every claim); LeaseUntil when that lease runs out
	// unless its runner renews it.
	LeaseToken  int64
	LeaseUntil  *time.Time
	RequestID   string
	CreatedAt   time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
	UpdatedAt   time.Time
}

// ErrLeaseLost is in the chain of the conflict a runner's write gets when
// the lease it carries is no longer the job's.
var ErrLeaseLost = errors.New("the job's lease was lost")

// Lease is a runner's hold on a processing job: the job's id and the
// fencing token of the claim that took it.
type Lease struct {
	JobID string
	Token int64
}

// Lease is the job's current lease.
func (j *Job) Lease() Lease { return Lease{JobID: j.ID, Token: j.LeaseToken} }

// FrameCap is the most frames a job may process on its reservation: the
// frames of the seconds reserved (its duration rounded up, at least one)
// at its rate, with 5 % and two frames of slack for rates that vary. 0 is
// no cap (the job's frame count is unknown).
func (j *Job) FrameCap() int64 {
	if j.FramesTotal <= 0 || j.DurationSec <= 0 {
		return 0
	}
	fps := float64(j.FramesTotal) / j.DurationSec
	return int64(math.Ceil(ReservedSeconds(j.DurationSec)*fps*1.05)) + 2
}

// ReservedSeconds is what a job of the duration is priced on: the duration
// rounded up to whole seconds, at least one.
func ReservedSeconds(durationSec float64) float64 {
	return max(1, math.Ceil(durationSec))
}

// JobOutput is what a finished job produced: its file, the file's size
// and the frames processed (what the job is charged for).
type JobOutput struct {
	Path   string
	Size   int64
	Frames int64
}

// Upload is a video a client streamed to the daemon.
type Upload struct {
	ID          string
	KeyID       string
	Filename    string
	Path        string
	Size        int64
	DurationSec float64
	Width       int
	Height      int
	FPS         float64
	HasAudio    bool
	Fetched     bool // downloaded from a video_url, not uploaded
	CreatedAt   time.Time
}

// Metadata limits of the contract.
const (
	MaxMetadataPairs    = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
)
