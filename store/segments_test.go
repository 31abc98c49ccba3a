package store

import (
	"context"
	"reflect"
	"testing"

	"vidmatte"
)

// claimSeg claims segment seq (or the chosen one, seq < 0) and fails the
// test when it is not given.
func claimSeg(t *testing.T, db *DB, worker, jobID string, seq int) vidmatte.SegmentLease {
	t.Helper()
	l, ok, err := db.ClaimSegment(context.Background(), worker, jobID, seq)
	must(t, err)
	if !ok {
		t.Fatalf("%s: segment %d of %s not claimed", worker, seq, jobID)
	}
	return l
}

func part(seq int, frames int64) vidmatte.Segment {
	return vidmatte.Segment{Seq: seq, FirstPTS: int64(seq) * 100, Frames: frames, Path: "/parts/p", Size: 7}
}

// The first claim records a job's plan and a resumed one gets it back; a
// segment is claimed by one worker at a time, recorded only through its
// own lease, moves the job's frames_done, and is taken over once its lease
// runs out, after which the stale holder records nothing.
func TestSegmentsClaimedRecordedAndFenced(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	if _, _, err := db.ClaimSegment(ctx, "w1", j.ID, 0); vidmatte.ErrorCode(err) != vidmatte.CodeConflict && err != nil {
		t.Fatalf("a segment of a queued job: %v", err)
	}
	owner := claimOne(t, db, j.ID)
	if _, _, err := db.ClaimSegment(ctx, "w1", j.ID, 0); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a segment of a job without a plan: %v", err)
	}
	if _, err := db.PlanSegments(ctx, owner.Lease(), vidmatte.SegmentPlan{Length: 0, Count: 3}); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
		t.Fatalf("a plan of zero-length segments: %v", err)
	}
	plan := vidmatte.SegmentPlan{Origin: 0, Length: 100, Count: 4}
	got, err := db.PlanSegments(ctx, owner.Lease(), plan)
	must(t, err)
	if got != plan {
		t.Fatalf("plan %+v", got)
	}
	if got, _ := db.PlanSegments(ctx, owner.Lease(), vidmatte.SegmentPlan{Length: 7, Count: 9}); got != plan {
		t.Fatalf("a second plan replaced the first: %+v", got)
	}

	a := claimSeg(t, db, "w1", j.ID, -1)
	if a.Seq != 0 || a.Token != 1 {
		t.Fatalf("the first pick: %+v", a)
	}
	if _, ok, _ := db.ClaimSegment(ctx, "w2", j.ID, 0); ok {
		t.Fatal("a held segment was claimed again")
	}
	// w2 takes the second half of what w1 runs into: 0 runs, 1-3 free.
	b := claimSeg(t, db, "w2", j.ID, -1)
	if b.Seq != 3 {
		t.Fatalf("the helper's pick: %+v, want segment 3", b)
	}
	if err := db.RecordSegment(ctx, vidmatte.SegmentLease{JobID: j.ID, Seq: 0, Token: 9}, part(0, 25)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a record with another's token: %v", err)
	}
	if err := db.RecordSegment(ctx, a, vidmatte.Segment{Seq: 0, Frames: 3}); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
		t.Fatalf("a segment with frames and no part: %v", err)
	}
	must(t, db.RecordSegment(ctx, a, part(0, 25)))
	if err := db.RecordSegment(ctx, a, part(0, 25)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a second record: %v", err)
	}
	must(t, db.RecordSegment(ctx, b, vidmatte.Segment{Seq: 3})) // past the video's end: no frames, no part
	cur, err := db.FindJob(ctx, "", j.ID)
	must(t, err)
	if cur.FramesDone != 25 {
		t.Fatalf("frames_done %d, want 25", cur.FramesDone)
	}

	// w1 goes on with segment 1 and stops answering; once its lease runs
	// out w2 takes it over, and w1's record is refused.
	c := claimSeg(t, db, "w1", j.ID, 1)
	if lost, err := db.RenewSegments(ctx, "w1", []vidmatte.SegmentLease{c}); err != nil || len(lost) != 0 {
		t.Fatalf("renewing a held segment: %v %v", lost, err)
	}
	if _, ok, _ := db.ClaimSegment(ctx, "w2", j.ID, 1); ok {
		t.Fatal("a live segment lease was taken over")
	}
	_, err = db.w.Exec("UPDATE job_segments SET lease_until = 1 WHERE job_id = ? AND seq = 1", j.ID)
	must(t, err)
	d := claimSeg(t, db, "w2", j.ID, -1)
	if d.Seq != 1 || d.Token != c.Token+1 {
		t.Fatalf("the take-over: %+v after %+v", d, c)
	}
	wantLeaseLost(t, db.RecordSegment(ctx, c, part(1, 25)))
	lost, err := db.RenewSegments(ctx, "w1", []vidmatte.SegmentLease{c})
	must(t, err)
	if !reflect.DeepEqual(lost, []vidmatte.SegmentLease{c}) {
		t.Fatalf("the stale renewal: %v", lost)
	}
	must(t, db.RecordSegment(ctx, d, part(1, 25)))
	st, err := db.JobSegments(ctx, j.ID)
	must(t, err)
	if st.Complete() || st.Running != 0 || len(st.Done) != 3 || st.Frames() != 50 || *st.Plan != plan {
		t.Fatalf("segments: %+v", st)
	}
	e := claimSeg(t, db, "w1", j.ID, -1)
	must(t, db.RecordSegment(ctx, e, part(2, 25)))
	st, _ = db.JobSegments(ctx, j.ID)
	if !st.Complete() || st.Frames() != 75 || st.Done[1].Token != d.Token {
		t.Fatalf("segments: %+v", st)
	}
	if _, ok, _ := db.ClaimSegment(ctx, "w1", j.ID, -1); ok {
		t.Fatal("a segment claimed when all are recorded")
	}
	if _, err := db.JobSegments(ctx, "job_nope"); vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
		t.Fatalf("segments of an unknown job: %v", err)
	}
}

// A worker with nothing queued helps the processing job with the most
// unclaimed segments; it gets nothing while every segment is claimed or a
// job's only free segment is the next one of a running worker; a canceled
// job's segment leases are lost and it records none.
func TestClaimHelp(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	if _, _, ok, err := db.ClaimHelp(ctx, "w9", false); err != nil || ok {
		t.Fatalf("help with no job: %v %v", ok, err)
	}
	small := createJob(t, db, k.ID, 1, true)
	big := createJob(t, db, k.ID, 1, true)
	for _, j := range []*vidmatte.Job{small, big} {
		owner := claimOne(t, db, j.ID)
		n := 2
		if j == big {
			n = 10
		}
		_, err := db.PlanSegments(ctx, owner.Lease(), vidmatte.SegmentPlan{Length: 100, Count: n})
		must(t, err)
		// Planned, not started: its runner is about to take segment 0.
		if _, l, ok, err := db.ClaimHelp(ctx, "w2", false); err != nil || ok {
			t.Fatalf("help with a job not started: %+v %v", l, err)
		}
		claimSeg(t, db, "w1", j.ID, 0)
	}
	// big: 0 running, 1-9 free: the helper starts at 6 (it gets 6-9, the
	// runner 1-5).
	j, l, ok, err := db.ClaimHelp(ctx, "w2", false)
	must(t, err)
	if !ok || j.ID != big.ID || l.Seq != 6 {
		t.Fatalf("help: %v %+v, want %s segment 6", ok, l, big.ID)
	}
	// small: 0 running, 1 free — left to its runner. big: 1-5 and 7-9
	// split again, the longest first.
	for _, want := range []int{4, 3, 2, 9, 8} {
		_, l, ok, err := db.ClaimHelp(ctx, "w3", false)
		must(t, err)
		if !ok || l.JobID != big.ID || l.Seq != want {
			t.Fatalf("help: %v %+v, want segment %d of %s", ok, l, want, big.ID)
		}
	}
	// Every free segment now follows a running one.
	if _, l, ok, err := db.ClaimHelp(ctx, "w4", false); err != nil || ok {
		t.Fatalf("help with nothing worth taking: %+v %v", l, err)
	}

	// Only the owner's daemon helps when parts are not shared.
	if _, _, ok, err := db.ClaimHelp(ctx, "w2", true); err != nil || ok {
		t.Fatalf("own help for a worker that runs no job: %v %v", ok, err)
	}
	// A released segment is free at once; a stale release changes nothing.
	if _, ok, _ := db.ClaimSegment(ctx, "w5", big.ID, 8); ok {
		t.Fatal("a held segment claimed")
	}
	eight := vidmatte.SegmentLease{JobID: big.ID, Seq: 8, Token: 1}
	must(t, db.ReleaseSegments(ctx, "w5", []vidmatte.SegmentLease{eight}))
	if _, ok, _ := db.ClaimSegment(ctx, "w5", big.ID, 8); ok {
		t.Fatal("another worker's release freed a segment")
	}
	must(t, db.ReleaseSegments(ctx, "w3", []vidmatte.SegmentLease{eight}))
	claimSeg(t, db, "w5", big.ID, 8)

	_, err = db.CancelJob(ctx, k.ID, big.ID, "test", "req_cancel")
	must(t, err)
	lost, err := db.RenewSegments(ctx, "w2", []vidmatte.SegmentLease{l})
	must(t, err)
	if len(lost) != 1 {
		t.Fatalf("a canceled job's segment lease renewed: %v", lost)
	}
	if err := db.RecordSegment(ctx, l, part(5, 10)); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a canceled job's segment recorded: %v", err)
	}
	if _, _, err := db.ClaimSegment(ctx, "w2", big.ID, 6); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a canceled job's segment claimed: %v", err)
	}

	// The canceled job's segments are listed for deletion, then dropped;
	// those of a job still running are neither.
	ended, err := db.EndedJobsWithSegments(ctx, 10)
	must(t, err)
	if !reflect.DeepEqual(ended, []string{big.ID}) {
		t.Fatalf("ended jobs with segments: %v, want %v", ended, []string{big.ID})
	}
	if err := db.DropSegments(ctx, small.ID); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("dropping a running job's segments: %v", err)
	}
	must(t, db.DropSegments(ctx, big.ID))
	if ended, _ := db.EndedJobsWithSegments(ctx, 10); len(ended) != 0 {
		t.Fatalf("after the drop: %v", ended)
	}
	if st, _ := db.JobSegments(ctx, big.ID); st.Plan != nil || st.Running != 0 {
		t.Fatalf("the dropped job's segments: %+v", st)
	}
	if st, _ := db.JobSegments(ctx, small.ID); st.Plan == nil || st.Running != 1 {
		t.Fatalf("the running job's segments: %+v", st)
	}
}
