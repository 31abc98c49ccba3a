package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
	"vidmatte/internal/testpg"
	"vidmatte/internal/tests3"
)

func TestMain(m *testing.M) {
	code := testpg.Run(m)
	tests3.Stop()
	os.Exit(code)
}

// The daemon and the keys command run on a PostgreSQL store: a key made
// with --store is the daemon's, a job goes through to completed and is
// charged once, and /health names the backend.
func TestServeOnPostgres(t *testing.T) {
	dsn := testpg.Database(t)
	dir := t.TempDir()
	out, errOut, code := runCmd(t, "keys", "create", "--store", dsn, "--data", dir, "--name", "pg", "--credits", "100")
	if code != 0 {
		t.Fatalf("keys create --store: %d %s", code, errOut)
	}
	key := strings.TrimSpace(out)
	if _, err := os.Stat(dir + "/vidmatte.db"); !os.IsNotExist(err) {
		t.Fatalf("keys --store postgres wrote an SQLite file: %v", err)
	}
	cfg := defaultServeConfig()
	cfg.Listen, cfg.Data, cfg.DefaultModel, cfg.Store = "127.0.0.1:0", dir, "chroma", dsn
	cfg.LogLevel = "warn"
	d, err := newDaemon(cfg, &syncWriter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { err := d.Run(ctx); d.Close(); done <- err }()
	t.Cleanup(func() { cancel(); <-done })
	c := &client{t: t, base: "http://" + d.Addr(), key: key}

	h := c.get("/health")
	if b, _ := h["backends"].(map[string]any); h["status"] != "ok" || b["store"] != "postgres" {
		t.Fatalf("health: %v", h)
	}
	clip, _ := testmedia.GreenScreen(t, 96, 64, 10, false)
	up := c.upload(clip)
	_, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, up["video_url"]))
	id, _ := j["id"].(string)
	if id == "" {
		t.Fatalf("create: %v", j)
	}
	j = c.waitJob(id, time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" || j["output_url"] == nil {
		t.Fatalf("job on PostgreSQL: %v", j)
	}
	if l := c.jobLedger(id); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger %v", l)
	}
	// The finished job's stage times reach the metrics.
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, stage := range []string{"decode", "infer", "encode"} {
		if !regexp.MustCompile(`(?m)^vidmatte_stage_seconds_total\{stage="` + stage + `",state="busy"\} [0-9.e+-]+$`).Match(metrics) {
			t.Fatalf("no busy time of stage %s in the metrics:\n%s", stage, metrics)
		}
	}
	// Queue depths: the encode stage took each frame and the end marker.
	if !regexp.MustCompile(`(?m)^vidmatte_stage_queue_takes_total\{stage="encode"\} [1-9][0-9.e+]*$`).Match(metrics) ||
		!regexp.MustCompile(`(?m)^vidmatte_stage_queue_items_total\{stage="encode"\} [0-9.e+]+$`).Match(metrics) {
		t.Fatalf("no queue depth of the encode stage in the metrics:\n%s", metrics)
	}
	out, errOut, code = runCmd(t, "keys", "list", "--store", dsn)
	if code != 0 || !strings.Contains(out, "pg") {
		t.Fatalf("keys list --store: %d %q %s", code, out, errOut)
	}
}
