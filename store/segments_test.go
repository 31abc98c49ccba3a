package store

import (
	"context"
	"reflect"
	"testing"

	"vidmatte"
)

// Segments are recorded in order by the claim that holds the job, move
// its frames_done, survive a rescue for the next claim, and a stale
// claim can record none.
func TestSegmentsRecordedInOrderAndFenced(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	first := claimOne(t, db, j.ID)

	seg := func(seq int, frames int64, last bool) vidmatte.Segment {
		return vidmatte.Segment{Seq: seq, FirstPTS: int64(seq) * 100, NextPTS: int64(seq+1) * 100, Frames: frames, Last: last,
			Path: "outputs/" + j.ID + "/1/part_" + string(rune('0'+seq)) + ".webm", Size: 10 + int64(seq)}
	}
	must(t, db.RecordSegment(ctx, first.Lease(), seg(0, 25, false)))
	if err := db.RecordSegment(ctx, first.Lease(), seg(0, 25, false)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("the same segment twice: %v", err)
	}
	if err := db.RecordSegment(ctx, first.Lease(), seg(2, 25, false)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a segment out of order: %v", err)
	}
	if err := db.RecordSegment(ctx, first.Lease(), vidmatte.Segment{Seq: 1, Path: "x"}); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
		t.Fatalf("a segment without frames: %v", err)
	}
	must(t, db.RecordSegment(ctx, first.Lease(), seg(1, 20, false)))
	got, err := db.FindJob(ctx, "", j.ID)
	must(t, err)
	if got.FramesDone != 45 {
		t.Fatalf("frames_done after two segments: %d, want 45", got.FramesDone)
	}

	// The lease runs out; the job is rescued (with progress, not counted
	// as a stalled attempt) and claimed again.
	expireLease(t, db, j.ID)
	if _, err := db.RescueJobs(ctx, 1); err != nil {
		t.Fatal(err)
	}
	second := claimOne(t, db, j.ID)
	wantLeaseLost(t, db.RecordSegment(ctx, first.Lease(), seg(2, 25, false)))
	segs, err := db.JobSegments(ctx, j.ID)
	must(t, err)
	if len(segs) != 2 {
		t.Fatalf("segments after a stale record: %+v", segs)
	}
	want := seg(1, 20, false)
	want.JobID, want.LeaseToken = j.ID, first.LeaseToken
	if !reflect.DeepEqual(segs[1], want) {
		t.Fatalf("segment 1 read back: %+v, want %+v", segs[1], want)
	}
	must(t, db.RecordSegment(ctx, second.Lease(), seg(2, 5, true)))
	if err := db.RecordSegment(ctx, second.Lease(), seg(3, 5, false)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a segment after the last: %v", err)
	}
	segs, err = db.JobSegments(ctx, j.ID)
	must(t, err)
	if len(segs) != 3 || !segs[2].Last || segs[2].LeaseToken != second.LeaseToken {
		t.Fatalf("segments: %+v", segs)
	}
	// A job that is no longer processing records nothing.
	if _, err := db.CancelJob(ctx, "", j.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSegment(ctx, second.Lease(), seg(3, 5, false)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a segment of a canceled job: %v", err)
	}
	if _, err := db.JobSegments(ctx, "job_nope"); vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
		t.Fatalf("segments of an unknown job: %v", err)
	}

	// The canceled job's segments are listed for deletion, then dropped;
	// those of a job still running are neither.
	other := createJob(t, db, k.ID, 1, true)
	running := claimOne(t, db, other.ID)
	must(t, db.RecordSegment(ctx, running.Lease(), seg(0, 5, false)))
	ended, err := db.EndedJobsWithSegments(ctx, 10)
	must(t, err)
	if !reflect.DeepEqual(ended, []string{j.ID}) {
		t.Fatalf("ended jobs with segments: %v, want %v", ended, []string{j.ID})
	}
	if err := db.DropSegments(ctx, other.ID); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("dropping a running job's segments: %v", err)
	}
	must(t, db.DropSegments(ctx, j.ID))
	if ended, _ := db.EndedJobsWithSegments(ctx, 10); len(ended) != 0 {
		t.Fatalf("after the drop: %v", ended)
	}
	if segs, _ := db.JobSegments(ctx, other.ID); len(segs) != 1 {
		t.Fatalf("the running job's segments: %+v", segs)
	}
}
