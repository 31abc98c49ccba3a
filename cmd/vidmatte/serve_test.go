package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vidmatte/engine"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

func startDaemon(t *testing.T, dir string, deadline time.Duration, wrap func(engine.Processor) engine.Processor) (*daemon, context.CancelFunc, chan error) {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.Listen, cfg.Data, cfg.DefaultModel = "127.0.0.1:0", dir, "chroma"
	cfg.ShutdownDeadline.Duration = deadline
	cfg.LogLevel = "warn"
	cfg.processor = wrap
	d, err := newDaemon(cfg, &syncWriter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { err := d.Run(ctx); d.Close(); done <- err }()
	t.Cleanup(func() { cancel(); <-done })
	return d, cancel, done
}

// holdingProcessor runs the real engine, but holds each job inside its
// pipeline once its first frame is encoded: the encode stage waits in the
// progress callback until the job's context ends. A held job is provably
// still running, however fast the machine is, until it is canceled.
type holdingProcessor struct {
	inner engine.Processor
	held  chan string // the job's output path, once it is held
}

func holdJobs(inner engine.Processor) *holdingProcessor {
	return &holdingProcessor{inner: inner, held: make(chan string, 8)}
}

func (h *holdingProcessor) Process(ctx context.Context, r engine.Request) (*engine.Result, error) {
	report := r.Progress
	once := false
	r.ProgressEvery = time.Nanosecond // a report after every frame
	r.Progress = func(p engine.Progress) {
		if report != nil {
			report(p)
		}
		if once || p.FramesDone == 0 || p.FramesDone >= p.FramesTotal {
			return
		}
		once = true
		h.held <- r.Output
		<-ctx.Done()
	}
	return h.inner.Process(ctx, r)
}

// SIGTERM's two stages: running jobs get the deadline, then they are
// requeued with their reservation; /health says draining meanwhile; the
// next start finishes the job and charges it once. A client cancel stops
// a running job and refunds it.
func TestServeShutdownAndCancel(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := runCmd(t, "keys", "create", "--data", dir, "--name", "serve", "--credits", "100")
	key := strings.TrimSpace(out)
	hold := holdJobs(nil)
	d, stop, done := startDaemon(t, dir, 2*time.Second, func(p engine.Processor) engine.Processor {
		hold.inner = p
		return hold
	})
	c := &client{t: t, base: "http://" + d.Addr(), key: key}
	if h := c.get("/health"); h["status"] != "ok" {
		t.Fatalf("health: %v", h)
	}
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, FPS: 25, Duration: 2 * time.Second})
	video := c.upload(clip)["video_url"]

	// Cancel a running job.
	_, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video))
	id := j["id"].(string)
	<-hold.held
	st, j := c.post("/v1/jobs/"+id+"/cancel", ``)
	if st != 200 || j["status"] != "canceled" || j["billing_status"] != "refunded" {
		t.Fatalf("cancel: %d %v", st, j)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.runner.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the canceled job kept running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "outputs", id)); !os.IsNotExist(err) {
		t.Fatal("the canceled job's output folder is left")
	}

	// Shut down under a running job.
	_, j = c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, video))
	id = j["id"].(string)
	<-hold.held
	if j := c.get("/v1/jobs/" + id); j["status"] != "processing" {
		t.Fatalf("a held job is %v", j["status"])
	}
	stop()
	// The held job keeps the daemon draining until the deadline.
	sawDraining := false
	for !sawDraining {
		resp, err := http.Get(c.base + "/health")
		if err != nil {
			break
		}
		resp.Body.Close()
		sawDraining = resp.StatusCode == http.StatusServiceUnavailable
		time.Sleep(5 * time.Millisecond)
	}
	if !sawDraining {
		t.Fatal("/health never said draining")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	db, err := openStore(serveConfig{Data: dir})
	if err != nil {
		t.Fatal(err)
	}
	requeued, err := db.FindJob(context.Background(), "", id)
	db.Close()
	if err != nil || requeued.Status != "queued" || requeued.BillingStatus != "reserved" {
		t.Fatalf("after the deadline: %+v %v", requeued, err)
	}

	d2, _, _ := startDaemon(t, dir, time.Minute, nil)
	c.base = "http://" + d2.Addr()
	j = c.waitJob(id, 3*time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("after the restart: %v", j)
	}
	if l := c.ledger(); l["reserve"] != 2 || l["charge"] != 1 || l["refund"] != 1 {
		t.Fatalf("ledger: %v", l)
	}
}

// TestServeCUDAUnavailable: a daemon configured for CUDA where CUDA cannot
// be used refuses to start with the reason and how to fall back; with the
// fallback it starts, says once that jobs run on the CPU, and runs one
// there. Where CUDA can be used (a GPU machine after scripts/setup --cuda)
// it starts without that warning.
func TestServeCUDAUnavailable(t *testing.T) {
	probe, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cudaErr := probe.CheckCUDA()
	probe.Close()

	cfg := defaultServeConfig()
	cfg.Listen, cfg.Data, cfg.DefaultModel, cfg.Device = "127.0.0.1:0", t.TempDir(), "chroma", "cuda"
	cfg.LogLevel = "warn"
	var logs syncWriter
	d, err := newDaemon(cfg, &logs)
	if cudaErr == nil {
		if err != nil {
			t.Fatalf("CUDA is usable here, yet the daemon does not start: %v", err)
		}
		d.Close()
		if strings.Contains(logs.String(), "unavailable") {
			t.Errorf("CUDA is usable here, yet: %s", logs.String())
		}
		return
	}
	t.Logf("CUDA here: %v", cudaErr)
	if err == nil {
		d.Close()
		t.Fatal("a daemon asked for CUDA without it started")
	}
	if !errors.Is(err, models.ErrCUDAUnavailable) || !strings.Contains(err.Error(), cudaErr.Error()) || !strings.Contains(err.Error(), "cpu_fallback") {
		t.Errorf("start without CUDA: %v", err)
	}

	secret, errOut, code := runCmd(t, "keys", "create", "--data", cfg.Data, "--name", "gpu", "--credits", "100")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	cfg.CPUFallback = true
	d, err = newDaemon(cfg, &logs)
	if err != nil {
		t.Fatalf("start with the CPU fallback: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { err := d.Run(ctx); d.Close(); done <- err }()
	defer func() { cancel(); <-done }()
	if got := logs.String(); strings.Count(got, "CUDA requested but unavailable; jobs run on the CPU") != 1 || !strings.Contains(got, cudaErr.Error()) {
		t.Errorf("fallback not said once with its reason: %s", got)
	}
	c := &client{t: t, base: "http://" + d.Addr(), key: strings.TrimSpace(secret)}
	clip, _ := testmedia.GreenScreen(t, 64, 48, 4, false)
	up := c.upload(clip)
	st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"output_format":"webm"}`, up["video_url"]))
	if st != 201 {
		t.Fatalf("create: %d %v", st, j)
	}
	if j = c.waitJob(j["id"].(string), 2*time.Minute, nil); j["status"] != "completed" {
		t.Fatalf("job on the CPU fallback: %v", j)
	}
}
