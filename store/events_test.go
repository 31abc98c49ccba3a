package store

import (
	"context"
	"testing"
	"time"

	"vidmatte"
)

// JobsChangedSince finds the key's jobs by their last change: a create, a
// claim, a progress report, a completion; never another key's; oldest
// change first, bounded by the limit.
func TestJobsChangedSince(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	clock := withClock(db, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a, _ := newKey(t, db, 100)
	b, _ := newKey(t, db, 100)
	j1 := createJob(t, db, a.ID, 1, true)
	j2 := createJob(t, db, a.ID, 1, false)
	other := createJob(t, db, b.ID, 1, true)

	got, err := db.JobsChangedSince(ctx, a.ID, time.Time{}, 0)
	must(t, err)
	if ids := jobIDs(got); len(ids) != 2 || ids[0] != j1.ID || ids[1] != j2.ID {
		t.Fatalf("changed since the start: %v, want [%s %s]", ids, j1.ID, j2.ID)
	}
	for _, j := range got {
		if j.KeyID != a.ID || j.ID == other.ID {
			t.Fatalf("another key's job: %+v", j)
		}
	}
	mark := got[1].UpdatedAt.Add(time.Nanosecond)
	if got, err := db.JobsChangedSince(ctx, a.ID, mark, 0); err != nil || len(got) != 0 {
		t.Fatalf("nothing changed after %v, got %v %v", mark, jobIDs(got), err)
	}

	// The claim and a progress report move j1 past the mark, with them.
	clock.set(mark.Add(time.Second))
	claimed, err := db.ClaimJobs(ctx, "w1", 10)
	must(t, err)
	if len(claimed) != 2 { // j1 and the other key's job
		t.Fatalf("claimed %v", jobIDs(claimed))
	}
	if _, err := db.SetJobProgress(ctx, leaseOf(t, db, j1.ID), 40, 120, 300); err != nil {
		t.Fatal(err)
	}
	got, err = db.JobsChangedSince(ctx, a.ID, mark, 0)
	must(t, err)
	if len(got) != 1 || got[0].ID != j1.ID || got[0].Status != vidmatte.StatusProcessing || got[0].Progress != 40 || !got[0].UpdatedAt.After(mark) {
		t.Fatalf("after the progress report: %+v", got)
	}
	mark = got[0].UpdatedAt.Add(time.Nanosecond)
	done, err := db.CompleteJob(ctx, leaseOf(t, db, j1.ID), vidmatte.JobOutput{Path: "/data/out.webm", Size: 10})
	must(t, err)
	got, err = db.JobsChangedSince(ctx, a.ID, mark, 0)
	must(t, err)
	if len(got) != 1 || got[0].Status != vidmatte.StatusCompleted || got[0].Progress != 100 || !got[0].UpdatedAt.Equal(done.UpdatedAt) {
		t.Fatalf("after completion: %+v", got)
	}

	// Oldest change first, and the limit holds.
	got, err = db.JobsChangedSince(ctx, a.ID, time.Time{}, 1)
	must(t, err)
	if len(got) != 1 || got[0].ID != j2.ID {
		t.Fatalf("the oldest change: %v, want %s", jobIDs(got), j2.ID)
	}
	_, err = db.JobsChangedSince(ctx, a.ID, time.Time{}, 101)
	wantCode(t, err, vidmatte.CodeInvalid)
	_, err = db.JobsChangedSince(ctx, "", time.Time{}, 1)
	wantCode(t, err, vidmatte.CodeInvalid)
}
