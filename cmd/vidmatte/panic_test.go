package main

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vidmatte/engine"
	"vidmatte/internal/testmedia"
)

// crashOne panics in the job whose input is the upload named by crash,
// once the other job is running; the other job waits at its gate.
type crashOne struct {
	inner   engine.Processor
	mu      sync.Mutex
	crash   string
	started chan struct{}
	gate    chan struct{}
}

func (p *crashOne) Process(ctx context.Context, r engine.Request) (*engine.Result, error) {
	p.mu.Lock()
	crash := p.crash
	p.mu.Unlock()
	if crash != "" && strings.Contains(filepath.Base(r.Input), crash) {
		<-p.started
		var m map[string]int
		m["boom"]++ // a nil map write
	}
	select {
	case p.started <- struct{}{}:
	default:
	}
	select {
	case <-p.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.inner.Process(ctx, r)
}

// A job that panics inside the daemon fails with internal_error and is
// refunded; the daemon keeps serving over real HTTP, and the job running
// beside it, then a job created after, complete and are charged.
func TestServeSurvivesAPanickingJob(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := runCmd(t, "keys", "create", "--data", dir, "--name", "panic", "--credits", "100")
	key := strings.TrimSpace(out)
	proc := &crashOne{started: make(chan struct{}, 1), gate: make(chan struct{})}
	cfg := defaultServeConfig()
	cfg.Listen, cfg.Data, cfg.DefaultModel, cfg.Workers = "127.0.0.1:0", dir, "chroma", 2
	cfg.LogLevel = "warn"
	cfg.processor = func(p engine.Processor) engine.Processor { proc.inner = p; return proc }
	var logs syncWriter
	d, err := newDaemon(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { err := d.Run(ctx); d.Close(); done <- err }()
	t.Cleanup(func() { cancel(); <-done })
	c := &client{t: t, base: "http://" + d.Addr(), key: key}

	clip, _ := testmedia.GreenScreen(t, 96, 64, 10, false)
	crashUp := c.upload(clip)
	files, _ := filepath.Glob(filepath.Join(dir, "uploads", "*"))
	if len(files) != 1 {
		t.Fatalf("uploads folder holds %v", files)
	}
	proc.mu.Lock()
	proc.crash = filepath.Base(files[0])
	proc.mu.Unlock()
	otherUp := c.upload(clip)
	_, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, crashUp["video_url"]))
	crashID := j["id"].(string)
	_, j = c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, otherUp["video_url"]))
	otherID := j["id"].(string)

	crashed := c.waitJob(crashID, time.Minute, nil)
	jerr, _ := crashed["error"].(map[string]any)
	if crashed["status"] != "failed" || jerr == nil || jerr["code"] != "internal_error" || crashed["billing_status"] != "refunded" {
		t.Fatalf("the panicking job: %v", crashed)
	}
	if strings.Contains(fmt.Sprint(jerr["message"]), "nil map") {
		t.Fatalf("the panic reached the client: %v", jerr)
	}
	if h := c.get("/health"); h["status"] != "ok" {
		t.Fatalf("health after the panic: %v", h)
	}
	if j := c.get("/v1/jobs/" + otherID); j["status"] != "processing" {
		t.Fatalf("the job beside the panic is %v", j["status"])
	}
	close(proc.gate)
	for _, id := range []string{otherID, ""} {
		if id == "" {
			_, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, c.upload(clip)["video_url"]))
			id = j["id"].(string)
		}
		j := c.waitJob(id, time.Minute, nil)
		if j["status"] != "completed" || j["billing_status"] != "charged" {
			t.Fatalf("job %s after the panic: %v", id, j)
		}
	}
	if l := c.jobLedger(crashID); l["reserve"] != 1 || l["refund"] != 1 || l["charge"] != 0 {
		t.Fatalf("the panicking job's ledger: %v", l)
	}
	if log := logs.String(); !strings.Contains(log, "job panicked") || !strings.Contains(log, "assignment to entry in nil map") ||
		!strings.Contains(log, "goroutine ") {
		t.Fatalf("the panic was not logged with its stack:\n%s", log)
	}
}

// A raw H.264 elementary stream (no container, no metadata, no declared
// duration), the input that used to kill the daemon, goes through the
// built binary: the daemon stays up, the job ends completed or with a
// structured error, /health answers, and the next job completes.
func TestRawH264StreamThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "keys", "create", "--data", dir, "--name", "raw", "--credits", "100").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd, base := startServe(t, bin, dir)
	c := &client{t: t, base: base, key: strings.TrimSpace(string(out))}

	raw := filepath.Join(t.TempDir(), "x.h264")
	testmedia.FFmpeg(t, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "h264", raw)
	st, up, _ := c.uploadStatus(raw)
	alive := func(when string) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("the daemon died %s: %v", when, err)
		}
		if h := c.get("/health"); h["status"] != "ok" {
			t.Fatalf("health %s: %v", when, h)
		}
	}
	switch {
	case st == 201:
		st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, up["video_url"]))
		if st == 201 {
			j = c.waitJob(j["id"].(string), 2*time.Minute, nil)
			if j["status"] == "failed" {
				if e, _ := j["error"].(map[string]any); e == nil || e["code"] == "" || e["message"] == "" {
					t.Fatalf("raw stream job failed without a structured error: %v", j)
				}
			} else if j["status"] != "completed" {
				t.Fatalf("raw stream job: %v", j)
			}
			t.Logf("raw H.264 job: %v %v", j["status"], j["error"])
		} else if st < 400 || st >= 500 || j["error"] == nil {
			t.Fatalf("raw stream job refused without a structured 4xx: %d %v", st, j)
		}
	case st >= 400 && st < 500 && up["error"] != nil:
		t.Logf("raw H.264 upload refused: %d %v", st, up["error"])
	default:
		t.Fatalf("raw stream upload: %d %v", st, up)
	}
	alive("after the raw stream")

	clip, _ := testmedia.GreenScreen(t, 96, 64, 10, false)
	_, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, c.upload(clip)["video_url"]))
	if j = c.waitJob(j["id"].(string), 2*time.Minute, nil); j["status"] != "completed" {
		t.Fatalf("the next job: %v", j)
	}
	alive("after the next job")
}

// uploadStatus uploads a file and returns the answer whatever its status.
func (c *client) uploadStatus(path string) (int, map[string]any, http.Header) {
	c.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", filepath.Base(path))
	fw.Write(data)
	mw.Close()
	return c.do(http.MethodPost, "/v1/uploads", &buf, mw.FormDataContentType())
}
