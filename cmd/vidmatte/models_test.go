package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/internal/testmedia"
)

// TestModelsInstallConverted: 'models install' with no package converts
// rvm, selfie and meet from the TensorFlow.js graph models into a fresh
// home (a second run leaves them alone), 'models list' shows them verified
// with their licences and the hosted service's aliases, and 'models
// import --from tfjs' converts a user's graph model.
func TestModelsInstallConverted(t *testing.T) {
	assets := testmedia.Home(t)
	src := filepath.Join(assets, "tfjs", "models")
	if _, err := os.Stat(filepath.Join(src, "rvm.json")); err != nil {
		t.Fatalf("the TensorFlow.js models are missing (run scripts/setup): %v", err)
	}
	home := t.TempDir()
	os.Symlink(filepath.Join(assets, "lib"), filepath.Join(home, "lib"))
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := dispatch(context.Background(), append(args, "--home", home), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	out := cli("models", "install", "--tfjs", src)
	for _, id := range []string{"rvm", "selfie", "meet"} {
		if !strings.Contains(out, id+": installed") {
			t.Errorf("install output lacks %s:\n%s", id, out)
		}
	}
	if out := cli("models", "install", "--tfjs", src); strings.Contains(out, ": installed") {
		t.Errorf("second install converted again:\n%s", out)
	}
	list := cli("models", "list")
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "rvm":
			if !strings.Contains(line, "human") || !strings.Contains(line, "pro") || !strings.Contains(line, "GPL-3.0") || !strings.Contains(line, "present, verified") {
				t.Errorf("rvm: %s", line)
			}
		case "meet":
			if !strings.Contains(line, "light") || !strings.Contains(line, "Apache-2.0") || !strings.Contains(line, "present, verified") {
				t.Errorf("meet: %s", line)
			}
		case "selfie":
			if !strings.Contains(line, "Apache-2.0") || !strings.Contains(line, "256x256 rgb") {
				t.Errorf("selfie: %s", line)
			}
		case "isnet":
			if !strings.Contains(line, "original") || strings.Contains(line, "pro") {
				t.Errorf("isnet: %s", line)
			}
		}
	}
	var doc []map[string]any
	if err := json.Unmarshal([]byte(cli("models", "list", "--json")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc {
		if m["id"] == "rvm" && !strings.Contains(m["license"].(string), "PeterL1n/RobustVideoMatting") {
			t.Errorf("rvm licence: %v", m["license"])
		}
	}
	out = cli("models", "import", filepath.Join(src, "meet.json"), "--from", "tfjs", "--like", "isnet", "--id", "my-meet")
	if !strings.Contains(out, "imported my-meet (isnet signature, per-frame, input 256x144 rgb)") {
		t.Errorf("import: %s", out)
	}
}
