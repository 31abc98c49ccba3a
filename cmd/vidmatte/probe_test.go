package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

func TestProbeCommand(t *testing.T) {
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 160, Height: 120, Duration: 400 * time.Millisecond, Audio: true})

	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"probe", clip}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	for _, want := range []string{"container:    mov,mp4", "picture:      160x120", "frames:       10", "audio:        aac, 48000 Hz, 1 channels"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	out.Reset()
	if code := dispatch(context.Background(), []string{"probe", "--json", clip}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if doc["width"] != 160.0 || doc["frame_count"] != 10.0 || doc["has_audio"] != true || doc["video_codec"] != "h264" {
		t.Errorf("unexpected JSON: %s", out.String())
	}

	bad := testmedia.BadFiles(t)
	out.Reset()
	errOut.Reset()
	if code := dispatch(context.Background(), []string{"probe", bad[0].Path}, &out, &errOut); code != 1 {
		t.Fatalf("probing an empty file: exit %d", code)
	}
	if got := errOut.String(); got != "vidmatte probe: the file is empty (0 bytes)\n" {
		t.Errorf("error output %q", got)
	}
	if code := dispatch(context.Background(), []string{"probe"}, &out, &errOut); code != 2 {
		t.Errorf("probe without a file: exit %d", code)
	}
}
