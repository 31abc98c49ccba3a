package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"

	"vidmatte"
)

// tomlKeys lists the keys a configuration struct reads, dotted for tables.
func tomlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(duration{}) {
			keys = append(keys, tomlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// The example configuration names every key the daemon reads and loads
// with the strict loader (no unknown keys) into the data dir the systemd
// unit gives the daemon.
func TestDeployExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "vidmatte.toml")
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range md.Keys() {
		have[k.String()] = true
	}
	var missing []string
	for _, k := range tomlKeys(reflect.TypeOf(serveConfig{}), "") {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("deploy/vidmatte.toml lacks the keys %v", missing)
	}
	c := defaultServeConfig()
	if err := loadConfigFile(&c, path); err != nil {
		t.Fatal(err)
	}
	if c.Data != "/var/lib/vidmatte" || c.Prices["isnet"] != 10 || c.Aliases["fast"] != "isnet-small" || c.Retention.Outputs.Duration != 168*time.Hour {
		t.Errorf("the example loads as %+v", c)
	}
}

// The systemd unit runs the daemon with the example config as a dedicated
// user, hardened, with its data dir as the state directory; systemd's own
// checker accepts it where it is installed.
func TestDeploySystemdUnit(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "vidmatte.service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not a directive: %q", line)
		}
		set[k] = append(set[k], v)
	}
	for k, want := range map[string]string{
		"ExecStart": "/usr/local/bin/vidmatte serve --config /etc/vidmatte/vidmatte.toml",
		"User":      "vidmatte", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "StateDirectory": "vidmatte", "KillSignal": "SIGTERM", "CapabilityBoundingSet": "",
	} {
		if got := set[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %q", k, got, want)
		}
	}
	stop, err := time.ParseDuration(set["TimeoutStopSec"][0] + "s")
	if err != nil || stop <= defaultServeConfig().ShutdownDeadline.Duration {
		t.Errorf("TimeoutStopSec=%v leaves no time past the shutdown deadline", set["TimeoutStopSec"])
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit was checked as text only")
		return
	}
	// The binary need not be installed here: point ExecStart at one that is.
	unit := filepath.Join(t.TempDir(), "vidmatte.service")
	os.WriteFile(unit, []byte(strings.Replace(string(b), "/usr/local/bin/vidmatte serve", "/bin/true serve", 1)), 0o644)
	if out, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for vidmatte.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 2.5 {
		t.Errorf("exposure level %v (want at most 2.5):\n%s", v, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}

var metricName = regexp.MustCompile(`\b(?:vidmatte|process|go)_[a-z0-9_]+`)

// Every metric the alert rules and the dashboard use is one the daemon
// exports; the rules are well-formed.
func TestDeployMonitoring(t *testing.T) {
	dir := t.TempDir()
	d, _, _ := startDaemon(t, dir, time.Minute, nil)
	base := "http://" + d.Addr()
	// Make every labelled family appear: a request, a finished job, a
	// webhook attempt.
	d.api.Metrics().ObserveJob("", vidmatte.StatusCompleted, 10, time.Second, 2*time.Second)
	d.api.Metrics().ObserveWebhook("failed")
	for _, p := range []string{"/health", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := map[string]bool{}
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		exported[name] = true
	}

	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "vidmatte-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks alert, expr, severity or summary", r)
			}
			if _, err := time.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("rule %s: for %q", r.Alert, r.For)
			}
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				used[m] = "alert " + r.Alert
			}
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err = os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "vidmatte-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range metricName.FindAllString(q.Expr, -1) {
				used[m] = "panel " + p.Title
			}
		}
	}
	var names []string
	for m, where := range used {
		names = append(names, m)
		if !exported[m] {
			t.Errorf("%s uses %s, which /metrics does not export", where, m)
		}
	}
	sort.Strings(names)
	for _, fam := range []string{"vidmatte_http_requests_total", "vidmatte_queue_depth", "vidmatte_jobs", "vidmatte_jobs_finished_total",
		"vidmatte_frames_processed_total", "vidmatte_inference_seconds_total", "vidmatte_job_duration_seconds_bucket", "vidmatte_webhook_attempts_total",
		"vidmatte_http_request_duration_seconds_bucket"} {
		if used[fam] == "" {
			t.Errorf("neither the alerts nor the dashboard use %s", fam)
		}
	}
	t.Logf("%d alert rules, %d panels, metrics used: %v", n, len(dash.Panels), names)
}
