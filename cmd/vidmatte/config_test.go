package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"vidmatte/models"
)

func loadTestConfig(t *testing.T, args []string, env map[string]string) (serveConfig, error) {
	t.Helper()
	fs := newFlagSet("serve", io.Discard)
	cf := bindConfigFlags(fs, true)
	if _, err := parseFlags(fs, args); err != nil {
		return serveConfig{}, err
	}
	return cf.load(func(k string) string { return env[k] })
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "vidmatte.toml")
	os.WriteFile(file, []byte(`
listen = "127.0.0.1:1111"
data = "/srv/file"
workers = 2
shutdown_deadline = "45s"
default_model = "chroma"
[limits]
upload_bytes = 1000
fetch_timeout = "10s"
[rate_limit]
rate = 5.5
burst = 7
[prices]
chroma = 2.5
[aliases]
fast = "chroma"
`), 0o644)
	c, err := loadTestConfig(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1111" || c.Data != "/srv/file" || c.Workers != 2 || c.ShutdownDeadline.Duration != 45*time.Second ||
		c.Limits.UploadBytes != 1000 || c.Limits.FetchTimeout.Duration != 10*time.Second || c.RateLimit.Rate != 5.5 ||
		c.RateLimit.Burst != 7 || c.Prices["chroma"] != 2.5 || c.Aliases["fast"] != "chroma" || c.DefaultModel != "chroma" {
		t.Fatalf("from the file: %+v", c)
	}
	// Untouched settings keep their defaults.
	if c.MaxAttempts != 3 || c.Limits.BodyBytes != 1<<20 || c.OutputURLTTL.Duration != 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	env := map[string]string{"VIDMATTE_CONFIG": file, "VIDMATTE_LISTEN": "127.0.0.1:2222", "VIDMATTE_WORKERS": "3",
		"VIDMATTE_PRICES": "isnet=12,chroma=1", "VIDMATTE_ALLOW_PRIVATE_FETCH": "true", "VIDMATTE_FETCH_TIMEOUT": "1m"}
	c, err = loadTestConfig(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2222" || c.Workers != 3 || c.Data != "/srv/file" || c.Prices["isnet"] != 12 || c.Prices["chroma"] != 1 ||
		!c.AllowPrivateFetch || c.Limits.FetchTimeout.Duration != time.Minute {
		t.Fatalf("env over the file: %+v", c)
	}
	c, err = loadTestConfig(t, []string{"--listen", "127.0.0.1:3333", "--data", "/srv/flag", "--price", "chroma=9", "--alias", "quick=chroma"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3333" || c.Data != "/srv/flag" || c.Workers != 3 || c.Prices["chroma"] != 9 || c.Aliases["quick"] != "chroma" {
		t.Fatalf("flags over env: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("listen = \"x:1\"\nworkrs = 2\n"), 0o644)
	if _, err := loadTestConfig(t, []string{"--config", unknown}, nil); err == nil || !strings.Contains(err.Error(), "workrs") {
		t.Fatalf("unknown key: %v", err)
	}
	badType := filepath.Join(dir, "type.toml")
	os.WriteFile(badType, []byte("workers = \"two\"\n"), 0o644)
	if _, err := loadTestConfig(t, []string{"--config", badType}, nil); err == nil {
		t.Fatal("a string for workers was accepted")
	}
	for name, env := range map[string]map[string]string{
		"workers":  {"VIDMATTE_WORKERS": "many"},
		"range":    {"VIDMATTE_WORKERS": "0"},
		"duration": {"VIDMATTE_SHUTDOWN_DEADLINE": "soon"},
		"price":    {"VIDMATTE_PRICES": "isnet"},
		"device":   {"VIDMATTE_DEVICE": "tpu"},
		"ttl":      {"VIDMATTE_OUTPUT_URL_TTL": "1s"},
	} {
		if _, err := loadTestConfig(t, nil, env); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	if _, err := loadTestConfig(t, []string{"--price", "chroma=-1"}, nil); err == nil {
		t.Fatal("a negative price was accepted")
	}
	if _, err := loadTestConfig(t, []string{"--config", filepath.Join(dir, "absent.toml")}, nil); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// TestConfigMemoryBudgetAndSessionCache: the job memory budget and the
// session cache come from the file, the environment and flags; the
// default budget is half the machine's memory shared among the workers.
func TestConfigMemoryBudgetAndSessionCache(t *testing.T) {
	c, err := loadTestConfig(t, nil, map[string]string{"VIDMATTE_WORKERS": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionCache != models.DefaultSessionCache || c.MemoryBudget != 0 {
		t.Fatalf("defaults: session_cache %d, memory_budget %d", c.SessionCache, c.MemoryBudget)
	}
	if got, want := c.jobMemoryBudget(), models.DefaultMemoryBudget()/2; got != want || got <= 0 {
		t.Fatalf("default budget with 2 workers: %d, want %d", got, want)
	}
	file := filepath.Join(t.TempDir(), "vidmatte.toml")
	os.WriteFile(file, []byte("memory_budget = 3000000000\nsession_cache = 3\n"), 0o644)
	c, err = loadTestConfig(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryBudget != 3_000_000_000 || c.SessionCache != 3 || c.jobMemoryBudget() != 3_000_000_000 {
		t.Fatalf("from the file: memory_budget %d, session_cache %d", c.MemoryBudget, c.SessionCache)
	}
	env := map[string]string{"VIDMATTE_CONFIG": file, "VIDMATTE_MEMORY_BUDGET": "2000000000", "VIDMATTE_SESSION_CACHE": "5"}
	c, err = loadTestConfig(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryBudget != 2_000_000_000 || c.SessionCache != 5 {
		t.Fatalf("env over the file: memory_budget %d, session_cache %d", c.MemoryBudget, c.SessionCache)
	}
	c, err = loadTestConfig(t, []string{"--memory-budget", "1000000000", "--session-cache", "2"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryBudget != 1_000_000_000 || c.SessionCache != 2 {
		t.Fatalf("flags over env: memory_budget %d, session_cache %d", c.MemoryBudget, c.SessionCache)
	}
	for name, env := range map[string]map[string]string{
		"negative budget": {"VIDMATTE_MEMORY_BUDGET": "-1"},
		"budget type":     {"VIDMATTE_MEMORY_BUDGET": "lots"},
		"no cache":        {"VIDMATTE_SESSION_CACHE": "0"},
	} {
		if _, err := loadTestConfig(t, nil, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestConfigJobThreads: each job's thread budget is threads when set; by
// default one worker leaves the libraries their own choice (0: all
// cores), and several workers share the cores, at least one each.
func TestConfigJobThreads(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, c := range []struct {
		env  map[string]string
		want int
	}{
		{nil, 0},
		{map[string]string{"VIDMATTE_THREADS": "3"}, 3},
		{map[string]string{"VIDMATTE_THREADS": "3", "VIDMATTE_WORKERS": "4"}, 3},
		{map[string]string{"VIDMATTE_WORKERS": "2"}, max(cpus/2, 1)},
		{map[string]string{"VIDMATTE_WORKERS": "64"}, max(cpus/64, 1)},
	} {
		cfg, err := loadTestConfig(t, nil, c.env)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.jobThreads(); got != c.want {
			t.Errorf("%v: %d threads a job, want %d", c.env, got, c.want)
		}
	}
}
