package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"vidmatte"
)

// expireLease makes a job's lease run out, as the passing of its length
// without a heartbeat would.
func expireLease(t *testing.T, db *DB, id string) {
	t.Helper()
	_, err := db.w.Exec("UPDATE jobs SET lease_until = 1 WHERE id = ?", id)
	must(t, err)
}

func wantLeaseLost(t *testing.T, err error) {
	t.Helper()
	if vidmatte.ErrorCode(err) != vidmatte.CodeConflict || !errors.Is(err, vidmatte.ErrLeaseLost) {
		t.Fatalf("a write with a stale lease: %v", err)
	}
}

// A claim gives a lease whose token grows at every claim; heartbeats renew
// it; once it has run out any daemon rescues the job, and from then on
// the old holder can write nothing: no progress, no completion, no charge.
func TestLeasesFenceStaleRunners(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	first := claimOne(t, db, j.ID)
	if first.LeaseToken != 1 || first.LeaseUntil == nil {
		t.Fatalf("first claim's lease: %d %v", first.LeaseToken, first.LeaseUntil)
	}
	lost, err := db.Heartbeat(ctx, "w1", []vidmatte.Lease{first.Lease()})
	must(t, err)
	if len(lost) != 0 {
		t.Fatalf("a held lease reported lost: %v", lost)
	}
	renewed, err := db.FindJob(ctx, "", j.ID)
	must(t, err)
	if renewed.LeaseUntil.Before(*first.LeaseUntil) {
		t.Fatalf("the heartbeat moved the lease back: %v then %v", first.LeaseUntil, renewed.LeaseUntil)
	}
	// Not expired: nothing to rescue.
	rescued, err := db.RescueJobs(ctx, 3)
	must(t, err)
	if len(rescued) != 0 {
		t.Fatalf("rescued a held job: %v", jobIDs(rescued))
	}

	expireLease(t, db, j.ID)
	rescued, err = db.RescueJobs(ctx, 3)
	must(t, err)
	if len(rescued) != 1 || rescued[0].Status != vidmatte.StatusQueued || rescued[0].BillingStatus != vidmatte.BillingReserved {
		t.Fatalf("rescue: %+v", rescued)
	}
	second := claimOne(t, db, j.ID)
	if second.LeaseToken != 2 || second.Attempts != 2 {
		t.Fatalf("second claim: token %d attempts %d", second.LeaseToken, second.Attempts)
	}

	// The first runner wakes up.
	_, err = db.SetJobProgress(ctx, first.Lease(), 50, 10, 300)
	wantLeaseLost(t, err)
	_, err = db.CompleteJob(ctx, first.Lease(), vidmatte.JobOutput{Path: "/out/stale.webm"})
	wantLeaseLost(t, err)
	_, err = db.FailJob(ctx, first.Lease(), vidmatte.JobError{Code: vidmatte.CodeInternal, Message: "x"})
	wantLeaseLost(t, err)
	_, err = db.RequeueJob(ctx, first.Lease(), "shutdown")
	wantLeaseLost(t, err)
	lost, err = db.Heartbeat(ctx, "w1", []vidmatte.Lease{first.Lease()})
	must(t, err)
	if !reflect.DeepEqual(lost, map[string]vidmatte.Status{j.ID: vidmatte.StatusProcessing}) {
		t.Fatalf("the stale heartbeat: %v", lost)
	}
	cur, err := db.FindJob(ctx, "", j.ID)
	must(t, err)
	if cur.Status != vidmatte.StatusProcessing || cur.Progress != 0 || cur.LeaseToken != 2 {
		t.Fatalf("the stale runner changed the job: %+v", cur)
	}

	// The holder completes it, charged once.
	done, err := db.CompleteJob(ctx, second.Lease(), vidmatte.JobOutput{Path: "/out/j.webm"})
	must(t, err)
	if done.Status != vidmatte.StatusCompleted {
		t.Fatalf("completed: %+v", done)
	}
	if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, []string{"reserve:1000", "charge:1000"}) {
		t.Fatalf("ledger %v", rows)
	}
	checkLedger(t, db)
}

// A cancel made through any daemon reaches the runner in its heartbeat's
// answer; a job whose lease ran out past its attempts fails, refunded.
func TestHeartbeatCarriesCancelAndRescueFails(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	a := createJob(t, db, k.ID, 1, true)
	b := createJob(t, db, k.ID, 1, true)
	js, err := db.ClaimJobs(ctx, "w1", 2)
	must(t, err)
	if len(js) != 2 {
		t.Fatalf("claimed %d", len(js))
	}
	_, err = db.CancelJob(ctx, k.ID, a.ID, "canceled by the client", "req_1")
	must(t, err)
	lost, err := db.Heartbeat(ctx, "w1", []vidmatte.Lease{js[0].Lease(), js[1].Lease()})
	must(t, err)
	if !reflect.DeepEqual(lost, map[string]vidmatte.Status{a.ID: vidmatte.StatusCanceled}) {
		t.Fatalf("heartbeat after a cancel: %v", lost)
	}
	// Another worker's heartbeat does not renew w1's lease.
	lost, err = db.Heartbeat(ctx, "w2", []vidmatte.Lease{leaseOf(t, db, b.ID)})
	must(t, err)
	if lost[b.ID] != vidmatte.StatusProcessing {
		t.Fatalf("another worker's heartbeat: %v", lost)
	}
	expireLease(t, db, b.ID)
	rescued, err := db.RescueJobs(ctx, 1)
	must(t, err)
	if len(rescued) != 1 || rescued[0].Status != vidmatte.StatusFailed || rescued[0].BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("rescue past the attempts: %+v", rescued)
	}
	checkLedger(t, db)
}

// An interrupted attempt counts against a job only when it made no
// progress: a job that moves on at every attempt is never given up, and
// one that stops at the same point attempt after attempt is, after
// maxAttempts in a row (whether a restart or a rescue takes it back).
func TestAttemptsCountOnlyWithoutProgress(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	for i := 1; i <= 4; i++ {
		c := claimOne(t, db, j.ID)
		_, err := db.SetJobProgress(ctx, c.Lease(), i*10, int64(i*30), 300)
		must(t, err)
		expireLease(t, db, j.ID)
		rescued, err := db.RescueJobs(ctx, 2)
		must(t, err)
		if len(rescued) != 1 || rescued[0].Status != vidmatte.StatusQueued {
			t.Fatalf("attempt %d made progress, yet: %+v", i, rescued)
		}
	}
	// Now it stops at the same frame twice in a row.
	for i := 1; i <= 2; i++ {
		c := claimOne(t, db, j.ID)
		_, err := db.SetJobProgress(ctx, c.Lease(), 40, 120, 300) // frame 120 again
		must(t, err)
		rec, err := db.RecoverJobs(ctx, 2)
		must(t, err)
		want := vidmatte.StatusQueued
		if i == 2 {
			want = vidmatte.StatusFailed
		}
		if len(rec) != 1 || rec[0].Status != want {
			t.Fatalf("stalled attempt %d: %+v", i, rec)
		}
	}
	got, err := db.FindJob(ctx, "", j.ID)
	must(t, err)
	if got.Attempts != 6 || got.BillingStatus != vidmatte.BillingRefunded {
		t.Fatalf("after the stalls: attempts %d, %s", got.Attempts, got.BillingStatus)
	}
	checkLedger(t, db)
}

// A daemon frozen inside a transaction (here: one holding the row of the
// job it runs, as a heartbeat does, and then stopping) does not block the
// others: a rescue skips the locked row instead of waiting on it, and
// PostgreSQL ends the frozen session after idleInTransaction (shortened
// here to 1 s), so a later rescue takes the job. The frozen daemon's store still
// works once it wakes. A URL that sets the timeout keeps its own.
func TestFrozenTransactionDoesNotBlockRescue(t *testing.T) {
	if testBackend != "postgres" {
		t.Skip("about PostgreSQL sessions; SQLite has one writer in one process")
	}
	ctx := context.Background()
	dsn := testDSN(t)
	show := func(db *DB) string {
		t.Helper()
		var v string
		must(t, db.w.QueryRow("SHOW idle_in_transaction_session_timeout").Scan(&v))
		return v
	}
	rescuer := openAt(t, dsn)
	defer rescuer.Close()
	if v := show(rescuer); v != "10s" {
		t.Fatalf("the store's sessions: idle_in_transaction_session_timeout %q, want 10s", v)
	}
	own := openAt(t, dsn+"&idle_in_transaction_session_timeout=5000")
	defer own.Close()
	if v := show(own); v != "5s" {
		t.Fatalf("the URL's own setting: %q, want 5s", v)
	}
	defer func(d time.Duration) { idleInTransaction = d }(idleInTransaction)
	idleInTransaction = time.Second
	frozen := openAt(t, dsn)
	defer frozen.Close()
	if v := show(frozen); v != "1s" {
		t.Fatalf("the frozen daemon's sessions: %q, want 1s", v)
	}

	k, _ := newKey(t, rescuer, 10)
	j := createJob(t, rescuer, k.ID, 1, true)
	held := claimOne(t, rescuer, j.ID)
	expireLease(t, rescuer, j.ID)
	locked, wake := make(chan struct{}), make(chan struct{})
	froze := make(chan error, 1)
	go func() {
		froze <- frozen.write(ctx, "freeze", func(tx *txn) error {
			var id string
			if err := tx.QueryRowContext(ctx, "SELECT id FROM jobs WHERE id = ? FOR_UPDATE", j.ID).Scan(&id); err != nil {
				return err
			}
			close(locked)
			<-wake
			_, err := tx.ExecContext(ctx, "UPDATE jobs SET progress = 99 WHERE id = ?", j.ID)
			return err
		})
	}()
	<-locked
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	rescued, err := rescuer.RescueJobs(rctx, 3)
	must(t, err)
	if len(rescued) != 0 {
		t.Fatalf("rescued %v under the frozen transaction's lock", jobIDs(rescued))
	}
	for len(rescued) == 0 {
		time.Sleep(50 * time.Millisecond)
		rescued, err = rescuer.RescueJobs(rctx, 3)
		must(t, err)
	}
	if len(rescued) != 1 || rescued[0].ID != j.ID {
		t.Fatalf("rescued %v, want %s", jobIDs(rescued), j.ID)
	}
	t.Logf("rescued %.1f s after the holder froze", time.Since(start).Seconds())
	close(wake)
	if err := <-froze; err == nil {
		t.Fatal("the frozen transaction committed after its session was ended")
	}
	cur, err := rescuer.FindJob(ctx, "", j.ID)
	must(t, err)
	if cur.Progress == 99 || cur.Status != vidmatte.StatusQueued {
		t.Fatalf("after the frozen transaction: %+v", cur)
	}
	lost, err := frozen.Heartbeat(ctx, "w1", []vidmatte.Lease{held.Lease()})
	must(t, err)
	if !reflect.DeepEqual(lost, map[string]vidmatte.Status{j.ID: vidmatte.StatusQueued}) {
		t.Fatalf("the woken daemon's heartbeat: %v", lost)
	}
}
