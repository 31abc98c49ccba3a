package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	id, name string
	job      map[string]any
	data     string
}

// openEvents opens GET /v1/jobs/events and returns its events as they
// arrive; the channel closes when the stream ends.
func openEvents(t *testing.T, e *testEnv, key, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/v1/jobs/events", nil)
	req.Header.Set("X-Api-Key", key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		cancel()
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					if ev.name == "job" {
						json.Unmarshal([]byte(ev.data), &ev.job)
					}
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch, cancel
}

// next waits for the next job event; the stream is polled, so it comes
// within a few ticks of the change.
func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return sseEvent{}
}

// The stream sends each change of status and progress of the key's own
// jobs as the job object, never another key's; an event's id resumes the
// stream; a stream ends when the server ends its streams.
func TestJobEvents(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.EventsInterval = 10 * time.Millisecond })
	ctx := context.Background()
	if r := e.do(http.MethodGet, "/v1/jobs/events", nil, map[string]string{"X-Api-Key": ""}); r.StatusCode != 401 || r.errCode(t) != "invalid_api_key" {
		t.Fatalf("without a key: %d %s", r.StatusCode, r.body)
	}
	if r := e.get("/v1/jobs/events?since=1"); r.StatusCode != 400 || r.errCode(t) != "invalid_request" {
		t.Fatalf("an unknown parameter: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(http.MethodGet, "/v1/jobs/events", nil, map[string]string{"Last-Event-ID": "yesterday"}); r.StatusCode != 400 || r.errCode(t) != "invalid_request" {
		t.Fatalf("a bad Last-Event-ID: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(http.MethodPost, "/v1/jobs/events", strings.NewReader("{}"), nil); r.StatusCode != 405 || r.Header.Get("Allow") != "GET" {
		t.Fatalf("POST: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}

	_, otherSecret, err := e.db.CreateKey(ctx, "other", 100)
	if err != nil {
		t.Fatal(err)
	}
	video := e.uploadClip(2 * time.Second)
	otherUp := e.upload(testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 10, Duration: time.Second}), "other.mp4", map[string]string{"X-Api-Key": otherSecret}).json(t)
	if r := e.postJSON("/v1/jobs", `{"video_url":"`+otherUp["video_url"].(string)+`"}`, map[string]string{"X-Api-Key": otherSecret}); r.StatusCode != 201 {
		t.Fatalf("the other key's job: %d %s", r.StatusCode, r.body)
	}
	r := e.postJSON("/v1/jobs", `{"video_url":"`+video+`"}`, nil)
	if r.StatusCode != 201 {
		t.Fatalf("create: %d %s", r.StatusCode, r.body)
	}
	id := r.json(t)["id"].(string)

	// A new stream starts with the changes of the last seconds: the job
	// just created.
	ch, stop := openEvents(t, e, e.key, "")
	defer stop()
	ev := next(t, ch)
	if ev.name != "job" || ev.job["id"] != id || ev.job["status"] != "queued" || ev.id == "" {
		t.Fatalf("first event: %+v", ev)
	}

	claimed, err := e.db.ClaimJobs(ctx, "w1", 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", len(claimed), err)
	}
	if ev = next(t, ch); ev.job["id"] != id || ev.job["status"] != "processing" || ev.job["progress"] != 0.0 {
		t.Fatalf("after the claim: %+v", ev)
	}
	var lease vidmatte.Lease
	for _, j := range claimed {
		if j.ID == id {
			lease = j.Lease()
		}
	}
	for _, p := range []int{30, 70} {
		if _, err := e.db.SetJobProgress(ctx, lease, p, int64(p/5), 20); err != nil {
			t.Fatal(err)
		}
		if ev = next(t, ch); ev.job["id"] != id || ev.job["progress"] != float64(p) || ev.job["frames_done"] != float64(p/5) {
			t.Fatalf("after progress %d: %+v", p, ev)
		}
	}
	for _, j := range claimed {
		if j.ID != id { // the other key's job changes too, unseen here
			if _, err := e.db.SetJobProgress(ctx, j.Lease(), 50, 10, 20); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.db.CompleteJob(ctx, lease, vidmatte.JobOutput{Path: e.dir + "/out.webm", Size: 1}); err != nil {
		t.Fatal(err)
	}
	done := next(t, ch)
	if done.job["id"] != id || done.job["status"] != "completed" || done.job["progress"] != 100.0 || done.job["billing_status"] != "charged" {
		t.Fatalf("after completion: %+v", done)
	}
	if u, _ := done.job["output_url"].(string); !strings.HasPrefix(u, e.http.URL+"/outputs/"+id+".webm?") {
		t.Fatalf("completed without its output URL: %v", done.job["output_url"])
	}

	// Resuming: with the server's clock an hour ahead a new stream starts
	// after every change, but Last-Event-ID takes it back to the event.
	e.setNow(time.Now().Add(time.Hour))
	resumed, stopResumed := openEvents(t, e, e.key, done.id)
	defer stopResumed()
	if ev = next(t, resumed); ev.job["id"] != id || ev.job["status"] != "completed" {
		t.Fatalf("resumed: %+v", ev)
	}

	// Shutting down ends the streams.
	e.srv.EndStreams()
	for _, c := range []<-chan sseEvent{ch, resumed} {
		select {
		case ev, ok := <-c:
			if ok {
				t.Fatalf("an event after the end of streams: %+v", ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a stream outlived the end of streams")
		}
	}
}
