package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"vidmatte"
)

// newJobFor builds a job of the key ready to create.
func newJobFor(keyID string, credits float64) *vidmatte.Job {
	return &vidmatte.Job{
		KeyID:        keyID,
		VideoURL:     "https://example.com/in.mp4",
		InputPath:    "/data/in.mp4",
		Model:        "isnet",
		OutputFormat: vidmatte.FormatWebM,
		Background:   vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		DurationSec:  12.5,
		FramesTotal:  300,
		Credits:      credits,
	}
}

// createJob creates a job and fails the test on an error.
func createJob(t testing.TB, db *DB, keyID string, credits float64, autoStart bool) *vidmatte.Job {
	t.Helper()
	j := newJobFor(keyID, credits)
	if err := db.CreateJob(context.Background(), j, autoStart, "req_create"); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	return j
}

// claimOne claims the job the test expects next.
func claimOne(t testing.TB, db *DB, want string) *vidmatte.Job {
	t.Helper()
	js, err := db.ClaimJobs(context.Background(), "w1", 1)
	must(t, err)
	if len(js) != 1 || (want != "" && js[0].ID != want) {
		t.Fatalf("claimed %v, want %s", jobIDs(js), want)
	}
	return js[0]
}

func jobIDs(js []*vidmatte.Job) []string {
	var ids []string
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

// ledgerRows returns a job's ledger rows as "type:thousandths".
func ledgerRows(t testing.TB, db *DB, jobID string) []string {
	t.Helper()
	rows, err := db.r.Query("SELECT type, credits_milli FROM ledger WHERE job_id = ? ORDER BY seq", jobID)
	must(t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var typ string
		var m int64
		must(t, rows.Scan(&typ, &m))
		out = append(out, fmt.Sprintf("%s:%d", typ, m))
	}
	return out
}

func balance(t testing.TB, db *DB, keyID string) float64 {
	t.Helper()
	k, err := db.FindKey(context.Background(), keyID)
	must(t, err)
	return k.Balance
}

func TestJobLifecycle(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	up := &vidmatte.Upload{KeyID: k.ID, Filename: "in.mp4", Path: "/data/uploads/in.mp4", Size: 1234, DurationSec: 12.5, Width: 640, Height: 360, FPS: 25, HasAudio: true}
	must(t, db.CreateUpload(ctx, up))
	gotUp, err := db.FindUpload(ctx, k.ID, up.ID)
	must(t, err)
	if !reflect.DeepEqual(gotUp, up) || !strings.HasPrefix(up.ID, "vid_") {
		t.Fatalf("upload round trip:\n got %+v\nwant %+v", gotUp, up)
	}

	j := newJobFor(k.ID, 2.5)
	j.UploadID = up.ID
	j.VideoURL = "vidmatte://uploads/" + up.ID
	j.Background = vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &[3]float64{0.1, 0.2, 0.3}, ImagePath: "/tmp/bg.png"}
	j.Composition = &vidmatte.Composition{Canvas: &vidmatte.Canvas{Width: 1920, Height: 1080},
		Foreground: &vidmatte.ForegroundPlacement{Anchor: vidmatte.AnchorBottomLeft, Scale: 0.5, Offset: &vidmatte.Offset{X: 10, Y: -4}}}
	j.Metadata = map[string]string{"order": "42", "é": "ü"}
	j.WebhookURL = "https://hooks.example.com/x"
	orig := *j
	start := time.Date(2031, 7, 8, 9, 10, 11, 987654321, time.UTC)
	withClock(db, start)
	must(t, db.CreateJob(ctx, j, true, "req_1"))
	if !j.CreatedAt.Equal(start.Add(time.Microsecond)) || !j.UpdatedAt.Equal(j.CreatedAt) {
		t.Fatalf("created at %v, want %v", j.CreatedAt, start.Add(time.Microsecond))
	}
	if !reflect.DeepEqual(j.Background, orig.Background) || !reflect.DeepEqual(j.Composition, orig.Composition) ||
		!reflect.DeepEqual(j.Metadata, orig.Metadata) || j.WebhookURL != orig.WebhookURL || j.UploadID != up.ID ||
		j.VideoURL != orig.VideoURL || j.InputPath != orig.InputPath || j.DurationSec != 12.5 || j.FramesTotal != 300 ||
		j.Credits != 2.5 || j.Model != "isnet" || j.OutputFormat != vidmatte.FormatWebM {
		t.Fatalf("stored job differs from the one given:\n got %+v\nwant %+v", j, orig)
	}
	if j.Status != vidmatte.StatusQueued || j.BillingStatus != vidmatte.BillingReserved || !strings.HasPrefix(j.ID, "job_") ||
		j.CreatedAt.IsZero() || j.StartedAt != nil || j.RequestID != "req_1" {
		t.Fatalf("created job %+v", j)
	}
	if b := balance(t, db, k.ID); b != 7.5 {
		t.Fatalf("balance %v after reserving 2.5 of 10", b)
	}
	got, err := db.FindJob(ctx, k.ID, j.ID)
	must(t, err)
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("job round trip:\n got %+v\nwant %+v", got, j)
	}

	c := claimOne(t, db, j.ID)
	if c.Status != vidmatte.StatusProcessing || c.Attempts != 1 || c.StartedAt == nil {
		t.Fatalf("claimed %+v", c)
	}
	var worker string
	must(t, db.r.QueryRow("SELECT worker FROM jobs WHERE id = ?", j.ID).Scan(&worker))
	if worker != "w1" {
		t.Fatalf("worker %q", worker)
	}
	st, err := db.SetJobProgress(ctx, leaseOf(t, db, j.ID), 40, 120, 300)
	must(t, err)
	if st != vidmatte.StatusProcessing {
		t.Fatalf("progress status %s", st)
	}
	done, err := db.CompleteJob(ctx, leaseOf(t, db, j.ID), vidmatte.JobOutput{Path: "/data/out/" + j.ID + ".webm"})
	must(t, err)
	if done.Status != vidmatte.StatusCompleted || done.Progress != 100 || done.BillingStatus != vidmatte.BillingCharged ||
		done.CompletedAt == nil || done.OutputPath == "" || done.FramesDone != 120 {
		t.Fatalf("completed %+v", done)
	}
	if b := balance(t, db, k.ID); b != 7.5 {
		t.Fatalf("balance %v after charge", b)
	}
	if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, []string{"reserve:2500", "charge:2500"}) {
		t.Fatalf("ledger %v", rows)
	}

	ts, err := db.Transitions(ctx, j.ID)
	must(t, err)
	want := []struct {
		from, to vidmatte.Status
		cause    string
		req      string
	}{
		{"", vidmatte.StatusQueued, CauseCreated, "req_1"},
		{vidmatte.StatusQueued, vidmatte.StatusProcessing, "claimed by w1", ""},
		{vidmatte.StatusProcessing, vidmatte.StatusCompleted, CauseCompleted, ""},
	}
	if len(ts) != len(want) {
		t.Fatalf("transitions %+v", ts)
	}
	for i, w := range want {
		if ts[i].From != w.from || ts[i].To != w.to || ts[i].Cause != w.cause || ts[i].RequestID != w.req {
			t.Errorf("transition %d: %+v, want %+v", i, ts[i], w)
		}
		if i > 0 && ts[i].At.Before(ts[i-1].At) {
			t.Errorf("transition %d is older than the one before", i)
		}
	}
	if !ts[0].At.Equal(j.CreatedAt) || !ts[2].At.Equal(*done.CompletedAt) {
		t.Errorf("transition times differ from the job's")
	}
	_, err = db.Transitions(ctx, "job_nope")
	wantCode(t, err, vidmatte.CodeNotFound)
	checkLedger(t, db)
}

func TestDraftStart(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 5)
	j := createJob(t, db, k.ID, 1, false)
	if j.Status != vidmatte.StatusPending || j.BillingStatus != vidmatte.BillingNone || balance(t, db, k.ID) != 5 {
		t.Fatalf("draft %+v", j)
	}
	if js, _ := db.ClaimJobs(ctx, "w", 10); len(js) != 0 {
		t.Fatal("a draft was claimed")
	}
	model, format := "isnet-small", vidmatte.FormatMOV
	credits := 3.25
	bg := vidmatte.Background{Type: vidmatte.BackgroundBlur}
	s, err := db.StartJob(ctx, k.ID, j.ID, vidmatte.JobPatch{Model: &model, OutputFormat: &format, Credits: &credits, Background: &bg}, "req_start")
	must(t, err)
	if s.Status != vidmatte.StatusQueued || s.Model != model || s.OutputFormat != format || s.Credits != 3.25 ||
		s.Background.Type != vidmatte.BackgroundBlur || s.BillingStatus != vidmatte.BillingReserved {
		t.Fatalf("started %+v", s)
	}
	if b := balance(t, db, k.ID); b != 1.75 {
		t.Fatalf("balance %v", b)
	}
	_, err = db.StartJob(ctx, k.ID, j.ID, vidmatte.JobPatch{}, "req_again")
	wantCode(t, err, vidmatte.CodeConflict)
	ts, err := db.Transitions(ctx, j.ID)
	must(t, err)
	if len(ts) != 2 || ts[0].To != vidmatte.StatusPending || ts[1].From != vidmatte.StatusPending || ts[1].RequestID != "req_start" || ts[1].Cause != CauseStarted {
		t.Fatalf("transitions %+v", ts)
	}
	bad := vidmatte.OutputFormat("avi")
	j2 := createJob(t, db, k.ID, 1, false)
	_, err = db.StartJob(ctx, k.ID, j2.ID, vidmatte.JobPatch{OutputFormat: &bad}, "")
	wantCode(t, err, vidmatte.CodeInvalid)
	// A canceled draft had nothing reserved and refunds nothing.
	c, err := db.CancelJob(ctx, k.ID, j2.ID, "client", "req_c")
	must(t, err)
	if c.BillingStatus != vidmatte.BillingNone || len(ledgerRows(t, db, j2.ID)) != 0 {
		t.Fatalf("canceled draft %+v", c)
	}
	checkLedger(t, db)
}

func TestKeyScoping(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	a, _ := newKey(t, db, 10)
	b, _ := newKey(t, db, 10)
	up := &vidmatte.Upload{KeyID: a.ID, Filename: "a.mp4", Path: "/x/a.mp4"}
	must(t, db.CreateUpload(ctx, up))
	ja := createJob(t, db, a.ID, 1, true)
	draft := createJob(t, db, a.ID, 1, false)

	_, err := db.FindUpload(ctx, b.ID, up.ID)
	wantCode(t, err, vidmatte.CodeNotFound)
	_, err = db.FindJob(ctx, b.ID, ja.ID)
	wantCode(t, err, vidmatte.CodeNotFound)
	_, err = db.CancelJob(ctx, b.ID, ja.ID, "x", "")
	wantCode(t, err, vidmatte.CodeNotFound)
	_, err = db.StartJob(ctx, b.ID, draft.ID, vidmatte.JobPatch{}, "")
	wantCode(t, err, vidmatte.CodeNotFound)
	js, err := db.ListJobs(ctx, b.ID, vidmatte.JobFilter{})
	must(t, err)
	if len(js) != 0 {
		t.Fatalf("key b lists %v", jobIDs(js))
	}
	_, err = db.UsageSummary(ctx, b.ID, 1, time.Now())
	must(t, err)
	jb := newJobFor(b.ID, 1)
	jb.UploadID = up.ID
	err = db.CreateJob(ctx, jb, true, "")
	wantCode(t, err, vidmatte.CodeNotFound)
	if balance(t, db, b.ID) != 10 {
		t.Fatal("a refused job moved credits")
	}
	// The runner (keyID "") sees every job.
	if _, err := db.FindJob(ctx, "", ja.ID); err != nil {
		t.Fatal(err)
	}
	all, err := db.ListJobs(ctx, "", vidmatte.JobFilter{})
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("all jobs: %v", jobIDs(all))
	}
	// A revoked key cannot start work.
	must(t, db.RevokeKey(ctx, a.ID))
	_, err = db.StartJob(ctx, a.ID, draft.ID, vidmatte.JobPatch{}, "")
	wantCode(t, err, vidmatte.CodeUnauthenticated)
	err = db.CreateJob(ctx, newJobFor(a.ID, 1), true, "")
	wantCode(t, err, vidmatte.CodeUnauthenticated)
	err = db.CreateJob(ctx, newJobFor("key_nope", 1), true, "")
	wantCode(t, err, vidmatte.CodeNotFound)
}

func TestListJobs(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, createJob(t, db, k.ID, 1, i%2 == 0).ID)
	}
	js, err := db.ListJobs(ctx, k.ID, vidmatte.JobFilter{Limit: 3, Offset: 1})
	must(t, err)
	if !reflect.DeepEqual(jobIDs(js), []string{ids[5], ids[4], ids[3]}) {
		t.Fatalf("page %v of %v", jobIDs(js), ids)
	}
	js, err = db.ListJobs(ctx, k.ID, vidmatte.JobFilter{Status: vidmatte.StatusPending, Limit: 100})
	must(t, err)
	if !reflect.DeepEqual(jobIDs(js), []string{ids[5], ids[3], ids[1]}) {
		t.Fatalf("pending %v", jobIDs(js))
	}
	for _, f := range []vidmatte.JobFilter{{Limit: 101}, {Limit: -1}, {Offset: -1}, {Status: "done"}} {
		_, err := db.ListJobs(ctx, k.ID, f)
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	counts, err := db.CountJobs(ctx)
	must(t, err)
	want := map[vidmatte.Status]int{vidmatte.StatusPending: 3, vidmatte.StatusQueued: 4, vidmatte.StatusProcessing: 0,
		vidmatte.StatusCompleted: 0, vidmatte.StatusFailed: 0, vidmatte.StatusCanceled: 0}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts %v", counts)
	}
}

func TestCreateJobValidation(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	for name, mod := range map[string]func(j *vidmatte.Job){
		"no key":      func(j *vidmatte.Job) { j.KeyID = "" },
		"no url":      func(j *vidmatte.Job) { j.VideoURL = "" },
		"no model":    func(j *vidmatte.Job) { j.Model = "" },
		"format":      func(j *vidmatte.Job) { j.OutputFormat = "avi" },
		"credits":     func(j *vidmatte.Job) { j.Credits = -1 },
		"background":  func(j *vidmatte.Job) { j.Background.Type = "plaid" },
		"duration":    func(j *vidmatte.Job) { j.DurationSec = -2 },
		"metadata":    func(j *vidmatte.Job) { j.Metadata = map[string]string{"": "x"} },
		"long value":  func(j *vidmatte.Job) { j.Metadata = map[string]string{"k": strings.Repeat("v", 513)} },
		"frames":      func(j *vidmatte.Job) { j.FramesTotal = -1 },
		"huge credit": func(j *vidmatte.Job) { j.Credits = 1e13 },
	} {
		j := newJobFor(k.ID, 1)
		mod(j)
		if err := db.CreateJob(ctx, j, true, ""); vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := count(t, db, "SELECT count(*) FROM jobs"); n != 0 {
		t.Fatalf("%d jobs written by invalid requests", n)
	}
}

func TestIllegalTransitionsAreConflicts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	draft := createJob(t, db, k.ID, 1, false)
	queued := createJob(t, db, k.ID, 1, true)

	_, err := db.CompleteJob(ctx, leaseOf(t, db, queued.ID), vidmatte.JobOutput{Path: "/out"})
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.FailJob(ctx, leaseOf(t, db, draft.ID), vidmatte.JobError{Message: "x"})
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.RequeueJob(ctx, leaseOf(t, db, queued.ID), "drain")
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.CompleteJob(ctx, leaseOf(t, db, "job_nope"), vidmatte.JobOutput{Path: "/out"})
	wantCode(t, err, vidmatte.CodeNotFound)

	claimOne(t, db, queued.ID)
	_, err = db.StartJob(ctx, k.ID, queued.ID, vidmatte.JobPatch{}, "")
	wantCode(t, err, vidmatte.CodeConflict)
	f, err := db.FailJob(ctx, leaseOf(t, db, queued.ID), vidmatte.JobError{Code: vidmatte.CodeUnprocessable, Message: "no video stream"})
	must(t, err)
	if f.Status != vidmatte.StatusFailed || f.Error == nil || f.Error.Code != vidmatte.CodeUnprocessable || f.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("failed job %+v", f)
	}
	// failed is terminal.
	_, err = db.CancelJob(ctx, k.ID, queued.ID, "x", "")
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.RequeueJob(ctx, leaseOf(t, db, queued.ID), "x")
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.CompleteJob(ctx, leaseOf(t, db, queued.ID), vidmatte.JobOutput{Path: "/out"})
	wantCode(t, err, vidmatte.CodeConflict)
	if js, _ := db.ClaimJobs(ctx, "w", 10); len(js) != 0 {
		t.Fatalf("claimed %v", jobIDs(js))
	}
	ts, err := db.Transitions(ctx, queued.ID)
	must(t, err)
	if len(ts) != 3 || ts[2].To != vidmatte.StatusFailed || ts[2].Cause != "failed: unprocessable: no video stream" {
		t.Fatalf("transitions %+v", ts)
	}
	checkLedger(t, db)
}

func TestCreditsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)

	// Completed twice: one charge.
	a := createJob(t, db, k.ID, 2, true)
	claimOne(t, db, a.ID)
	_, err := db.CompleteJob(ctx, leaseOf(t, db, a.ID), vidmatte.JobOutput{Path: "/out/a"})
	must(t, err)
	_, err = db.CompleteJob(ctx, leaseOf(t, db, a.ID), vidmatte.JobOutput{Path: "/out/a"})
	wantCode(t, err, vidmatte.CodeConflict)
	// Failed after completion: no refund.
	_, err = db.FailJob(ctx, leaseOf(t, db, a.ID), vidmatte.JobError{Message: "late"})
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.CancelJob(ctx, k.ID, a.ID, "late", "")
	wantCode(t, err, vidmatte.CodeConflict)
	if rows := ledgerRows(t, db, a.ID); !reflect.DeepEqual(rows, []string{"reserve:2000", "charge:2000"}) {
		t.Fatalf("ledger of a: %v", rows)
	}

	// Canceled twice while processing: one refund.
	b := createJob(t, db, k.ID, 3, true)
	claimOne(t, db, b.ID)
	c, err := db.CancelJob(ctx, k.ID, b.ID, "client asked", "req_cancel")
	must(t, err)
	if c.Status != vidmatte.StatusCanceled || c.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("canceled %+v", c)
	}
	_, err = db.CancelJob(ctx, k.ID, b.ID, "again", "req_cancel2")
	wantCode(t, err, vidmatte.CodeConflict)
	// The runner finds out and its outcome is refused.
	st, err := db.SetJobProgress(ctx, leaseOf(t, db, b.ID), 50, 1, 2)
	must(t, err)
	if st != vidmatte.StatusCanceled {
		t.Fatalf("progress after cancel says %s", st)
	}
	_, err = db.CompleteJob(ctx, leaseOf(t, db, b.ID), vidmatte.JobOutput{Path: "/out/b"})
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.FailJob(ctx, leaseOf(t, db, b.ID), vidmatte.JobError{Message: "x"})
	wantCode(t, err, vidmatte.CodeConflict)
	if rows := ledgerRows(t, db, b.ID); !reflect.DeepEqual(rows, []string{"reserve:3000", "refund:3000"}) {
		t.Fatalf("ledger of b: %v", rows)
	}
	// Canceled while queued: refunded too.
	q := createJob(t, db, k.ID, 1.5, true)
	_, err = db.CancelJob(ctx, "", q.ID, "operator", "")
	must(t, err)
	if b := balance(t, db, k.ID); b != 8 {
		t.Fatalf("balance %v, want 10 - 2 charged", b)
	}

	// The database refuses a second settlement even past the store's checks.
	_, err = db.w.Exec("INSERT INTO ledger (id, key_id, type, job_id, credits_milli, created_at) VALUES ('evt_x', ?, 'refund', ?, 2000, 0)", k.ID, a.ID)
	if err == nil {
		t.Fatal("a refund after a charge was accepted by the schema")
	}
	_, err = db.w.Exec("INSERT INTO ledger (id, key_id, type, job_id, credits_milli, created_at) VALUES ('evt_y', ?, 'charge', ?, 2000, 0)", k.ID, a.ID)
	if err == nil {
		t.Fatal("a second charge was accepted by the schema")
	}
	checkLedger(t, db)
}

func TestInsufficientCreditsWritesNothing(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 1.5)
	before := count(t, db, "SELECT count(*) FROM ledger")
	j := newJobFor(k.ID, 2.25)
	err := db.CreateJob(ctx, j, true, "req")
	wantCode(t, err, vidmatte.CodeInsufficientCredits)
	if msg := vidmatte.ErrorMessage(err); !strings.Contains(msg, "1.5") || !strings.Contains(msg, "2.25") {
		t.Fatalf("message %q does not give the balance and the need", msg)
	}
	if j.ID != "" {
		t.Fatal("a refused job got an id")
	}
	for _, table := range []string{"jobs", "job_transitions"} {
		if n := count(t, db, "SELECT count(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows in %s", n, table)
		}
	}
	if count(t, db, "SELECT count(*) FROM ledger") != before || balance(t, db, k.ID) != 1.5 {
		t.Fatal("a refused job moved credits")
	}

	// A draft started with too few credits stays a draft.
	d := createJob(t, db, k.ID, 5, false)
	_, err = db.StartJob(ctx, k.ID, d.ID, vidmatte.JobPatch{}, "")
	wantCode(t, err, vidmatte.CodeInsufficientCredits)
	got, err := db.FindJob(ctx, k.ID, d.ID)
	must(t, err)
	if got.Status != vidmatte.StatusPending || got.BillingStatus != vidmatte.BillingNone || len(ledgerRows(t, db, d.ID)) != 0 {
		t.Fatalf("draft after a refused start: %+v", got)
	}
	// Exactly the balance is enough.
	must(t, db.CreateJob(ctx, newJobFor(k.ID, 1.5), true, ""))
	if balance(t, db, k.ID) != 0 {
		t.Fatal("balance not zero")
	}
	checkLedger(t, db)
}

func TestClaimOrderAndLimits(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 100)
	draft := createJob(t, db, k.ID, 1, false) // oldest, but queued last
	var queued []string
	for i := 0; i < 4; i++ {
		queued = append(queued, createJob(t, db, k.ID, 1, true).ID)
	}
	_, err := db.StartJob(ctx, k.ID, draft.ID, vidmatte.JobPatch{}, "")
	must(t, err)
	queued = append(queued, draft.ID)

	js, err := db.ClaimJobs(ctx, "w", 0)
	must(t, err)
	if len(js) != 0 {
		t.Fatal("a claim of 0 claimed")
	}
	_, err = db.ClaimJobs(ctx, "", 1)
	wantCode(t, err, vidmatte.CodeInvalid)
	_, err = db.ClaimJobs(ctx, "w", -1)
	wantCode(t, err, vidmatte.CodeInvalid)
	js, err = db.ClaimJobs(ctx, "w", 3)
	must(t, err)
	if !reflect.DeepEqual(jobIDs(js), queued[:3]) {
		t.Fatalf("claimed %v, want %v", jobIDs(js), queued[:3])
	}
	js, err = db.ClaimJobs(ctx, "w", 10)
	must(t, err)
	if !reflect.DeepEqual(jobIDs(js), queued[3:]) {
		t.Fatalf("claimed %v, want %v", jobIDs(js), queued[3:])
	}
}

func TestClaimJobsConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	// Two handles on one database: the claims race across connections and
	// locks as two processes' would.
	var dbs [2]*DB
	for i := range dbs {
		db := openAt(t, dsn)
		defer db.Close()
		dbs[i] = db
	}
	k, _ := newKey(t, dbs[0], 1000)
	const jobs = 150
	for i := 0; i < jobs; i++ {
		createJob(t, dbs[i%2], k.ID, 1, true)
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		dups    []string
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[g%2]
			worker := fmt.Sprintf("w%d", g)
			for {
				js, err := db.ClaimJobs(ctx, worker, 1+g%4)
				if err != nil {
					errs <- err
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					if w, dup := claimed[j.ID]; dup {
						dups = append(dups, j.ID+" by "+w+" and "+worker)
					}
					claimed[j.ID] = worker
					if j.Status != vidmatte.StatusProcessing || j.Attempts != 1 {
						errs <- fmt.Errorf("claimed job %+v", j)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(dups) > 0 || len(claimed) != jobs {
		t.Fatalf("%d jobs claimed of %d; claimed twice: %v", len(claimed), jobs, dups)
	}
	if n := count(t, dbs[0], "SELECT count(*) FROM job_transitions WHERE to_status = 'processing'"); n != jobs {
		t.Fatalf("%d claim transitions for %d jobs", n, jobs)
	}
	rows, err := dbs[0].r.Query("SELECT id, worker FROM jobs")
	must(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, w string
		must(t, rows.Scan(&id, &w))
		if claimed[id] != w {
			t.Fatalf("job %s is held by %q, claimed by %q", id, w, claimed[id])
		}
	}
}

func TestRecoverJobs(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	a := createJob(t, db, k.ID, 2, true)
	b := createJob(t, db, k.ID, 1, true)
	claimOne(t, db, a.ID)
	_, err := db.SetJobProgress(ctx, leaseOf(t, db, a.ID), 30, 90, 300)
	must(t, err)

	_, err = db.RecoverJobs(ctx, 0)
	wantCode(t, err, vidmatte.CodeInvalid)
	// Crash 1: a goes back to the queue, ahead of b, attempt counted.
	rec, err := db.RecoverJobs(ctx, 2)
	must(t, err)
	if len(rec) != 1 || rec[0].ID != a.ID || rec[0].Status != vidmatte.StatusQueued || rec[0].Attempts != 1 ||
		rec[0].Progress != 30 || rec[0].BillingStatus != vidmatte.BillingReserved {
		t.Fatalf("recovered %+v", rec)
	}
	var worker string
	must(t, db.r.QueryRow("SELECT worker FROM jobs WHERE id = ?", a.ID).Scan(&worker))
	if worker != "" {
		t.Fatalf("recovered job still held by %q", worker)
	}
	// Crash 2: a's first attempt made progress, so it did not count;
	// this one made none (it stopped short of frame 90 again): one.
	c := claimOne(t, db, a.ID)
	if c.Attempts != 2 {
		t.Fatalf("attempts %d", c.Attempts)
	}
	claimOne(t, db, b.ID)
	rec, err = db.RecoverJobs(ctx, 2)
	must(t, err)
	if len(rec) != 2 || rec[0].ID != a.ID || rec[1].ID != b.ID || rec[0].Status != vidmatte.StatusQueued {
		t.Fatalf("recovered %v: %+v", jobIDs(rec), rec[0])
	}
	if rec[1].Status != vidmatte.StatusQueued || rec[1].Attempts != 1 {
		t.Fatalf("b: %+v", rec[1])
	}
	// Crash 3: a second attempt in a row without progress: a fails,
	// refunded.
	claimOne(t, db, a.ID)
	rec, err = db.RecoverJobs(ctx, 2)
	must(t, err)
	if len(rec) != 1 || rec[0].ID != a.ID {
		t.Fatalf("recovered %v", jobIDs(rec))
	}
	if rec[0].Status != vidmatte.StatusFailed || rec[0].BillingStatus != vidmatte.BillingRefunded || rec[0].Error == nil ||
		rec[0].CompletedAt == nil || !strings.Contains(rec[0].Error.Message, "2 times in a row without progress") {
		t.Fatalf("a after too many attempts: %+v", rec[0])
	}
	if rows := ledgerRows(t, db, a.ID); !reflect.DeepEqual(rows, []string{"reserve:2000", "refund:2000"}) {
		t.Fatalf("ledger %v", rows)
	}
	ts, err := db.Transitions(ctx, a.ID)
	must(t, err)
	var got []string
	for _, tr := range ts {
		got = append(got, fmt.Sprintf("%s>%s:%s", tr.From, tr.To, tr.Cause))
	}
	want := []string{">queued:created", "queued>processing:claimed by w1", "processing>queued:" + CauseRecovered,
		"queued>processing:claimed by w1", "processing>queued:" + CauseRecovered,
		"queued>processing:claimed by w1", "processing>failed:" + CauseTooManyAttempts}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("transitions\n got %v\nwant %v", got, want)
	}
	// Only b, never claimed again, is left queued: nothing to recover.
	rec, err = db.RecoverJobs(ctx, 2)
	must(t, err)
	if len(rec) != 0 {
		t.Fatalf("recovered again %v", jobIDs(rec))
	}
	checkLedger(t, db)
}

func TestRequeueJob(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	a := createJob(t, db, k.ID, 2, true)
	b := createJob(t, db, k.ID, 2, true)
	claimOne(t, db, a.ID)
	r, err := db.RequeueJob(ctx, leaseOf(t, db, a.ID), "draining")
	must(t, err)
	if r.Status != vidmatte.StatusQueued || r.Attempts != 0 || r.BillingStatus != vidmatte.BillingReserved {
		t.Fatalf("requeued %+v", r)
	}
	if balance(t, db, k.ID) != 6 || len(ledgerRows(t, db, a.ID)) != 1 {
		t.Fatal("requeue moved credits")
	}
	// It keeps its place ahead of b.
	claimOne(t, db, a.ID)
	claimOne(t, db, b.ID)
	ts, err := db.Transitions(ctx, a.ID)
	must(t, err)
	if len(ts) != 4 || ts[2].Cause != "draining" || ts[2].To != vidmatte.StatusQueued {
		t.Fatalf("transitions %+v", ts)
	}
	checkLedger(t, db)
}

func TestProgressIsMonotonic(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	// Not processing yet: nothing recorded, the status answered.
	st, err := db.SetJobProgress(ctx, leaseOf(t, db, j.ID), 10, 1, 100)
	must(t, err)
	if st != vidmatte.StatusQueued {
		t.Fatalf("status %s", st)
	}
	claimOne(t, db, j.ID)
	steps := []struct {
		p          int
		done, tot  int64
		wp         int
		wdone, wto int64
	}{
		{10, 30, 300, 10, 30, 300},
		{5, 20, 250, 10, 30, 300},  // lower: ignored
		{10, 30, 300, 10, 30, 300}, // same: nothing written
		{50, 20, 310, 50, 30, 310}, // mixed: each keeps its maximum
		{100, 310, 310, 100, 310, 310},
	}
	for i, s := range steps {
		st, err := db.SetJobProgress(ctx, leaseOf(t, db, j.ID), s.p, s.done, s.tot)
		must(t, err)
		if st != vidmatte.StatusProcessing {
			t.Fatalf("step %d: status %s", i, st)
		}
		got, err := db.FindJob(ctx, "", j.ID)
		must(t, err)
		if got.Progress != s.wp || got.FramesDone != s.wdone || got.FramesTotal != s.wto {
			t.Fatalf("step %d: progress %d frames %d/%d", i, got.Progress, got.FramesDone, got.FramesTotal)
		}
	}
	for _, bad := range [][3]int64{{-1, 0, 0}, {101, 0, 0}, {5, -1, 0}, {5, 0, -1}} {
		_, err := db.SetJobProgress(ctx, leaseOf(t, db, j.ID), int(bad[0]), bad[1], bad[2])
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	_, err = db.SetJobProgress(ctx, leaseOf(t, db, "job_nope"), 1, 1, 1)
	wantCode(t, err, vidmatte.CodeNotFound)
}
