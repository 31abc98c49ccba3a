package store

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"vidmatte"
)

func TestWebhooks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	t0 := time.Date(2030, 2, 1, 10, 0, 0, 0, time.UTC)
	withClock(db, t0)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)

	d1 := &vidmatte.WebhookDelivery{JobID: j.ID, Event: vidmatte.EventJobStarted, URL: "https://hooks.example.com/a", Payload: []byte(`{"a":1}`)}
	must(t, db.EnqueueWebhook(ctx, d1))
	if !strings.HasPrefix(d1.ID, "whd_") || d1.KeyID != k.ID || d1.CreatedAt.IsZero() || !d1.NextAttemptAt.Equal(d1.CreatedAt) {
		t.Fatalf("enqueued %+v", d1)
	}
	later := t0.Add(time.Hour)
	d2 := &vidmatte.WebhookDelivery{JobID: j.ID, KeyID: k.ID, Event: vidmatte.EventJobCompleted, URL: "https://hooks.example.com/a",
		Payload: []byte(`{"b":2}`), NextAttemptAt: later, CreatedAt: t0.Add(time.Second)}
	must(t, db.EnqueueWebhook(ctx, d2))
	got, err := db.FindWebhook(ctx, d2.ID)
	must(t, err)
	if !reflect.DeepEqual(got, d2) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, d2)
	}

	due := func(at time.Time) []string {
		t.Helper()
		ds, err := db.ClaimWebhooks(ctx, at, 10, nil, 0)
		must(t, err)
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if ids := due(t0.Add(time.Minute)); !reflect.DeepEqual(ids, []string{d1.ID}) {
		t.Fatalf("due at +1m: %v", ids)
	}
	if ids := due(later); !reflect.DeepEqual(ids, []string{d1.ID, d2.ID}) {
		t.Fatalf("due at +1h: %v (oldest first)", ids)
	}
	if ids := due(t0.Add(-time.Hour)); len(ids) != 0 {
		t.Fatalf("due before anything: %v", ids)
	}

	// A failed attempt with backoff: not due until next.
	next := t0.Add(30 * time.Second)
	must(t, db.RecordWebhookAttempt(ctx, d1.ID, false, false, 503, "answered 503", next))
	got, err = db.FindWebhook(ctx, d1.ID)
	must(t, err)
	if got.Attempts != 1 || got.Delivered || got.Failed || got.LastStatus != 503 || got.LastError != "answered 503" || !got.NextAttemptAt.Equal(next) {
		t.Fatalf("after a failed attempt %+v", got)
	}
	if ids := due(next.Add(-time.Nanosecond)); len(ids) != 0 {
		t.Fatalf("due before its backoff: %v", ids)
	}
	if ids := due(next); !reflect.DeepEqual(ids, []string{d1.ID}) {
		t.Fatalf("due at next: %v", ids)
	}
	must(t, db.RecordWebhookAttempt(ctx, d1.ID, false, false, 0, "timeout", next.Add(time.Minute)))
	must(t, db.RecordWebhookAttempt(ctx, d1.ID, true, false, 200, "", time.Time{}))
	got, err = db.FindWebhook(ctx, d1.ID)
	must(t, err)
	if got.Attempts != 3 || !got.Delivered || got.LastStatus != 200 || got.LastError != "" {
		t.Fatalf("delivered %+v", got)
	}
	if ids := due(later.Add(time.Hour)); !reflect.DeepEqual(ids, []string{d2.ID}) {
		t.Fatalf("due after delivery: %v", ids)
	}
	wantCode(t, db.RecordWebhookAttempt(ctx, d1.ID, true, false, 200, "", time.Time{}), vidmatte.CodeConflict)

	// Given up: never due again.
	must(t, db.RecordWebhookAttempt(ctx, d2.ID, false, true, 410, "gone", time.Time{}))
	if ids := due(later.Add(24 * time.Hour)); len(ids) != 0 {
		t.Fatalf("due after giving up: %v", ids)
	}
	got, _ = db.FindWebhook(ctx, d2.ID)
	if !got.Failed || got.Attempts != 1 || !got.NextAttemptAt.Equal(later) {
		t.Fatalf("given up %+v", got)
	}
	wantCode(t, db.RecordWebhookAttempt(ctx, d2.ID, false, false, 500, "x", later), vidmatte.CodeConflict)

	as, err := db.WebhookAttempts(ctx, d1.ID)
	must(t, err)
	if len(as) != 3 || as[0].Status != 503 || as[1].Error != "timeout" || !as[2].Delivered || as[0].Attempt != 1 || as[2].Attempt != 3 ||
		as[1].At.Before(as[0].At) {
		t.Fatalf("attempt history %+v", as)
	}

	wantCode(t, db.RecordWebhookAttempt(ctx, "whd_nope", true, false, 200, "", time.Time{}), vidmatte.CodeNotFound)
	wantCode(t, db.RecordWebhookAttempt(ctx, d1.ID, true, true, 200, "", time.Time{}), vidmatte.CodeInvalid)
	wantCode(t, db.EnqueueWebhook(ctx, &vidmatte.WebhookDelivery{JobID: "job_nope", Event: vidmatte.EventJobFailed, URL: "u"}), vidmatte.CodeNotFound)
	wantCode(t, db.EnqueueWebhook(ctx, &vidmatte.WebhookDelivery{JobID: j.ID, Event: "job.exploded", URL: "u"}), vidmatte.CodeInvalid)
	other, _ := newKey(t, db, 0)
	wantCode(t, db.EnqueueWebhook(ctx, &vidmatte.WebhookDelivery{JobID: j.ID, KeyID: other.ID, Event: vidmatte.EventJobFailed, URL: "u"}), vidmatte.CodeInvalid)
	_, err = db.WebhookAttempts(ctx, "whd_nope")
	wantCode(t, err, vidmatte.CodeNotFound)
}

func TestWebhooksSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	db := openAt(t, dsn)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	d := &vidmatte.WebhookDelivery{JobID: j.ID, Event: vidmatte.EventJobStarted, URL: "https://x", Payload: []byte("p")}
	must(t, db.EnqueueWebhook(ctx, d))
	must(t, db.RecordWebhookAttempt(ctx, d.ID, false, false, 500, "boom", d.CreatedAt.Add(time.Second)))
	must(t, db.Close())

	db = openAt(t, dsn)
	defer db.Close()
	ds, err := db.ClaimWebhooks(ctx, d.CreatedAt.Add(time.Minute), 0, nil, 0)
	must(t, err)
	if len(ds) != 1 || ds[0].Attempts != 1 || string(ds[0].Payload) != "p" || ds[0].LastError != "boom" {
		t.Fatalf("after reopen %+v", ds)
	}
}

// A job's events are written in the transactions of the changes that fire
// them: started with the claim, completed with the completion, failed with
// the failure; a change that is refused writes no event, a job without a
// webhook URL none at all, and the deliveries outlive a restart.
func TestWebhookOutbox(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	db := openAt(t, dsn)
	k, _ := newKey(t, db, 100)
	hooked := newJobFor(k.ID, 1)
	hooked.WebhookURL = "https://Hooks.Example.com:8443/in"
	must(t, db.CreateJob(ctx, hooked, true, ""))
	plain := createJob(t, db, k.ID, 1, true)
	failing := newJobFor(k.ID, 1)
	failing.WebhookURL = "https://other.example.com/in"
	must(t, db.CreateJob(ctx, failing, true, ""))

	events := func() []string {
		t.Helper()
		ds, err := db.ClaimWebhooks(ctx, time.Now().Add(time.Hour), 100, nil, 0)
		must(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.JobID+" "+d.Event)
		}
		return out
	}
	if e := events(); len(e) != 0 {
		t.Fatalf("events before any change: %v", e)
	}
	js, err := db.ClaimJobs(ctx, "w1", 3)
	must(t, err)
	if len(js) != 3 {
		t.Fatalf("claimed %d", len(js))
	}
	_, err = db.CompleteJob(ctx, leaseOf(t, db, hooked.ID), vidmatte.JobOutput{Path: "/out/h.webm"})
	must(t, err)
	_, err = db.CompleteJob(ctx, leaseOf(t, db, hooked.ID), vidmatte.JobOutput{Path: "/out/h.webm"})
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.CompleteJob(ctx, leaseOf(t, db, plain.ID), vidmatte.JobOutput{Path: "/out/p.webm"})
	must(t, err)
	_, err = db.FailJob(ctx, leaseOf(t, db, failing.ID), vidmatte.JobError{Code: vidmatte.CodeUnprocessable, Message: "bad frames"})
	must(t, err)
	want := []string{hooked.ID + " job.started", failing.ID + " job.started", hooked.ID + " job.completed", failing.ID + " job.failed"}
	got := events()
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox\n got %v\nwant %v", got, want)
	}
	// Delivery concurrency goes by host: the host is recorded, lower-case,
	// and a sender's busy hosts can be left out.
	ds, err := db.ClaimWebhooks(ctx, time.Now().Add(time.Hour), 100, []string{"hooks.example.com:8443"}, 0)
	must(t, err)
	if len(ds) != 2 || ds[0].JobID != failing.ID || ds[1].JobID != failing.ID {
		t.Fatalf("due but for the busy host: %+v", ds)
	}
	must(t, db.Close())
	db = openAt(t, dsn)
	defer db.Close()
	if got := events(); len(got) != 4 {
		t.Fatalf("after a restart: %v", got)
	}
}

// A delivery is claimed by one sender at a time: a second sender (another
// daemon) does not get it while the claim holds, gets it once it is
// released, and a recorded attempt ends the claim.
func TestClaimWebhooksIsExclusive(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := newJobFor(k.ID, 1)
	j.WebhookURL = "https://hooks.example.com/in"
	must(t, db.CreateJob(ctx, j, true, ""))
	claimOne(t, db, j.ID) // writes the job.started delivery
	later := time.Now().Add(time.Hour)
	first, err := db.ClaimWebhooks(ctx, later, 10, nil, time.Hour)
	must(t, err)
	if len(first) != 1 {
		t.Fatalf("first sender got %d deliveries", len(first))
	}
	second, err := db.ClaimWebhooks(ctx, later, 10, nil, time.Hour)
	must(t, err)
	if len(second) != 0 {
		t.Fatalf("a claimed delivery was handed out twice: %+v", second)
	}
	must(t, db.ReleaseWebhooks(ctx, []string{first[0].ID}))
	again, err := db.ClaimWebhooks(ctx, later, 10, nil, time.Hour)
	must(t, err)
	if len(again) != 1 || again[0].ID != first[0].ID {
		t.Fatalf("after a release: %+v", again)
	}
	must(t, db.RecordWebhookAttempt(ctx, first[0].ID, false, false, 500, "boom", time.Now().Add(-time.Second)))
	retry, err := db.ClaimWebhooks(ctx, later, 10, nil, time.Hour)
	must(t, err)
	if len(retry) != 1 || retry[0].Attempts != 1 {
		t.Fatalf("after a failed attempt the delivery is claimable again: %+v", retry)
	}
}
