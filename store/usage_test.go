package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"vidmatte"
)

func TestUsageSummary(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	clock := withClock(db, time.Date(2030, 1, 1, 23, 0, 0, 0, time.UTC))
	k, _ := newKey(t, db, 100)
	other, _ := newKey(t, db, 100)

	// finish runs a job to an outcome on the clock's current day.
	finish := func(keyID string, credits, seconds float64, complete bool) {
		t.Helper()
		j := newJobFor(keyID, credits)
		j.DurationSec = seconds
		must(t, db.CreateJob(ctx, j, true, ""))
		claimOne(t, db, j.ID)
		if complete {
			_, err := db.CompleteJob(ctx, leaseOf(t, db, j.ID), vidmatte.JobOutput{Path: "/out"})
			must(t, err)
		} else {
			_, err := db.FailJob(ctx, leaseOf(t, db, j.ID), vidmatte.JobError{Message: "broken"})
			must(t, err)
		}
	}
	// Jan 1: one charged job (outside a 3-day window ending Jan 5).
	finish(k.ID, 1, 10, true)
	// Jan 3: two charged, one refunded.
	clock.set(time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC))
	finish(k.ID, 2.5, 20.5, true)
	finish(k.ID, 0.125, 3, true)
	finish(k.ID, 4, 40, false)
	finish(other.ID, 7, 70, true) // another key's: never counted
	// Jan 5, the last microseconds of the day: one charged.
	clock.set(time.Date(2030, 1, 5, 23, 59, 59, 999990000, time.UTC))
	finish(k.ID, 0.001, 1, true)
	// And one job still queued, holding its reservation.
	clock.set(time.Date(2030, 1, 5, 12, 0, 0, 0, time.UTC))
	createJob(t, db, k.ID, 3, true)

	s, err := db.UsageSummary(ctx, k.ID, 3, time.Date(2030, 1, 5, 8, 0, 0, 0, time.FixedZone("UTC-10", -10*3600)))
	must(t, err)
	// 08:00 at UTC-10 is 18:00 UTC, Jan 5: the window is Jan 3..5.
	want := []vidmatte.UsageDay{
		{Date: "2030-01-03", Jobs: 2, Seconds: 23.5, Credits: 2.625, Refunded: 4},
		{Date: "2030-01-04"},
		{Date: "2030-01-05", Jobs: 1, Seconds: 1, Credits: 0.001},
	}
	if !reflect.DeepEqual(s.Days, want) {
		t.Fatalf("days\n got %+v\nwant %+v", s.Days, want)
	}
	if s.TotalJobs != 3 || s.TotalSeconds != 24.5 || s.TotalCredits != 2.626 || s.TotalRefunded != 4 {
		t.Fatalf("totals %+v", s)
	}
	// 100 - 1 - 2.625 - 0.001 charged, 3 reserved.
	if s.Balance != 93.374 || s.Reserved != 3 {
		t.Fatalf("balance %v reserved %v", s.Balance, s.Reserved)
	}

	s, err = db.UsageSummary(ctx, k.ID, 30, time.Date(2030, 1, 5, 0, 0, 0, 0, time.UTC))
	must(t, err)
	if len(s.Days) != 30 || s.Days[0].Date != "2029-12-07" || s.Days[29].Date != "2030-01-05" || s.TotalJobs != 4 || s.TotalCredits != 3.626 {
		t.Fatalf("30 days: %d days from %s to %s, %d jobs, %v credits", len(s.Days), s.Days[0].Date, s.Days[len(s.Days)-1].Date, s.TotalJobs, s.TotalCredits)
	}
	for _, d := range []int{0, -1, 367} {
		_, err := db.UsageSummary(ctx, k.ID, d, time.Now())
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	_, err = db.UsageSummary(ctx, "key_nope", 1, time.Now())
	wantCode(t, err, vidmatte.CodeNotFound)

	evs, err := db.UsageEvents(ctx, k.ID, 3)
	must(t, err)
	if len(evs) != 3 || evs[0].Type != vidmatte.LedgerReserve || evs[0].Credits != 3 || evs[1].Type != vidmatte.LedgerCharge ||
		evs[1].Credits != 0.001 || evs[1].Seconds != 1 || evs[1].Model != "isnet" || evs[1].JobID == "" || evs[2].Type != vidmatte.LedgerReserve {
		t.Fatalf("latest events %+v", evs)
	}
	if d := evs[1].CreatedAt.Format(time.DateOnly); d != "2030-01-05" {
		t.Fatalf("charge dated %s", d)
	}
	all, err := db.UsageEvents(ctx, k.ID, 100)
	must(t, err)
	// grant + 5 × (reserve + settle) + 1 reserve
	if len(all) != 12 || all[len(all)-1].Type != vidmatte.LedgerGrant {
		t.Fatalf("%d events, oldest %+v", len(all), all[len(all)-1])
	}
	def, err := db.UsageEvents(ctx, k.ID, 0)
	must(t, err)
	if len(def) != 12 {
		t.Fatalf("default limit gave %d", len(def))
	}
	for _, l := range []int{-1, 101} {
		_, err := db.UsageEvents(ctx, k.ID, l)
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	_, err = db.UsageEvents(ctx, "key_nope", 1)
	wantCode(t, err, vidmatte.CodeNotFound)
	checkLedger(t, db)
}

func TestCreditsKeepThousandths(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, _ := newKey(t, db, 0.3)
	// 0.1 three times is 0.30000000000000004 in floating point; in
	// thousandths it is exactly the balance.
	for i := 0; i < 3; i++ {
		must(t, db.CreateJob(ctx, newJobFor(k.ID, 0.1), true, ""))
	}
	if b := balance(t, db, k.ID); b != 0 {
		t.Fatalf("balance %v", b)
	}
	// Credits are rounded to thousandths.
	j := newJobFor(k.ID, 0.0004)
	must(t, db.CreateJob(ctx, j, true, ""))
	if j.Credits != 0 {
		t.Fatalf("credits %v", j.Credits)
	}
	checkLedger(t, db)
}
