package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/internal/testmedia"
)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(http.MethodGet, "/v1/openapi.json", nil, map[string]string{"X-Api-Key": ""})
	if r.StatusCode != 200 || !json.Valid(r.body) {
		t.Fatalf("openapi: %d", r.StatusCode)
	}
}

// Integration check: a valid key is a 200, a missing, wrong or revoked one
// a 401 with the structured error.
func TestAuthValidVersusInvalidKey(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.get("/v1/jobs"); r.StatusCode != 200 {
		t.Fatalf("valid key: %d %s", r.StatusCode, r.body)
	}
	for name, key := range map[string]string{"missing": "", "wrong": "vmk_not-a-real-key", "long": strings.Repeat("x", 300)} {
		r := e.do(http.MethodGet, "/v1/jobs", nil, map[string]string{"X-Api-Key": key})
		if r.StatusCode != 401 || r.errCode(t) != "invalid_api_key" {
			t.Fatalf("%s key: %d %s", name, r.StatusCode, r.body)
		}
	}
	if err := e.db.RevokeKey(context.Background(), e.keyObj.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/v1/jobs"); r.StatusCode != 401 {
		t.Fatalf("revoked key: %d", r.StatusCode)
	}
	// Public routes need no key.
	for _, p := range []string{"/api/pricing", "/health", "/metrics", "/v1/openapi.json"} {
		if r := e.do(http.MethodGet, p, nil, map[string]string{"X-Api-Key": ""}); r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, r.StatusCode, r.body)
		}
	}
}

// Integration check: a burst gets 429 with Retry-After and the rate-limit
// headers, and is served again after Retry-After. The server's clock
// stands still until the test moves it, so the bucket refills only when the
// test says, however long the requests take.
func TestRateLimitBurstAndRecovery(t *testing.T) {
	clock := &testClock{now: time.Now()}
	e := newEnv(t, func(c *envConfig) { c.RateLimit = 2; c.RateBurst = 5; c.Now = clock.Now })
	var limited *response
	for i := 0; i < 8; i++ {
		r := e.get("/v1/usage/events")
		if r.Header.Get("RateLimit-Policy") != `"per-key";q=5;w=3` {
			t.Fatalf("RateLimit-Policy %q", r.Header.Get("RateLimit-Policy"))
		}
		if !strings.HasPrefix(r.Header.Get("RateLimit"), `"per-key";r=`) {
			t.Fatalf("RateLimit %q", r.Header.Get("RateLimit"))
		}
		if r.StatusCode == 429 {
			limited = r
			break
		}
		if r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	if limited == nil {
		t.Fatal("a burst of 8 over a bucket of 5 was never limited")
	}
	if limited.errCode(t) != "rate_limited" {
		t.Fatalf("429 code: %s", limited.body)
	}
	ra, err := strconv.Atoi(limited.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	// Another key has a bucket of its own.
	_, other, _ := e.db.CreateKey(context.Background(), "other", 1)
	if r := e.do(http.MethodGet, "/v1/jobs", nil, map[string]string{"X-Api-Key": other}); r.StatusCode != 200 {
		t.Fatalf("other key: %d", r.StatusCode)
	}
	if r := e.get("/v1/usage/events"); r.StatusCode != 429 {
		t.Fatalf("before Retry-After: %d %s", r.StatusCode, r.body)
	}
	clock.advance(time.Duration(ra) * time.Second)
	if r := e.get("/v1/usage/events"); r.StatusCode != 200 {
		t.Fatalf("after Retry-After: %d %s", r.StatusCode, r.body)
	}
}

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Integration check: the same Idempotency-Key replays the first response
// and creates nothing twice; another body with it is a 422.
func TestIdempotentCreate(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(2 * time.Second)
	body := fmt.Sprintf(`{"video_url":%q,"output_format":"webm","metadata":{"order":"42"}}`, video)
	h := map[string]string{"Idempotency-Key": "order-42"}
	first := e.postJSON("/v1/jobs", body, h)
	if first.StatusCode != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.StatusCode, first.Header, first.body)
	}
	second := e.postJSON("/v1/jobs", body, h)
	if second.StatusCode != 201 || second.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", second.StatusCode, second.Header)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Fatalf("replay differs:\n%s\n%s", first.body, second.body)
	}
	jobs, err := e.db.ListJobs(context.Background(), e.keyObj.ID, vidmatte.JobFilter{Limit: 100})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs after a replay: %d %v", len(jobs), err)
	}
	evs, _ := e.db.UsageEvents(context.Background(), e.keyObj.ID, 100)
	reserves := 0
	for _, ev := range evs {
		if ev.Type == vidmatte.LedgerReserve {
			reserves++
		}
	}
	if reserves != 1 {
		t.Fatalf("%d reservations after a replay", reserves)
	}
	other := e.postJSON("/v1/jobs", strings.Replace(body, "42", "43", 1), h)
	if other.StatusCode != 422 || other.errCode(t) != "unprocessable" {
		t.Fatalf("reused key with another body: %d %s", other.StatusCode, other.body)
	}
	// Another key may use the same Idempotency-Key for its own request.
	_, k2, _ := e.db.CreateKey(context.Background(), "second", 100)
	r := e.postJSON("/v1/jobs", body, map[string]string{"Idempotency-Key": "order-42", "X-Api-Key": k2})
	if r.StatusCode == 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another key's request was replayed: %d", r.StatusCode)
	}
	// Uploads are idempotent on the file's name and content.
	p := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 5})
	u1 := e.upload(p, "a.mp4", map[string]string{"Idempotency-Key": "up-1"})
	u2 := e.upload(p, "a.mp4", map[string]string{"Idempotency-Key": "up-1"})
	if u1.StatusCode != 201 || u2.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(u1.body, u2.body) {
		t.Fatalf("upload replay: %d %d %v", u1.StatusCode, u2.StatusCode, u2.Header)
	}
	if u3 := e.upload(p, "b.mp4", map[string]string{"Idempotency-Key": "up-1"}); u3.StatusCode != 422 {
		t.Fatalf("upload with a reused key: %d", u3.StatusCode)
	}
	files, _ := os.ReadDir(filepath.Join(e.dir, "uploads"))
	if len(files) != 2 { // the clip of the jobs and one of the replayed upload
		t.Fatalf("%d files in uploads after replays", len(files))
	}
}

// Integration check: request_id and job_id are on the log lines about a
// request, and the request id is an exemplar of the latency metric.
func TestRequestAndJobIDsInLogsAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(time.Second)
	r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), map[string]string{"X-Request-Id": "client-req-123"})
	if r.StatusCode != 201 || r.Header.Get("X-Request-Id") != "client-req-123" {
		t.Fatalf("create: %d id %q", r.StatusCode, r.Header.Get("X-Request-Id"))
	}
	jobID := r.json(t)["job_id"].(string)
	found := false
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["request_id"] == "client-req-123" && m["job_id"] == jobID && m["msg"] == "request" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access log line with request_id and job_id %s:\n%s", jobID, e.logs.String())
	}
	// A long or unprintable client id is replaced.
	if r := e.do(http.MethodGet, "/v1/jobs", nil, map[string]string{"X-Request-Id": strings.Repeat("a", 200)}); !strings.HasPrefix(r.Header.Get("X-Request-Id"), "req_") {
		t.Fatalf("long client id kept: %q", r.Header.Get("X-Request-Id"))
	}
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{`request_id="client-req-123"`, `vidmatte_http_requests_total{code="201",method="POST",route="/v1/jobs"}`,
		`vidmatte_queue_depth 1`, `vidmatte_jobs{status="queued"} 1`} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %s:\n%s", want, text)
		}
	}
}

func TestDraftStartGetListCancel(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(3 * time.Second)
	r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"auto_start":false,"bg_type":"green","output_format":"mp4"}`, video), nil)
	if r.StatusCode != 201 {
		t.Fatalf("draft: %d %s", r.StatusCode, r.body)
	}
	j := r.json(t)
	if j["status"] != "pending" || j["success"] != true || j["billing_status"] != "none" || j["output_url"] != nil {
		t.Fatalf("draft: %s", r.body)
	}
	id := j["id"].(string)
	if j["job_id"] != id || j["model"] != "chroma" || j["credits"].(float64) != 0.3 { // 3 s × 6 / 60
		t.Fatalf("draft fields: %s", r.body)
	}
	if r := e.get("/api/download/" + id); r.StatusCode != 400 || !strings.Contains(string(r.body), "Job not completed") {
		t.Fatalf("download of a draft: %d %s", r.StatusCode, r.body)
	}
	// Starting with a transparent background on mp4 is refused.
	if r := e.postJSON("/v1/jobs/"+id+"/start", `{"background":{"type":"transparent"}}`, nil); r.StatusCode != 422 {
		t.Fatalf("transparent mp4 start: %d %s", r.StatusCode, r.body)
	}
	r = e.postJSON("/v1/jobs/"+id+"/start", `{"model":"general","output_format":"webm","background":{"type":"color","color":"#ff0000"}}`, nil)
	if r.StatusCode != 200 {
		t.Fatalf("start: %d %s", r.StatusCode, r.body)
	}
	j = r.json(t)
	if j["status"] != "queued" || j["model"] != "isnet" || j["credits"].(float64) != 3 || j["billing_status"] != "reserved" {
		t.Fatalf("started: %s", r.body)
	}
	if r := e.postJSON("/v1/jobs/"+id+"/start", ``, nil); r.StatusCode != 409 || r.errCode(t) != "conflict" {
		t.Fatalf("second start: %d %s", r.StatusCode, r.body)
	}
	if r := e.get("/v1/jobs/" + id); r.StatusCode != 200 || r.json(t)["status"] != "queued" {
		t.Fatalf("get: %d %s", r.StatusCode, r.body)
	}
	r = e.get("/v1/jobs?status=queued&limit=5")
	if jobs := r.json(t)["jobs"].([]any); len(jobs) != 1 {
		t.Fatalf("list queued: %s", r.body)
	}
	if jobs := e.get("/v1/jobs?status=completed").json(t)["jobs"].([]any); len(jobs) != 0 {
		t.Fatal("list completed is not empty")
	}
	// Another key does not see the job.
	_, other, _ := e.db.CreateKey(context.Background(), "other", 10)
	for _, p := range []string{"/v1/jobs/" + id, "/api/download/" + id} {
		if r := e.do(http.MethodGet, p, nil, map[string]string{"X-Api-Key": other}); r.StatusCode != 404 {
			t.Fatalf("another key's %s: %d", p, r.StatusCode)
		}
	}
	if r := e.do(http.MethodPost, "/v1/jobs/"+id+"/cancel", nil, map[string]string{"X-Api-Key": other}); r.StatusCode != 404 {
		t.Fatalf("another key's cancel: %d", r.StatusCode)
	}
	r = e.postJSON("/v1/jobs/"+id+"/cancel", "", nil)
	if r.StatusCode != 200 || r.json(t)["status"] != "canceled" || r.json(t)["billing_status"] != "refunded" {
		t.Fatalf("cancel: %d %s", r.StatusCode, r.body)
	}
	if r := e.postJSON("/v1/jobs/"+id+"/cancel", "", nil); r.StatusCode != 409 {
		t.Fatalf("second cancel: %d", r.StatusCode)
	}
	k, _ := e.db.FindKey(context.Background(), e.keyObj.ID)
	if k.Balance != 1000 {
		t.Fatalf("balance after a refund: %v", k.Balance)
	}
	sum := e.get("/v1/usage/summary?days=7").json(t)
	if sum["balance"].(float64) != 1000 || len(sum["daily"].([]any)) != 7 {
		t.Fatalf("summary: %v", sum)
	}
	evs := e.get("/v1/usage/events?limit=10").json(t)["events"].([]any)
	types := []string{}
	for _, ev := range evs {
		types = append(types, ev.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "refund,reserve,grant" {
		t.Fatalf("ledger events: %v", types)
	}
}

func TestInsufficientCreditsReservesNothing(t *testing.T) {
	e := newEnv(t, nil)
	_, poor, _ := e.db.CreateKey(context.Background(), "poor", 0.25)
	p := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 5, Duration: 2 * time.Second})
	up := e.upload(p, "clip.mp4", map[string]string{"X-Api-Key": poor})
	video := up.json(t)["video_url"].(string)
	r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"model":"isnet"}`, video), map[string]string{"X-Api-Key": poor})
	if r.StatusCode != 402 || r.errCode(t) != "insufficient_credits" {
		t.Fatalf("short balance: %d %s", r.StatusCode, r.body)
	}
	k, _ := e.db.AuthenticateKey(context.Background(), poor)
	if k.Balance != 0.25 {
		t.Fatalf("balance changed to %v", k.Balance)
	}
	jobs, _ := e.db.ListJobs(context.Background(), k.ID, vidmatte.JobFilter{Limit: 10})
	evs, _ := e.db.UsageEvents(context.Background(), k.ID, 10)
	if len(jobs) != 0 || len(evs) != 1 {
		t.Fatalf("after a 402: %d jobs, %d ledger events", len(jobs), len(evs))
	}
	// The cheap model fits the balance.
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"model":"chroma"}`, video), map[string]string{"X-Api-Key": poor}); r.StatusCode != 201 {
		t.Fatalf("cheap job: %d %s", r.StatusCode, r.body)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.Limits.MaxUploadBytes = 200 << 10; c.Limits.MaxBodyBytes = 4 << 10 })
	video := e.uploadClip(time.Second)
	ok := func(extra string) string { return fmt.Sprintf(`{"video_url":%q%s}`, video, extra) }
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"malformed", "POST", "/v1/jobs", `{"video_url":`, 400, "invalid_request", ""},
		{"not an object", "POST", "/v1/jobs", `[1,2]`, 400, "invalid_request", ""},
		{"trailing data", "POST", "/v1/jobs", ok("") + `{}`, 400, "invalid_request", ""},
		{"empty", "POST", "/v1/jobs", ``, 400, "invalid_request", ""},
		{"unknown field", "POST", "/v1/jobs", ok(`,"colour":"red"`), 400, "invalid_request", "colour"},
		{"duplicate field", "POST", "/v1/jobs", ok(`,"model":"chroma","model":"isnet"`), 400, "invalid_request", "model"},
		{"missing video_url", "POST", "/v1/jobs", `{"model":"chroma"}`, 400, "invalid_request", "video_url"},
		{"video_url type", "POST", "/v1/jobs", `{"video_url":42}`, 400, "invalid_request", "video_url"},
		{"video_url scheme", "POST", "/v1/jobs", `{"video_url":"file:///etc/passwd"}`, 400, "invalid_request", "video_url"},
		{"unknown upload", "POST", "/v1/jobs", fmt.Sprintf(`{"video_url":"%s/v1/uploads/vid_nope"}`, e.http.URL), 400, "invalid_request", "video_url"},
		{"auto_start type", "POST", "/v1/jobs", ok(`,"auto_start":"yes"`), 400, "invalid_request", "auto_start"},
		{"unknown model", "POST", "/v1/jobs", ok(`,"model":"nope"`), 400, "invalid_request", "model"},
		{"unknown format", "POST", "/v1/jobs", ok(`,"output_format":"avi"`), 400, "invalid_request", "output_format"},
		{"transparent mp4", "POST", "/v1/jobs", ok(`,"output_format":"mp4"`), 422, "unprocessable", "background"},
		{"color out of range", "POST", "/v1/jobs", ok(`,"background":{"type":"color","color":[0,2,0]}`), 400, "invalid_request", "background.color[1]"},
		{"color missing", "POST", "/v1/jobs", ok(`,"background":{"type":"color"}`), 400, "invalid_request", "background.color"},
		{"bad hex", "POST", "/v1/jobs", ok(`,"bg_type":"custom","bg_color":"#zzzzzz"`), 400, "invalid_request", "bg_color"},
		{"bg both forms", "POST", "/v1/jobs", ok(`,"bg_type":"green","background":{"type":"blur"}`), 400, "invalid_request", "bg_type"},
		{"background unknown field", "POST", "/v1/jobs", ok(`,"background":{"type":"blur","radius":3}`), 400, "invalid_request", "background.radius"},
		{"canvas range", "POST", "/v1/jobs", ok(`,"composition":{"canvas":{"width":0,"height":10}}`), 400, "invalid_request", "composition.canvas.width"},
		{"scale range", "POST", "/v1/jobs", ok(`,"composition":{"foreground":{"scale":-1}}`), 400, "invalid_request", "composition.foreground.scale"},
		{"anchor", "POST", "/v1/jobs", ok(`,"composition":{"foreground":{"anchor":"middle"}}`), 400, "invalid_request", "composition.foreground.anchor"},
		{"metadata value type", "POST", "/v1/jobs", ok(`,"metadata":{"a":1}`), 400, "invalid_request", "metadata.a"},
		{"metadata too many", "POST", "/v1/jobs", ok(`,"metadata":{` + manyPairs(17) + `}`), 400, "invalid_request", "metadata"},
		{"webhook scheme", "POST", "/v1/jobs", ok(`,"webhook_url":"ftp://x"`), 400, "invalid_request", "webhook_url"},
		{"huge body", "POST", "/v1/jobs", ok(`,"metadata":{"a":"` + strings.Repeat("x", 8<<10) + `"}`), 413, "payload_too_large", ""},
		{"start unknown field", "POST", "/v1/jobs/job_x/start", `{"video_url":"http://x"}`, 400, "invalid_request", "video_url"},
		{"cancel with a body field", "POST", "/v1/jobs/job_x/cancel", `{"reason":"x"}`, 400, "invalid_request", "reason"},
		{"limit range", "GET", "/v1/jobs?limit=101", ``, 400, "invalid_request", "limit"},
		{"limit type", "GET", "/v1/jobs?limit=ten", ``, 400, "invalid_request", "limit"},
		{"offset negative", "GET", "/v1/jobs?offset=-1", ``, 400, "invalid_request", "offset"},
		{"status filter", "GET", "/v1/jobs?status=done", ``, 400, "invalid_request", "status"},
		{"unknown query", "GET", "/v1/jobs?page=2", ``, 400, "invalid_request", "page"},
		{"repeated query", "GET", "/v1/jobs?limit=1&limit=2", ``, 400, "invalid_request", "limit"},
		{"days range", "GET", "/v1/usage/summary?days=91", ``, 400, "invalid_request", "days"},
		{"events limit", "GET", "/v1/usage/events?limit=0", ``, 400, "invalid_request", "limit"},
		{"traversal id", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", ``, 404, "not_found", ""},
		{"dotdot id", "GET", "/v1/jobs/job..x", ``, 404, "not_found", ""},
		{"unknown job", "GET", "/v1/jobs/job_doesnotexist", ``, 404, "not_found", ""},
		{"unknown route", "GET", "/v2/jobs", ``, 404, "not_found", ""},
		{"wrong method", "DELETE", "/v1/jobs", ``, 405, "method_not_allowed", ""},
		{"wrong method public", "POST", "/health", `{}`, 405, "method_not_allowed", ""},
		{"bad output link", "GET", "/outputs/job_x.webm?expires=1&signature=00", ``, 404, "not_found", ""},
		{"wrong content type", "POST", "/v1/jobs", ok(""), 400, "invalid_request", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.name == "wrong content type" {
				hdr["Content-Type"] = "text/plain"
			}
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := e.do(c.method, c.path, body, hdr)
			if r.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.status, r.body)
			}
			if code := r.errCode(t); code != c.code {
				t.Fatalf("code %s, want %s", code, c.code)
			}
			if c.field != "" {
				if f := r.json(t)["error"].(map[string]any)["field"]; f != c.field {
					t.Fatalf("field %v, want %s: %s", f, c.field, r.body)
				}
			}
			if c.status == 405 && r.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	t.Run("unknown model lists ids", func(t *testing.T) {
		r := e.postJSON("/v1/jobs", ok(`,"model":"nope"`), nil)
		if msg := string(r.body); !strings.Contains(msg, "chroma, isnet") {
			t.Fatalf("message does not list the ids: %s", msg)
		}
	})
	t.Run("upload over the cap", func(t *testing.T) {
		r := e.uploadBytes(bytes.Repeat([]byte{1}, 300<<10), "big.mp4", nil)
		if r.StatusCode != 413 || r.errCode(t) != "payload_too_large" {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
	})
	t.Run("upload not a video", func(t *testing.T) {
		r := e.uploadBytes([]byte("this is not a video at all, just text"), "notes.mp4", nil)
		if r.StatusCode != 415 || r.errCode(t) != "unsupported_media_type" {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
	})
	t.Run("upload of a still image", func(t *testing.T) {
		r := e.uploadBytes([]byte{}, "empty.mp4", nil)
		if r.StatusCode != 415 {
			t.Fatalf("empty file: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("upload with traversal filename", func(t *testing.T) {
		p := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 5})
		r := e.upload(p, "../../../../etc/evil:name.mp4", nil)
		if r.StatusCode != 201 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
		if fn := r.json(t)["filename"]; fn != "evilname.mp4" {
			t.Fatalf("filename kept as %q", fn)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "..", "..", "etc", "evilname.mp4")); err == nil {
			t.Fatal("a file was written outside the uploads folder")
		}
	})
	t.Run("upload without a file", func(t *testing.T) {
		r := e.do("POST", "/v1/uploads", strings.NewReader("--x--\r\n"), map[string]string{"Content-Type": "multipart/form-data; boundary=x"})
		if r.StatusCode != 400 || r.errCode(t) != "invalid_request" {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
	})
	t.Run("upload not multipart", func(t *testing.T) {
		r := e.do("POST", "/v1/uploads", strings.NewReader("{}"), nil)
		if r.StatusCode != 400 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
	})
}

func manyPairs(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

// completeJob takes a job through the store to completed with an output
// file of the given content, as the runner would.
func completeJob(t *testing.T, e *testEnv, id string, content []byte) {
	t.Helper()
	ctx := context.Background()
	jobs, err := e.db.ClaimJobs(ctx, "test", 10)
	if err != nil || len(jobs) == 0 {
		t.Fatalf("claim: %v %d", err, len(jobs))
	}
	out := filepath.Join(e.dir, "outputs", id, id+".webm")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if err := os.WriteFile(out, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var lease vidmatte.Lease
	for _, j := range jobs {
		if j.ID == id {
			lease = j.Lease()
		}
	}
	if _, err := e.db.CompleteJob(ctx, lease, vidmatte.JobOutput{Path: out}); err != nil {
		t.Fatal(err)
	}
}

func TestSignedOutputURL(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.OutputURLTTL = time.Hour })
	video := e.uploadClip(time.Second)
	id := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil).json(t)["id"].(string)
	content := bytes.Repeat([]byte("0123456789"), 1000)
	completeJob(t, e, id, content)
	j := e.get("/v1/jobs/" + id).json(t)
	if j["status"] != "completed" || j["progress"].(float64) != 100 || j["billing_status"] != "charged" {
		t.Fatalf("completed job: %v", j)
	}
	outURL := j["output_url"].(string)
	dl := e.get("/api/download/" + id).json(t)
	if dl["success"] != true || dl["output_url"] == nil {
		t.Fatalf("download: %v", dl)
	}
	path := strings.TrimPrefix(outURL, e.http.URL)
	r := e.do(http.MethodGet, path, nil, map[string]string{"X-Api-Key": ""})
	if r.StatusCode != 200 || !bytes.Equal(r.body, content) || r.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("output: %d %q %d bytes", r.StatusCode, r.Header.Get("Content-Type"), len(r.body))
	}
	r = e.do(http.MethodGet, path, nil, map[string]string{"X-Api-Key": "", "Range": "bytes=10-19"})
	if r.StatusCode != 206 || string(r.body) != "0123456789" || r.Header.Get("Content-Range") != "bytes 10-19/10000" {
		t.Fatalf("range: %d %q %q", r.StatusCode, r.Header.Get("Content-Range"), r.body)
	}
	r = e.do(http.MethodGet, path, nil, map[string]string{"X-Api-Key": "", "Range": "bytes=20000-"})
	if r.StatusCode != 416 || r.errCode(t) != "invalid_request" {
		t.Fatalf("unsatisfiable range: %d %s", r.StatusCode, r.body)
	}
	tampered := strings.Replace(path, "signature=", "signature=0", 1)
	if r := e.do(http.MethodGet, tampered, nil, map[string]string{"X-Api-Key": ""}); r.StatusCode != 404 {
		t.Fatalf("tampered signature: %d", r.StatusCode)
	}
	other := strings.Replace(path, id, "job_other", 1)
	if r := e.do(http.MethodGet, other, nil, map[string]string{"X-Api-Key": ""}); r.StatusCode != 404 {
		t.Fatalf("signature of another job: %d", r.StatusCode)
	}
	e.setNow(time.Now().Add(2 * time.Hour))
	if r := e.do(http.MethodGet, path, nil, map[string]string{"X-Api-Key": ""}); r.StatusCode != 404 || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("expired link: %d %s", r.StatusCode, r.body)
	}
}

func TestRemoteVideoURL(t *testing.T) {
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 5, Duration: 2 * time.Second})
	data, _ := os.ReadFile(clip)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/clip.mp4":
			w.Write(data)
		case "/missing.mp4":
			http.NotFound(w, r)
		case "/text.mp4":
			w.Write([]byte("not a video"))
		}
	}))
	defer remote.Close()

	e := newEnv(t, nil)
	r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/clip.mp4"}`, remote.URL), nil)
	if r.StatusCode != 201 || r.json(t)["duration_seconds"].(float64) < 1.9 {
		t.Fatalf("remote video: %d %s", r.StatusCode, r.body)
	}
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/missing.mp4"}`, remote.URL), nil); r.StatusCode != 422 {
		t.Fatalf("missing remote: %d %s", r.StatusCode, r.body)
	}
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/text.mp4"}`, remote.URL), nil); r.StatusCode != 415 {
		t.Fatalf("remote non-video: %d %s", r.StatusCode, r.body)
	}
	small := newEnv(t, func(c *envConfig) { c.Service.MaxFetchBytes = 1000 })
	if r := small.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":"%s/clip.mp4"}`, remote.URL), nil); r.StatusCode != 413 {
		t.Fatalf("remote over the limit: %d %s", r.StatusCode, r.body)
	}
	strict := newEnv(t, func(c *envConfig) { c.Fetch.AllowPrivate = false })
	for _, u := range []string{remote.URL + "/clip.mp4", "http://localhost:1/x.mp4", "http://169.254.169.254/latest", "http://[::1]:1/x", "http://10.0.0.1:1/x"} {
		r := strict.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, u), nil)
		if r.StatusCode != 400 || r.json(t)["error"].(map[string]any)["field"] != "video_url" {
			t.Fatalf("private address %s: %d %s", u, r.StatusCode, r.body)
		}
	}
	// The upload URLs of the daemon itself are not fetched.
	video := strict.uploadClip(time.Second)
	if r := strict.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil); r.StatusCode != 201 {
		t.Fatalf("own upload under strict fetching: %d %s", r.StatusCode, r.body)
	}
}

func TestHealthAndPricing(t *testing.T) {
	e := newEnv(t, nil)
	h := e.get("/health").json(t)
	if h["status"] != "ok" || h["checks"].(map[string]any)["store"] != "ok" {
		t.Fatalf("health: %v", h)
	}
	e.srv.SetDraining(true)
	r := e.get("/health")
	if r.StatusCode != 503 || r.errCode(t) != "unavailable" || r.json(t)["status"] != "draining" {
		t.Fatalf("draining health: %d %s", r.StatusCode, r.body)
	}
	p := e.get("/api/pricing").json(t)
	prices := p["model_pricing_credits_per_minute"].(map[string]any)
	if prices["chroma"].(float64) != 6 || prices["isnet"].(float64) != 60 || p["default_model"] != "chroma" {
		t.Fatalf("pricing: %v", p)
	}
	models := p["models"].([]any)
	if aliases := models[0].(map[string]any)["aliases"].([]any); len(aliases) != 2 { // greenscreen and fast
		t.Fatalf("chroma aliases: %v", aliases)
	}
}

// A duplicate of a POST still in flight with the same Idempotency-Key is a
// 409; a remote fetch past its time limit is a 504. The remote server
// holds its answer until the test releases it, so the first request is in
// flight for as long as the test needs, however slow the machine.
func TestFetchTimeoutAndIdempotencyInFlight(t *testing.T) {
	// slowRemote answers 7 of the 100000 bytes it promises, then holds the
	// rest until release is closed or the fetcher gives up.
	slowRemote := func(t *testing.T) (body string, fetching, release chan struct{}) {
		fetching, release = make(chan struct{}, 8), make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetching <- struct{}{}
			w.Header().Set("Content-Length", "100000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(slow.Close)
		return fmt.Sprintf(`{"video_url":"%s/slow.mp4"}`, slow.URL), fetching, release
	}

	t.Run("in flight", func(t *testing.T) {
		body, fetching, release := slowRemote(t)
		e := newEnv(t, func(c *envConfig) { c.Fetch.Timeout = 10 * time.Minute })
		first := make(chan *response, 1)
		go func() { first <- e.postJSON("/v1/jobs", body, map[string]string{"Idempotency-Key": "slow-1"}) }()
		<-fetching // the first request holds the key and is fetching
		if r := e.postJSON("/v1/jobs", body, map[string]string{"Idempotency-Key": "slow-1"}); r.StatusCode != 409 || r.errCode(t) != "conflict" {
			t.Fatalf("a duplicate in flight: %d %s", r.StatusCode, r.body)
		}
		close(release) // the remote ends its answer short
		if r := <-first; r.StatusCode != 422 || r.errCode(t) != "unprocessable" {
			t.Fatalf("a short remote answer: %d %s", r.StatusCode, r.body)
		}
		if files, _ := os.ReadDir(filepath.Join(e.dir, "uploads")); len(files) != 0 {
			t.Fatalf("%d files left by a failed fetch", len(files))
		}
	})

	t.Run("timeout", func(t *testing.T) {
		body, _, release := slowRemote(t)
		defer close(release)
		e := newEnv(t, func(c *envConfig) { c.Fetch.Timeout = 300 * time.Millisecond })
		if r := e.postJSON("/v1/jobs", body, map[string]string{"Idempotency-Key": "slow-2"}); r.StatusCode != 504 || r.errCode(t) != "timeout" {
			t.Fatalf("slow fetch: %d %s", r.StatusCode, r.body)
		}
		// A timed-out request is not kept: a retry runs again (and times out).
		if r := e.postJSON("/v1/jobs", body, map[string]string{"Idempotency-Key": "slow-2"}); r.StatusCode != 504 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry after a timeout: %d %v", r.StatusCode, r.Header)
		}
		if files, _ := os.ReadDir(filepath.Join(e.dir, "uploads")); len(files) != 0 {
			t.Fatalf("%d files left by timed-out fetches", len(files))
		}
	})
}
