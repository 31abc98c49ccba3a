package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
	"vidmatte/internal/tests3"
)

// BenchmarkLongJobOnDaemons runs one long 1280×720 chroma job to WebM on
// one and on three daemons sharing a PostgreSQL store and an S3 bucket,
// from upload to completion, and reports the time per job and per hour of
// video, and the largest peak resident memory of a daemon. The clip lasts VIDMATTE_BENCH_SECONDS (default 60): for the
// figure of an hour, run it with 3600, or with a shorter clip and read
// s/video-hour.
//
//	VIDMATTE_BENCH_SECONDS=300 go test -run '^$' -bench LongJobOnDaemons -benchtime 1x ./cmd/vidmatte
func BenchmarkLongJobOnDaemons(b *testing.B) {
	seconds := 60
	if v := os.Getenv("VIDMATTE_BENCH_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("VIDMATTE_BENCH_SECONDS=%q", v)
		}
		seconds = n
	}
	bin := buildBinary(b)
	clip := testmedia.Clip(b, testmedia.ClipOptions{Width: 1280, Height: 720, FPS: 25, Duration: time.Duration(seconds) * time.Second})
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("daemons=%d", nodes), func(b *testing.B) {
			dsn, key, bucket := clusterStore(b, "bench")
			var clients []*client
			var cmds []*exec.Cmd
			for range nodes {
				cmd, base := startServeWith(b, bin, b.TempDir(), []string{"--store", dsn, "--artifacts", bucket},
					[]string{"AWS_ACCESS_KEY_ID=" + tests3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + tests3.SecretKey,
						// An hour's clip passes the default limits by a few frames or bytes.
						"VIDMATTE_MAX_DURATION=0", "VIDMATTE_MAX_FRAMES=0", "VIDMATTE_MAX_UPLOAD_BYTES=20000000000"})
				cmds = append(cmds, cmd)
				clients = append(clients, &client{t: b, base: base, key: key})
			}
			up := clients[0].upload(clip)
			b.ResetTimer()
			for range b.N {
				st, j := clients[0].post("/v1/jobs", fmt.Sprintf(`{"video_url":%q,"model":"chroma"}`, up["video_url"]))
				if st != 201 {
					b.Fatalf("create: %d %v", st, j)
				}
				done := clients[0].waitJob(j["id"].(string), 3*time.Hour, nil)
				if done["status"] != "completed" {
					b.Fatalf("job: %v", done)
				}
			}
			perJob := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(perJob, "s/job")
			b.ReportMetric(perJob*3600/float64(seconds), "s/video-hour")
			b.ReportMetric(float64(seconds*25)/perJob, "fps")
			var peak int64
			for _, c := range cmds {
				peak = max(peak, peakRSS(b, c.Process.Pid))
				c.Process.Kill()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MB")
		})
	}
}

// peakRSS is the peak resident memory of a running process (VmHWM).
func peakRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no VmHWM for process %d", pid)
	return 0
}
