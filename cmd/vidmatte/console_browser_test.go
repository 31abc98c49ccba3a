package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"vidmatte/internal/testmedia"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium (Debian's chromium package) with a
// fresh profile and returns a tab's context. Without the browser the test
// is skipped, unless VIDMATTE_REQUIRE_BROWSER is set (scripts/test sets
// it), when it fails.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("VIDMATTE_REQUIRE_BROWSER") != "" {
			t.Fatalf("VIDMATTE_REQUIRE_BROWSER is set and %s is missing (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s is not installed (Debian's chromium package); set VIDMATTE_REQUIRE_BROWSER=1 to make this a failure", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser and lives as long as its context:
	// no timeout on it; the test's actions get one below.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	return tctx
}

// do turns an action with a value into a step of chromedp.Do.
func do[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// value runs one action of the test and returns its value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// The console in a real browser against a real daemon: sign in with a key,
// upload a green-screen clip through the drop zone's file picker, see the
// cost, start a chroma job, watch it complete over the event stream, play
// the result and read back from a canvas that its frames carry alpha
// (transparent where the backdrop was, opaque on the subject), see the
// usage, and fit a phone's width. Screenshots go to the test's temp
// folder.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	dir := t.TempDir()
	out, _, _ := runCmd(t, "keys", "create", "--data", dir, "--name", "console", "--credits", "100")
	key := strings.TrimSpace(out)
	d, _, _ := startDaemon(t, dir, time.Minute, nil)
	base := "http://" + d.Addr()
	c := &client{t: t, base: base, key: key}
	const w, h, frames = 160, 120, 25
	clip, truth := testmedia.GreenScreen(t, w, h, frames, false)
	ctx := newBrowser(t, 4*time.Minute)

	var (
		mu         sync.Mutex
		exceptions []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			exceptions = append(exceptions, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Screenshots go to the test's temp folder, or to
	// $VIDMATTE_CONSOLE_SCREENSHOTS to keep them.
	shots := t.TempDir()
	if d := os.Getenv("VIDMATTE_CONSOLE_SCREENSHOTS"); d != "" {
		shots = d
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			p := filepath.Join(shots, name)
			if err := os.WriteFile(p, buf, 0o644); err != nil {
				return err
			}
			t.Logf("screenshot: %s", p)
			return nil
		})
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			_ = chromedp.Do(ctx, shot("failure.png"))
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\n%.3000s", what, err, html)
		}
	}
	poll := func(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))
	}

	// A wrong key is refused on the page; the right one signs in.
	run("a wrong key",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromedp.SendKeys(chromedp.ID("api-key"), "vmk_wrong"),
		chromedp.Click(chromedp.ID("signin-button")),
		poll(`document.getElementById("signin-error").textContent.includes("invalid_api_key")`, 30*time.Second),
	)
	run("sign in",
		do(chromedp.Evaluate[string](`document.getElementById("api-key").value = ""`)),
		chromedp.SendKeys(chromedp.ID("api-key"), key),
		chromedp.Click(chromedp.ID("signin-button")),
		chromedp.WaitVisible(chromedp.ID("view-create")),
		poll(`document.getElementById("model").value === "chroma"`, 30*time.Second),
	)
	stored := value(t, ctx, "the stored key", chromedp.Evaluate[string](`sessionStorage.getItem("vidmatte.apiKey") + "|" + localStorage.length + "|" + document.cookie`))
	if stored != key+"|0|" {
		t.Fatalf("the key is kept as %q, want it in sessionStorage only", stored)
	}

	// Upload through the picker; the cost appears and matches the job's.
	run("upload",
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{clip}),
		poll(`!document.getElementById("start").disabled`, time.Minute),
	)
	cost := value(t, ctx, "the cost", chromedp.Text(chromedp.ID("cost")))
	progress := value(t, ctx, "upload progress", chromedp.Evaluate[string](`document.getElementById("upload-progress").value + "/" + document.getElementById("upload-percent").textContent`))
	if progress != "100/uploaded" {
		t.Fatalf("upload progress ends at %q", progress)
	}
	run("start", shot("create.png"), chromedp.Click(chromedp.ID("start")), chromedp.WaitVisible(chromedp.ID("view-jobs")))

	jobs := c.get("/v1/jobs")["jobs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("jobs after start: %v", jobs)
	}
	job := jobs[0].(map[string]any)
	id := job["id"].(string)
	credits := job["credits"].(float64)
	pricing := c.get("/api/pricing")["model_pricing_credits_per_minute"].(map[string]any)
	dur := job["duration_seconds"].(float64)
	if want := math.Ceil(dur) * pricing["chroma"].(float64) / 60; math.Abs(credits-want) > 0.001 {
		t.Fatalf("the job reserved %v credits, want ceil(%v) × %v / 60", credits, dur, pricing["chroma"])
	}
	shown, err := strconv.ParseFloat(strings.TrimSuffix(cost, " credits"), 64)
	if err != nil || math.Abs(shown-credits) > 0.0005 {
		t.Fatalf("the console showed a cost of %q, the job reserved %v", cost, credits)
	}
	if job["model"] != "chroma" || job["output_format"] != "webm" {
		t.Fatalf("job: %v", job)
	}

	// It completes, seen live, and the result plays.
	view := chromedp.CSS(fmt.Sprintf(`#job-%s[data-status="completed"] button`, id))
	run("the job completes", chromedp.WaitVisible(view))
	if live := value(t, ctx, "live", chromedp.Text(chromedp.ID("live"))); live != "live" {
		t.Errorf("the jobs list was not live over the event stream: %q", live)
	}
	run("the result plays",
		chromedp.Click(view),
		chromedp.WaitVisible(chromedp.ID("viewer")),
		poll(`(() => { const v = document.getElementById("result-video"); return v.readyState >= 2 && v.currentTime > 0 && !v.paused; })()`, time.Minute),
		do(chromedp.Evaluate[bool](`(() => { const v = document.getElementById("result-video"); v.pause(); v.currentTime = 0; return true; })()`)),
		poll(`(() => { const v = document.getElementById("result-video"); return !v.seeking && v.readyState >= 2; })()`, 30*time.Second),
	)

	// Its first frame drawn to a canvas: transparent on the backdrop,
	// opaque on the subject.
	opaqueX, opaqueY, clearX, clearY := -1, -1, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			switch a := truth[0][y*w+x]; {
			case a == 255 && opaqueX < 0:
				opaqueX, opaqueY = x, y
			case a == 0 && clearX < 0 && x > 4 && y > 4:
				clearX, clearY = x, y
			}
		}
	}
	type pixels struct {
		W, H                int
		Transparent, Opaque float64
		Frames              int
		Backdrop, Subject   int
	}
	px := value(t, ctx, "read alpha back", chromedp.Evaluate[pixels](fmt.Sprintf(`(() => {
		const v = document.getElementById("result-video");
		const c = document.createElement("canvas");
		c.width = v.videoWidth; c.height = v.videoHeight;
		const g = c.getContext("2d");
		g.clearRect(0, 0, c.width, c.height);
		g.drawImage(v, 0, 0);
		const d = g.getImageData(0, 0, c.width, c.height).data;
		let t = 0, o = 0;
		for (let i = 3; i < d.length; i += 4) { if (d[i] < 16) t++; else if (d[i] > 239) o++; }
		const n = d.length / 4;
		return {W: c.width, H: c.height, Transparent: t / n, Opaque: o / n,
			Frames: v.getVideoPlaybackQuality().totalVideoFrames,
			Backdrop: d[(%d * c.width + %d) * 4 + 3], Subject: d[(%d * c.width + %d) * 4 + 3]};
	})()`, clearY, clearX, opaqueY, opaqueX)))
	t.Logf("the result in the browser: %dx%d, %d frames decoded, %.0f%% transparent, %.0f%% opaque; alpha %d on the backdrop (%d,%d), %d on the subject (%d,%d)",
		px.W, px.H, px.Frames, px.Transparent*100, px.Opaque*100, px.Backdrop, clearX, clearY, px.Subject, opaqueX, opaqueY)
	if px.W != w || px.H != h || px.Frames < 1 {
		t.Fatalf("the result video: %+v", px)
	}
	if px.Backdrop > 16 || px.Subject < 239 || px.Transparent < 0.2 || px.Opaque < 0.05 {
		t.Fatalf("the decoded frame has no alpha where it should: %+v", px)
	}

	href := value(t, ctx, "the download link", chromedp.AttributeValue(chromedp.ID("download"), "href"))
	if !strings.HasPrefix(href.Value, base+"/outputs/"+id+".webm?") {
		t.Fatalf("download link %q", href.Value)
	}
	run("the viewer",
		chromedp.Click(chromedp.CSS(`input[name="stage"][value="color"]`)),
		poll(`!document.getElementById("stage").classList.contains("checker")`, 10*time.Second),
		chromedp.Click(chromedp.CSS(`input[name="stage"][value="compare"]`)),
		poll(`!document.getElementById("compare").hidden && document.getElementById("compare-input").src.startsWith("blob:")`, 10*time.Second),
		shot("result.png"),
	)

	// Usage: the chart and the charge.
	run("usage",
		chromedp.Click(chromedp.CSS(`.tab[data-view="usage"]`)),
		chromedp.WaitVisible(chromedp.CSS("#chart svg")),
		poll(`document.getElementById("events").textContent.includes("charge")`, 30*time.Second),
		shot("usage.png"),
	)

	// A phone's width: nothing wider than the screen.
	run("phone width",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Click(chromedp.CSS(`.tab[data-view="jobs"]`)),
		shot("phone.png"),
	)
	if value(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)) {
		t.Error("the console is wider than a phone's screen")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Fatalf("script errors in the page: %v", exceptions)
	}
}
