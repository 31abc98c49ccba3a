package benchmarks

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// machineInfo describes this machine from /proc.
func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if m.CPU == "" {
		m.CPU = "unknown"
	}
	if kb := procField("/proc/meminfo", "MemTotal:"); kb > 0 {
		m.MemoryBytes = kb * 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`) + " " + m.OS
			}
		}
	}
	m.LoadStart = loadAverage()
	m.LoadMax = m.LoadStart
	return m
}

// loadAverage is the 1-minute load average (0 when unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// procField returns the number after key in a /proc file of "key value
// kB" lines (0 when absent).
func procField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(v)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// resetPeakRSS resets the process's peak resident set size to the current
// one (Linux: writing 5 to /proc/self/clear_refs). It reports whether the
// kernel allowed it.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is the process's peak resident set size in bytes since the last
// reset (VmHWM).
func peakRSS() int64 { return procField("/proc/self/status", "VmHWM:") * 1024 }

// currentRSS is the process's resident set size in bytes (VmRSS).
func currentRSS() int64 { return procField("/proc/self/status", "VmRSS:") * 1024 }

// versions returns Go's and FFmpeg's versions and vidmatte's commit: from
// the binary's build information, else from git in the working folder.
func versions(ctx context.Context, ort string) Versions {
	v := Versions{Go: runtime.Version(), FFmpeg: ffmpegVersion(ctx), ONNXRuntime: ort}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Vidmatte = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	if v.Vidmatte == "" {
		if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
			v.Vidmatte = strings.TrimSpace(string(out))
			if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
				v.Dirty = len(strings.TrimSpace(string(st))) > 0
			}
		}
	}
	if v.Vidmatte == "" {
		v.Vidmatte = "unknown"
	}
	return v
}
