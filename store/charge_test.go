package store

import (
	"context"
	"reflect"
	"testing"

	"vidmatte"
)

// A job charges the seconds it processed: a video that turned out shorter
// than its container declared gives the rest of its reservation back, in
// the completion's own transaction, with one charge row; a whole video (or
// an unknown count) charges the reservation.
func TestCompleteChargesWhatWasProcessed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		frames      int64
		wantCharged float64
		wantRows    []string
	}{
		{"a fifth of the frames", 60, 3, []string{"reserve:13000", "charge:3000"}},
		{"every frame", 300, 13, []string{"reserve:13000", "charge:13000"}},
		{"more than probed", 320, 13, []string{"reserve:13000", "charge:13000"}},
		{"unknown", 0, 13, []string{"reserve:13000", "charge:13000"}},
		{"one frame", 1, 1, []string{"reserve:13000", "charge:1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			k, _ := newKey(t, db, 100)
			j := createJob(t, db, k.ID, 13, true) // 12.5 s, 300 frames: 13 s reserved at 1 credit/s
			claimOne(t, db, j.ID)
			done, err := db.CompleteJob(ctx, leaseOf(t, db, j.ID), vidmatte.JobOutput{Path: "/out/x.webm", Size: 4096, Frames: tc.frames})
			must(t, err)
			if done.Credits != tc.wantCharged || done.OutputSize != 4096 || done.BillingStatus != vidmatte.BillingCharged {
				t.Fatalf("completed: credits %v (want %v), size %d, %s", done.Credits, tc.wantCharged, done.OutputSize, done.BillingStatus)
			}
			if b := balance(t, db, k.ID); b != 100-tc.wantCharged {
				t.Fatalf("balance %v, want %v", b, 100-tc.wantCharged)
			}
			if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, tc.wantRows) {
				t.Fatalf("ledger %v, want %v", rows, tc.wantRows)
			}
			h, err := db.KeyHoldings(ctx, k.ID)
			must(t, err)
			if h.StoredBytes != 4096 {
				t.Fatalf("stored bytes %d: the output counts against the key", h.StoredBytes)
			}
		})
	}
}

// A job processed in segments over several claims (a crash, a rescue and
// a stale runner in between) is charged once, at its completion, for the
// frames of all its segments: recording segments moves no credits.
func TestSegmentedJobChargesOnce(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	j := createJob(t, db, k.ID, 13, true) // 300 frames, 13 s reserved
	first := claimOne(t, db, j.ID)
	_, err := db.PlanSegments(ctx, first.Lease(), vidmatte.SegmentPlan{Length: 100, Count: 3})
	must(t, err)
	record := func(worker string, seq int) {
		t.Helper()
		l, ok, err := db.ClaimSegment(ctx, worker, j.ID, seq)
		must(t, err)
		if !ok {
			t.Fatalf("segment %d not claimed", seq)
		}
		must(t, db.RecordSegment(ctx, l, vidmatte.Segment{Seq: seq, FirstPTS: int64(seq * 100), Frames: 100, Path: "/parts/p.webm", Size: 10}))
	}
	record("w1", 0)
	record("w1", 1)
	expireLease(t, db, j.ID)
	rescued, err := db.RescueJobs(ctx, 1)
	must(t, err)
	if len(rescued) != 1 || rescued[0].Status != vidmatte.StatusQueued {
		t.Fatalf("a rescue after progress: %+v", rescued)
	}
	second := claimOne(t, db, j.ID)
	record("w1", 2)
	if _, err := db.CompleteJob(ctx, first.Lease(), vidmatte.JobOutput{Path: "/out/x.webm", Size: 1, Frames: 300}); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("the stale claim completed the job: %v", err)
	}
	if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, []string{"reserve:13000"}) {
		t.Fatalf("ledger before the completion %v", rows)
	}
	done, err := db.CompleteJob(ctx, second.Lease(), vidmatte.JobOutput{Path: "/out/x.webm", Size: 4096, Frames: 300})
	must(t, err)
	if done.Credits != 13 || done.FramesDone != 300 {
		t.Fatalf("completed: %v credits, %d frames", done.Credits, done.FramesDone)
	}
	if _, err := db.CompleteJob(ctx, second.Lease(), vidmatte.JobOutput{Path: "/out/x.webm", Size: 4096, Frames: 300}); vidmatte.ErrorCode(err) != vidmatte.CodeConflict {
		t.Fatalf("a second completion: %v", err)
	}
	if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, []string{"reserve:13000", "charge:13000"}) {
		t.Fatalf("ledger %v", rows)
	}
	if b := balance(t, db, k.ID); b != 87 {
		t.Fatalf("balance %v", b)
	}
}
