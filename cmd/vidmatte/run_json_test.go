package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/internal/testmedia"
)

// vidmatte run -json prints only JSON lines on stdout: progress that never
// goes backwards, then one done line with the result; -quiet keeps only
// the done line; a failure prints no done line.
func TestRunJSONLines(t *testing.T) {
	in, _ := testmedia.GreenScreen(t, 96, 64, 12, false)
	out := filepath.Join(t.TempDir(), "out.webm")
	stdout, stderr, code := runCmd(t, "run", in, "-o", out, "-model", "chroma", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var progress []map[string]any
	var done map[string]any
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, l)
		}
		switch m["event"] {
		case "progress":
			if done != nil {
				t.Fatalf("progress after done: %q", l)
			}
			progress = append(progress, m)
		case "done":
			done = m
		default:
			t.Fatalf("line %d: unknown event: %q", i, l)
		}
	}
	if len(progress) == 0 || done == nil {
		t.Fatalf("progress %d lines, done %v:\n%s", len(progress), done, stdout)
	}
	prev := -1.0
	for _, p := range progress {
		fd, ft := p["frames_done"].(float64), p["frames_total"].(float64)
		if fd < prev || ft < fd || ft <= 0 || p["percent"].(float64) > 100 {
			t.Fatalf("progress lines: %v", progress)
		}
		prev = fd
	}
	if last := progress[len(progress)-1]; last["frames_done"] != 12.0 || last["percent"] != 100.0 {
		t.Errorf("the last progress line is %v, want the 12th frame", last)
	}
	if done["frames"] != 12.0 || done["output"] != out || done["format"] != "webm" || done["model"] != "chroma" || done["width"] != 96.0 {
		t.Fatalf("done: %v", done)
	}
	if got := testmedia.ReadAlpha(t, out); len(got) != 12 {
		t.Fatalf("the output has %d frames", len(got))
	}

	stdout, _, code = runCmd(t, "run", in, "-o", filepath.Join(t.TempDir(), "q.webm"), "-model", "chroma", "-json", "-quiet")
	if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"event":"done"`) {
		t.Fatalf("-json -quiet: exit %d, %q", code, stdout)
	}
	stdout, stderr, code = runCmd(t, "run", in, "-o", filepath.Join(t.TempDir(), "x.webm"), "-model", "nope", "-json")
	if code != 1 || strings.Contains(stdout, "done") || stderr == "" {
		t.Fatalf("a failure: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
