package vidmatte

import (
	"fmt"
	"math"
	"time"
)

// MediaInfo is what a probe learns of a video.
type MediaInfo struct {
	DurationSec float64
	Width       int
	Height      int
	FPS         float64
	HasAudio    bool
}

// Frames is the number of frames the video is expected to have: its
// duration times its rate, rounded (0 when either is unknown).
func (m *MediaInfo) Frames() int64 {
	if m.DurationSec <= 0 || m.FPS <= 0 {
		return 0
	}
	return int64(m.DurationSec*m.FPS + 0.5)
}

// MediaLimits bound the videos a daemon accepts, whatever their size in
// bytes. A zero field is no limit.
type MediaLimits struct {
	MaxDurationSec float64 // longest video
	MaxFrames      int64   // most frames (duration × rate)
	MaxPixels      int64   // largest frame, width × height
}

// Check refuses a video past a limit with CodeUnprocessable naming field
// and the limit; a video of unknown duration is refused too, since nothing
// could be reserved for it.
func (l MediaLimits) Check(m *MediaInfo, field string) error {
	refuse := func(format string, args ...any) error {
		return &Error{Code: CodeUnprocessable, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
	}
	if m.DurationSec <= 0 || math.IsNaN(m.DurationSec) || math.IsInf(m.DurationSec, 0) {
		return refuse("the video's duration is unknown: neither the container nor its stream tells it")
	}
	if l.MaxDurationSec > 0 && m.DurationSec > l.MaxDurationSec {
		return refuse("the video lasts %.1f s; this daemon accepts at most %g s", m.DurationSec, l.MaxDurationSec)
	}
	if n := m.Frames(); l.MaxFrames > 0 && n > l.MaxFrames {
		return refuse("the video has about %d frames; this daemon accepts at most %d", n, l.MaxFrames)
	}
	if px := int64(m.Width) * int64(m.Height); l.MaxPixels > 0 && px > l.MaxPixels {
		return refuse("the video's frames are %d×%d (%d pixels); this daemon accepts at most %d pixels per frame", m.Width, m.Height, px, l.MaxPixels)
	}
	return nil
}

// Quotas bound what one key may hold at once. A zero field is no quota.
type Quotas struct {
	StoredBytes int64 // uploads and outputs not yet expired
	QueuedJobs  int   // jobs queued or processing
	Drafts      int   // pending jobs
}

// KeyHoldings is what a key holds against its quotas.
type KeyHoldings struct {
	StoredBytes int64
	QueuedJobs  int
	Drafts      int
}

// QuotaStoredBytesError is the error of the stored bytes quota (a 413;
// counts of jobs are 429s), naming the quota in Field.
func QuotaStoredBytesError(held, adding, quota int64) error {
	return &Error{Code: CodeTooLarge, Field: "quota.stored_bytes",
		Message: fmt.Sprintf("stored bytes quota: the key holds %d bytes and this adds %d; the quota is %d (stored files free their bytes as they expire)", held, adding, quota)}
}

// QuotaCountError is the error of a count quota (queued_jobs or drafts).
func QuotaCountError(name string, held, quota int) error {
	return &Error{Code: CodeRateLimited, Field: "quota." + name,
		Message: fmt.Sprintf("%s quota: the key has %d and may have at most %d at once", name, held, quota)}
}

// ExpiredOutput is a completed job's output that retention has just
// expired: its files are to be deleted.
type ExpiredOutput struct {
	JobID string
	Path  string
}

// StageTime is one pipeline stage's time: Busy working (decoding,
// preparing, in the model, refining, encoding), Wait blocked on its
// channels, for input or for room downstream. Busy+Wait is the stage's
// lifetime, at most the run's.
type StageTime struct {
	Name string
	Busy time.Duration
	Wait time.Duration
	// Takes is how many times the stage took its next input from its
	// queue, and Queued the items it found waiting there, summed over the
	// takes: Queued/Takes is the queue's mean depth as the stage saw it
	// (near 0: the stage starves, it is not the bottleneck; near Capacity:
	// the stages before it wait on it). The decode stage reads the file and
	// has no queue.
	Takes, Queued int64
	Capacity      int
}
