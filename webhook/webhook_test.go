package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"vidmatte"
	"vidmatte/store"
)

type env struct {
	db  *store.DB
	key *vidmatte.Key
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vidmatte.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	k, _, err := db.CreateKey(context.Background(), "hooks", 100)
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, key: k}
}

// job creates a queued job with a webhook URL and claims it: its
// job.started delivery is then in the outbox.
func (e *env) job(t *testing.T, hook string) *vidmatte.Job {
	t.Helper()
	ctx := context.Background()
	j := &vidmatte.Job{KeyID: e.key.ID, VideoURL: "https://example.com/in.mp4", InputPath: "/in.mp4", Model: "chroma",
		OutputFormat: vidmatte.FormatWebM, Background: vidmatte.Background{Type: vidmatte.BackgroundTransparent},
		DurationSec: 2, FramesTotal: 50, Credits: 1, WebhookURL: hook}
	if err := e.db.CreateJob(ctx, j, true, ""); err != nil {
		t.Fatal(err)
	}
	claimed, err := e.db.ClaimJobs(ctx, "w", 1)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	return claimed[0]
}

// render stands for the api's job object: what matters here is that it is
// taken at the attempt.
func render(j *vidmatte.Job) ([]byte, error) {
	return json.Marshal(map[string]any{"job_id": j.ID, "status": j.Status, "progress": j.Progress})
}

func (e *env) deliverer(t *testing.T, o Options) *Deliverer {
	t.Helper()
	o.PollInterval = 20 * time.Millisecond
	d, err := New(Config{Store: e.db, Client: http.DefaultClient, Render: render, Options: o,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

type hit struct {
	header http.Header
	body   map[string]any
	raw    []byte
}

// A delivery is signed, retried after a failure with the same delivery id,
// and each attempt carries the job as it is at that moment.
func TestSignedRetriedRenderedAtDelivery(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the deliverer and the store stop
	e := newEnv(t)
	hits := make(chan hit, 4)
	proceed := make(chan struct{})
	calls := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(raw, &body)
		calls++
		hits <- hit{r.Header.Clone(), body, raw}
		if calls == 1 {
			<-proceed // the job moves on before the answer comes
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	j := e.job(t, receiver.URL+"/hook")
	e.deliverer(t, Options{BaseDelay: 10 * time.Millisecond})

	first := <-hits
	if first.body["status"] != "processing" || first.body["progress"] != 0.0 {
		t.Fatalf("first attempt: %v", first.body)
	}
	if _, err := e.db.SetJobProgress(context.Background(), j.Lease(), 60, 30, 50); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	second := <-hits
	if second.body["progress"] != 60.0 {
		t.Fatalf("the retry was not rendered at delivery: %v", second.body)
	}
	for i, h := range []hit{first, second} {
		ts, err := strconv.ParseInt(h.header.Get("X-Webhook-Timestamp"), 10, 64)
		if err != nil || h.header.Get("X-Webhook-Signature") != Sign(e.key.WebhookSecret, ts, h.raw) {
			t.Fatalf("attempt %d: signature does not verify: %v", i, h.header)
		}
		if h.header.Get("X-Webhook-Event") != vidmatte.EventJobStarted || h.header.Get("X-Webhook-Delivery-Id") != first.header.Get("X-Webhook-Delivery-Id") {
			t.Fatalf("attempt %d headers %v", i, h.header)
		}
	}
	id := first.header.Get("X-Webhook-Delivery-Id")
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := e.db.FindWebhook(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Delivered && d.Attempts == 2 && d.LastStatus == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery not recorded: %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One tenant's endpoint that does not answer holds only its host's slots:
// the deliveries to another host go through meanwhile, and the held ones
// complete once it answers.
func TestSlowHostDoesNotStallOthers(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var mu sync.Mutex
	slowIn, fastDone := 0, make(chan string, 8)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		slowIn++
		mu.Unlock()
		select {
		case <-release:
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fastDone <- r.Header.Get("X-Webhook-Delivery-Id")
		w.WriteHeader(http.StatusOK)
	}))
	defer fast.Close()
	for range 5 {
		e.job(t, slow.URL+"/hook")
	}
	for range 3 {
		e.job(t, fast.URL+"/hook")
	}
	e.deliverer(t, Options{PerHost: 2, Concurrency: 4, Timeout: time.Minute})
	for i := range 3 {
		select {
		case <-fastDone:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d deliveries to the fast host went through while the slow one held", i)
		}
	}
	mu.Lock()
	n := slowIn
	mu.Unlock()
	if n > 2 {
		t.Fatalf("%d attempts in flight to the slow host; the limit is 2", n)
	}
}
