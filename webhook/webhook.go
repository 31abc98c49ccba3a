// Package webhook delivers the webhook events of jobs. The store writes a
// delivery in the same transaction as the job's change that fires it (an
// outbox); a Deliverer sends the due ones, the job object rendered at the
// moment of each attempt (current status, a fresh output URL), signed with
// the key's secret, and records every attempt, retrying with exponential
// backoff. Deliveries run concurrently with a limit per host and no
// barrier: a slow endpoint holds only its own host's slots.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"vidmatte"
)

// Sign returns the X-Webhook-Signature value of a delivery: "sha256=" and
// the hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by the key's
// webhook secret. Receivers compute the same to verify.
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Store is what delivery needs of the store. *store.DB satisfies it.
type Store interface {
	ClaimWebhooks(ctx context.Context, now time.Time, limit int, except []string, hold time.Duration) ([]*vidmatte.WebhookDelivery, error)
	ReleaseWebhooks(ctx context.Context, ids []string) error
	RecordWebhookAttempt(ctx context.Context, id string, delivered, failed bool, status int, errMsg string, next time.Time) error
	FindKey(ctx context.Context, idOrPrefix string) (*vidmatte.Key, error)
	FindJob(ctx context.Context, keyID, id string) (*vidmatte.Job, error)
}

// Options tune delivery.
type Options struct {
	Timeout      time.Duration // one attempt (default 10 s)
	MaxAttempts  int           // then the delivery fails for good (default 8)
	BaseDelay    time.Duration // delay after the first failure, doubled each time (default 5 s)
	MaxDelay     time.Duration // cap of the delay (default 1 h)
	PollInterval time.Duration // how often due deliveries are looked for (default 1 s)
	PerHost      int           // attempts in flight to one host (default 2)
	Concurrency  int           // attempts in flight in all (default 16)
}

// Config is what a Deliverer is built from.
type Config struct {
	Store  Store
	Client *http.Client // the fetcher's address-checked client
	// Render is the job object as clients see it, the body of a delivery.
	Render func(j *vidmatte.Job) ([]byte, error)
	// Observe counts outcomes (delivered, retry, failed); optional.
	Observe func(outcome string)
	Logger  *slog.Logger
	Now     func() time.Time
	Options
}

// Deliverer sends due deliveries until its Run's context ends.
type Deliverer struct {
	cfg  Config
	wake chan struct{}

	mu       sync.Mutex
	inFlight map[string]bool // delivery ids being attempted
	perHost  map[string]int
	total    int
	wg       sync.WaitGroup
}

// New fills the defaults of cfg and returns a Deliverer.
func New(cfg Config) (*Deliverer, error) {
	if cfg.Store == nil || cfg.Client == nil || cfg.Render == nil {
		return nil, errors.New("webhook: a store, an HTTP client and a renderer are needed")
	}
	o := &cfg.Options
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.BaseDelay, 5*time.Second)
	def(&o.MaxDelay, time.Hour)
	def(&o.PollInterval, time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.PerHost <= 0 {
		o.PerHost = 2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string) {}
	}
	return &Deliverer{cfg: cfg, wake: make(chan struct{}, 1), inFlight: map[string]bool{}, perHost: map[string]int{}}, nil
}

// Poke tells the deliverer that deliveries may be due (a job changed).
func (d *Deliverer) Poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// JobEvent is the runner's events sink: the store has written the event's
// delivery already, so it only pokes.
func (d *Deliverer) JobEvent(context.Context, string, *vidmatte.Job) { d.Poke() }

// Run sends due deliveries until ctx ends, then waits for the attempts in
// flight (an attempt cut short stays due and is sent after a restart).
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	defer d.wg.Wait()
	for {
		d.dispatch(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// dispatch starts an attempt of every due delivery that has a free slot
// of its host and of the whole, and is not in flight already.
func (d *Deliverer) dispatch(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		if d.total >= d.cfg.Concurrency {
			d.mu.Unlock()
			return
		}
		full := []string{}
		for h, n := range d.perHost {
			if n >= d.cfg.PerHost {
				full = append(full, h)
			}
		}
		sort.Strings(full)
		d.mu.Unlock()
		// A claim outlasts the attempt (its timeout) with room to record
		// it; a sender that dies holding one frees it when it runs out.
		due, err := d.cfg.Store.ClaimWebhooks(ctx, d.cfg.Now().UTC(), 100, full, 2*d.cfg.Timeout+10*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Logger.Error("reading due webhooks", slog.Any("error", err))
			}
			return
		}
		started := 0
		var untaken []string
		for _, w := range due {
			if !d.take(w) {
				untaken = append(untaken, w.ID) // its host filled up within this page
				continue
			}
			started++
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer d.release(w)
				d.attempt(ctx, w)
			}()
		}
		if err := d.cfg.Store.ReleaseWebhooks(context.WithoutCancel(ctx), untaken); err != nil {
			d.cfg.Logger.Warn("releasing webhook claims; they free themselves when they run out", slog.Any("error", err))
		}
		if started == 0 || len(due) < 100 {
			return
		}
	}
}

func (d *Deliverer) take(w *vidmatte.WebhookDelivery) bool {
	host := vidmatte.URLHost(w.URL)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight[w.ID] || d.perHost[host] >= d.cfg.PerHost || d.total >= d.cfg.Concurrency {
		return false
	}
	d.inFlight[w.ID] = true
	d.perHost[host]++
	d.total++
	return true
}

func (d *Deliverer) release(w *vidmatte.WebhookDelivery) {
	host := vidmatte.URLHost(w.URL)
	d.mu.Lock()
	delete(d.inFlight, w.ID)
	if d.perHost[host]--; d.perHost[host] <= 0 {
		delete(d.perHost, host)
	}
	d.total--
	d.mu.Unlock()
	d.Poke() // a slot is free
}

// attempt sends one delivery once and records the outcome.
func (d *Deliverer) attempt(ctx context.Context, w *vidmatte.WebhookDelivery) {
	log := d.cfg.Logger.With(slog.String("job_id", w.JobID), slog.String("delivery_id", w.ID), slog.String("event", w.Event),
		slog.Int("attempt", w.Attempts+1))
	status, err := d.send(ctx, w)
	if ctx.Err() != nil {
		return // shutting down: the delivery stays due and is retried after the restart
	}
	bg := context.WithoutCancel(ctx)
	if err == nil && status >= 200 && status <= 299 {
		if rerr := d.cfg.Store.RecordWebhookAttempt(bg, w.ID, true, false, status, "", time.Time{}); rerr != nil {
			log.Error("recording webhook attempt", slog.Any("error", rerr))
		}
		d.cfg.Observe("delivered")
		log.Info("webhook delivered", slog.Int("status", status))
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		msg = fmt.Sprintf("answered %d", status)
	}
	failed := w.Attempts+1 >= d.cfg.MaxAttempts
	next := time.Time{}
	if !failed {
		delay := d.cfg.BaseDelay << min(w.Attempts, 30)
		if delay <= 0 || delay > d.cfg.MaxDelay {
			delay = d.cfg.MaxDelay
		}
		next = d.cfg.Now().UTC().Add(delay)
	}
	if rerr := d.cfg.Store.RecordWebhookAttempt(bg, w.ID, false, failed, status, msg, next); rerr != nil {
		log.Error("recording webhook attempt", slog.Any("error", rerr))
	}
	if failed {
		d.cfg.Observe("failed")
		log.Warn("webhook failed for good", slog.Int("status", status), slog.String("error", msg))
	} else {
		d.cfg.Observe("retry")
		log.Info("webhook attempt failed; will retry", slog.Int("status", status), slog.String("error", msg), slog.Time("next_attempt_at", next))
	}
}

// send renders the job as it is now and posts it, signed.
func (d *Deliverer) send(ctx context.Context, w *vidmatte.WebhookDelivery) (int, error) {
	key, err := d.cfg.Store.FindKey(ctx, w.KeyID)
	if err != nil {
		return 0, fmt.Errorf("finding the key: %w", err)
	}
	j, err := d.cfg.Store.FindJob(ctx, w.KeyID, w.JobID)
	if err != nil {
		return 0, fmt.Errorf("finding the job: %w", err)
	}
	body, err := d.cfg.Render(j)
	if err != nil {
		return 0, fmt.Errorf("rendering the job: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := d.cfg.Now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "vidmatte-webhooks")
	h.Set("X-Webhook-Event", w.Event)
	h.Set("X-Webhook-Delivery-Id", w.ID)
	h.Set("X-Webhook-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Webhook-Signature", Sign(key.WebhookSecret, ts, body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	return resp.StatusCode, nil
}
