package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

// A crash loop: jobs queued on a daemon that is killed with SIGKILL again
// and again, mostly after it made progress (a segment was recorded since
// the restart), every third time as soon as it listens
// (before any progress). Every job completes and is charged once: an
// interruption after progress does not count against a job, and no job
// is interrupted three times in a row without progress. By default 4
// jobs and 6 kills; VIDMATTE_CRASH_LOOP=JOBSxKILLS (e.g. 20x30) sets the
// size for a measurement.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills a daemon many times")
	}
	jobs, kills := 4, 6
	if v := os.Getenv("VIDMATTE_CRASH_LOOP"); v != "" {
		if _, err := fmt.Sscanf(v, "%dx%d", &jobs, &kills); err != nil {
			t.Fatalf("VIDMATTE_CRASH_LOOP=%q is not JOBSxKILLS", v)
		}
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "keys", "create", "--data", dir, "--name", "loop", "--credits", "100000").Output()
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(out))
	// The test's own polling is many requests a second.
	env := []string{"VIDMATTE_SEGMENT_SECONDS=1", "VIDMATTE_RATE_LIMIT=1000", "VIDMATTE_RATE_BURST=1000"}
	cmd, base := startServeWith(t, bin, dir, []string{"--allow-private-fetch"}, env)
	c := &client{t: t, base: base, key: key}
	secs := 8
	if jobs*kills > 100 {
		secs = 24 // enough work for the kills
	}
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: time.Duration(secs) * time.Second, Audio: true})
	var ids []string
	for range jobs {
		up := c.upload(clip)
		st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"output_format":"webm"}`, up["video_url"]))
		if st != 201 {
			t.Fatalf("create: %d %v", st, j)
		}
		ids = append(ids, j["id"].(string))
	}
	// Progress: a part not seen before was started (parts are deleted
	// when their job completes, so their count may fall).
	seen := map[string]bool{}
	newParts := func() int {
		n := 0
		for _, id := range ids {
			ps, _ := filepath.Glob(filepath.Join(dir, "outputs", id, "parts", "part_*"))
			for _, p := range ps {
				if !seen[p] {
					seen[p] = true
					n++
				}
			}
		}
		return n
	}
	open := func() int {
		n := 0
		for _, id := range ids {
			if st := c.get("/v1/jobs/" + id)["status"]; st == "queued" || st == "processing" {
				n++
			}
		}
		return n
	}
	start := time.Now()
	done := 0
	for k := 0; k < kills; k++ {
		if k%3 != 2 {
			// Wait for progress: two parts started since the restart (the
			// first may be the redo of a segment the last kill cut short;
			// the second starts once a segment was recorded).
			newParts()
			deadline := time.Now().Add(time.Minute)
			for n := 0; n < 2 && time.Now().Before(deadline); n += newParts() {
				time.Sleep(time.Millisecond)
			}
		}
		if open() == 0 {
			break
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		done++
		cmd, base = startServeWith(t, bin, dir, []string{"--allow-private-fetch"}, env)
		c.base = base
	}
	var resumed, completed int
	for _, id := range ids {
		j := c.waitJob(id, 5*time.Minute, nil)
		if j["status"] != "completed" || j["billing_status"] != "charged" {
			t.Errorf("job %s after the crash loop: %v %v (%v)", id, j["status"], j["billing_status"], j["error"])
			continue
		}
		if l := c.jobLedger(id); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
			t.Errorf("job %s ledger: %v", id, l)
		}
		completed++
		resumed += int(completedLine(t, dir, id)["resumed_segments"].(float64))
	}
	t.Logf("crash loop: %d jobs of %d s, %d kills, %d completed and charged once, %d segments resumed by the completing attempts, %v",
		jobs, secs, done, completed, resumed, time.Since(start).Round(time.Second))
	if done < kills && completed == jobs {
		t.Logf("the jobs were all done after %d kills", done)
	}
}
