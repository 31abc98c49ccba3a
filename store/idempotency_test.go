package store

import (
	"context"
	"testing"
	"time"

	"vidmatte"
)

func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	clock := withClock(db, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	k, _ := newKey(t, db, 1)
	other, _ := newKey(t, db, 1)

	rec := &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "abc", Method: "POST", Path: "/v1/jobs", BodyHash: "h1"}
	existing, claimed, err := db.BeginIdempotent(ctx, rec)
	must(t, err)
	if !claimed || existing != nil || rec.CreatedAt.IsZero() || rec.Done {
		t.Fatalf("first begin: claimed %v existing %+v rec %+v", claimed, existing, rec)
	}
	// While in progress, a second request sees the claim, not done.
	again := &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "abc", Method: "POST", Path: "/v1/jobs", BodyHash: "h2"}
	existing, claimed, err = db.BeginIdempotent(ctx, again)
	must(t, err)
	if claimed || existing == nil || existing.Done || existing.BodyHash != "h1" || !existing.CreatedAt.Equal(rec.CreatedAt) {
		t.Fatalf("second begin: claimed %v existing %+v", claimed, existing)
	}
	// The same key of another API key is a separate record.
	_, claimed, err = db.BeginIdempotent(ctx, &vidmatte.IdempotencyRecord{KeyID: other.ID, Key: "abc", Method: "POST", Path: "/v1/jobs", BodyHash: "h3"})
	must(t, err)
	if !claimed {
		t.Fatal("another API key's record blocked this one")
	}

	rec.Status, rec.ContentType, rec.Body = 201, "application/json", []byte(`{"id":"job_1"}`)
	must(t, db.FinishIdempotent(ctx, rec))
	existing, claimed, err = db.BeginIdempotent(ctx, again)
	must(t, err)
	if claimed || !existing.Done || existing.Status != 201 || existing.ContentType != "application/json" || string(existing.Body) != `{"id":"job_1"}` ||
		existing.Method != "POST" || existing.Path != "/v1/jobs" {
		t.Fatalf("replay record %+v", existing)
	}
	wantCode(t, db.FinishIdempotent(ctx, rec), vidmatte.CodeConflict)
	wantCode(t, db.AbandonIdempotent(ctx, k.ID, "abc"), vidmatte.CodeConflict)
	wantCode(t, db.FinishIdempotent(ctx, &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "nope"}), vidmatte.CodeNotFound)

	// An abandoned claim lets a retry run.
	r2 := &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "def", Method: "POST", Path: "/v1/uploads", BodyHash: "x"}
	_, claimed, err = db.BeginIdempotent(ctx, r2)
	must(t, err)
	if !claimed {
		t.Fatal("def not claimed")
	}
	must(t, db.AbandonIdempotent(ctx, k.ID, "def"))
	must(t, db.AbandonIdempotent(ctx, k.ID, "def")) // nothing left: no error
	_, claimed, err = db.BeginIdempotent(ctx, r2)
	must(t, err)
	if !claimed {
		t.Fatal("def not claimable after abandon")
	}
	// An empty body is kept as empty, not lost.
	r2.Status = 204
	must(t, db.FinishIdempotent(ctx, r2))
	existing, _, err = db.BeginIdempotent(ctx, &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "def"})
	must(t, err)
	if !existing.Done || existing.Status != 204 || len(existing.Body) != 0 {
		t.Fatalf("empty-body record %+v", existing)
	}

	// A caller's own time is kept (it purges by its own clock).
	mine := time.Date(2030, 6, 3, 0, 0, 0, 5, time.UTC)
	r3 := &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "late", Method: "POST", Path: "/v1/jobs", CreatedAt: mine}
	_, _, err = db.BeginIdempotent(ctx, r3)
	must(t, err)
	existing, _, err = db.BeginIdempotent(ctx, &vidmatte.IdempotencyRecord{KeyID: k.ID, Key: "late"})
	must(t, err)
	if !existing.CreatedAt.Equal(mine) {
		t.Fatalf("created at %v, want %v", existing.CreatedAt, mine)
	}

	// Purge removes what is older than the cut-off, done or not.
	clock.set(time.Date(2030, 6, 2, 12, 0, 0, 0, time.UTC))
	n, err := db.PurgeIdempotent(ctx, time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC))
	must(t, err)
	if n != 3 {
		t.Fatalf("purged %d, want 3 (abc of both keys, def)", n)
	}
	n, err = db.PurgeIdempotent(ctx, time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC))
	must(t, err)
	if n != 0 {
		t.Fatalf("purged %d again", n)
	}
	if count(t, db, "SELECT count(*) FROM idempotency") != 1 {
		t.Fatal("the late record was purged")
	}
	_, claimed, err = db.BeginIdempotent(ctx, rec)
	must(t, err)
	if !claimed {
		t.Fatal("a purged key cannot be claimed again")
	}

	for _, bad := range []*vidmatte.IdempotencyRecord{{KeyID: k.ID}, {Key: "x"}} {
		_, _, err := db.BeginIdempotent(ctx, bad)
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	_, _, err = db.BeginIdempotent(ctx, &vidmatte.IdempotencyRecord{KeyID: "key_nope", Key: "x"})
	wantCode(t, err, vidmatte.CodeNotFound)
}
