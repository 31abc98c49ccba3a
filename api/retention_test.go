package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
	"vidmatte/service"
)

// filesIn lists the files under dir (recursively), for asserting that
// nothing was left behind.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clipServer serves one real 2 s clip at every path.
func clipServer(t *testing.T) *httptest.Server {
	t.Helper()
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: 2 * time.Second})
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	t.Cleanup(srv.Close)
	return srv
}

func errorField(t *testing.T, r *response) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

// A creation that is refused after its video was fetched (a short balance,
// a video past the limits) deletes the fetched file and its record.
func TestRefusedCreationLeavesNothing(t *testing.T) {
	remote := clipServer(t)
	e := newEnv(t, func(c *envConfig) { c.Service.Media.MaxPixels = 1 << 30 })
	ctx := context.Background()
	poor, secret, err := e.db.CreateKey(ctx, "poor", 0)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"X-Api-Key": secret}
	r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/clip.mp4"}`, remote.URL), hdr)
	if r.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("short balance: %d %s", r.StatusCode, r.body)
	}
	if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 0 {
		t.Fatalf("a refused creation left files: %v", f)
	}
	h, err := e.db.KeyHoldings(ctx, poor.ID)
	if err != nil || h.StoredBytes != 0 {
		t.Fatalf("a refused creation left an upload record: %+v %v", h, err)
	}
	// A draft needs no credits: the same fetch is kept when it succeeds.
	r = e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/clip.mp4","auto_start":false}`, remote.URL), hdr)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("draft: %d %s", r.StatusCode, r.body)
	}
	if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 1 {
		t.Fatalf("a draft's fetched video: %v", f)
	}

	short := newEnv(t, func(c *envConfig) { c.Service.Media.MaxDurationSec = 1.5 })
	r = short.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/clip.mp4"}`, remote.URL), nil)
	if r.StatusCode != http.StatusUnprocessableEntity || errorField(t, r) != "video_url" {
		t.Fatalf("fetched video past the duration limit: %d %s", r.StatusCode, r.body)
	}
	if f := filesIn(t, filepath.Join(short.dir, "uploads")); len(f) != 0 {
		t.Fatalf("a video past the limits left files: %v", f)
	}
}

// Uploads past the media limits are refused with a 422 naming the limit,
// and their file is deleted.
func TestUploadMediaLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits vidmatte.MediaLimits
	}{
		{"duration", vidmatte.MediaLimits{MaxDurationSec: 1}},
		{"frames", vidmatte.MediaLimits{MaxFrames: 15}},
		{"pixels", vidmatte.MediaLimits{MaxPixels: 160*120 - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *envConfig) { c.Service.Media = tc.limits })
			clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: 2 * time.Second})
			r := e.upload(clip, "clip.mp4", nil)
			if r.StatusCode != http.StatusUnprocessableEntity || r.errCode(t) != string(vidmatte.CodeUnprocessable) || errorField(t, r) != "file" {
				t.Fatalf("upload past the %s limit: %d %s", tc.name, r.StatusCode, r.body)
			}
			if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 0 {
				t.Fatalf("a refused upload left files: %v", f)
			}
		})
	}
}

// Per-key quotas: stored bytes (413), queued jobs and drafts (429), each
// naming its quota; another key is not affected.
func TestKeyQuotas(t *testing.T) {
	e := newEnv(t, nil)
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: time.Second})
	st, err := os.Stat(clip)
	if err != nil {
		t.Fatal(err)
	}
	e.db.SetQuotas(vidmatte.Quotas{StoredBytes: st.Size() + st.Size()/2, QueuedJobs: 1, Drafts: 1})

	r := e.upload(clip, "a.mp4", nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: %d %s", r.StatusCode, r.body)
	}
	video := r.json(t)["video_url"].(string)
	r = e.upload(clip, "b.mp4", nil)
	if r.StatusCode != http.StatusRequestEntityTooLarge || errorField(t, r) != "quota.stored_bytes" {
		t.Fatalf("upload past the stored bytes quota: %d %s", r.StatusCode, r.body)
	}
	if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 1 {
		t.Fatalf("the refused upload's file is kept: %v", f)
	}

	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil); r.StatusCode != http.StatusCreated {
		t.Fatalf("first queued job: %d %s", r.StatusCode, r.body)
	}
	r = e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil)
	if r.StatusCode != http.StatusTooManyRequests || errorField(t, r) != "quota.queued_jobs" {
		t.Fatalf("job past the queued jobs quota: %d %s", r.StatusCode, r.body)
	}
	r = e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"auto_start":false}`, video), nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("first draft: %d %s", r.StatusCode, r.body)
	}
	draft := r.json(t)["id"].(string)
	r = e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"auto_start":false}`, video), nil)
	if r.StatusCode != http.StatusTooManyRequests || errorField(t, r) != "quota.drafts" {
		t.Fatalf("draft past the drafts quota: %d %s", r.StatusCode, r.body)
	}
	// Starting the draft would make two queued jobs.
	r = e.postJSON("/v1/jobs/"+draft+"/start", `{}`, nil)
	if r.StatusCode != http.StatusTooManyRequests || errorField(t, r) != "quota.queued_jobs" {
		t.Fatalf("start past the queued jobs quota: %d %s", r.StatusCode, r.body)
	}

	_, other, err := e.db.CreateKey(context.Background(), "other", 100)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.upload(clip, "c.mp4", map[string]string{"X-Api-Key": other}); r.StatusCode != http.StatusCreated {
		t.Fatalf("another key's upload: %d %s", r.StatusCode, r.body)
	}
}

// The retention sweep deletes uploads no unfinished job needs, outputs of
// jobs completed long ago, unused background images and orphan files; an
// expired job keeps its record and ledger, without output URL; an expired
// upload cannot be used for new jobs.
func TestRetentionSweep(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	done := e.uploadClip(time.Second)    // its job completes
	waiting := e.uploadClip(time.Second) // its job waits in the queue
	doneID := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, done), nil).json(t)["id"].(string)
	completeJob(t, e, doneID, []byte("the output"))
	outURL := e.get("/v1/jobs/" + doneID).json(t)["output_url"].(string)
	waitingID := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, waiting), nil).json(t)["id"].(string)

	orphan := filepath.Join(e.dir, "uploads", "up_orphan.mp4")
	background := filepath.Join(e.dir, "backgrounds", "0123.png")
	for _, p := range []string{orphan, background} {
		if err := os.WriteFile(p, []byte("left behind"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing has outlived its lifetime yet.
	rep, err := e.svc.Sweep(ctx)
	if err != nil || rep != (service.SweepReport{}) {
		t.Fatalf("early sweep: %+v %v", rep, err)
	}
	e.setNow(time.Now().Add(8 * 24 * time.Hour))
	rep, err = e.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Uploads != 1 || rep.Outputs != 1 || rep.Orphans != 1 || rep.Backgrounds != 1 || rep.Bytes <= 0 {
		t.Fatalf("sweep: %+v", rep)
	}
	for _, p := range []string{orphan, background, filepath.Join(e.dir, "outputs", doneID)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived the sweep: %v", p, err)
		}
	}
	if f := filesIn(t, filepath.Join(e.dir, "uploads")); len(f) != 1 {
		t.Fatalf("uploads after the sweep (the queued job's must stay): %v", f)
	}

	j := e.get("/v1/jobs/" + doneID).json(t)
	if j["status"] != "completed" || j["billing_status"] != "charged" || j["output_url"] != nil {
		t.Fatalf("expired job: %v", j)
	}
	u, _ := url.Parse(outURL)
	if r := e.get(u.RequestURI()); r.StatusCode != http.StatusNotFound {
		t.Fatalf("expired output URL: %d %s", r.StatusCode, r.body)
	}
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, done), nil); r.StatusCode != http.StatusBadRequest || errorField(t, r) != "video_url" {
		t.Fatalf("job on an expired upload: %d %s", r.StatusCode, r.body)
	}
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, waiting), nil); r.StatusCode == http.StatusBadRequest {
		t.Fatalf("the queued job's upload expired: %s", r.body)
	}
	if events, err := e.db.UsageEvents(ctx, e.keyObj.ID, 100); err != nil || len(events) < 3 {
		t.Fatalf("ledger after the sweep: %v %v", events, err)
	}
	if _, err := e.db.FindJob(ctx, "", waitingID); err != nil {
		t.Fatal(err)
	}
	// A second sweep finds nothing more.
	if rep, err := e.svc.Sweep(ctx); err != nil || rep != (service.SweepReport{}) {
		t.Fatalf("second sweep: %+v %v", rep, err)
	}
}
