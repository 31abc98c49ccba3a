package store

import (
	"context"
	"reflect"
	"testing"

	"vidmatte"
)

// One key's 300 queued jobs do not starve another key's single job, queued
// after them: with one slot freed at a time, the other key's job is the
// second one claimed; in a batch claim it is in the first batch.
func TestClaimIsFairAcrossKeys(t *testing.T) {
	ctx := context.Background()
	t.Run("one slot at a time", func(t *testing.T) {
		db := openTest(t)
		a, _ := newKey(t, db, 1000)
		b, _ := newKey(t, db, 10)
		for range 300 {
			createJob(t, db, a.ID, 1, true)
		}
		lone := createJob(t, db, b.ID, 1, true)
		at := -1
		for i := 0; i < 301 && at < 0; i++ {
			js, err := db.ClaimJobs(ctx, "w", 1)
			must(t, err)
			if len(js) != 1 {
				t.Fatalf("claim %d took %d jobs", i, len(js))
			}
			if js[0].ID == lone.ID {
				at = i
			}
			_, err = db.CompleteJob(ctx, leaseOf(t, db, js[0].ID), vidmatte.JobOutput{Path: "/out/" + js[0].ID + ".webm"})
			must(t, err)
		}
		if at != 1 {
			t.Fatalf("the other key's job was claim number %d (0-based), want 1", at)
		}
	})
	t.Run("a batch", func(t *testing.T) {
		db := openTest(t)
		a, _ := newKey(t, db, 1000)
		b, _ := newKey(t, db, 10)
		var first []string
		for i := range 300 {
			j := createJob(t, db, a.ID, 1, true)
			if i < 3 {
				first = append(first, j.ID)
			}
		}
		lone := createJob(t, db, b.ID, 1, true)
		js, err := db.ClaimJobs(ctx, "w", 4)
		must(t, err)
		want := append(append([]string{}, first...), lone.ID) // returned in queue order
		if !reflect.DeepEqual(jobIDs(js), want) {
			t.Fatalf("claimed %v, want %v", jobIDs(js), want)
		}
	})
	t.Run("running jobs count", func(t *testing.T) {
		// A key with jobs already running waits behind one with none.
		db := openTest(t)
		a, _ := newKey(t, db, 1000)
		b, _ := newKey(t, db, 10)
		for range 3 {
			createJob(t, db, a.ID, 1, true)
		}
		js, err := db.ClaimJobs(ctx, "w", 2) // two of a's run
		must(t, err)
		if len(js) != 2 {
			t.Fatalf("claimed %d", len(js))
		}
		b1 := createJob(t, db, b.ID, 1, true)
		b2 := createJob(t, db, b.ID, 1, true)
		js, err = db.ClaimJobs(ctx, "w", 2)
		must(t, err)
		if !reflect.DeepEqual(jobIDs(js), []string{b1.ID, b2.ID}) {
			t.Fatalf("claimed %v, want b's two jobs %v", jobIDs(js), []string{b1.ID, b2.ID})
		}
	})
	t.Run("keys alternate", func(t *testing.T) {
		db := openTest(t)
		a, _ := newKey(t, db, 1000)
		b, _ := newKey(t, db, 1000)
		owner := map[string]string{}
		for range 4 {
			owner[createJob(t, db, a.ID, 1, true).ID] = "a"
		}
		for range 4 {
			owner[createJob(t, db, b.ID, 1, true).ID] = "b"
		}
		var got string
		for range 8 {
			js, err := db.ClaimJobs(ctx, "w", 1)
			must(t, err)
			got += owner[js[0].ID]
			_, err = db.FailJob(ctx, leaseOf(t, db, js[0].ID), vidmatte.JobError{Code: vidmatte.CodeUnprocessable, Message: "x"})
			must(t, err)
		}
		if got != "abababab" {
			t.Fatalf("claim order by key %s, want abababab", got)
		}
	})
}

// The reaper takes back exactly the jobs the worker holds in the store
// but does not run: requeued with their reservation while attempts are
// left, failed and refunded after; other workers' jobs and the ones it
// still runs are left alone.
func TestReapJobs(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	a := createJob(t, db, k.ID, 2, true)
	b := createJob(t, db, k.ID, 2, true)
	c := createJob(t, db, k.ID, 2, true)
	js, err := db.ClaimJobs(ctx, "me", 3)
	must(t, err)
	if len(js) != 3 {
		t.Fatalf("claimed %d", len(js))
	}
	d := createJob(t, db, k.ID, 2, true)
	claimOne(t, db, d.ID) // held by w1, another runner

	_, err = db.ReapJobs(ctx, "", nil, 2)
	wantCode(t, err, vidmatte.CodeInvalid)
	_, err = db.ReapJobs(ctx, "me", nil, 0)
	wantCode(t, err, vidmatte.CodeInvalid)

	reaped, err := db.ReapJobs(ctx, "me", []string{b.ID}, 2)
	must(t, err)
	if !reflect.DeepEqual(jobIDs(reaped), []string{a.ID, c.ID}) {
		t.Fatalf("reaped %v, want %v", jobIDs(reaped), []string{a.ID, c.ID})
	}
	for _, j := range reaped {
		if j.Status != vidmatte.StatusQueued || j.BillingStatus != vidmatte.BillingReserved || j.Attempts != 1 {
			t.Fatalf("reaped %+v", j)
		}
	}
	for _, id := range []string{b.ID, d.ID} {
		if j, _ := db.FindJob(ctx, "", id); j.Status != vidmatte.StatusProcessing {
			t.Fatalf("job %s held by a runner became %s", id, j.Status)
		}
	}
	if n := count(t, db, "SELECT count(*) FROM jobs WHERE status = 'queued' AND worker != ''"); n != 0 {
		t.Fatalf("%d queued jobs still name a worker", n)
	}
	ts, err := db.Transitions(ctx, a.ID)
	must(t, err)
	if last := ts[len(ts)-1]; last.From != vidmatte.StatusProcessing || last.To != vidmatte.StatusQueued || last.Cause != CauseReaped {
		t.Fatalf("last transition %+v", last)
	}
	if balance(t, db, k.ID) != 92 {
		t.Fatalf("balance %v after requeueing, want 92 (4 jobs reserved)", balance(t, db, k.ID))
	}

	// Nothing held and nothing orphaned: nothing to reap.
	reaped, err = db.ReapJobs(ctx, "me", []string{b.ID}, 2)
	must(t, err)
	if len(reaped) != 0 {
		t.Fatalf("reaped again %v", jobIDs(reaped))
	}

	// a and c run again and are lost again: past their attempts they fail
	// and are refunded; b, finished meanwhile, is not touched.
	if js, err = db.ClaimJobs(ctx, "me", 2); err != nil || len(js) != 2 {
		t.Fatalf("claimed %d: %v", len(js), err)
	}
	_, err = db.CompleteJob(ctx, leaseOf(t, db, b.ID), vidmatte.JobOutput{Path: "/out/b.webm"})
	must(t, err)
	reaped, err = db.ReapJobs(ctx, "me", nil, 2)
	must(t, err)
	if !reflect.DeepEqual(jobIDs(reaped), []string{a.ID, c.ID}) {
		t.Fatalf("reaped %v", jobIDs(reaped))
	}
	for _, j := range reaped {
		if j.Status != vidmatte.StatusFailed || j.BillingStatus != vidmatte.BillingRefunded || j.Error == nil ||
			j.Error.Code != vidmatte.CodeInternal || j.Attempts != 2 {
			t.Fatalf("reaped past its attempts %+v", j)
		}
	}
	if rows := ledgerRows(t, db, a.ID); !reflect.DeepEqual(rows, []string{"reserve:2000", "refund:2000"}) {
		t.Fatalf("ledger %v", rows)
	}
	if j, _ := db.FindJob(ctx, "", b.ID); j.Status != vidmatte.StatusCompleted || j.BillingStatus != vidmatte.BillingCharged {
		t.Fatalf("b %s %s", j.Status, j.BillingStatus)
	}
	checkLedger(t, db)
}
