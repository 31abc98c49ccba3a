package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
	"vidmatte/service"
)

// deadClaim writes what a request that died with its daemon had written:
// its claim of the Idempotency-Key, with a lease that has run out.
func deadClaim(t *testing.T, e *testEnv, key, path, hash string) {
	t.Helper()
	t0 := time.Now().UTC().Add(-time.Hour)
	rec := &vidmatte.IdempotencyRecord{KeyID: e.keyObj.ID, Key: key, Method: "POST", Path: path,
		BodyHash: hash, CreatedAt: t0, LeaseUntil: t0.Add(time.Minute)}
	if _, claimed, err := e.db.BeginIdempotent(context.Background(), rec); err != nil || !claimed {
		t.Fatalf("claim: %v %v", claimed, err)
	}
}

// A request that died after its job was committed but before its answer
// was kept: the retry that takes the claim over answers with that job, and
// nothing is created or reserved twice (the claim learned the job's id in
// the job's own transaction).
func TestIdempotentRetryAfterCrashAfterTheChange(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	video := e.uploadClip(time.Second)
	body := fmt.Sprintf(`{"video_url":%q}`, video)
	sum := sha256.Sum256([]byte("POST /v1/jobs\n" + body))
	deadClaim(t, e, "died-after-commit", "/v1/jobs", hex.EncodeToString(sum[:]))
	// The dead request's change, made under its claim.
	claimCtx := vidmatte.WithIdempotencyClaim(ctx, e.keyObj.ID, "died-after-commit")
	j, err := e.svc.CreateJob(claimCtx, service.JobRequest{KeyID: e.keyObj.ID, VideoURL: video, AutoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"Idempotency-Key": "died-after-commit"}
	r := e.postJSON("/v1/jobs", body, hdr)
	if r.StatusCode != http.StatusCreated || r.json(t)["job_id"] != j.ID || r.json(t)["success"] != true {
		t.Fatalf("retry after the crash: %d %s (want job %s)", r.StatusCode, r.body, j.ID)
	}
	again := e.postJSON("/v1/jobs", body, hdr)
	if again.StatusCode != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || again.json(t)["job_id"] != j.ID {
		t.Fatalf("replay: %d %s", again.StatusCode, again.body)
	}
	jobs, err := e.db.ListJobs(ctx, e.keyObj.ID, vidmatte.JobFilter{Limit: 100})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d jobs (%v), want 1", len(jobs), err)
	}
	events, err := e.db.UsageEvents(ctx, e.keyObj.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	reserves := 0
	for _, ev := range events {
		if ev.Type == vidmatte.LedgerReserve {
			reserves++
		}
	}
	if reserves != 1 {
		t.Fatalf("%d reservations, want 1: %+v", reserves, events)
	}

	// The same for a cancel that died after its change: the retry answers
	// with the canceled job instead of a 409 for canceling twice.
	sum = sha256.Sum256([]byte("POST /v1/jobs/" + j.ID + "/cancel\n"))
	deadClaim(t, e, "cancel-died", "/v1/jobs/"+j.ID+"/cancel", hex.EncodeToString(sum[:]))
	if _, err := e.svc.CancelJob(vidmatte.WithIdempotencyClaim(ctx, e.keyObj.ID, "cancel-died"), e.keyObj.ID, j.ID, ""); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil, map[string]string{"Idempotency-Key": "cancel-died"})
	if r.StatusCode != http.StatusOK || r.json(t)["status"] != "canceled" {
		t.Fatalf("cancel retried after the crash: %d %s", r.StatusCode, r.body)
	}
}

// An upload that died after its record was committed: the retry answers
// with that upload and keeps no second file.
func TestIdempotentUploadRetryAfterCrashAfterTheChange(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: time.Second})
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("clip.mp4\n"))
	h.Write(data)
	deadClaim(t, e, "upload-died", "/v1/uploads", "upload "+hex.EncodeToString(h.Sum(nil)))
	path := e.svc.NewUploadPath("clip.mp4")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.ReceiveUpload(vidmatte.WithIdempotencyClaim(ctx, e.keyObj.ID, "upload-died"), e.keyObj.ID, path, "clip.mp4", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	r := e.uploadBytes(data, "clip.mp4", map[string]string{"Idempotency-Key": "upload-died"})
	if r.StatusCode != http.StatusCreated || r.json(t)["video_id"] != up.ID {
		t.Fatalf("upload retried after the crash: %d %s (want %s)", r.StatusCode, r.body, up.ID)
	}
	if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 1 {
		t.Fatalf("uploads kept: %v", f)
	}
	if h, err := e.db.KeyHoldings(ctx, e.keyObj.ID); err != nil || h.StoredBytes != int64(len(data)) {
		t.Fatalf("stored bytes %+v %v", h, err)
	}
}
