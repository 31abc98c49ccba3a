package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

// completedLine finds the "job completed" log line of a job in the
// daemon's JSON log.
func completedLine(t *testing.T, dir, id string) map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "job completed" && m["job_id"] == id {
			return m
		}
	}
	t.Fatalf("no 'job completed' line for %s in the log", id)
	return nil
}

// partIndex is the largest part number written for a job (-1: none).
func partIndex(dir, id string) int {
	parts, _ := filepath.Glob(filepath.Join(dir, "outputs", id, "parts", "part_*"))
	k := -1
	for _, p := range parts {
		// part_<segment>_<claim token>.<ext>
		seq, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(p), "part_"), "_")
		if n, err := strconv.Atoi(seq); err == nil && n > k {
			k = n
		}
	}
	return k
}

// A daemon killed with SIGKILL half way through a segmented job: after
// the restart the job resumes at its first unfinished segment (the model
// runs only on the frames after the segments recorded before the kill),
// its progress never goes back, the joined output holds exactly the
// clip's frames, with alpha and with the audio in sync, as an
// uninterrupted job's output does, and it is charged once.
func TestCrashResumesAtTheFirstUnfinishedSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and processes clips of several seconds")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "keys", "create", "--data", dir, "--name", "seg", "--credits", "100000").Output()
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(out))
	env := []string{"VIDMATTE_SEGMENT_SECONDS=1"}
	cmd, base := startServeWith(t, bin, dir, []string{"--allow-private-fetch"}, env)
	c := &client{t: t, base: base, key: key}

	var (
		id, clip      string
		total, caught int
	)
	for sec := 12; sec <= 384 && id == ""; sec *= 2 {
		clip = testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: time.Duration(sec) * time.Second, Audio: true})
		total = sec * 25
		half := sec / 2 // one segment a second: part half starts half way
		up := c.upload(clip)
		st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"output_format":"webm"}`, up["video_url"]))
		if st != 201 {
			t.Fatalf("create: %d %v", st, j)
		}
		jid := j["id"].(string)
		deadline := time.Now().Add(2 * time.Minute)
		for n := 0; partIndex(dir, jid) < half; n++ {
			if n%50 == 49 {
				if j := c.get("/v1/jobs/" + jid); j["status"] != "queued" && j["status"] != "processing" {
					break // too fast to be caught: a longer clip
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s wrote no part %d in 2 minutes", jid, half)
			}
			time.Sleep(time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// Frozen: what is on disk now is what the kill interrupts.
		k := partIndex(dir, jid)
		if _, err := os.Stat(filepath.Join(dir, "outputs", jid, jid+".webm")); err == nil || k < half || k >= sec-1 {
			cmd.Process.Signal(syscall.SIGCONT)
			c.waitJob(jid, 2*time.Minute, nil)
			continue
		}
		id, caught = jid, k
	}
	if id == "" {
		t.Fatal("no job was caught half way")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, base = startServeWith(t, bin, dir, []string{"--allow-private-fetch"}, env)
	c.base = base
	var seen []float64
	j := c.waitJob(id, 5*time.Minute, func(j map[string]any) bool {
		seen = append(seen, j["frames_done"].(float64))
		return false
	})
	if j["status"] != "completed" || j["billing_status"] != "charged" || j["frames_done"].(float64) != float64(total) {
		t.Fatalf("after the restart: %v", j)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Fatalf("frames_done went back: %v", seen)
		}
	}
	if len(seen) > 0 && seen[0] < float64(caught*25) {
		t.Errorf("frames_done after the restart %v, %d segments of 25 frames were recorded", seen[0], caught)
	}
	if l := c.jobLedger(id); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger after the crash: %v", l)
	}
	done := completedLine(t, dir, id)
	resumed, resumedFrames := int(done["resumed_segments"].(float64)), int(done["resumed_frames"].(float64))
	inferred, warm := int(done["inferred"].(float64)), int(done["warm_up"].(float64))
	t.Logf("killed with part %d of %d being written; the resumed run: %v", caught, total/25, done)
	// Part k was being written when the daemon froze: segments 0..k-1
	// were recorded, and perhaps k itself just then. Only that segment's
	// work is lost: the resumed run starts at the first unfinished one.
	if resumed < caught || resumed > caught+1 || resumedFrames != resumed*25 {
		t.Errorf("the restart resumed %d segments (%d frames); %d were recorded before the kill", resumed, resumedFrames, caught)
	}
	if inferred != total-resumedFrames+warm {
		t.Errorf("the resumed run inferred %d frames, want the %d after the recorded segments (+%d warm-up)", inferred, total-resumedFrames, warm)
	}
	if partials, _ := filepath.Glob(filepath.Join(dir, "outputs", id, ".*")); len(partials) != 0 {
		t.Errorf("partial files left: %v", partials)
	}
	if _, err := os.Stat(filepath.Join(dir, "outputs", id, "parts")); !os.IsNotExist(err) {
		t.Errorf("parts left after the completion: %v", err)
	}

	// The same clip, uninterrupted, for comparison.
	up := c.upload(clip)
	st, jj := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"output_format":"webm"}`, up["video_url"]))
	if st != 201 {
		t.Fatalf("create: %d %v", st, jj)
	}
	other := jj["id"].(string)
	if jj = c.waitJob(other, 5*time.Minute, nil); jj["status"] != "completed" {
		t.Fatalf("the uninterrupted job: %v", jj)
	}
	got := filepath.Join(dir, "outputs", id, id+".webm")
	want := filepath.Join(dir, "outputs", other, other+".webm")
	frames, _, hasAudio := testmedia.Probe(t, got)
	if frames != total || !hasAudio {
		t.Fatalf("the resumed output has %d frames (want %d), audio %v", frames, total, hasAudio)
	}
	gv, ga := testmedia.Spans(t, got)
	iv, ia := testmedia.Spans(t, clip)
	step := 40 * time.Millisecond
	if absDuration(gv.Start-ga.Start) > step || absDuration(gv.Duration()-iv.Duration()) > step || absDuration(ga.Duration()-ia.Duration()) > step {
		t.Errorf("video %+v and audio %+v of the output; the input's %+v and %+v", gv, ga, iv, ia)
	}
	wv, wa := testmedia.Spans(t, want)
	if !reflect.DeepEqual(gv, wv) || !reflect.DeepEqual(ga, wa) {
		t.Errorf("the resumed output's streams %+v %+v, the uninterrupted one's %+v %+v", gv, ga, wv, wa)
	}
	a, b := testmedia.ReadAlpha(t, got), testmedia.ReadAlpha(t, want)
	if len(a) != total || len(b) != total {
		t.Fatalf("alpha of %d and %d frames", len(a), len(b))
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("frame %d: the resumed output's alpha differs from the uninterrupted job's", i)
		}
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
