package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vidmatte"
)

// The environment of the crash helper: the database it writes and the key
// whose jobs it runs.
const (
	envCrashDB  = "VIDMATTE_STORE_CRASH_DB"
	envCrashKey = "VIDMATTE_STORE_CRASH_KEY"
)

// TestCrashHelperProcess is not a test on its own: TestCrashDurability runs
// the test binary again with only this test and the environment above. It
// writes to the store in a loop and, after each call returns, prints what
// was acknowledged ("ack <what> <id> [n]") until it is killed.
func TestCrashHelperProcess(t *testing.T) {
	path, keyID := os.Getenv(envCrashDB), os.Getenv(envCrashKey)
	if path == "" {
		t.Skip("the child of TestCrashDurability; runs only inside it")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	ack := func(format string, args ...any) {
		// One write per line, after the commit returned.
		if _, err := os.Stdout.WriteString("ack " + fmt.Sprintf(format, args...) + "\n"); err != nil {
			fail(err)
		}
	}
	ctx := context.Background()
	db, err := Open(path)
	if err != nil {
		fail(err)
	}
	if _, err := db.RecoverJobs(ctx, 1000); err != nil {
		fail(err)
	}
	os.Stdout.WriteString("ready\n")
	grants := 0
	for i := 0; ; i++ {
		j := newJobFor(keyID, float64(i%5+1)/1000)
		j.Metadata = map[string]string{"i": strconv.Itoa(i)}
		if err := db.CreateJob(ctx, j, true, "req_"+strconv.Itoa(i)); err != nil {
			fail(err)
		}
		ack("created %s", j.ID)
		js, err := db.ClaimJobs(ctx, "crash-helper", 1)
		if err != nil {
			fail(err)
		}
		if len(js) == 0 {
			fail(fmt.Errorf("nothing to claim after creating %s", j.ID))
		}
		c := js[0]
		ack("claimed %s", c.ID)
		p := 10 + i%80
		if _, err := db.SetJobProgress(ctx, leaseOf(t, db, c.ID), p, int64(p), 100); err != nil {
			fail(err)
		}
		ack("progress %s %d", c.ID, p)
		switch i % 3 {
		case 0:
			if _, err := db.CompleteJob(ctx, leaseOf(t, db, c.ID), vidmatte.JobOutput{Path: "/out/" + c.ID}); err != nil {
				fail(err)
			}
			ack("completed %s", c.ID)
		case 1:
			if _, err := db.FailJob(ctx, leaseOf(t, db, c.ID), vidmatte.JobError{Code: vidmatte.CodeUnprocessable, Message: "bad input"}); err != nil {
				fail(err)
			}
			ack("failed %s", c.ID)
		case 2:
			if _, err := db.CancelJob(ctx, keyID, c.ID, "client", "req_c"); err != nil {
				fail(err)
			}
			ack("canceled %s", c.ID)
		}
		if i%4 == 0 {
			if _, err := db.GrantCredits(ctx, keyID, 0.5); err != nil {
				fail(err)
			}
			grants++
			ack("granted %s %d", keyID, grants)
		}
		if i%5 == 0 {
			d := &vidmatte.WebhookDelivery{JobID: c.ID, Event: vidmatte.EventJobStarted, URL: "https://hooks.example.com", Payload: []byte(c.ID)}
			if err := db.EnqueueWebhook(ctx, d); err != nil {
				fail(err)
			}
			ack("webhook %s 0", d.ID)
			if err := db.RecordWebhookAttempt(ctx, d.ID, false, false, 500, "boom", time.Now().Add(time.Minute)); err != nil {
				fail(err)
			}
			ack("webhook %s 1", d.ID)
		}
	}
}

// TestCrashDurability kills a process writing to the store with SIGKILL at
// random moments, then checks that the database opens, passes
// integrity_check and foreign_key_check, keeps the ledger's invariants, and
// holds every write the process acknowledged.
func TestCrashDurability(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "crash.db")
	db, err := Open(path)
	must(t, err)
	k, _ := newKey(t, db, 1e6)
	must(t, db.Close())

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	terminal := map[string]string{} // job → the outcome acknowledged, over all rounds
	grants := 0
	totalAcks := 0
	for round := 0; round < 30 && (round < 8 || totalAcks < 300); round++ {
		delay := time.Duration(20+rng.IntN(400)) * time.Millisecond
		acks := runCrashHelper(t, path, k.ID, delay)
		totalAcks += len(acks)

		db, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: the database does not open after SIGKILL: %v", round, err)
		}
		var res string
		must(t, db.r.QueryRow("PRAGMA integrity_check").Scan(&res))
		if res != "ok" {
			t.Fatalf("round %d: integrity_check: %s", round, res)
		}
		if n := count(t, db, "SELECT count(*) FROM pragma_foreign_key_check"); n != 0 {
			t.Fatalf("round %d: %d foreign key violations", round, n)
		}
		checkLedger(t, db)

		roundGrants := 0
		for _, a := range acks {
			f := strings.Fields(a)
			what, id := f[0], f[1]
			switch what {
			case "created":
				if _, err := db.FindJob(context.Background(), k.ID, id); err != nil {
					t.Fatalf("round %d: acknowledged job %s is missing: %v", round, id, err)
				}
			case "claimed", "progress":
				j, err := db.FindJob(context.Background(), "", id)
				must(t, err)
				if j.Attempts < 1 || j.Status == vidmatte.StatusQueued || j.Status == vidmatte.StatusPending {
					t.Fatalf("round %d: acknowledged claim of %s lost: %+v", round, id, j)
				}
				if what == "progress" {
					p, _ := strconv.Atoi(f[2])
					if j.Progress < p {
						t.Fatalf("round %d: job %s progress %d, acknowledged %d", round, id, j.Progress, p)
					}
				}
			case "completed", "failed", "canceled":
				terminal[id] = what
			case "granted":
				n, _ := strconv.Atoi(f[2]) // counts restart in every child
				roundGrants = max(roundGrants, n)
			case "webhook":
				n, _ := strconv.Atoi(f[2])
				d, err := db.FindWebhook(context.Background(), id)
				if err != nil {
					t.Fatalf("round %d: acknowledged webhook %s is missing: %v", round, id, err)
				}
				if d.Attempts < n {
					t.Fatalf("round %d: webhook %s has %d attempts, acknowledged %d", round, id, d.Attempts, n)
				}
			default:
				t.Fatalf("unknown acknowledgement %q", a)
			}
		}
		grants += roundGrants
		for id, what := range terminal {
			j, err := db.FindJob(context.Background(), k.ID, id)
			must(t, err)
			billing := map[string]vidmatte.BillingStatus{"completed": vidmatte.BillingCharged, "failed": vidmatte.BillingRefunded, "canceled": vidmatte.BillingRefunded}[what]
			if string(j.Status) != what || j.BillingStatus != billing {
				t.Fatalf("round %d: job %s acknowledged %s is %s (billing %s)", round, id, what, j.Status, j.BillingStatus)
			}
		}
		if n := count(t, db, "SELECT count(*) FROM ledger WHERE type = 'grant' AND key_id = ?", k.ID) - 1; n < grants {
			t.Fatalf("round %d: %d grants stored, %d acknowledged", round, n, grants)
		}
		must(t, db.Close())
		t.Logf("round %d: killed after %v, %d writes acknowledged", round, delay, len(acks))
	}
	if totalAcks == 0 {
		t.Fatal("the helper never acknowledged a write")
	}
	t.Logf("%d acknowledged writes checked, %d jobs finished", totalAcks, len(terminal))
}

// runCrashHelper starts the helper on the database, kills it with SIGKILL
// delay after it is ready, and returns the lines it acknowledged, without
// the "ack " prefix. A line cut short by the kill does not count.
func runCrashHelper(t *testing.T, path, keyID string, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDB+"="+path, envCrashKey+"="+keyID)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		r := bufio.NewReader(out)
		for {
			s, err := r.ReadString('\n')
			if err != nil {
				return // at EOF s is a cut line, or empty
			}
			lines <- strings.TrimSuffix(s, "\n")
		}
	}()
	var acks []string
	ready := false
	timeout := time.After(2 * time.Minute)
	for !ready {
		select {
		case s, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("helper ended before it was ready: %s", stderr.String())
			}
			ready = s == "ready"
		case <-timeout:
			t.Fatal("helper not ready after 2 minutes")
		}
	}
	kill := time.After(delay)
	for {
		select {
		case s, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("helper stopped before it was killed: %s", stderr.String())
			}
			if a, isAck := strings.CutPrefix(s, "ack "); isAck {
				acks = append(acks, a)
			}
			continue
		case <-kill:
		}
		break
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	killed = true
	// The lines written before the kill are still in the pipe.
	for s := range lines {
		if a, isAck := strings.CutPrefix(s, "ack "); isAck {
			acks = append(acks, a)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	return acks
}
