package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
	"vidmatte/webhook"
)

// client talks to a daemon over real HTTP.
type client struct {
	t    testing.TB
	base string
	key  string
}

func (c *client) do(method, path string, body io.Reader, ctype string) (int, map[string]any, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", c.key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m, resp.Header
}

func (c *client) post(path, body string) (int, map[string]any) {
	c.t.Helper()
	st, m, _ := c.do(http.MethodPost, path, strings.NewReader(body), "application/json")
	return st, m
}

func (c *client) get(path string) map[string]any {
	c.t.Helper()
	st, m, h := c.do(http.MethodGet, path, nil, "")
	for st == http.StatusTooManyRequests {
		// A well-behaved client backs off as told.
		ra, _ := strconv.Atoi(h.Get("Retry-After"))
		time.Sleep(time.Duration(ra) * time.Second)
		st, m, h = c.do(http.MethodGet, path, nil, "")
	}
	if st != 200 {
		c.t.Fatalf("GET %s: %d %v", path, st, m)
	}
	return m
}

func (c *client) upload(path string) map[string]any {
	c.t.Helper()
	st, m, _ := c.uploadStatus(path)
	if st != 201 {
		c.t.Fatalf("upload: %d %v", st, m)
	}
	return m
}

// waitJob polls a job until it reaches a terminal status (or until stop
// says so) and returns it.
func (c *client) waitJob(id string, timeout time.Duration, stop func(map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := c.get("/v1/jobs/" + id)
		st := j["status"].(string)
		if st == "completed" || st == "failed" || st == "canceled" || (stop != nil && stop(j)) {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s still %s after %s: %v", id, st, timeout, j)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *client) ledger() map[string]int { return c.jobLedger("") }

// jobLedger counts the key's ledger rows by type, of one job's when jobID
// is not "".
func (c *client) jobLedger(jobID string) map[string]int {
	c.t.Helper()
	n := map[string]int{}
	for _, e := range c.get("/v1/usage/events?limit=100")["events"].([]any) {
		e := e.(map[string]any)
		if jobID == "" || e["job_id"] == jobID {
			n[e["type"].(string)]++
		}
	}
	return n
}

type webhookHit struct {
	event, signature, timestamp string
	body                        []byte
}

func TestDaemonEndToEnd(t *testing.T) {
	dir := t.TempDir()
	secret, errOut, code := runCmd(t, "keys", "create", "--data", dir, "--name", "e2e", "--credits", "100")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	secret = strings.TrimSpace(secret)

	var mu sync.Mutex
	var hits []webhookHit
	fails := 1
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, webhookHit{r.Header.Get("X-Webhook-Event"), r.Header.Get("X-Webhook-Signature"), r.Header.Get("X-Webhook-Timestamp"), b})
		if fails > 0 {
			fails--
			w.WriteHeader(500)
		}
	}))
	defer receiver.Close()

	cfg := defaultServeConfig()
	cfg.Listen, cfg.Data, cfg.AllowPrivateFetch, cfg.DefaultModel = "127.0.0.1:0", dir, true, "chroma"
	cfg.ShutdownDeadline.Duration = 5 * time.Second
	var logs syncWriter
	d, err := newDaemon(cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	c := &client{t: t, base: "http://" + d.Addr(), key: secret}

	clip, _ := testmedia.GreenScreen(t, 128, 96, 20, false)
	up := c.upload(clip)
	st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"output_format":"webm","webhook_url":"%s/hook"}`, up["video_url"], receiver.URL))
	if st != 201 || j["status"] != "queued" {
		t.Fatalf("create: %d %v", st, j)
	}
	id := j["id"].(string)
	j = c.waitJob(id, 2*time.Minute, nil)
	if j["status"] != "completed" || j["progress"].(float64) != 100 || j["frames_done"].(float64) != 20 || j["billing_status"] != "charged" {
		t.Fatalf("job: %v", j)
	}
	outURL := j["output_url"].(string)
	resp, err := http.Get(outURL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("output: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := filepath.Join(t.TempDir(), "out.webm")
	os.WriteFile(got, data, 0o644)
	if frames, _, _ := testmedia.Probe(t, got); frames != 20 {
		t.Fatalf("downloaded output has %d frames", frames)
	}
	if dl := c.get("/api/download/" + id); dl["output_url"] == nil {
		t.Fatalf("legacy download: %v", dl)
	}
	if l := c.ledger(); l["reserve"] != 1 || l["charge"] != 1 {
		t.Fatalf("ledger: %v", l)
	}

	// A corrupt upload fails with a useful error and a refund.
	up2 := c.upload(clip)
	st, j = c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"auto_start":false}`, up2["video_url"]))
	if st != 201 || j["status"] != "pending" {
		t.Fatalf("draft: %d %v", st, j)
	}
	uploads, _ := filepath.Glob(filepath.Join(dir, "uploads", "up_*"))
	for _, p := range uploads {
		if info, _ := os.Stat(p); info != nil {
			os.WriteFile(p, bytes.Repeat([]byte("garbage!"), 1000), 0o644)
		}
	}
	id2 := j["id"].(string)
	if st, j = c.post("/v1/jobs/"+id2+"/start", `{}`); st != 200 {
		t.Fatalf("start: %d %v", st, j)
	}
	j = c.waitJob(id2, time.Minute, nil)
	jerr, _ := j["error"].(map[string]any)
	if j["status"] != "failed" || jerr == nil || jerr["code"] == "internal_error" || jerr["message"] == "" || j["billing_status"] != "refunded" {
		t.Fatalf("corrupt job: %v", j)
	}

	// The webhooks arrived signed; the first failed and was retried.
	mu.Lock()
	n := len(hits)
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for n < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n = len(hits)
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	events := map[string]int{}
	for _, h := range hits {
		ts, _ := strconv.ParseInt(h.timestamp, 10, 64)
		// The receiver verifies with the secret the operator reads out.
		ws, _, _ := runCmd(t, "keys", "webhook-secret", "--data", dir, keyIDOf(t, dir))
		if h.signature != webhook.Sign(strings.TrimSpace(ws), ts, h.body) {
			t.Fatalf("webhook %s: signature does not verify", h.event)
		}
		events[h.event]++
	}
	if events["job.started"] < 1 || events["job.completed"] < 1 || events["job.started"]+events["job.completed"] < 3 {
		t.Fatalf("webhook events %v", events)
	}
	if !strings.Contains(logs.String(), `"job_id":"`+id+`"`) {
		t.Fatal("no log line carries the job id")
	}

	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func keyIDOf(t *testing.T, dir string) string {
	t.Helper()
	out, _, _ := runCmd(t, "keys", "list", "--data", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Fields(lines[1])[0]
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// buildBinary builds the vidmatte command once for the test.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vidmatte")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the binary: %v", err)
	}
	return bin
}

// startServe starts 'vidmatte serve' and returns its process and base URL.
func startServe(t *testing.T, bin, dir string) (*exec.Cmd, string) {
	t.Helper()
	return startServeWith(t, bin, dir, []string{"--allow-private-fetch"}, nil)
}

// startServeWith starts 'vidmatte serve' on the data folder with more
// flags and environment, and returns its process and base URL. The process
// is killed (resumed first, if the test froze it) when the test ends.
func startServeWith(t testing.TB, bin, dir string, args, env []string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir,
		"--default-model", "chroma", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if rest, ok := strings.CutPrefix(line, "vidmatte: listening on "); ok {
			go io.Copy(io.Discard, stdout)
			return cmd, strings.Fields(rest)[0]
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	t.Fatalf("serve did not say where it listens:\n%s", b)
	return nil, ""
}

// killMidJob runs a job and kills the daemon with SIGKILL while the job's
// pipeline is writing its output, and returns the job's id. The daemon is
// frozen (SIGSTOP) before the output folder is looked at, so what is seen is
// what the kill interrupts. A machine fast enough to finish the job before
// it is seen gets a job on a clip twice as long, until one is caught.
func killMidJob(t *testing.T, c *client, cmd *exec.Cmd, dir string) string {
	t.Helper()
	id := freezeMidJob(t, c, cmd, dir)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return id
}

// freezeMidJob runs a job and freezes the daemon with SIGSTOP while the
// job's pipeline is writing its output, and returns the job's id, the
// daemon left frozen.
func freezeMidJob(t *testing.T, c *client, cmd *exec.Cmd, dir string) string {
	t.Helper()
	for sec := 8; sec <= 512; sec *= 2 {
		clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: time.Duration(sec) * time.Second})
		up := c.upload(clip)
		st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, up["video_url"]))
		if st != 201 {
			t.Fatalf("create: %d %v", st, j)
		}
		id := j["id"].(string)
		partial := filepath.Join(dir, "outputs", id, "."+id+".partial.webm")
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if writingOutput(partial, dir, id) {
				break
			}
			if j := c.get("/v1/jobs/" + id); j["status"] != "queued" && j["status"] != "processing" {
				break // too fast to be seen: try a longer clip
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s wrote no output in 2 minutes", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if !writingOutput(partial, dir, id) {
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			c.waitJob(id, 2*time.Minute, nil)
			continue
		}
		return id
	}
	t.Fatal("no job was caught running")
	return ""
}

// writingOutput says whether a job is writing its output: the partial
// file of a run in one piece, or a part of a segmented run.
func writingOutput(partial, dir, id string) bool {
	if _, err := os.Stat(partial); err == nil {
		return true
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "outputs", id, "parts", "part_*"))
	return len(parts) > 0
}

// The daemon killed with SIGKILL mid-job resumes the job after a restart,
// and the job is charged exactly once.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and processes a clip of several seconds")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "keys", "create", "--data", dir, "--name", "crash", "--credits", "1000").Output()
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(out))
	if strings.Contains(key, "\n") || key == "" {
		t.Fatalf("keys create printed %q", out)
	}
	cmd, base := startServe(t, bin, dir)
	c := &client{t: t, base: base, key: key}
	id := killMidJob(t, c, cmd, dir)

	_, base = startServe(t, bin, dir)
	c.base = base
	j := c.waitJob(id, 5*time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("after the restart: %v", j)
	}
	if l := c.jobLedger(id); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger after the crash: %v", l)
	}
	partials, _ := filepath.Glob(filepath.Join(dir, "outputs", id, ".*"))
	if len(partials) != 0 {
		t.Fatalf("partial files left: %v", partials)
	}
}
