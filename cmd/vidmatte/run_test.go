package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

func TestRunCommand(t *testing.T) {
	in, truth := testmedia.GreenScreen(t, 160, 120, 8, false)
	dir := t.TempDir()
	for _, name := range []string{"out.webm", "out.gif", "out.zip"} {
		out := filepath.Join(dir, name)
		stdout, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-quiet")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		if !strings.Contains(stdout, "8 frames") {
			t.Errorf("%s: summary %q does not count 8 frames", name, stdout)
		}
		if got := testmedia.ReadAlpha(t, out); len(got) != len(truth) {
			t.Errorf("%s: %d frames, want %d", name, len(got), len(truth))
		}
	}
	// A composited mp4 from a colour given by name.
	out := filepath.Join(dir, "white.mp4")
	if _, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-bg", "white", "-quiet"); code != 0 {
		t.Fatalf("mp4 over white: exit %d: %s", code, stderr)
	}
	if frames, _, _ := testmedia.Probe(t, out); frames != len(truth) {
		t.Errorf("mp4: %d frames, want %d", frames, len(truth))
	}
}

func TestRunCommandErrors(t *testing.T) {
	in := testmedia.Clip(t, testmedia.ClipOptions{Width: 64, Height: 48, FPS: 10, Duration: time.Second})
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(text, []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", in}, 2, "-o OUTPUT is required"},
		{[]string{"run", "-o", filepath.Join(dir, "x.webm")}, 2, "one input file"},
		{[]string{"run", in, "-o", filepath.Join(dir, "x.avi")}, 2, "cannot tell the format"},
		{[]string{"run", in, "-o", filepath.Join(dir, "x.webm"), "-bg", "nowhere.png"}, 2, "-bg"},
		{[]string{"run", in, "-o", filepath.Join(dir, "x.webm"), "-model", "nope"}, 1, "chroma"},
		{[]string{"run", in, "-o", filepath.Join(dir, "x.mp4"), "-model", "chroma"}, 1, "no alpha"},
		{[]string{"run", text, "-o", filepath.Join(dir, "x.webm"), "-model", "chroma"}, 1, "not a video"},
	}
	for _, c := range cases {
		_, stderr, code := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args[1:], code, stderr, c.code, c.msg)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed runs left files behind: %v", entries)
	}
}

// Ctrl-C stops a run: the process exits with 130 and leaves no output, not
// even a partial one. The interrupt goes once the run reports progress; a
// machine fast enough to finish the clip before it arrives gets a clip twice
// as long, until one is caught.
func TestRunInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	for sec := 30; sec <= 960; sec *= 2 {
		in := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: time.Duration(sec) * time.Second})
		dir := t.TempDir()
		cmd := exec.Command(bin, "run", in, "-o", filepath.Join(dir, "out.webm"), "-model", "chroma")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stderr)
		var seen []string
		for lines.Scan() {
			seen = append(seen, lines.Text())
			if strings.HasPrefix(lines.Text(), "progress: ") {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for lines.Scan() {
			seen = append(seen, lines.Text())
		}
		err = cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		if code == 0 {
			continue // finished before the interrupt arrived
		}
		if code != 130 {
			t.Fatalf("exit %d (%v), want 130; stderr:\n%s", code, err, strings.Join(seen, "\n"))
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("left behind after Ctrl-C: %s", e.Name())
		}
		return
	}
	t.Fatal("no run was caught before it finished")
}

// vidmatte run -stats prints a line per pipeline stage, in order, with its
// busy and waiting milliseconds per frame and its input queue's mean depth
// and capacity (none for decode), then the wall time per frame; no stage
// is busy longer than the run.
func TestRunStats(t *testing.T) {
	in, _ := testmedia.GreenScreen(t, 96, 64, 10, false)
	out := filepath.Join(t.TempDir(), "out.webm")
	stdout, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-quiet", "-stats")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{"decode", "batch", "infer", "refine", "encode"}
	if len(lines) != len(want)+3 || !strings.HasPrefix(lines[1], "stage") {
		t.Fatalf("stats:\n%s", stdout)
	}
	var wall float64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "wall %f", &wall); err != nil || wall <= 0 {
		t.Fatalf("wall line %q: %v", lines[len(lines)-1], err)
	}
	for i, name := range want {
		var got string
		var busy, wait float64
		if _, err := fmt.Sscanf(lines[2+i], "%s %f %f", &got, &busy, &wait); err != nil || got != name {
			t.Fatalf("line %q: %v, want stage %s", lines[2+i], err, name)
		}
		if busy < 0 || wait < 0 || busy+wait > wall+0.002 {
			t.Errorf("%s: busy %.3f + wait %.3f ms/frame against a wall of %.3f", name, busy, wait, wall)
		}
		queue := strings.Fields(lines[2+i])[3]
		var mean float64
		var capacity int
		if name == "decode" {
			if queue != "-" {
				t.Errorf("decode has a queue: %q", queue)
			}
		} else if _, err := fmt.Sscanf(queue, "%f/%d", &mean, &capacity); err != nil || capacity < 1 || mean < 0 || mean > float64(capacity) {
			t.Errorf("%s: queue %q (%v)", name, queue, err)
		}
	}
	if _, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-stats", "-json"); code != 2 || !strings.Contains(stderr, "-stats") {
		t.Errorf("-stats with -json: exit %d, %q", code, stderr)
	}
}

// TestRunCUDAUnavailable: 'run --device cuda' where CUDA cannot be used
// exits 1 with one clean line that says why and leaves no output; with
// --cpu-fallback it runs on the CPU and logs the reason. Where CUDA can be
// used, the run is on CUDA.
func TestRunCUDAUnavailable(t *testing.T) {
	probe, err := models.NewRuntime(models.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cudaErr := probe.CheckCUDA()
	probe.Close()
	in, _ := testmedia.GreenScreen(t, 64, 48, 4, false)
	out := filepath.Join(t.TempDir(), "out.webm")

	stdout, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-device", "cuda", "-quiet")
	if cudaErr == nil {
		if code != 0 || !strings.Contains(stdout, " on cuda in ") {
			t.Fatalf("CUDA is usable here, yet: exit %d: %s%s", code, stdout, stderr)
		}
		return
	}
	if code != 1 || stderr != "vidmatte run: "+cudaErr.Error()+"\n" || stdout != "" {
		t.Errorf("--device cuda without CUDA: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("--device cuda without CUDA left %s", out)
	}

	stdout, stderr, code = runCmd(t, "run", in, "-o", out, "-model", "chroma", "-device", "cuda", "-cpu-fallback", "-quiet")
	if code != 0 || !strings.Contains(stdout, " with chroma on cpu in ") {
		t.Fatalf("--cpu-fallback: exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `level=WARN msg="CUDA requested but unavailable; running on the CPU" reason="`+cudaErr.Error()) {
		t.Errorf("--cpu-fallback did not log why: %q", stderr)
	}
}
