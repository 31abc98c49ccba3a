package vidmatte

import "context"

// Segment is a finished stretch of a job's frames: its output part is
// kept (Path is its artifacts reference) and recorded, so a job that is
// interrupted resumes after its last segment instead of at frame 0, on
// any daemon. Timestamps are the input's video time base.
type Segment struct {
	JobID string
	// Seq numbers a job's segments from 0, in order, without gaps.
	Seq int
	// FirstPTS is the segment's first frame; NextPTS the frame after its
	// last (where the next segment starts), meaningless when Last.
	FirstPTS, NextPTS int64
	Frames            int64
	// Last says the segment ends the video: the job only needs its join.
	Last bool
	Path string
	Size int64
	// LeaseToken is the claim that recorded it.
	LeaseToken int64
}

// SegmentService records a processing job's finished segments. The store
// implements it next to JobService.
type SegmentService interface {
	// RecordSegment records a finished segment of a processing job, fenced
	// by the lease like every runner write (a stale lease is a conflict
	// wrapping ErrLeaseLost). Segments are recorded in order: s.Seq must
	// be the number of segments recorded so far (else CodeConflict). The
	// frames recorded count as the job's progress (frames_done).
	RecordSegment(ctx context.Context, l Lease, s Segment) error
	// JobSegments returns a job's recorded segments in order.
	JobSegments(ctx context.Context, jobID string) ([]Segment, error)
	// EndedJobsWithSegments lists up to limit ended jobs (completed,
	// failed, canceled) whose segments are still recorded, for their parts
	// to be deleted; DropSegments then forgets them (an unended job is
	// CodeConflict).
	EndedJobsWithSegments(ctx context.Context, limit int) ([]string, error)
	DropSegments(ctx context.Context, jobID string) error
}
