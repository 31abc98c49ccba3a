package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"vidmatte"
)

// SignWebhook returns the X-Webhook-Signature value of a delivery:
// "sha256=" and the hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by
// the key's webhook secret. Receivers compute the same to verify.
func SignWebhook(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// JobEvent queues a webhook delivery of event for the job, when it has a
// webhook URL. The payload is the job object, rendered once, so that
// retries send the same bytes. The runner calls it on job.started,
// job.completed and job.failed.
func (s *Server) JobEvent(ctx context.Context, event string, j *vidmatte.Job) {
	if j.WebhookURL == "" {
		return
	}
	log := s.log.With(slog.String("job_id", j.ID), slog.String("event", event))
	body, err := json.Marshal(s.renderJob(j, s.cfg.PublicURL))
	if err != nil {
		log.Error("rendering webhook payload", slog.Any("error", err))
		return
	}
	d := &vidmatte.WebhookDelivery{
		JobID:         j.ID,
		KeyID:         j.KeyID,
		Event:         event,
		URL:           j.WebhookURL,
		Payload:       body,
		NextAttemptAt: s.cfg.Now().UTC(),
		CreatedAt:     s.cfg.Now().UTC(),
	}
	if err := s.store.EnqueueWebhook(context.WithoutCancel(ctx), d); err != nil {
		log.Error("queueing webhook", slog.Any("error", err))
		return
	}
	log.Info("webhook queued", slog.String("delivery_id", d.ID))
	s.webhooks.poke()
}

// webhookDeliverer sends due deliveries, a few at a time, and records every
// attempt; failures are retried with exponential backoff until MaxAttempts.
type webhookDeliverer struct {
	s    *Server
	opts WebhookOptions
	wake chan struct{}
}

func newWebhookDeliverer(s *Server, o WebhookOptions) *webhookDeliverer {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 5 * time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Hour
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	return &webhookDeliverer{s: s, opts: o, wake: make(chan struct{}, 1)}
}

func (d *webhookDeliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *webhookDeliverer) run(ctx context.Context) {
	t := time.NewTicker(d.opts.PollInterval)
	defer t.Stop()
	for {
		d.deliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// webhookConcurrency bounds the deliveries in flight.
const webhookConcurrency = 4

func (d *webhookDeliverer) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := d.s.store.DueWebhooks(ctx, d.s.cfg.Now().UTC(), 32)
		if err != nil {
			if ctx.Err() == nil {
				d.s.log.Error("reading due webhooks", slog.Any("error", err))
			}
			return
		}
		if len(due) == 0 {
			return
		}
		sem := make(chan struct{}, webhookConcurrency)
		var wg sync.WaitGroup
		for _, w := range due {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d.attempt(ctx, w)
			}()
		}
		wg.Wait()
		if len(due) < 32 {
			return
		}
	}
}

// attempt sends one delivery once and records the outcome.
func (d *webhookDeliverer) attempt(ctx context.Context, w *vidmatte.WebhookDelivery) {
	log := d.s.log.With(slog.String("job_id", w.JobID), slog.String("delivery_id", w.ID), slog.String("event", w.Event),
		slog.Int("attempt", w.Attempts+1))
	status, err := d.send(ctx, w)
	if ctx.Err() != nil {
		return // shutting down: the delivery stays due and is retried after the restart
	}
	if err == nil && status >= 200 && status <= 299 {
		if rerr := d.s.store.RecordWebhookAttempt(context.WithoutCancel(ctx), w.ID, true, false, status, "", time.Time{}); rerr != nil {
			log.Error("recording webhook attempt", slog.Any("error", rerr))
		}
		d.s.metrics.observeWebhook("delivered")
		log.Info("webhook delivered", slog.Int("status", status))
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		msg = fmt.Sprintf("answered %d", status)
	}
	failed := w.Attempts+1 >= d.opts.MaxAttempts
	next := time.Time{}
	if !failed {
		delay := d.opts.BaseDelay << min(w.Attempts, 30)
		if delay <= 0 || delay > d.opts.MaxDelay {
			delay = d.opts.MaxDelay
		}
		next = d.s.cfg.Now().UTC().Add(delay)
	}
	if rerr := d.s.store.RecordWebhookAttempt(context.WithoutCancel(ctx), w.ID, false, failed, status, msg, next); rerr != nil {
		log.Error("recording webhook attempt", slog.Any("error", rerr))
	}
	if failed {
		d.s.metrics.observeWebhook("failed")
		log.Warn("webhook failed for good", slog.Int("status", status), slog.String("error", msg))
	} else {
		d.s.metrics.observeWebhook("retry")
		log.Info("webhook attempt failed; will retry", slog.Int("status", status), slog.String("error", msg), slog.Time("next_attempt_at", next))
	}
}

func (d *webhookDeliverer) send(ctx context.Context, w *vidmatte.WebhookDelivery) (int, error) {
	key, err := d.s.store.FindKey(ctx, w.KeyID)
	if err != nil {
		return 0, fmt.Errorf("finding the key: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(w.Payload))
	if err != nil {
		return 0, err
	}
	ts := d.s.cfg.Now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "vidmatte-webhooks")
	h.Set("X-Webhook-Event", w.Event)
	h.Set("X-Webhook-Delivery-Id", w.ID)
	h.Set("X-Webhook-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Webhook-Signature", SignWebhook(key.WebhookSecret, ts, w.Payload))
	resp, err := d.s.cfg.Fetcher.HTTP().Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	return resp.StatusCode, nil
}
