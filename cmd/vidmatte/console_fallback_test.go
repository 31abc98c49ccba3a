package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"vidmatte/engine"
	"vidmatte/internal/testmedia"
)

// With the event stream blocked in the browser, the console falls back to
// polling: a job held while processing shows as processing, its Cancel
// button cancels it through the API, and the list shows it canceled and
// refunded.
func TestConsolePollingFallbackAndCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	dir := t.TempDir()
	out, _, _ := runCmd(t, "keys", "create", "--data", dir, "--name", "fallback", "--credits", "100")
	key := strings.TrimSpace(out)
	hold := holdJobs(nil)
	d, _, _ := startDaemon(t, dir, 2*time.Second, func(p engine.Processor) engine.Processor {
		hold.inner = p
		return hold
	})
	base := "http://" + d.Addr()
	c := &client{t: t, base: base, key: key}
	clip, _ := testmedia.GreenScreen(t, 96, 64, 25, false)
	ctx := newBrowser(t, 3*time.Minute)

	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(50*time.Millisecond))
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\n%.2000s", what, err, html)
		}
	}
	block := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{
			URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/v1/jobs/events", Block: true}},
		})
		return err
	})
	run("sign in with the stream blocked",
		block,
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys(chromedp.ID("api-key"), key),
		chromedp.Click(chromedp.ID("signin-button")),
		chromedp.WaitVisible(chromedp.ID("view-create")),
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{clip}),
		poll(`!document.getElementById("start").disabled`),
		chromedp.Click(chromedp.ID("start")),
	)
	<-hold.held // the job is processing, and stays so until canceled
	jobs := c.get("/v1/jobs")["jobs"].([]any)
	id := jobs[0].(map[string]any)["id"].(string)
	cancel := chromedp.CSS(fmt.Sprintf(`#job-%s[data-status="processing"] button.danger`, id))
	run("the processing job appears by polling",
		chromedp.WaitVisible(cancel),
		poll(`document.getElementById("live").textContent.includes("polling")`),
		chromedp.Click(cancel),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#job-%s[data-status="canceled"]`, id))),
	)
	if j := c.get("/v1/jobs/" + id); j["status"] != "canceled" || j["billing_status"] != "refunded" {
		t.Fatalf("after Cancel in the console: %v", j)
	}
	meta, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#job-"+id+" .meta")))
	if err != nil || !strings.Contains(meta, "refunded") {
		t.Fatalf("the canceled job's line: %q %v", meta, err)
	}
}
