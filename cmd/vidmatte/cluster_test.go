package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte/internal/testmedia"
	"vidmatte/internal/testpg"
	"vidmatte/internal/tests3"
	"vidmatte/store"
)

// startNode starts 'vidmatte serve' on the cluster's store and bucket,
// with a short lease, and returns its process and base URL.
func startNode(t *testing.T, bin, dir, dsn, bucket string) (*exec.Cmd, string) {
	t.Helper()
	return startServeWith(t, bin, dir, []string{"--store", dsn, "--artifacts", bucket},
		[]string{"VIDMATTE_LEASE=3s", "AWS_ACCESS_KEY_ID=" + tests3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + tests3.SecretKey})
}

// Daemons on one PostgreSQL store and one S3 bucket: a node killed with SIGKILL mid-job is
// not waited for, another takes the job back once its lease runs out and
// completes it; a node frozen with SIGSTOP past its lease loses its job to
// another and, resumed, abandons it instead of completing it. Every job is
// charged exactly once and is seen the same through every node.
func TestClusterSurvivesKilledAndFrozenNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs several daemons")
	}
	bin := buildBinary(t)
	dsn := testpg.Database(t)
	out, errOut, code := runCmd(t, "keys", "create", "--store", dsn, "--name", "cluster", "--credits", "1000")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	key := strings.TrimSpace(out)
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	endpoint, name := tests3.Bucket(t)
	bucket := "s3://" + name + "/cluster?endpoint=" + endpoint + "&secure=false"

	// A runs a job and is killed; B, started after, takes it over.
	a, urlA := startNode(t, bin, dirA, dsn, bucket)
	ca := &client{t: t, base: urlA, key: key}
	killed := killMidJob(t, ca, a, dirA)
	b, urlB := startNode(t, bin, dirB, dsn, bucket)
	cb := &client{t: t, base: urlB, key: key}
	j := cb.waitJob(killed, 3*time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("the killed node's job: %v", j)
	}
	if l := cb.jobLedger(killed); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("the killed node's job ledger: %v", l)
	}
	// B counted the rescue.
	resp, err := http.Get(urlB + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^vidmatte_job_leases_total\{event="rescued"\} [1-9]`).Match(metrics) {
		t.Fatalf("B's metrics do not count the rescue:\n%s", metrics)
	}
	// The files are the bucket's, not a node's: the killed node's upload
	// reached B through it, and the output is served by any node.
	if err := os.RemoveAll(filepath.Join(dirA, "uploads")); err != nil {
		t.Fatal(err)
	}
	db0, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	kj, err := db0.FindJob(context.Background(), "", killed)
	db0.Close()
	if err != nil || !strings.HasPrefix(kj.InputPath, "s3:") || !strings.HasPrefix(kj.OutputPath, "s3:outputs/"+killed+"/") {
		t.Fatalf("the job's files are not in the bucket: %+v %v", kj, err)
	}
	outURL, _ := cb.get("/v1/jobs/" + killed)["output_url"].(string)
	u, err := url.Parse(outURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{urlB, urlA} {
		if base == urlA {
			_, base = startNode(t, bin, t.TempDir(), dsn, bucket) // A's replacement, with nothing local
		}
		resp, err := http.Get(base + u.RequestURI())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("output through %s: %d, %d bytes: %.200s", base, resp.StatusCode, len(body), body)
		}
	}

	// C runs a job and is frozen past its lease; B takes it back.
	c, urlC := startNode(t, bin, dirC, dsn, bucket)
	cc := &client{t: t, base: urlC, key: key}
	db, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// B must not take C's new job first: it is stopped while C claims it.
	if err := b.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenID := freezeMidJob(t, cc, c, dirC)
	frozen, err := db.FindJob(context.Background(), "", frozenID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cur, err := db.FindJob(context.Background(), "", frozen.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.LeaseToken > frozen.LeaseToken || cur.Status == "completed" {
			break // rescued, and claimed again by B
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frozen node's job was not taken back: %+v", cur)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	j = cb.waitJob(frozen.ID, 3*time.Minute, nil)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("the frozen node's job: %v", j)
	}
	if got := cc.get("/v1/jobs/" + frozen.ID); got["status"] != "completed" || got["output_url"] == nil {
		t.Fatalf("the job seen through the resumed node: %v", got)
	}
	if l := cb.jobLedger(frozen.ID); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
		t.Fatalf("the frozen node's job ledger: %v", l)
	}
	// The resumed node gave the job up: it learned from its heartbeat or
	// its next write that the lease was no longer its own.
	deadline = time.Now().Add(time.Minute)
	for {
		logC, _ := os.ReadFile(filepath.Join(dirC, "serve.log"))
		if strings.Contains(string(logC), "job abandoned: its lease was lost") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed node did not abandon its job:\n%s", logC)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// partialJob waits until the node whose data folder is dir writes a job's
// partial output and returns that job's id ("" if every job of ids ended
// first).
func partialJob(t *testing.T, c *client, dir string, ids []string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, "outputs", "*", ".*.partial.*"))
		if len(matches) > 0 {
			return filepath.Base(filepath.Dir(matches[0]))
		}
		// A segmented job: a part being written.
		if parts, _ := filepath.Glob(filepath.Join(dir, "outputs", "*", "parts", "*", "part_*")); len(parts) > 0 {
			return filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(parts[0]))))
		}
		open := 0
		for _, id := range ids {
			if st := c.get("/v1/jobs/" + id)["status"]; st == "queued" || st == "processing" {
				open++
			}
		}
		if open == 0 {
			return ""
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no job ran on %s", dir)
	return ""
}

// Three daemons on one PostgreSQL store and one S3 bucket, as the issue
// asks: 12 jobs created through the nodes in turn; one node killed with
// SIGKILL mid-job and left dead, another frozen with SIGSTOP past its
// lease and then resumed; every job completes through the survivors,
// charged exactly once, its output downloadable through any node; then
// the killed node comes back and takes work again.
func TestClusterOfThree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three daemons")
	}
	bin := buildBinary(t)
	dsn := testpg.Database(t)
	out, errOut, code := runCmd(t, "keys", "create", "--store", dsn, "--name", "three", "--credits", "1000")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	key := strings.TrimSpace(out)
	endpoint, name := tests3.Bucket(t)
	bucket := "s3://" + name + "?endpoint=" + endpoint + "&secure=false"
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var cmds []*exec.Cmd
	var clients []*client
	for _, dir := range dirs {
		cmd, base := startNode(t, bin, dir, dsn, bucket)
		cmds = append(cmds, cmd)
		clients = append(clients, &client{t: t, base: base, key: key})
	}
	clip := testmedia.Clip(t, testmedia.ClipOptions{Width: 320, Height: 240, FPS: 25, Duration: 12 * time.Second})
	create := func(c *client) string {
		t.Helper()
		up := c.upload(clip)
		st, j := c.post("/v1/jobs", fmt.Sprintf(`{"video_url":%q}`, up["video_url"]))
		if st != 201 {
			t.Fatalf("create: %d %v", st, j)
		}
		return j["id"].(string)
	}
	var ids []string
	for i := range 12 {
		ids = append(ids, create(clients[i%3]))
	}

	// Node 0 is killed while it runs a job; node 2 is frozen while it runs
	// one, until that job is taken back, and then resumed.
	killed := partialJob(t, clients[1], dirs[0], ids)
	if killed == "" {
		t.Fatal("every job ended before node 0 was seen running one")
	}
	cmds[0].Process.Signal(syscall.SIGKILL)
	cmds[0].Wait()
	frozen := partialJob(t, clients[1], dirs[2], ids)
	for try := 0; frozen == "" && try < 3; try++ {
		// The others were quicker: more work, until node 2 is caught.
		for range 4 {
			ids = append(ids, create(clients[2]))
		}
		frozen = partialJob(t, clients[1], dirs[2], ids)
	}
	if frozen == "" {
		t.Fatal("node 2 was never seen running a job")
	}
	cmds[2].Process.Signal(syscall.SIGSTOP)
	db, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	held, err := db.FindJob(context.Background(), "", frozen)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cur, err := db.FindJob(context.Background(), "", frozen)
		if err != nil {
			t.Fatal(err)
		}
		if cur.LeaseToken > held.LeaseToken || cur.Status == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frozen node's job was not taken back: %+v", cur)
		}
		time.Sleep(100 * time.Millisecond)
	}
	db.Close()
	cmds[2].Process.Signal(syscall.SIGCONT)
	t.Logf("killed node 0 during %s, froze node 2 during %q", killed, frozen)

	// Every job completes, once, through the survivors, and any node
	// serves its output.
	for i, id := range ids {
		j := clients[1].waitJob(id, 3*time.Minute, nil)
		if j["status"] != "completed" || j["billing_status"] != "charged" {
			t.Fatalf("job %s: %v", id, j)
		}
		if l := clients[1].jobLedger(id); l["reserve"] != 1 || l["charge"] != 1 || l["refund"] != 0 {
			t.Fatalf("job %s ledger %v", id, l)
		}
		u, err := url.Parse(j["output_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		via := clients[1+i%2].base
		resp, err := http.Get(via + u.RequestURI())
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			t.Fatalf("job %s's output through %s: %d, %d bytes", id, via, resp.StatusCode, n)
		}
	}

	// The killed node comes back and takes work: the other two are held
	// still (they run nothing) while it claims a new job.
	cmds[1].Process.Signal(syscall.SIGSTOP)
	cmds[2].Process.Signal(syscall.SIGSTOP)
	back, base := startNode(t, bin, dirs[0], dsn, bucket)
	_ = back
	again := &client{t: t, base: base, key: key}
	id := create(again)
	j := again.waitJob(id, 3*time.Minute, nil)
	cmds[1].Process.Signal(syscall.SIGCONT)
	cmds[2].Process.Signal(syscall.SIGCONT)
	if j["status"] != "completed" || j["billing_status"] != "charged" {
		t.Fatalf("the returned node's job: %v", j)
	}
}
