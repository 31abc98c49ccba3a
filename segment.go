package vidmatte

import (
	"context"
	"math"
)

// SegmentPlan cuts a job's video into segments on a grid of its video
// time base: segment k holds the frames whose timestamps fall in
// [Start(k), End(k)). The first segment also holds any frame before
// Origin+Length, the last any frame after its start, so every frame is in
// exactly one segment whatever the container declared. The job's first
// claim records the plan; every daemon that later works on the job,
// resuming it or helping with it, follows the same one.
type SegmentPlan struct {
	Origin int64 // where segment 0 starts (the stream's start time)
	Length int64 // ticks of each segment but the last, at least 1
	Count  int   // segments in all, at least 1
}

// MaxSegments bounds a plan: ten hours in segments of a second.
const MaxSegments = 36000

// Validate reports a plan that cannot be followed.
func (p SegmentPlan) Validate() error {
	switch {
	case p.Length < 1:
		return FieldErrorf("length", "must be at least one tick")
	case p.Count < 1 || p.Count > MaxSegments:
		return FieldErrorf("count", "must be between 1 and %d", MaxSegments)
	}
	return nil
}

// Start is the first timestamp of segment seq (math.MinInt64 for the
// first).
func (p SegmentPlan) Start(seq int) int64 {
	if seq <= 0 {
		return math.MinInt64
	}
	return p.Origin + int64(seq)*p.Length
}

// End is where segment seq ends, the next one's start (math.MaxInt64 for
// the last).
func (p SegmentPlan) End(seq int) int64 {
	if seq >= p.Count-1 {
		return math.MaxInt64
	}
	return p.Origin + int64(seq+1)*p.Length
}

// Of is the segment that holds a frame at pts.
func (p SegmentPlan) Of(pts int64) int {
	if pts < p.Origin+p.Length || p.Length < 1 {
		return 0
	}
	return int(min((pts-p.Origin)/p.Length, int64(p.Count-1)))
}

// Segment is a finished segment of a job: its output part is kept (Path
// is its artifacts reference, empty when the segment holds no frame: a
// video shorter than it declared) and recorded, so a job that is
// interrupted loses only the segments being processed, on any daemon.
type Segment struct {
	JobID string
	Seq   int
	// FirstPTS is the timestamp of its first frame (input time base).
	FirstPTS int64
	Frames   int64
	Path     string
	Size     int64
	// Token is the claim of the segment that recorded it.
	Token int64
}

// SegmentLease is a claim on one segment of a job: only its holder may
// record the segment, while the lease is renewed.
type SegmentLease struct {
	JobID string
	Seq   int
	Token int64
}

// SegmentStatus is what a segment of a plan is doing.
type SegmentStatus int

const (
	SegmentFree    SegmentStatus = iota // nobody has it (or its claim ran out)
	SegmentRunning                      // claimed, with a live lease
	SegmentDone                         // recorded
)

// JobSegments is where a job's segments stand.
type JobSegments struct {
	Plan    *SegmentPlan // nil until the job's first claim records it
	Done    []Segment    // in order
	Running int          // segments claimed with a live lease
}

// Complete reports that every segment of the plan is recorded.
func (s JobSegments) Complete() bool {
	return s.Plan != nil && len(s.Done) == s.Plan.Count
}

// Frames is the frames of the recorded segments.
func (s JobSegments) Frames() int64 {
	var n int64
	for _, d := range s.Done {
		n += d.Frames
	}
	return n
}

// PickSegment chooses the segment a worker should claim next among the
// plan's, so that workers sharing a job each process long runs of
// consecutive segments (every run begins with a seek and, for models
// with state, a warm-up): the longest stretch of free segments nobody
// will reach is taken from its start; one that a running segment leads
// into is split, the worker taking its second half, the runner before it
// keeping the first. A free segment right after a running one is left to
// that runner. ok is false when nothing is worth taking.
func PickSegment(status []SegmentStatus) (seq int, ok bool) {
	best, gain := -1, 0
	for a := 0; a < len(status); {
		if status[a] != SegmentFree {
			a++
			continue
		}
		b := a
		for b+1 < len(status) && status[b+1] == SegmentFree {
			b++
		}
		n := b - a + 1
		at, g := a, n
		if a > 0 && status[a-1] == SegmentRunning {
			at, g = a+(n+1)/2, n/2
		}
		if g > gain {
			best, gain = at, g
		}
		a = b + 1
	}
	return best, gain > 0
}

// SegmentService keeps the segments of the jobs processed in segments.
// The store implements it next to JobService. Segment claims have leases
// like job claims, renewed by the runner's heartbeat.
type SegmentService interface {
	// PlanSegments records the plan of a processing job held with lease
	// l, or returns the one recorded already (the job is resumed).
	PlanSegments(ctx context.Context, l Lease, p SegmentPlan) (SegmentPlan, error)
	// ClaimSegment claims segment seq of a processing job for worker, or
	// when seq is negative the one PickSegment chooses. ok is false when
	// that segment is recorded or held by a live claim, or nothing is
	// worth taking.
	ClaimSegment(ctx context.Context, worker, jobID string, seq int) (l SegmentLease, ok bool, err error)
	// ClaimHelp claims, for a worker with nothing queued to do, the
	// segment PickSegment chooses in the processing job with the most to
	// gain from it, and returns that job; with own, only among the jobs
	// worker itself runs (its parts are not shared with other daemons).
	ClaimHelp(ctx context.Context, worker string, own bool) (j *Job, l SegmentLease, ok bool, err error)
	// RenewSegments renews worker's segment leases that are still the
	// segments' and returns the others.
	RenewSegments(ctx context.Context, worker string, leases []SegmentLease) ([]SegmentLease, error)
	// ReleaseSegments gives back the segment leases a worker will not
	// record (its run stopped), so another worker takes them at once.
	ReleaseSegments(ctx context.Context, worker string, leases []SegmentLease) error
	// RecordSegment records a claimed segment finished, fenced by its
	// lease (a stale one is a conflict wrapping ErrLeaseLost); the job
	// must not have ended. The job's frames_done becomes the frames of
	// its recorded segments.
	RecordSegment(ctx context.Context, l SegmentLease, s Segment) error
	// JobSegments says where a job's segments stand.
	JobSegments(ctx context.Context, jobID string) (JobSegments, error)
	// EndedJobsWithSegments lists up to limit ended jobs (completed,
	// failed, canceled) whose segments are still recorded, for their parts
	// to be deleted; DropSegments then forgets them (an unended job is
	// CodeConflict).
	EndedJobsWithSegments(ctx context.Context, limit int) ([]string, error)
	DropSegments(ctx context.Context, jobID string) error
}
