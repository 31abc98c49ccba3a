package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

// A second 'vidmatte serve' on a data folder in use exits non-zero, names the
// process holding it, and the first daemon's running job completes untouched.
func TestServeDataFolderLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and processes a clip")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "keys", "create", "--data", dir, "--name", "lock", "--credits", "100").Output()
	if err != nil {
		t.Fatal(err)
	}
	first, base := startServe(t, bin, dir)
	c := &client{t: t, base: base, key: strings.TrimSpace(string(out))}
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: 4 * time.Second})
	up := c.upload(clip)
	st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, up["video_url"]))
	if st != 201 {
		t.Fatalf("create: %d %v", st, j)
	}
	id := j["id"].(string)

	second := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", dir, "--default-model", "chroma")
	msg, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("the second serve did not fail: %v\n%s", err, msg)
	}
	if !strings.Contains(string(msg), "in use by process "+strconv.Itoa(first.Process.Pid)) {
		t.Fatalf("the second serve does not name the holder (pid %d):\n%s", first.Process.Pid, msg)
	}

	j = c.waitJob(id, 3*time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("the first daemon's job after the second start: %v", j)
	}
	if l := c.ledger(); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("ledger: %v", l)
	}
}
