package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"vidmatte"
)

const deliveryColumns = `id, job_id, key_id, event, url, payload, attempts, delivered, failed,
	next_attempt_at, last_status, last_error, created_at`

func scanDelivery(row interface{ Scan(...any) error }) (*vidmatte.WebhookDelivery, error) {
	var (
		d             vidmatte.WebhookDelivery
		next, created int64
	)
	if err := row.Scan(&d.ID, &d.JobID, &d.KeyID, &d.Event, &d.URL, &d.Payload, &d.Attempts, &d.Delivered, &d.Failed,
		&next, &d.LastStatus, &d.LastError, &created); err != nil {
		return nil, err
	}
	d.NextAttemptAt = fromNanos(next)
	d.CreatedAt = fromNanos(created)
	return &d, nil
}

// queueEvent writes the delivery of a job's event, when the job has a
// webhook URL, inside the transaction of the change that fires it (the
// outbox): the change and its delivery commit together or not at all, so
// no crash can lose an event. The body is rendered when it is sent.
func queueEvent(ctx context.Context, tx *txn, j *vidmatte.Job, event string, now time.Time) error {
	if j.WebhookURL == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, job_id, key_id, event, url, host, payload, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, newID(prefixDelivery), j.ID, j.KeyID, event, j.WebhookURL, vidmatte.URLHost(j.WebhookURL), []byte{}, nanos(now), nanos(now))
	return dbError(err, "queue webhook")
}

// EnqueueWebhook persists a delivery of one event of a job and fills d.ID
// ("whd_…"), d.KeyID (the job's key, when empty), and d.CreatedAt and
// d.NextAttemptAt when they are zero (now). The caller's times are kept
// otherwise, so a caller with its own clock sees its deliveries due by that
// clock. An unknown job is CodeNotFound; a KeyID that is not the job's is
// CodeInvalid.
func (db *DB) EnqueueWebhook(ctx context.Context, d *vidmatte.WebhookDelivery) error {
	switch d.Event {
	case vidmatte.EventJobStarted, vidmatte.EventJobCompleted, vidmatte.EventJobFailed:
	default:
		return vidmatte.FieldErrorf("event", "unknown event %q", d.Event)
	}
	if d.URL == "" {
		return vidmatte.FieldErrorf("url", "is required")
	}
	id, now := newID(prefixDelivery), d.CreatedAt
	if now.IsZero() {
		now = db.now()
	}
	now = fromNanos(nanos(now))
	next := d.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	next = fromNanos(nanos(next))
	payload := d.Payload
	if payload == nil {
		payload = []byte{}
	}
	var keyID string
	err := db.write(ctx, "enqueue webhook", func(tx *txn) error {
		err := tx.QueryRowContext(ctx, "SELECT key_id FROM jobs WHERE id = ?", d.JobID).Scan(&keyID)
		if errors.Is(err, sql.ErrNoRows) {
			return vidmatte.Errorf(vidmatte.CodeNotFound, "no job %q", d.JobID)
		}
		if err != nil {
			return dbError(err, "enqueue webhook")
		}
		if d.KeyID != "" && d.KeyID != keyID {
			return vidmatte.FieldErrorf("key_id", "is not the key of job %s", d.JobID)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, job_id, key_id, event, url, host, payload, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, d.JobID, keyID, d.Event, d.URL, vidmatte.URLHost(d.URL), payload, nanos(next), nanos(now))
		return dbError(err, "enqueue webhook")
	})
	if err != nil {
		return err
	}
	d.ID, d.KeyID, d.Payload, d.CreatedAt, d.NextAttemptAt = id, keyID, payload, now, next
	d.Attempts, d.Delivered, d.Failed, d.LastStatus, d.LastError = 0, false, false, 0, ""
	return nil
}

// ClaimWebhooks claims, for one attempt each, up to limit (1..100, 0
// meaning 20) deliveries neither delivered nor given up whose next attempt
// is at or before now and that no other sender holds, oldest first,
// leaving out those to the hosts in except (a sender's hosts at their
// limit, so that they cannot fill the page). A claim holds a delivery for
// hold on the database's clock: other senders (other daemons) skip it
// meanwhile, and may send it once the claim runs out (its sender died);
// RecordWebhookAttempt ends it.
func (db *DB) ClaimWebhooks(ctx context.Context, now time.Time, limit int, except []string, hold time.Duration) ([]*vidmatte.WebhookDelivery, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, err
	}
	if except == nil {
		except = []string{}
	}
	hosts, err := json.Marshal(except)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInvalid, "hosts cannot be encoded")
	}
	var ds []*vidmatte.WebhookDelivery
	err = db.write(ctx, "claim webhooks", func(tx *txn) error {
		ds = ds[:0]
		clock, err := db.clock(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET claimed_until = ?1
WHERE claimed_until < ?2 AND id IN (SELECT id FROM webhook_deliveries
	WHERE delivered = FALSE AND failed = FALSE AND next_attempt_at <= ?3 AND claimed_until < ?2
	AND host NOT IN json_values(?4)
	ORDER BY created_at, id LIMIT ?5 FOR_UPDATE SKIP_LOCKED)
RETURNING `+deliveryColumns, clock+int64(hold), clock, nanos(now), string(hosts), limit)
		if err != nil {
			return dbError(err, "claim webhooks")
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return dbError(err, "claim webhooks")
			}
			ds = append(ds, d)
		}
		return dbError(rows.Err(), "claim webhooks")
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ds, func(a, b int) bool {
		if !ds[a].CreatedAt.Equal(ds[b].CreatedAt) {
			return ds[a].CreatedAt.Before(ds[b].CreatedAt)
		}
		return ds[a].ID < ds[b].ID
	})
	return ds, nil
}

// ReleaseWebhooks ends claims of deliveries a sender took but will not
// attempt now (its host had no free slot), so any sender may take them.
func (db *DB) ReleaseWebhooks(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInvalid, "delivery ids cannot be encoded")
	}
	return db.write(ctx, "release webhooks", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, "UPDATE webhook_deliveries SET claimed_until = 0 WHERE id IN json_values(?)", string(list))
		return dbError(err, "release webhooks")
	})
}

// FindWebhook returns one delivery with the state of its attempts.
func (db *DB) FindWebhook(ctx context.Context, id string) (*vidmatte.WebhookDelivery, error) {
	d, err := scanDelivery(db.r.QueryRowContext(ctx, "SELECT "+deliveryColumns+" FROM webhook_deliveries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "no webhook delivery %q", id)
	}
	if err != nil {
		return nil, dbError(err, "read webhook delivery")
	}
	return d, nil
}

// RecordWebhookAttempt stores the outcome of one attempt of a delivery:
// it counts the attempt, keeps status and errMsg as the last ones, adds a
// row to the delivery's attempt history, and then marks the delivery
// delivered, or failed for good, or due again at next. A delivery already
// delivered or given up is CodeConflict; an unknown one CodeNotFound.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id string, delivered, failed bool, status int, errMsg string, next time.Time) error {
	if delivered && failed {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "a webhook attempt cannot both deliver and fail")
	}
	errMsg = clip(errMsg, 1000)
	return db.write(ctx, "record webhook attempt", func(tx *txn) error {
		var (
			attempts        int
			wasDel, wasFail bool
			nextAt          int64
		)
		err := tx.QueryRowContext(ctx, "SELECT attempts, delivered, failed, next_attempt_at FROM webhook_deliveries WHERE id = ?", id).
			Scan(&attempts, &wasDel, &wasFail, &nextAt)
		if errors.Is(err, sql.ErrNoRows) {
			return vidmatte.Errorf(vidmatte.CodeNotFound, "no webhook delivery %q", id)
		}
		if err != nil {
			return dbError(err, "record webhook attempt")
		}
		if wasDel || wasFail {
			return vidmatte.Errorf(vidmatte.CodeConflict, "webhook delivery %s is already finished", id)
		}
		if !delivered && !failed {
			nextAt = nanos(next)
		}
		now := db.now()
		attempts++
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries
SET attempts = ?, delivered = ?, failed = ?, next_attempt_at = ?, last_status = ?, last_error = ?, claimed_until = 0
WHERE id = ?`, attempts, delivered, failed, nextAt, status, errMsg, id); err != nil {
			return dbError(err, "record webhook attempt")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, delivered)
VALUES (?, ?, ?, ?, ?, ?)`, id, attempts, nanos(now), status, errMsg, delivered)
		return dbError(err, "record webhook attempt")
	})
}

// WebhookAttempt is one persisted attempt of a webhook delivery.
type WebhookAttempt struct {
	Attempt   int // 1 for the first
	At        time.Time
	Status    int // the HTTP status, 0 when there was no answer
	Error     string
	Delivered bool
}

// WebhookAttempts returns a delivery's attempts, first first. An unknown
// delivery is CodeNotFound.
func (db *DB) WebhookAttempts(ctx context.Context, id string) ([]WebhookAttempt, error) {
	if _, err := db.FindWebhook(ctx, id); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, "SELECT attempt, at, status, error, delivered FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt", id)
	if err != nil {
		return nil, dbError(err, "read webhook attempts")
	}
	defer rows.Close()
	as := []WebhookAttempt{}
	for rows.Next() {
		var (
			a  WebhookAttempt
			at int64
		)
		if err := rows.Scan(&a.Attempt, &at, &a.Status, &a.Error, &a.Delivered); err != nil {
			return nil, dbError(err, "read webhook attempts")
		}
		a.At = fromNanos(at)
		as = append(as, a)
	}
	return as, dbError(rows.Err(), "read webhook attempts")
}
