package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte"
)

// /metrics names no job: after jobs were created and observed as finished
// (as the runner reports them), neither the text nor the OpenMetrics
// scrape holds a job id.
func TestMetricsNameNoJob(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(time.Second)
	var ids []string
	for i := 0; i < 2; i++ {
		r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video), nil)
		if r.StatusCode != 201 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		id := r.json(t)["job_id"].(string)
		ids = append(ids, id)
		e.srv.Metrics().ObserveJob(id, vidmatte.StatusCompleted, 30, time.Second, 2*time.Second)
	}
	for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/metrics", nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(b)
		if !strings.Contains(text, "vidmatte_frames_processed_total") {
			t.Fatalf("%s: no frames counter:\n%s", accept, text)
		}
		for _, id := range ids {
			if strings.Contains(text, id) {
				t.Fatalf("%s: scrape names job %s:\n%s", accept, id, text)
			}
		}
		if strings.Contains(text, "job_id") || strings.Contains(text, e.keyObj.ID) {
			t.Fatalf("%s: scrape names a job or key:\n%s", accept, text)
		}
	}
}

// With a metrics token, /metrics needs it as a bearer token.
func TestMetricsToken(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.MetricsToken = "s3cret-scrape" })
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"s3cret-scrape", 401}, {"Bearer s3cret-scrape", 200}} {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
		if tc.want == 401 {
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if json.Unmarshal(b, &body) != nil || body.Error.Code != "invalid_api_key" {
				t.Fatalf("401 body: %s", b)
			}
		}
	}
}

// Every authenticated route answers 401 without a key, whatever its path
// parameters look like: authentication comes before any lookup or check of
// the id.
func TestUnauthenticatedBeforeNotFound(t *testing.T) {
	e := newEnv(t, nil)
	noKey := map[string]string{"X-Api-Key": ""}
	for _, rt := range e.srv.router.routes {
		if !rt.auth {
			continue
		}
		for _, id := range []string{"a.b", "job_missing", "%2e%2e"} {
			path := strings.ReplaceAll(rt.pattern, "{job_id}", id)
			var body io.Reader
			if rt.method == http.MethodPost {
				body = strings.NewReader(`{}`)
			}
			r := e.do(rt.method, path, body, noKey)
			if r.StatusCode != 401 || r.errCode(t) != "invalid_api_key" {
				t.Fatalf("%s %s without a key: %d %s", rt.method, path, r.StatusCode, r.body)
			}
		}
	}
}

// The access log line names key_id once.
func TestAccessLogKeyIDOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.get("/v1/jobs")
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"/v1/jobs"`) {
			if n := strings.Count(line, `"key_id"`); n != 1 {
				t.Fatalf("key_id %d times: %s", n, line)
			}
			return
		}
	}
	t.Fatalf("no access log line:\n%s", e.logs.String())
}

// A claim of an Idempotency-Key left by a request that died with its
// daemon (claimed, never finished) answers 409 only until its lease runs
// out; then a retry of the same request takes it over, runs once, and is
// replayed after.
func TestIdempotencyClaimOfDeadRequestIsTakenOver(t *testing.T) {
	e := newEnv(t, nil)
	video := e.uploadClip(time.Second)
	body := fmt.Sprintf(`{"video_url":%q}`, video)
	t0 := time.Now().UTC()
	sum := sha256.Sum256([]byte("POST /v1/jobs\n" + body))
	// What the dead daemon's request had written before it died.
	dead := &vidmatte.IdempotencyRecord{KeyID: e.keyObj.ID, Key: "retry-after-crash", Method: "POST", Path: "/v1/jobs",
		BodyHash: hex.EncodeToString(sum[:]), CreatedAt: t0, LeaseUntil: t0.Add(DefaultIdempotencyLease)}
	if _, claimed, err := e.db.BeginIdempotent(context.Background(), dead); err != nil || !claimed {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	hdr := map[string]string{"Idempotency-Key": "retry-after-crash"}
	e.setNow(t0.Add(DefaultIdempotencyLease - time.Second))
	if r := e.postJSON("/v1/jobs", body, hdr); r.StatusCode != 409 || r.errCode(t) != "conflict" {
		t.Fatalf("within the lease: %d %s", r.StatusCode, r.body)
	}
	// Another body under the key is still a 422, lease or not.
	e.setNow(t0.Add(DefaultIdempotencyLease + time.Second))
	if r := e.postJSON("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"model":"chroma"}`, video), hdr); r.StatusCode != 422 {
		t.Fatalf("other body after the lease: %d %s", r.StatusCode, r.body)
	}
	r := e.postJSON("/v1/jobs", body, hdr)
	if r.StatusCode != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("after the lease: %d %s", r.StatusCode, r.body)
	}
	id := r.json(t)["job_id"].(string)
	again := e.postJSON("/v1/jobs", body, hdr)
	if again.StatusCode != 201 || again.Header.Get("Idempotent-Replayed") != "true" || again.json(t)["job_id"] != id {
		t.Fatalf("replay: %d %v %s", again.StatusCode, again.Header, again.body)
	}
	jobs, err := e.db.ListJobs(context.Background(), e.keyObj.ID, vidmatte.JobFilter{Limit: 100})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d jobs (%v), want 1", len(jobs), err)
	}
}

// fullDisk is an upload file on a disk that fills after room bytes.
type fullDisk struct {
	f    *os.File
	room int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if len(p) > d.room {
		n, _ := d.f.Write(p[:d.room])
		d.room = 0
		return n, &os.PathError{Op: "write", Path: d.f.Name(), Err: syscall.ENOSPC}
	}
	d.room -= len(p)
	return d.f.Write(p)
}

func (d *fullDisk) Close() error { return d.f.Close() }

// A disk that fills during an upload is the daemon's trouble, not the
// client's: a 503 unavailable (not a 400 about the multipart body), and
// the partial file is removed.
func TestUploadDiskFullIsUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.createUpload = func(path string) (io.WriteCloser, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, err
		}
		return &fullDisk{f: f, room: 1000}, nil
	}
	r := e.uploadBytes(bytes.Repeat([]byte("v"), 100<<10), "clip.mp4", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.errCode(t) != "unavailable" {
		t.Fatalf("disk full: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(string(r.body), "no space") || strings.Contains(string(r.body), e.dir) {
		t.Fatalf("answer leaks the cause: %s", r.body)
	}
	files, _ := os.ReadDir(filepath.Join(e.dir, "uploads"))
	if len(files) != 0 {
		t.Fatalf("%d files left in uploads", len(files))
	}
}

// A client that trickles its upload is cut off once a window passes
// without the minimum bytes: a real connection over loopback sends the
// headers and a few bytes and then nothing; the answer is a structured 400
// after the (small, configured) window, and the partial file is gone.
func TestSlowUploadIsCutOff(t *testing.T) {
	e := newEnv(t, func(c *envConfig) {
		c.Limits.BodyWindow = 200 * time.Millisecond
		c.Limits.BodyMinBytes = 4096
	})
	conn, err := net.Dial("tcp", e.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const boundary = "slowslowslow"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
	fmt.Fprintf(conn, "POST /v1/uploads HTTP/1.1\r\nHost: %s\r\nX-Api-Key: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: 100000\r\n\r\n%sabc",
		e.http.Listener.Addr(), e.key, boundary, head)
	// The bound of this test only, far above the window: the server must
	// answer on its own well before it.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != 400 || json.Unmarshal(b, &body) != nil || body.Error.Code != "invalid_request" || !strings.Contains(body.Error.Message, "too slowly") {
		t.Fatalf("stalled upload: %d %s", resp.StatusCode, b)
	}
	files, _ := os.ReadDir(filepath.Join(e.dir, "uploads"))
	if len(files) != 0 {
		t.Fatalf("%d files left in uploads", len(files))
	}
	// A client at speed is not affected by the same settings.
	if r := e.uploadBytes(bytes.Repeat([]byte("v"), 64<<10), "x.mp4", nil); r.StatusCode == 400 {
		t.Fatalf("fast upload refused: %s", r.body)
	}
}

// A key streams at most its quota of uploads at once; one more is a 429
// that says which quota, and the slot is free again once an upload ends.
func TestConcurrentUploadsQuota(t *testing.T) {
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	e := newEnv(t, func(c *envConfig) { c.Limits.ConcurrentUploads = 1 })
	e.srv.createUpload = func(path string) (io.WriteCloser, error) {
		entered <- struct{}{}
		<-gate
		return createUploadFile(path)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "a.mp4")
	fw.Write([]byte("not a video"))
	mw.Close()
	firstDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/v1/uploads", bytes.NewReader(buf.Bytes()))
		req.Header.Set("X-Api-Key", e.key)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			firstDone <- 0
			return
		}
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	<-entered
	r := e.uploadBytes([]byte("not a video"), "b.mp4", nil)
	if r.StatusCode != 429 || r.errCode(t) != "rate_limited" || !strings.Contains(string(r.body), "concurrent uploads") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second upload at once: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	close(gate)
	if st := <-firstDone; st != 415 {
		t.Fatalf("first upload: %d", st)
	}
	if r := e.uploadBytes([]byte("not a video"), "c.mp4", nil); r.StatusCode != 415 {
		t.Fatalf("upload after the first ended: %d %s", r.StatusCode, r.body)
	}
}
