package benchmarks

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
)

// BenchmarkWholeProcessVsFFmpeg runs, as processes of their own and
// alternating, 'vidmatte run' with the chroma keyer and FFmpeg's command
// line encoding the same 1080p green-screen clip (8 s at 25 fps) into the
// same VP9-alpha WebM (realtime, cpu-used 8, crf 30, row-mt, all
// threads): FFmpeg with a constant alpha, so it pays the codecs alone.
// ratio is FFmpeg's time over vidmatte's (1 = the engine costs nothing
// beside the codecs); rss_ratio compares their peak resident memory.
//
//	go test -run '^$' -bench WholeProcessVsFFmpeg -benchtime 3x ./benchmarks/
func BenchmarkWholeProcessVsFFmpeg(b *testing.B) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Skip("no ffmpeg command: scripts/setup installs it")
	}
	bin := filepath.Join(b.TempDir(), "vidmatte")
	if out, err := exec.Command("go", "build", "-o", bin, "vidmatte/cmd/vidmatte").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	clip, _ := testmedia.GreenScreen(b, 1920, 1080, 200, false)
	dir := b.TempDir()
	run := func(cmd *exec.Cmd) (time.Duration, int64) {
		start := time.Now()
		peak, err := runPeakRSS(cmd)
		if err != nil {
			b.Fatalf("%s: %v", cmd.Path, err)
		}
		return time.Since(start), peak
	}
	var vm, ff time.Duration
	var vmRSS, ffRSS int64
	b.ResetTimer()
	for range b.N {
		t, rss := run(exec.Command(bin, "run", clip, "-o", filepath.Join(dir, "vidmatte.webm"), "-model", "chroma", "-quiet"))
		vm, vmRSS = vm+t, max(vmRSS, rss)
		t, rss = run(exec.Command(ffmpeg, "-y", "-loglevel", "error", "-i", clip, "-vf", "format=yuva420p",
			"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "30", "-b:v", "0", "-row-mt", "1", "-threads", "0",
			filepath.Join(dir, "ffmpeg.webm")))
		ff, ffRSS = ff+t, max(ffRSS, rss)
	}
	n := float64(b.N)
	b.ReportMetric(vm.Seconds()/n, "vidmatte_s")
	b.ReportMetric(ff.Seconds()/n, "ffmpeg_s")
	b.ReportMetric(ff.Seconds()/vm.Seconds(), "ratio")
	b.ReportMetric(float64(vmRSS)/(1<<20), "vidmatte_rss_MB")
	b.ReportMetric(float64(ffRSS)/(1<<20), "ffmpeg_rss_MB")
	b.ReportMetric(float64(vmRSS)/float64(ffRSS), "rss_ratio")
}
